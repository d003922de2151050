/*
 * snapshot.c: snapshot files: writing them from a consistent point of the store, in the
 * background; loading and checking them; trimming the log behind them.
 *
 * What a snapshot holds (format version 1): every collection's schema and every item's vectors as
 * given and attributes (tag values as strings, so the dictionaries come back on load), and the seq
 * they reflect. The index is rebuilt from them on load: quantizing 1M x 128 rows takes well under
 * a second, which keeps restart_s within its 5 s target, and the file does not depend on the index's
 * internal layout. (Storing the quantized matrices and slot map would need an export/import of the
 * index's buffers, which index/ does not offer yet.)
 *
 * Consistency: the snapshot is read from a RocksDB snapshot, where meta "last_seq" and `items`
 * were written by the same WriteBatches, so the file reflects exactly the state after that seq,
 * with no pause of the writer or the executor.
 *
 * Layout (little-endian, the hosts vecscan runs on):
 *   header   "VSSNAP1\n", u32 version, u32 reserved, u64 seq, u32 n_collections, u32 CRC32C of the
 *            previous 28 bytes
 *   sections u32 magic "VSSC", u32 type, u64 payload length, u32 CRC32C of the payload, u32 0,
 *            then the payload:
 *     COLLECTION  a packed CollectionMeta
 *     ROWS        u32 collection id, u32 n, u64 ids[n]; per vector field: u32 present, u32 0, a
 *                 presence bitmap of n bits (u64 words), present x dim floats, padded to 8; per
 *                 attribute field: u32 present, u32 0, bitmap, then int64 values, or per present
 *                 row u32 count and per value u32 length + bytes, padded to 8
 *     END         u64 rows, u64 sections before it; nothing may follow
 * Written as snapshots/.tmp-<seq>.vss, fsynced, renamed to snap-<seq>.vss, directory fsynced. A
 * file that fails any check (header, version, a section's CRC, END missing or not last) is
 * skipped with its reason logged; recovery goes on with an older snapshot or `items`.
 *
 * The two newest snapshots are kept and the log is trimmed behind the older of them, so a newest
 * snapshot found corrupt still leaves the older one plus the log.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_internal.h"

#define SNAP_MAGIC "VSSNAP1\n"
#define SEC_MAGIC 0x43535356u /* "VSSC" */
#define SEC_COLLECTION 1u
#define SEC_ROWS 2u
#define SEC_END 3u
#define BLOCK_ROWS 4096
#define SEC_MAX_LEN (1ull << 31)
#define KEEP_SNAPSHOTS 2

/* ===== CRC32C (Castagnoli), SSE4.2 where the CPU has it ===== */

static uint32_t crc_table[256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* Fills the table of the reflected polynomial 0x82F63B78 and looks for SSE4.2. */
static void crc_init(void)
{
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

/* The portable reference: one byte at a time. */
static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

/* Eight bytes at a time with the crc32 instruction. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                             size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}

/* CRC32C of buf, continuing crc (start with 0). */
uint32_t vs_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    crc = crc_hw ? crc32c_hw(crc, buf, len) : crc32c_sw(crc, buf, len);
    return ~crc;
}

/* ===== Writing ===== */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} wbuf;

