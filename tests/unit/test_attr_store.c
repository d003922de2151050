/*
 * test_attr_store.c: dictionaries and the column store by slot.
 *
 * Checks the store against a plain model through random upserts, patches and deletes with slot
 * reuse, with vs_attr_store_check verifying postings, presence and range bins after each round
 * (bins kept tiny so they split and empty all the time), plus the snapshot round trip of
 * dictionaries and the errors a caller can provoke.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vs_attr_store.h"

/* ===== Dictionary ===== */

static void test_dict(void)
{
    vs_attr_dict *d = vs_attr_dict_create();
    vs_status st = {0};
    uint64_t code = 99;
    CHECK(vs_attr_dict_count(d) == 0);
    CHECK(vs_attr_dict_find(d, "a", 1) == VS_ATTR_NO_CODE);
    CHECK(vs_attr_dict_intern(d, "a", 1, &code, &st) == VS_OK && code == 0);
    CHECK(vs_attr_dict_intern(d, "", 0, &code, &st) == VS_OK && code == 1);
    CHECK(vs_attr_dict_intern(d, "a\0b", 3, &code, &st) == VS_OK && code == 2);
    CHECK(vs_attr_dict_intern(d, "a", 1, &code, &st) == VS_OK && code == 0);
    CHECK(vs_attr_dict_find(d, "", 0) == 1);
    CHECK(vs_attr_dict_find(d, "a\0b", 3) == 2);
    CHECK(vs_attr_dict_find(d, "a\0c", 3) == VS_ATTR_NO_CODE);

    /* Many values: codes in order of first appearance, pointers stable while it grows. */
    char buf[32];
    const char *first = vs_attr_dict_value(d, 0, NULL);
    for (int i = 0; i < 50000; i++) {
        int n = snprintf(buf, sizeof buf, "value-%d", i);
        CHECK(vs_attr_dict_intern(d, buf, (size_t)n, &code, &st) == VS_OK && code == 3u + (unsigned)i);
    }
    CHECK(vs_attr_dict_value(d, 0, NULL) == first);
    CHECK(vs_attr_dict_count(d) == 50003);
    size_t len;
    const char *v = vs_attr_dict_value(d, 12345 + 3, &len);
    CHECK(v && len == 11 && memcmp(v, "value-12345", 11) == 0);
    CHECK(vs_attr_dict_value(d, 50003, &len) == NULL);

    /* Too long a value. */
    char *big = calloc(VS_ATTR_TAG_MAX_LEN + 1, 1);
    CHECK(vs_attr_dict_intern(d, big, VS_ATTR_TAG_MAX_LEN, &code, &st) == VS_OK);
    CHECK(vs_attr_dict_intern(d, big, VS_ATTR_TAG_MAX_LEN + 1, &code, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "tag value of 4097 bytes; the limit is 4096") == 0, "%s", st.msg);
    free(big);

    /* Export by iteration, import by interning in code order: the same codes come back. */
    vs_attr_dict *e = vs_attr_dict_create();
    for (uint64_t c = 0; c < vs_attr_dict_count(d); c++) {
        const char *s = vs_attr_dict_value(d, c, &len);
        CHECK(vs_attr_dict_intern(e, s, len, &code, &st) == VS_OK && code == c);
    }
    CHECK(vs_attr_dict_count(e) == vs_attr_dict_count(d));
    CHECK(vs_attr_dict_find(e, "value-49999", 11) == 50002);
    vs_attr_dict_destroy(e);
    vs_attr_dict_destroy(d);
}

/* ===== Store against a model ===== */

#define N_VOCAB 12
static const char *vocab[N_VOCAB] = {"red", "green", "blue", "", "it's", "a\\b",
                                     "7",   "-3",    "x y",  "Z", "zz",  "0"};

typedef struct model_item {
    unsigned tags[2];  /* bitmask of vocab, per tag field (0 = lacks the field) */
    bool has_int[2];
    int64_t ints[2];
} model_item;

/* Fields: 0 color (tag), 1 price (int), 2 kind (tag), 3 ts (int). */
static const uint32_t tag_field[2] = {0, 2}, int_field[2] = {1, 3};

/* Sets slot's tag field t in the store and the model to the vocab subset mask. */
static void set_tags(vs_attr_store *s, model_item *m, int t, uint32_t slot, unsigned mask)
{
    vs_attr_str vals[2 * N_VOCAB];
    size_t n = 0;
    for (int i = 0; i < N_VOCAB; i++)
        if (mask >> i & 1) {
            vals[n++] = (vs_attr_str){vocab[i], strlen(vocab[i])};
            vals[n++] = (vs_attr_str){vocab[i], strlen(vocab[i])}; /* duplicates collapse */
        }
    vs_status st = {0};
    CHECKF(vs_attr_store_set_tags(s, tag_field[t], slot, vals, n, &st) == VS_OK, "%s", st.msg);
    m[slot].tags[t] = mask;
}

