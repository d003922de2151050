/*
 * fuzz_filter_parse.c: libFuzzer target for the filter language (clang -fsanitize=fuzzer).
 *
 * Each input is filter text, parsed against a small schema (tags `color`, `kind`; ints `price`,
 * `ts`). Parsing must fail cleanly or succeed; a filter that parses must format to text that
 * parses back to the same canonical text, and must evaluate to the same slot set by every path
 * and output kind over a small store whose slots reach into a third 65536-slot block, with some
 * slots deleted. Any difference aborts, so the fuzzer reports it as a crash. Run it as
 *
 *   fuzz_filter_parse -max_total_time=60 -max_len=4096 CORPUS_DIR
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_filter.h"

static vs_attr_store *store;
static uint64_t *live;
static vs_filter_result *res[3];
#define N_BITS 140001u

/* Builds the store once: about 600 items spread over three blocks, multi-valued tags, extremes. */
static void setup(void)
{
    static const char *vocab[] = {"red", "green", "blue", "", "it's", "a\\b", "7", "-3", "x y"};
    vs_attr_schema *sc = vs_attr_schema_create();
    vs_attr_schema_add(sc, "color", VS_ATTR_TAG, NULL);
    vs_attr_schema_add(sc, "price", VS_ATTR_INT, NULL);
    vs_attr_schema_add(sc, "kind", VS_ATTR_TAG, NULL);
    vs_attr_schema_add(sc, "ts", VS_ATTR_INT, NULL);
    if (vs_attr_store_create(sc, &(vs_attr_store_options){.bin_min = 16}, &store, NULL) != VS_OK)
        abort();
    vs_attr_schema_destroy(sc);
    live = calloc((N_BITS + 63) / 64, 8);
    uint64_t x = 88172645463325252ull;
    for (uint32_t i = 0; i < 600; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t slot = i < 400 ? i : i < 500 ? 65536 + 3 * i : 131072 + 7 * i;
        vs_attr_str v[3];
        uint32_t n = (uint32_t)(x % 4);
        for (uint32_t k = 0; k < n; k++) {
            const char *s = vocab[(x >> (8 * k + 8)) % 9];
            v[k] = (vs_attr_str){s, strlen(s)};
        }
        vs_attr_store_set_tags(store, 0, slot, v, n, NULL);
        if (x % 5)
            vs_attr_store_set_int(store, 1, slot, (int64_t)(x >> 40 & 63) - 30, NULL);
        if (x % 3 == 0)
            vs_attr_store_set_tags(store, 2, slot, &v[0], n ? 1 : 0, NULL);
        if (x % 7 < 3)
            vs_attr_store_set_int(store, 3, slot,
                                  x % 11 == 0 ? INT64_MIN : x % 13 == 0 ? INT64_MAX : (int64_t)(x >> 20),
                                  NULL);
        if (x % 9) /* the rest are deleted: their attributes stay, live says no */
            live[slot >> 6] |= 1ull << (slot & 63);
    }
    for (int i = 0; i < 3; i++)
        res[i] = vs_filter_result_create();
}

/* Sets bit s of a words array for each slot of set; aborts when the set is malformed. */
static void to_words(const vs_slotset *set, uint64_t *w)
{
    memset(w, 0, (N_BITS + 63) / 64 * 8);
    if (set->kind == VS_SLOTSET_LIST) {
        for (uint64_t i = 0; i < set->count; i++) {
            if (set->slots[i] >= N_BITS || (i && set->slots[i] <= set->slots[i - 1]))
                abort();
            w[set->slots[i] >> 6] |= 1ull << (set->slots[i] & 63);
        }
    } else {
        if (set->n_bits != N_BITS)
            abort();
        memcpy(w, set->words, (N_BITS + 63) / 64 * 8);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        setup();
    const vs_attr_schema *sc = vs_attr_store_schema(store);
    vs_filter *f = NULL;
    vs_status st;
    if (vs_filter_parse(sc, (const char *)data, size, NULL, &f, &st) != VS_OK) {
        if (st.code != VS_ERR_INVALID_ARGUMENT || !memchr(st.msg, '\0', sizeof st.msg))
            abort();
        return 0;
    }

    /* Canonical text: a fixed point of parse + format. */
    size_t n = vs_filter_format(f, NULL, 0);
    char *a = malloc(n + 1), *b = NULL;
    vs_filter_format(f, a, n + 1);
    vs_filter *g = NULL;
    vs_filter_limits big = {.max_len = 1u << 30, .max_depth = VS_FILTER_DEPTH_CEILING};
    if (vs_filter_parse(sc, a, n, &big, &g, &st) != VS_OK) {
        fprintf(stderr, "canonical text does not parse: %s\n%s\n", st.msg, a);
        abort();
    }
    size_t m = vs_filter_format(g, NULL, 0);
    b = malloc(m + 1);
    vs_filter_format(g, b, m + 1);
    if (m != n || memcmp(a, b, n) != 0) {
        fprintf(stderr, "canonical text moved:\n%s\n%s\n", a, b);
        abort();
    }

    /* Every path and output gives the same set. */
    static const vs_filter_eval_options ways[3] = {
        {0, VS_FILTER_OUT_AUTO, VS_FILTER_PATH_AUTO},
        {0, VS_FILTER_OUT_LIST, VS_FILTER_PATH_DENSE},
        {0, VS_FILTER_OUT_BITMAP, VS_FILTER_PATH_SPARSE},
    };
    static uint64_t w[3][(N_BITS + 63) / 64];
    for (int k = 0; k < 3; k++) {
        if (vs_filter_eval(k == 2 ? g : f, store, live, N_BITS, &ways[k], res[k], &st) != VS_OK)
            abort();
        to_words(vs_filter_result_slotset(res[k]), w[k]);
        if (vs_filter_result_slotset(res[k])->count > N_BITS)
            abort();
    }
    if (memcmp(w[0], w[1], sizeof w[0]) != 0 || memcmp(w[0], w[2], sizeof w[0]) != 0) {
        fprintf(stderr, "paths disagree on: %s\n", a);
        abort();
    }
    free(a);
    free(b);
    vs_filter_destroy(g);
    vs_filter_destroy(f);
    return 0;
}