/* Appends n bytes. */
static void wb_put(wbuf *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

/* Appends a u32 / u64. */
static void wb_u32(wbuf *b, uint32_t v) { wb_put(b, &v, 4); }
static void wb_u64(wbuf *b, uint64_t v) { wb_put(b, &v, 8); }

/* Pads to a multiple of 8. */
static void wb_pad8(wbuf *b)
{
    static const uint8_t z[8];
    if (b->len % 8)
        wb_put(b, z, 8 - b->len % 8);
}

/* One collection as the snapshot writer sees it. */
typedef struct wcoll {
    Vsstore__CollectionMeta *meta;
    uint32_t dims[VS_MAX_FIELDS];
    uint32_t n_fields;
    vs_attr_schema *attrs;
} wcoll;

typedef struct swriter {
    FILE *f;
    uint64_t sections, rows;
    wbuf sec;
    bool io_err;
    int err_no;
} swriter;

/* Writes one section (header + payload) to the file. */
static void write_section(swriter *w, uint32_t type, const uint8_t *payload, size_t len)
{
    uint32_t hdr[6] = {SEC_MAGIC, type, (uint32_t)len, (uint32_t)((uint64_t)len >> 32),
                       vs_crc32c(0, payload, len), 0};
    if (fwrite(hdr, sizeof hdr, 1, w->f) != 1 || (len && fwrite(payload, len, 1, w->f) != 1)) {
        if (!w->io_err)
            w->err_no = errno;
        w->io_err = true;
    }
    w->sections++;
}

/* Encodes a block of items of one collection as a ROWS section. */
static void write_rows(swriter *w, const wcoll *c, vs_eitem **items, uint32_t n)
{
    wbuf *b = &w->sec;
    b->len = 0;
    wb_u32(b, c->meta->id);
    wb_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        wb_u64(b, items[i]->id);
    uint32_t words = (n + 63) / 64;
    uint64_t bm[BLOCK_ROWS / 64];
    for (uint32_t f = 0; f < c->n_fields; f++) {
        memset(bm, 0, sizeof bm);
        uint32_t present = 0;
        for (uint32_t i = 0; i < n; i++)
            if (items[i]->vec[f]) {
                bm[i / 64] |= 1ull << (i % 64);
                present++;
            }
        wb_u32(b, present);
        wb_u32(b, 0);
        wb_put(b, bm, words * 8);
        for (uint32_t i = 0; i < n; i++)
            if (items[i]->vec[f])
                wb_put(b, items[i]->vec[f], c->dims[f] * sizeof(float));
        wb_pad8(b);
    }
    uint32_t na = vs_attr_schema_count(c->attrs);
    for (uint32_t a = 0; a < na; a++) {
        memset(bm, 0, sizeof bm);
        uint32_t present = 0;
        const vs_eattr *cell[BLOCK_ROWS];
        for (uint32_t i = 0; i < n; i++) {
            cell[i] = NULL;
            for (uint32_t k = 0; k < items[i]->n_attrs; k++)
                if (items[i]->attrs[k].field == a)
                    cell[i] = &items[i]->attrs[k];
            if (cell[i]) {
                bm[i / 64] |= 1ull << (i % 64);
                present++;
            }
        }
        wb_u32(b, present);
        wb_u32(b, 0);
        wb_put(b, bm, words * 8);
        bool is_int = vs_attr_schema_type(c->attrs, a) == VS_ATTR_INT;
        for (uint32_t i = 0; i < n; i++) {
            if (!cell[i])
                continue;
            if (is_int) {
                wb_put(b, &cell[i]->ival, 8);
                continue;
            }
            wb_u32(b, cell[i]->n_tags);
            for (uint32_t t = 0; t < cell[i]->n_tags; t++) {
                wb_u32(b, (uint32_t)cell[i]->tags[t].len);
                wb_put(b, cell[i]->tags[t].s, cell[i]->tags[t].len);
            }
        }
        wb_pad8(b);
    }
    if (!b->oom)
        write_section(w, SEC_ROWS, b->p, b->len);
    w->rows += n;
}

/* fsyncs a directory so a rename in it is durable. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Frees the writer's view of the collections. */
static void wcolls_free(wcoll *cs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vsstore__collection_meta__free_unpacked(cs[i].meta, NULL);
        vs_attr_schema_destroy(cs[i].attrs);
    }
    free(cs);
}