/* A random int for field t: price in a narrow range (many ties), ts wide with extremes. */
static int64_t rand_int(vs_rng *r, int t)
{
    if (t == 0)
        return (int64_t)vs_rng_below(r, 41) - 20;
    switch (vs_rng_below(r, 20)) {
    case 0: return INT64_MIN;
    case 1: return INT64_MAX;
    case 2: return 0;
    default: return (int64_t)(vs_rng_next(r) >> 20) - (1ll << 43);
    }
}

/* Compares every slot of the store with the model. */
static void compare(const vs_attr_store *s, const model_item *m, uint32_t n)
{
    const vs_attr_dict *d[2] = {vs_attr_store_dict(s, 0), vs_attr_store_dict(s, 2)};
    uint64_t counts[4] = {0};
    for (uint32_t slot = 0; slot < n; slot++) {
        for (int t = 0; t < 2; t++) {
            uint64_t codes[N_VOCAB];
            size_t k = vs_attr_store_get_tags(s, tag_field[t], slot, codes, N_VOCAB);
            unsigned mask = 0;
            for (size_t i = 0; i < k; i++) {
                size_t len;
                const char *v = vs_attr_dict_value(d[t], codes[i], &len);
                for (int w = 0; w < N_VOCAB; w++)
                    if (strlen(vocab[w]) == len && memcmp(vocab[w], v, len) == 0)
                        mask |= 1u << w;
            }
            CHECKF(mask == m[slot].tags[t], "slot %u tag %d: %x want %x", slot, t, mask,
                   m[slot].tags[t]);
            counts[tag_field[t]] += m[slot].tags[t] != 0;
        }
        for (int t = 0; t < 2; t++) {
            int64_t v = 0;
            bool has = vs_attr_store_get_int(s, int_field[t], slot, &v);
            CHECKF(has == m[slot].has_int[t] && (!has || v == m[slot].ints[t]),
                   "slot %u int %d", slot, t);
            counts[int_field[t]] += has;
        }
    }
    for (uint32_t f = 0; f < 4; f++)
        CHECK(vs_attr_store_count(s, f) == counts[f]);
    vs_status st = {0};
    CHECKF(vs_attr_store_check(s, &st) == VS_OK, "%s", st.msg);
}

static void test_store_model(uint32_t n, uint32_t bin_min, int rounds, uint64_t seed)
{
    vs_attr_schema *sc = vs_attr_schema_create();
    vs_attr_schema_add(sc, "color", VS_ATTR_TAG, NULL);
    vs_attr_schema_add(sc, "price", VS_ATTR_INT, NULL);
    vs_attr_schema_add(sc, "kind", VS_ATTR_TAG, NULL);
    vs_attr_schema_add(sc, "ts", VS_ATTR_INT, NULL);
    vs_attr_store *s = NULL;
    vs_status st = {0};
    CHECK(vs_attr_store_create(sc, &(vs_attr_store_options){.bin_min = bin_min}, &s, &st) == VS_OK);
    vs_attr_schema_destroy(sc); /* the store keeps its own copy */
    CHECK(strcmp(vs_attr_schema_name(vs_attr_store_schema(s), 3), "ts") == 0);
    model_item *m = calloc(n, sizeof *m);
    vs_rng r;
    vs_rng_seed(&r, seed);
    for (int round = 0; round < rounds; round++) {
        for (uint32_t op = 0; op < n; op++) {
            uint32_t slot = (uint32_t)vs_rng_below(&r, n);
            switch (vs_rng_below(&r, 6)) {
            case 0: /* delete */
                vs_attr_store_clear_slot(s, slot);
                memset(&m[slot], 0, sizeof m[slot]);
                break;
            case 1: /* upsert: clear, then set a random subset of fields */
                vs_attr_store_clear_slot(s, slot);
                memset(&m[slot], 0, sizeof m[slot]);
                /* fall through */
            default: /* patch one field */
                for (int f = 0; f < 4; f++) {
                    if (vs_rng_below(&r, 2))
                        continue;
                    int t = f / 2;
                    if (f % 2 == 0) {
                        unsigned mask = (unsigned)vs_rng_below(&r, 1u << N_VOCAB);
                        if (t == 1) /* kind: mostly one value */
                            mask = vs_rng_below(&r, 3) ? 1u << vs_rng_below(&r, N_VOCAB) : 0;
                        set_tags(s, m, t, slot, mask);
                    } else if (vs_rng_below(&r, 5) == 0) {
                        CHECK(vs_attr_store_clear(s, int_field[t], slot, &st) == VS_OK);
                        m[slot].has_int[t] = false;
                    } else {
                        int64_t v = rand_int(&r, t);
                        CHECK(vs_attr_store_set_int(s, int_field[t], slot, v, &st) == VS_OK);
                        m[slot].has_int[t] = true;
                        m[slot].ints[t] = v;
                    }
                }
                break;
            }
        }
        compare(s, m, n);
    }
    /* Delete everything: every bitmap empties and the check still holds. */
    for (uint32_t slot = 0; slot < n; slot++)
        vs_attr_store_clear_slot(s, slot);
    memset(m, 0, n * sizeof *m);
    compare(s, m, n);
    free(m);
    vs_attr_store_destroy(s);
}

