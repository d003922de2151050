/*
 * grpc_wire.c: gRPC's byte-level pieces (see grpc_wire.h).
 */
#include "grpc_wire.h"

#include <stdlib.h>
#include <string.h>

/* ===== Message reader ===== */

void vs_grpc_reader_init(vs_grpc_reader *r, size_t max)
{
    memset(r, 0, sizeof *r);
    r->max = max;
}

void vs_grpc_reader_free(vs_grpc_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->in_msg = false;
    r->hdr_have = 0;
}

bool vs_grpc_reader_idle(const vs_grpc_reader *r) { return !r->in_msg && r->hdr_have == 0; }

size_t vs_grpc_reader_partial(const vs_grpc_reader *r) { return r->in_msg ? 5 + r->have : r->hdr_have; }

vs_grpc_read_result vs_grpc_reader_feed(vs_grpc_reader *r, const uint8_t *data, size_t n,
                                        size_t *used, uint8_t **msg, size_t *msg_len)
{
    size_t i = 0;
    *msg = NULL;
    *msg_len = 0;
    while (i < n || (r->in_msg && r->have == r->len)) {
        if (!r->in_msg) {
            size_t take = 5 - r->hdr_have;
            if (take > n - i) take = n - i;
            memcpy(r->hdr + r->hdr_have, data + i, take);
            r->hdr_have += (uint32_t)take;
            i += take;
            if (r->hdr_have < 5) break;
            uint32_t len = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 |
                           (uint32_t)r->hdr[3] << 8 | r->hdr[4];
            *used = i;
            if (r->hdr[0] == 1) return VS_GRPC_READ_COMPRESSED;
            if (r->hdr[0] != 0) return VS_GRPC_READ_BAD_FLAG;
            if (len > r->max) return VS_GRPC_READ_TOO_LARGE;
            r->len = len;
            r->have = 0;
            r->in_msg = true;
            r->buf = NULL;
            r->cap = 0;
            continue;
        }
        if (r->have < r->len) {
            size_t take = r->len - r->have;
            if (take > n - i) take = n - i;
            if (r->have + take > r->cap) {
                /* Grow with the data, not with the prefix: a peer announcing 64 MiB and sending
                 * nothing costs nothing. */
                size_t cap = r->cap ? r->cap : 65536;
                while (cap < r->have + take) cap *= 2;
                if (cap > r->len) cap = r->len;
                uint8_t *nb = realloc(r->buf, cap);
                if (!nb) return VS_GRPC_READ_NOMEM;
                r->buf = nb;
                r->cap = cap;
            }
            memcpy(r->buf + r->have, data + i, take);
            r->have += take;
            i += take;
        }
        if (r->have == r->len) {
            *msg = r->buf;
            *msg_len = r->len;
            r->buf = NULL;
            r->in_msg = false;
            r->hdr_have = 0;
            *used = i;
            return VS_GRPC_READ_MESSAGE;
        }
    }
    *used = i;
    return VS_GRPC_READ_MORE;
}

/* ===== Headers ===== */

bool vs_grpc_parse_timeout(const char *v, size_t n, uint64_t *ns)
{
    if (n < 2 || n > 9) return false;
    uint64_t x = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] < '0' || v[i] > '9') return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    uint64_t mul;
    switch (v[n - 1]) {
    case 'H': mul = 3600ull * 1000000000ull; break;
    case 'M': mul = 60ull * 1000000000ull; break;
    case 'S': mul = 1000000000ull; break;
    case 'm': mul = 1000000ull; break;
    case 'u': mul = 1000ull; break;
    case 'n': mul = 1ull; break;
    default: return false;
    }
    /* 8 digits of hours is about 11,000 years: cap instead of overflowing. */
    if (x > UINT64_MAX / mul) x = UINT64_MAX / mul;
    *ns = x * mul;
    return true;
}

size_t vs_grpc_percent_encode(const char *msg, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (cap == 0) return 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        bool plain = *p >= 0x20 && *p <= 0x7e && *p != '%';
        size_t need = plain ? 1 : 3;
        if (o + need >= cap) break;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return o;
}

bool vs_ct_equal(const void *a, size_t an, const void *b, size_t bn)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = an == bn ? 0 : 1;
    /* Walk b's length whatever a is, so the time says nothing about where they differ. */
    for (size_t i = 0; i < bn; i++) d |= (unsigned char)((i < an ? x[i] : 0) ^ y[i]);
    return d == 0;
}