/* Lists snapshot files (snap-<seq>.vss), newest first. */
vs_err vs_snapshot_list(vs_store *s, char ***paths, uint64_t **seqs, size_t *n, vs_status *st)
{
    DIR *d = opendir(s->snap_dir);
    *paths = NULL;
    *seqs = NULL;
    *n = 0;
    if (!d)
        return errno == ENOENT ? VS_OK
                               : vs_status_set(st, VS_ERR_IO, "cannot list '%s': %s", s->snap_dir,
                                               strerror(errno));
    struct dirent *de;
    size_t cap = 0;
    while ((de = readdir(d))) {
        unsigned long long seq;
        if (strncmp(de->d_name, ".tmp-", 5) == 0) { /* a write cut short: never renamed */
            char tp[4200];
            snprintf(tp, sizeof tp, "%s/%s", s->snap_dir, de->d_name);
            if (unlink(tp) == 0)
                vs_elog(s->log, s->log_ctx, VS_LOG_INFO, "snapshot: removed unfinished %s", tp);
            continue;
        }
        char tail[8];
        if (sscanf(de->d_name, "snap-%20llu.vs%1s", &seq, tail) != 2 || strcmp(tail, "s") != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **np = realloc(*paths, cap * sizeof *np);
            uint64_t *ns = np ? realloc(*seqs, cap * sizeof *ns) : NULL;
            if (np)
                *paths = np;
            if (!np || !ns) {
                closedir(d);
                return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            }
            *seqs = ns;
        }
        size_t pl = strlen(s->snap_dir) + strlen(de->d_name) + 2;
        char *p = malloc(pl);
        if (!p) {
            closedir(d);
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        }
        snprintf(p, pl, "%s/%s", s->snap_dir, de->d_name);
        (*paths)[*n] = p;
        (*seqs)[*n] = seq;
        (*n)++;
    }
    closedir(d);
    /* newest first (insertion sort: few files) */
    for (size_t i = 1; i < *n; i++)
        for (size_t j = i; j > 0 && (*seqs)[j] > (*seqs)[j - 1]; j--) {
            uint64_t t = (*seqs)[j];
            (*seqs)[j] = (*seqs)[j - 1];
            (*seqs)[j - 1] = t;
            char *tp = (*paths)[j];
            (*paths)[j] = (*paths)[j - 1];
            (*paths)[j - 1] = tp;
        }
    return VS_OK;
}