/* ===== Edges and errors ===== */

static void test_store_edges(void)
{
    vs_attr_schema *sc = vs_attr_schema_create();
    vs_attr_schema_add(sc, "tag", VS_ATTR_TAG, NULL);
    vs_attr_schema_add(sc, "num", VS_ATTR_INT, NULL);
    vs_attr_store *s = NULL;
    vs_status st = {0};
    CHECK(vs_attr_store_create(sc, NULL, &s, &st) == VS_OK);
    vs_attr_schema_destroy(sc);
    vs_attr_str one = {"v", 1};

    CHECK(vs_attr_store_set_tags(s, 5, 0, &one, 1, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "attribute field 5 does not exist (the schema has 2)") == 0, "%s", st.msg);
    CHECK(vs_attr_store_set_tags(s, 1, 0, &one, 1, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "attribute 'num' is an int field, not a tag field") == 0, "%s", st.msg);
    CHECK(vs_attr_store_set_int(s, 0, 0, 5, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_attr_store_set_int(s, 1, 0xffffffffu, 5, &st) == VS_ERR_INVALID_ARGUMENT);
    uint64_t bad = 3;
    CHECK(vs_attr_store_set_tag_codes(s, 0, 0, &bad, 1, &st) == VS_ERR_INVALID_ARGUMENT);
    vs_attr_str many[VS_ATTR_MAX_TAGS + 1];
    for (int i = 0; i <= VS_ATTR_MAX_TAGS; i++)
        many[i] = one;
    CHECK(vs_attr_store_set_tags(s, 0, 0, many, VS_ATTR_MAX_TAGS + 1, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_attr_store_set_tags(s, 0, 0, many, VS_ATTR_MAX_TAGS, &st) == VS_OK);
    CHECK(vs_attr_store_count(s, 0) == 1);

    /* High slots: chunks appear as needed, the limit moves. */
    CHECK(vs_attr_store_set_int(s, 1, 5000000, -1, &st) == VS_OK);
    CHECK(vs_attr_store_slot_limit(s) == 5000001);
    CHECK(vs_attr_store_set_int(s, 1, VS_ATTR_MAX_SLOT, 7, &st) == VS_OK);
    int64_t v;
    CHECK(vs_attr_store_get_int(s, 1, VS_ATTR_MAX_SLOT, &v) && v == 7);
    CHECK(!vs_attr_store_get_int(s, 1, 4999999, &v));
    CHECK(vs_attr_store_clear(s, 1, VS_ATTR_MAX_SLOT, &st) == VS_OK);
    CHECK(!vs_attr_store_get_int(s, 1, VS_ATTR_MAX_SLOT, &v));

    /* Codes: interning for a snapshot, then setting by code. */
    uint64_t code;
    CHECK(vs_attr_store_intern(s, 0, "w", 1, &code, &st) == VS_OK && code == 1);
    uint64_t codes[3] = {1, 0, 1};
    CHECK(vs_attr_store_set_tag_codes(s, 0, 9, codes, 3, &st) == VS_OK);
    uint64_t got[4];
    CHECK(vs_attr_store_get_tags(s, 0, 9, got, 4) == 2 && got[0] == 0 && got[1] == 1);
    CHECK(vs_attr_store_get_tags(s, 0, 9, got, 1) == 2); /* count even when cap is short */
    CHECK(vs_attr_store_intern(s, 1, "w", 1, &code, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_attr_store_dict(s, 1) == NULL);
    CHECK(vs_attr_store_check(s, &st) == VS_OK);

    /* One value repeated by every slot: its bin cannot split, and must not try every time. */
    for (uint32_t slot = 0; slot < 20000; slot++)
        CHECK(vs_attr_store_set_int(s, 1, slot, 42, &st) == VS_OK);
    CHECK(vs_attr_store_set_int(s, 1, 20000, 41, &st) == VS_OK);
    CHECK(vs_attr_store_check(s, &st) == VS_OK);
    vs_attr_store_destroy(s);
}

int main(void)
{
    test_dict();
    test_store_model(3000, 8, 6, 1);        /* tiny bins: splits and merges all the time */
    test_store_model(70000, 0, 2, 2);       /* past one 65536-slot chunk, default bins */
    test_store_edges();
    return vs_test_finish("test_attr_store");
}