/* Keeps the newest KEEP_SNAPSHOTS files and trims the log behind the oldest kept one. */
static void trim_behind(vs_store *s)
{
    char **paths;
    uint64_t *seqs;
    size_t n;
    vs_status st;
    if (vs_snapshot_list(s, &paths, &seqs, &n, &st)) {
        vs_elog(s->log, s->log_ctx, VS_LOG_WARN, "snapshot: %s", st.msg);
        return;
    }
    if (n >= KEEP_SNAPSHOTS && !atomic_load(&s->write_failed)) {
        uint64_t upto = seqs[KEEP_SNAPSHOTS - 1];
        char k0[8], k1[8];
        vs_store_seq_key(0, k0);
        vs_store_seq_key(upto + 1, k1);
        char *err = NULL;
        rocksdb_delete_range_cf(s->db, s->wo_nosync, s->cf[VS_CF_LOG], k0, 8, k1, 8, &err);
        if (err) {
            vs_elog(s->log, s->log_ctx, VS_LOG_WARN, "snapshot: trimming the log: %s", err);
            rocksdb_free(err);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (i >= KEEP_SNAPSHOTS && unlink(paths[i]) != 0)
            vs_elog(s->log, s->log_ctx, VS_LOG_WARN, "snapshot: cannot remove '%s': %s", paths[i],
                    strerror(errno));
        free(paths[i]);
    }
    free(paths);
    free(seqs);
}

/* Writes a snapshot of the store's state at one RocksDB snapshot. */
vs_err vs_snapshot_write(vs_store *s, uint64_t *seq_out, vs_status *st)
{
    const rocksdb_snapshot_t *rs = rocksdb_create_snapshot(s->db);
    uint64_t seq;
    Vsstore__CollectionMeta **metas = NULL;
    size_t n_colls = 0;
    wcoll *cs = NULL;
    vs_err rc;
    char tmp[4200], fin[4200];
    swriter w;
    memset(&w, 0, sizeof w);
    rocksdb_readoptions_t *ro = NULL;
    rocksdb_iterator_t *it = NULL;
    vs_eitem **block = NULL;
    uint32_t nb = 0;
    const wcoll *bc = NULL;
    if ((rc = vs_store_read_last_seq(s, rs, &seq, st)) ||
        (rc = vs_store_read_collections(s, rs, &metas, &n_colls, st)))
        goto out;
    snprintf(fin, sizeof fin, "%s/snap-%020llu.vss", s->snap_dir, (unsigned long long)seq);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%020llu.vss", s->snap_dir, (unsigned long long)seq);
    if (seq_out)
        *seq_out = seq;
    if (access(fin, F_OK) == 0) /* already written at this seq */
        goto out;
    cs = calloc(n_colls ? n_colls : 1, sizeof *cs);
    block = malloc(BLOCK_ROWS * sizeof *block);
    if (!cs || !block) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_colls; i++) {
        cs[i].meta = metas[i];
        metas[i] = NULL;
        cs[i].n_fields = (uint32_t)cs[i].meta->n_vectors;
        for (uint32_t f = 0; f < cs[i].n_fields && f < VS_MAX_FIELDS; f++)
            cs[i].dims[f] = cs[i].meta->vectors[f]->dim;
        cs[i].attrs = vs_attr_schema_create();
        if (!cs[i].attrs) {
            rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
        for (size_t a = 0; a < cs[i].meta->n_attrs && !rc; a++)
            rc = vs_attr_schema_add(cs[i].attrs, cs[i].meta->attrs[a]->name,
                                    (vs_attr_type)cs[i].meta->attrs[a]->type, st);
        if (rc)
            goto out;
    }
    w.f = fopen(tmp, "wb");
    if (!w.f) {
        rc = vs_status_set(st, VS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    setvbuf(w.f, NULL, _IOFBF, 1 << 20);
    uint8_t hdr[32];
    memcpy(hdr, SNAP_MAGIC, 8);
    uint32_t ver = VS_SNAPSHOT_FORMAT_VERSION, zero = 0, nc = (uint32_t)n_colls;
    memcpy(hdr + 8, &ver, 4);
    memcpy(hdr + 12, &zero, 4);
    memcpy(hdr + 16, &seq, 8);
    memcpy(hdr + 24, &nc, 4);
    uint32_t hcrc = vs_crc32c(0, hdr, 28);
    memcpy(hdr + 28, &hcrc, 4);
    if (fwrite(hdr, 32, 1, w.f) != 1)
        w.io_err = true;
    for (size_t i = 0; i < n_colls; i++) {
        size_t sz = vsstore__collection_meta__get_packed_size(cs[i].meta);
        uint8_t *p = malloc(sz ? sz : 1);
        if (!p) {
            rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
        vsstore__collection_meta__pack(cs[i].meta, p);
        write_section(&w, SEC_COLLECTION, p, sz);
        free(p);
    }
    ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, rs);
    rocksdb_readoptions_set_fill_cache(ro, 0);
    it = rocksdb_create_iterator_cf(s->db, ro, s->cf[VS_CF_ITEMS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && !w.io_err;
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl != 12)
            continue;
        uint32_t cid = (uint32_t)(uint8_t)k[0] << 24 | (uint32_t)(uint8_t)k[1] << 16 |
                       (uint32_t)(uint8_t)k[2] << 8 | (uint8_t)k[3];
        const wcoll *c = NULL;
        for (size_t i = 0; i < n_colls && !c; i++)
            if (cs[i].meta->id == cid)
                c = &cs[i];
        if (!c)
            continue; /* items of a collection being dropped: not in this snapshot's meta */
        if (bc && (c != bc || nb == BLOCK_ROWS)) {
            write_rows(&w, bc, block, nb);
            for (uint32_t i = 0; i < nb; i++)
                vs_eitem_free(block[i]);
            nb = 0;
        }
        bc = c;
        vs_eitem *item;
        if ((rc = vs_eitem_unpack((const uint8_t *)v, vl, c->dims, c->n_fields, c->attrs, &item,
                                  st)))
            goto out;
        block[nb++] = item;
    }
    if (nb && !w.io_err)
        write_rows(&w, bc, block, nb);
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err) {
        rc = vs_store_error(st, VS_ERR_IO, "reading items for a snapshot", err);
        goto out;
    }
    uint64_t end[2] = {w.rows, w.sections};
    write_section(&w, SEC_END, (const uint8_t *)end, sizeof end);
    if (w.sec.oom) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory writing a snapshot");
        goto out;
    }
    if (w.io_err || fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) {
        int en = w.io_err ? w.err_no : errno;
        rc = vs_status_set(st, en == ENOSPC ? VS_ERR_UNAVAILABLE : VS_ERR_IO,
                           "%swriting snapshot '%s': %s", en == ENOSPC ? "disk full: " : "", tmp,
                           strerror(en));
        goto out;
    }
    int cr = fclose(w.f);
    w.f = NULL;
    if (cr != 0) {
        rc = vs_status_set(st, VS_ERR_IO, "closing snapshot '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, fin) != 0) {
        rc = vs_status_set(st, VS_ERR_IO, "renaming snapshot '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync_dir(s->snap_dir) != 0) {
        rc = vs_status_set(st, VS_ERR_IO, "fsync of '%s': %s", s->snap_dir, strerror(errno));
        goto out;
    }
    vs_elog(s->log, s->log_ctx, VS_LOG_INFO, "snapshot: wrote %s (%llu rows, seq %llu)", fin,
            (unsigned long long)w.rows, (unsigned long long)seq);
    trim_behind(s);
out:
    for (uint32_t i = 0; i < nb; i++)
        vs_eitem_free(block[i]);
    free(block);
    if (w.f) {
        fclose(w.f);
        unlink(tmp);
    }
    free(w.sec.p);
    if (it)
        rocksdb_iter_destroy(it);
    if (ro)
        rocksdb_readoptions_destroy(ro);
    if (cs)
        wcolls_free(cs, n_colls);
    for (size_t i = 0; metas && i < n_colls; i++)
        if (metas[i])
            vsstore__collection_meta__free_unpacked(metas[i], NULL);
    free(metas);
    rocksdb_release_snapshot(s->db, rs);
    return rc;
}

/* ===== Loading ===== */

/* Frees what a load returned. */
void vs_snapshot_loaded_free(vs_snapshot_loaded *l)
{
    for (size_t i = 0; i < l->n_colls; i++)
        vs_coll_unref(l->colls[i]);
    free(l->colls);
    l->colls = NULL;
    l->n_colls = 0;
}

/* A cursor over a ROWS payload that refuses to read past its end. */
typedef struct rcur {
    const uint8_t *p, *end;
    bool bad;
} rcur;

/* n bytes from the cursor, or NULL (and bad) past the end. */
static const uint8_t *rc_take(rcur *c, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *r = c->p;
    c->p += n;
    return r;
}

/* A u32 from the cursor (0 past the end). */
static uint32_t rc_u32(rcur *c)
{
    const uint8_t *p = rc_take(c, 4);
    uint32_t v = 0;
    if (p)
        memcpy(&v, p, 4);
    return v;
}

/* Skips to the next multiple of 8 from base. */
static void rc_pad8(rcur *c, const uint8_t *base)
{
    size_t off = (size_t)(c->p - base);
    if (off % 8)
        rc_take(c, 8 - off % 8);
}

/* Loads one ROWS payload into its collection. */
static vs_err load_rows(vs_snapshot_loaded *l, const uint8_t *pl, size_t len, uint64_t *rows,
                        vs_status *st)
{
    rcur c = {pl, pl + len, false};
    uint32_t cid = rc_u32(&c), n = rc_u32(&c);
    vs_coll *coll = NULL;
    for (size_t i = 0; i < l->n_colls && !coll; i++)
        if (l->colls[i]->id == cid)
            coll = l->colls[i];
    if (!coll || n == 0 || n > BLOCK_ROWS)
        return vs_status_set(st, VS_ERR_DATA_LOSS, "rows of unknown collection %u or bad count %u",
                             cid, n);
    const uint8_t *ids = rc_take(&c, (size_t)n * 8);
    uint32_t words = (n + 63) / 64;
    vs_item_vectors *iv = calloc(n, sizeof *iv);
    uint32_t *slots = malloc(n * sizeof *slots);
    vs_attr_str *tagv = NULL;
    vs_err rc = VS_OK;
    if (!iv || !slots) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; ids && i < n; i++)
        memcpy(&iv[i].id, ids + (size_t)i * 8, 8);
    for (uint32_t f = 0; f < coll->n_fields && !c.bad; f++) {
        uint32_t present = rc_u32(&c);
        rc_u32(&c);
        const uint8_t *bm = rc_take(&c, (size_t)words * 8);
        const uint8_t *vals = rc_take(&c, (size_t)present * coll->dims[f] * sizeof(float));
        rc_pad8(&c, pl);
        if (c.bad)
            break;
        uint32_t k = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t wd;
            memcpy(&wd, bm + (i / 64) * 8, 8);
            if (!(wd >> (i % 64) & 1))
                continue;
            if (k == present) {
                c.bad = true;
                break;
            }
            /* the payload is 8-aligned in a malloc'd buffer and each field starts 8-aligned */
            iv[i].vectors[f] = (const float *)(const void *)(vals + (size_t)k * coll->dims[f] * 4);
            k++;
        }
        if (k != present)
            c.bad = true;
    }
    if (c.bad) {
        rc = vs_status_set(st, VS_ERR_DATA_LOSS, "a ROWS section of collection %u is malformed",
                           cid);
        goto out;
    }
    if ((rc = vs_index_upsert(coll->index, iv, n, slots, st))) {
        if (rc == VS_ERR_INVALID_ARGUMENT)
            rc = VS_ERR_DATA_LOSS;
        goto out;
    }
    uint32_t na = vs_attr_schema_count(coll->attrs);
    for (uint32_t a = 0; a < na && !c.bad && !rc; a++) {
        uint32_t present = rc_u32(&c);
        rc_u32(&c);
        const uint8_t *bm = rc_take(&c, (size_t)words * 8);
        if (c.bad)
            break;
        bool is_int = vs_attr_schema_type(coll->attrs, a) == VS_ATTR_INT;
        uint32_t k = 0;
        for (uint32_t i = 0; i < n && !c.bad && !rc; i++) {
            uint64_t wd;
            memcpy(&wd, bm + (i / 64) * 8, 8);
            if (!(wd >> (i % 64) & 1))
                continue;
            k++;
            if (is_int) {
                const uint8_t *p = rc_take(&c, 8);
                int64_t v = 0;
                if (p)
                    memcpy(&v, p, 8);
                if (!c.bad)
                    rc = vs_attr_store_set_int(coll->astore, a, slots[i], v, st);
                continue;
            }
            uint32_t nt = rc_u32(&c);
            if (nt > VS_ATTR_MAX_TAGS) {
                c.bad = true;
                break;
            }
            vs_attr_str *nv = realloc(tagv, (nt ? nt : 1) * sizeof *nv);
            if (!nv) {
                rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
                break;
            }
            tagv = nv;
            for (uint32_t t = 0; t < nt && !c.bad; t++) {
                uint32_t tl = rc_u32(&c);
                tagv[t].s = (const char *)rc_take(&c, tl);
                tagv[t].len = tl;
            }
            if (!c.bad)
                rc = vs_attr_store_set_tags(coll->astore, a, slots[i], tagv, nt, st);
        }
        if (k != present)
            c.bad = true;
        rc_pad8(&c, pl);
    }
    if (!rc && (c.bad || c.p != c.end))
        rc = vs_status_set(st, VS_ERR_DATA_LOSS, "a ROWS section of collection %u is malformed",
                           cid);
    *rows += n;
out:
    free(iv);
    free(slots);
    free(tagv);
    return rc;
}

/* Loads and checks one snapshot file. */
vs_err vs_snapshot_load(const char *path, const vs_index_options *iopt, vs_snapshot_loaded *out,
                        vs_status *st)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return vs_status_set(st, VS_ERR_IO, "cannot open: %s", strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    vs_err rc = VS_OK;
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t rows = 0, sections = 0;
    bool ended = false;
    uint8_t hdr[32];
    if (fread(hdr, 32, 1, f) != 1 || memcmp(hdr, SNAP_MAGIC, 8) != 0) {
        rc = vs_status_set(st, VS_ERR_DATA_LOSS, "not a vecscan snapshot (bad or short header)");
        goto out;
    }
    uint32_t ver, hcrc, nc;
    memcpy(&ver, hdr + 8, 4);
    memcpy(&out->seq, hdr + 16, 8);
    memcpy(&nc, hdr + 24, 4);
    memcpy(&hcrc, hdr + 28, 4);
    if (vs_crc32c(0, hdr, 28) != hcrc) {
        rc = vs_status_set(st, VS_ERR_DATA_LOSS, "header checksum mismatch");
        goto out;
    }
    if (ver != VS_SNAPSHOT_FORMAT_VERSION) {
        rc = vs_status_set(st, VS_ERR_FAILED_PRECONDITION,
                           "snapshot format version %u; this build reads version %u only",
                           (unsigned)ver, VS_SNAPSHOT_FORMAT_VERSION);
        goto out;
    }
    for (;;) {
        uint32_t sh[6];
        size_t got = fread(sh, 1, sizeof sh, f);
        if (got == 0 && feof(f))
            break;
        if (ended) {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "data after the END section");
            goto out;
        }
        if (got != sizeof sh || sh[0] != SEC_MAGIC) {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "section %llu: bad or short header",
                               (unsigned long long)sections);
            goto out;
        }
        uint64_t len = (uint64_t)sh[2] | (uint64_t)sh[3] << 32;
        if (len > SEC_MAX_LEN) {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "section %llu: length %llu is too large",
                               (unsigned long long)sections, (unsigned long long)len);
            goto out;
        }
        if (len > cap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb) {
                rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
                goto out;
            }
            buf = nb;
            cap = len;
        }
        if (len && fread(buf, len, 1, f) != 1) {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "section %llu: truncated (partial file)",
                               (unsigned long long)sections);
            goto out;
        }
        if (vs_crc32c(0, buf, len) != sh[4]) {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "section %llu: checksum mismatch",
                               (unsigned long long)sections);
            goto out;
        }
        if (sh[1] == SEC_COLLECTION) {
            Vsstore__CollectionMeta *m = vsstore__collection_meta__unpack(NULL, len, buf);
            if (!m) {
                rc = vs_status_set(st, VS_ERR_DATA_LOSS, "a collection does not decode");
                goto out;
            }
            vs_coll *c = NULL;
            rc = vs_coll_from_meta(m, iopt, &c, st);
            vsstore__collection_meta__free_unpacked(m, NULL);
            if (rc)
                goto out;
            vs_coll **nl = realloc(out->colls, (out->n_colls + 1) * sizeof *nl);
            if (!nl) {
                vs_coll_unref(c);
                rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
                goto out;
            }
            out->colls = nl;
            out->colls[out->n_colls++] = c;
        } else if (sh[1] == SEC_ROWS) {
            if ((rc = load_rows(out, buf, len, &rows, st)))
                goto out;
        } else if (sh[1] == SEC_END) {
            uint64_t end[2];
            if (len != sizeof end) {
                rc = vs_status_set(st, VS_ERR_DATA_LOSS, "END section has %llu bytes",
                                   (unsigned long long)len);
                goto out;
            }
            memcpy(end, buf, sizeof end);
            if (end[0] != rows || end[1] != sections) {
                rc = vs_status_set(st, VS_ERR_DATA_LOSS,
                                   "END says %llu rows in %llu sections; the file has %llu in %llu",
                                   (unsigned long long)end[0], (unsigned long long)end[1],
                                   (unsigned long long)rows, (unsigned long long)sections);
                goto out;
            }
            ended = true;
        } else {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "section %llu: unknown type %u",
                               (unsigned long long)sections, sh[1]);
            goto out;
        }
        sections++;
    }
    if (!ended)
        rc = vs_status_set(st, VS_ERR_DATA_LOSS, "no END section (partial file)");
    else if (out->n_colls != nc)
        rc = vs_status_set(st, VS_ERR_DATA_LOSS, "header says %u collections; the file has %zu",
                           nc, out->n_colls);
out:
    free(buf);
    fclose(f);
    if (rc)
        vs_snapshot_loaded_free(out);
    return rc;
}

/* ===== The snapshot thread ===== */

/* Writes one snapshot under the engine's write lock and records the outcome. */
static vs_err snapshot_now(vs_engine *e, uint64_t *seq, vs_status *st)
{
    if (atomic_load(&e->store->write_failed))
        return vs_status_set(st, VS_ERR_UNAVAILABLE, "no snapshot while writes are stopped");
    pthread_mutex_lock(&e->sn_write_mu);
    uint64_t pending = atomic_load(&e->log_since_snapshot);
    uint64_t s = 0;
    vs_err rc = vs_snapshot_write(e->store, &s, st);
    if (!rc) {
        atomic_fetch_sub(&e->log_since_snapshot, pending);
        atomic_fetch_add(&e->st_snapshots, 1);
        atomic_store(&e->st_snapshot_seq, s);
        if (seq)
            *seq = s;
    }
    pthread_mutex_unlock(&e->sn_write_mu);
    return rc;
}

/* The snapshot thread: writes one when asked or when enough log has piled up. */
static void *snapshot_main(void *arg)
{
    vs_engine *e = arg;
    pthread_mutex_lock(&e->sn_mu);
    while (!e->sn_stop) {
        bool asked = e->sn_requested > e->sn_done;
        bool due = e->opt.snapshot_every != UINT64_MAX &&
                   atomic_load(&e->log_since_snapshot) >= e->opt.snapshot_every;
        if (!asked && !due) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&e->sn_cv, &e->sn_mu, &ts);
            continue;
        }
        uint64_t gen = e->sn_requested;
        pthread_mutex_unlock(&e->sn_mu);
        vs_status st;
        vs_status_clear(&st);
        uint64_t seq = 0;
        vs_err rc = snapshot_now(e, &seq, &st);
        if (rc)
            vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_WARN, "snapshot failed: %s", st.msg);
        pthread_mutex_lock(&e->sn_mu);
        e->sn_last_err = rc;
        snprintf(e->sn_last_msg, sizeof e->sn_last_msg, "%s", st.msg);
        if (gen > e->sn_done)
            e->sn_done = gen;
        pthread_cond_broadcast(&e->sn_cv);
    }
    pthread_mutex_unlock(&e->sn_mu);
    return NULL;
}

/* Starts the snapshot thread. */
vs_err vs_snapshot_start(vs_engine *e, vs_status *st)
{
    if (pthread_create(&e->sn_thread, NULL, snapshot_main, e) != 0)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cannot start the snapshot thread");
    e->sn_started = true;
    return VS_OK;
}

/* Stops the snapshot thread (a snapshot being written is finished first). */
void vs_snapshot_stop(vs_engine *e)
{
    if (!e->sn_started)
        return;
    pthread_mutex_lock(&e->sn_mu);
    e->sn_stop = true;
    pthread_cond_broadcast(&e->sn_cv);
    pthread_mutex_unlock(&e->sn_mu);
    pthread_join(e->sn_thread, NULL);
    e->sn_started = false;
}

/* Asks for a snapshot; with wait, blocks until it is written and reports it. */
vs_err vs_snapshot_request(vs_engine *e, bool wait, uint64_t *seq, vs_status *st)
{
    if (!wait) {
        pthread_mutex_lock(&e->sn_mu);
        e->sn_requested++;
        pthread_cond_broadcast(&e->sn_cv);
        pthread_mutex_unlock(&e->sn_mu);
        return VS_OK;
    }
    /* A waiting caller writes it itself: simpler than a handshake, and serialised with the
     * thread by sn_write_mu. */
    return snapshot_now(e, seq, st);
}
