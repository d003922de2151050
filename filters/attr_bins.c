/*
 * attr_bins.c: the range index of an int column.
 *
 * The present slots of an int column are sorted into bins by value: bin i holds the slots whose
 * value lies in [bins[i].lo, bins[i+1].lo), bins[0].lo being INT64_MIN, each bin a CRoaring bitmap
 * of slots. A range filter then costs the bins it covers (ORed whole, no value read) plus the bins
 * cut by its ends, whose values are checked one by one. When more than half of the column passes,
 * the complement is cheaper: OR the bins outside and subtract them from the presence bitmap. So a
 * range costs in proportion to min(pass, fail) plus about two bins, whatever the order of values
 * across slots; a full scan of the column would read 8 bytes for every slot every time.
 *
 * Why bins and not a sorted (value, slot) array: the engine applies attribute patches between every
 * two search batches, and a bin takes an update in O(log bins) plus one bitmap add or remove, where
 * a sorted array needs a memmove. Why not block min/max: it only prunes when values follow slot
 * order, which slot reuse after deletes breaks. Measured on 1M slots (test_filter_eval): random
 * values, block min/max ~590 us for any range (as a plain scan), bins 36 us at 0.1% pass, 120 us at
 * 10%, 490 us at 50%; values in slot order, block min/max ~10 us and bins ~30 us for 10%.
 *
 * Bins split at the median when they grow past max(bin_min, present / 256), so a column holds a few
 * hundred bins and an edge bin is small. A bin whose values are all equal cannot split; it is then
 * left alone until it doubles, which keeps the cost of failed splits amortized. Each bin also keeps
 * bounds on its values (vmin, vmax): a bin holding one heavily repeated value is then "inside" any
 * range that holds the value and never checked value by value. An emptied bin (other than the
 * first) is dropped and its value range joins the bin before it.
 */
#include "attr_internal.h"

#include <string.h>

/* The bin whose value range holds v: the last bin with lo <= v. */
static uint32_t vs_bins_find(const vs_attr_col *c, int64_t v)
{
    uint32_t lo = 0, hi = c->n_bins; /* bins[0].lo = INT64_MIN <= v */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->bins[mid].lo <= v)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Gives column c its first bin, covering every value. */
bool vs_attr_bins_init(vs_attr_col *c)
{
    c->bins = malloc(4 * sizeof *c->bins);
    if (!c->bins)
        return false;
    c->cap_bins = 4;
    c->bins[0] = (vs_attr_bin){INT64_MIN, INT64_MAX, INT64_MIN, 0, 0, roaring_bitmap_create()};
    if (!c->bins[0].slots)
        return false;
    c->n_bins = 1;
    return true;
}

/* Frees c's bins. */
void vs_attr_bins_free(vs_attr_col *c)
{
    for (uint32_t i = 0; i < c->n_bins; i++)
        vs_attr_bm_free(c->bins[i].slots);
    free(c->bins);
    c->bins = NULL;
    c->n_bins = c->cap_bins = 0;
}

/* Ascending order of int64 values, for qsort. */
static int vs_bins_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The first index of sorted[0 .. n) whose value is > v (n when none is). */
static uint64_t vs_bins_upper(const int64_t *sorted, uint64_t n, int64_t v)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Splits bin i at its median value (see the file comment); gives up quietly when it cannot. */
static void vs_bins_split(vs_attr_col *c, uint32_t i)
{
    vs_attr_bin *b = &c->bins[i];
    uint64_t n = b->n;
    uint32_t *slots = malloc(n * sizeof *slots);
    int64_t *vals = malloc(n * sizeof *vals), *sorted = malloc(n * sizeof *sorted);
    if (!slots || !vals || !sorted || !VS_ATTR_GROW(c->bins, c->cap_bins, c->n_bins + 1))
        goto later;
    b = &c->bins[i]; /* the array may have moved */
    roaring_bitmap_to_uint32_array(b->slots, slots);
    for (uint64_t k = 0; k < n; k++)
        if (!vs_attr_int_at(c, slots[k], &vals[k]))
            goto later; /* cannot happen: every slot in a bin is present */
    memcpy(sorted, vals, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, vs_bins_cmp_i64);
    int64_t key = sorted[n / 2];
    if (key == sorted[0]) {
        uint64_t up = vs_bins_upper(sorted, n, sorted[0]);
        if (up == n)
            goto later; /* every value is equal: nothing to split */
        key = sorted[up];
    }
    uint64_t n_left = vs_bins_upper(sorted, n, key - 1); /* values < key */
    int64_t left_max = sorted[n_left - 1], right_max = sorted[n - 1], left_min = sorted[0];

    /* The right half's slots, in slot order, compacted into the front of slots. */
    uint64_t n_right = 0;
    for (uint64_t k = 0; k < n; k++)
        if (vals[k] >= key)
            slots[n_right++] = slots[k];
    roaring_bitmap_t *right = roaring_bitmap_create();
    if (!right)
        goto later;
    roaring_bitmap_add_many(right, n_right, slots);
    roaring_bitmap_remove_many(b->slots, n_right, slots);
    /* Values that follow slot order (timestamps of appended items) give bins of consecutive
     * slots: as runs they fill a block with a few range writes instead of a scatter. */
    roaring_bitmap_run_optimize(right);
    roaring_bitmap_run_optimize(b->slots);
    memmove(&c->bins[i + 2], &c->bins[i + 1], (c->n_bins - i - 1) * sizeof *c->bins);
    c->n_bins++;
    c->bins[i + 1] = (vs_attr_bin){key, key, right_max, n_right, 0, right};
    b->n = n - n_right;
    b->vmin = left_min;
    b->vmax = left_max;
    b->retry_at = 0;
    free(slots);
    free(vals);
    free(sorted);
    return;
later:
    b = &c->bins[i];
    b->retry_at = 2 * n;
    free(slots);
    free(vals);
    free(sorted);
}

/* Puts slot (value v) into its bin; splits the bin when it has grown past the limit. */
void vs_attr_bins_add(vs_attr_store *s, vs_attr_col *c, uint32_t slot, int64_t v)
{
    uint32_t i = vs_bins_find(c, v);
    vs_attr_bin *b = &c->bins[i];
    if (!roaring_bitmap_add_checked(b->slots, slot))
        return;
    if (b->n++ == 0) {
        b->vmin = b->vmax = v;
    } else {
        if (v < b->vmin)
            b->vmin = v;
        if (v > b->vmax)
            b->vmax = v;
    }
    uint64_t limit = c->n_present / 256;
    if (limit < s->bin_min)
        limit = s->bin_min;
    if (b->n > limit && b->n >= b->retry_at)
        vs_bins_split(c, i);
}

/* Takes slot (value v) out of its bin; drops the bin when it empties. */
void vs_attr_bins_remove(vs_attr_col *c, uint32_t slot, int64_t v)
{
    uint32_t i = vs_bins_find(c, v);
    vs_attr_bin *b = &c->bins[i];
    if (!roaring_bitmap_remove_checked(b->slots, slot))
        return;
    if (--b->n > 0)
        return;
    if (i == 0) {
        b->vmin = INT64_MAX;
        b->vmax = INT64_MIN;
        b->retry_at = 0;
        return;
    }
    vs_attr_bm_free(b->slots);
    memmove(&c->bins[i], &c->bins[i + 1], (c->n_bins - i - 1) * sizeof *c->bins);
    c->n_bins--;
}

/* Where a bin stands against ranges: outside all, inside one, or cut by one (an edge). */
typedef enum vs_bin_class { VS_BIN_OUT, VS_BIN_IN, VS_BIN_EDGE } vs_bin_class;

/* How bin b stands against the ranges; *j is a cursor into the ranges that only moves forward
 * as the bins ascend. */
static vs_bin_class vs_bins_classify(const vs_attr_bin *b, const vs_attr_range *r, uint32_t n,
                                     uint32_t *j)
{
    if (b->n == 0)
        return VS_BIN_OUT;
    while (*j < n && r[*j].hi < b->vmin)
        (*j)++;
    if (*j == n || r[*j].lo > b->vmax)
        return VS_BIN_OUT;
    if (r[*j].lo <= b->vmin && r[*j].hi >= b->vmax)
        return VS_BIN_IN;
    return VS_BIN_EDGE;
}

/* An upper bound on the slots with a value in the ranges: the sizes of the bins they touch. */
uint64_t vs_attr_bins_estimate(const vs_attr_col *c, const vs_attr_range *r, uint32_t n)
{
    uint64_t est = 0;
    uint32_t j = 0;
    for (uint32_t i = 0; i < c->n_bins && j < n; i++)
        if (vs_bins_classify(&c->bins[i], r, n, &j) != VS_BIN_OUT)
            est += c->bins[i].n;
    return est;
}

/* Appends to sel->edge the slots of bin b whose value is (want = true) or is not (want = false) in
 * the ranges; false when out of memory. The bin's slots come in ascending order. */
static bool vs_bins_edge(const vs_attr_col *c, const vs_attr_bin *b, const vs_attr_range *r,
                         uint32_t n, bool want, vs_attr_select *sel)
{
    if (!VS_ATTR_GROW(sel->edge, sel->cap_edge, (uint64_t)sel->n_edge + b->n))
        return false;
    uint32_t buf[256];
    roaring_uint32_iterator_t it;
    roaring_init_iterator(b->slots, &it);
    for (;;) {
        uint32_t got = roaring_read_uint32_iterator(&it, buf, 256);
        for (uint32_t t = 0; t < got; t++) {
            int64_t v = 0;
            vs_attr_int_at(c, buf[t], &v);
            if (vs_attr_ranges_has(r, n, v) == want)
                sel->edge[sel->n_edge++] = buf[t];
        }
        if (got < 256)
            return true;
    }
}

/* Fills sel with whole bins and checked edge slots for the ranges (or for their complement). */
bool vs_attr_bins_select(const vs_attr_col *c, const vs_attr_range *r, uint32_t n,
                         vs_attr_select *sel)
{
    sel->n_bins = sel->n_edge = 0;
    sel->complement = false;
    if (!VS_ATTR_GROW(sel->bins, sel->cap_bins, c->n_bins))
        return false;
    /* Count first, to know which side is smaller. */
    uint64_t in_card = 0, edge_card = 0;
    uint32_t j = 0, n_cut = 0;
    for (uint32_t i = 0; i < c->n_bins; i++) {
        vs_bin_class k = vs_bins_classify(&c->bins[i], r, n, &j);
        in_card += k == VS_BIN_IN ? c->bins[i].n : 0;
        edge_card += k == VS_BIN_EDGE ? c->bins[i].n : 0;
        n_cut += k == VS_BIN_EDGE;
    }
    sel->complement = in_card > c->n_present - in_card - edge_card;
    vs_bin_class whole = sel->complement ? VS_BIN_OUT : VS_BIN_IN;
    uint64_t *bounds = n_cut > 1 ? malloc((n_cut + 1) * sizeof *bounds) : NULL;
    if (n_cut > 1 && !bounds)
        return false;
    uint32_t runs = 0;
    j = 0;
    for (uint32_t i = 0; i < c->n_bins; i++) {
        const vs_attr_bin *b = &c->bins[i];
        vs_bin_class k = vs_bins_classify(b, r, n, &j);
        if (b->n && k == whole) {
            sel->bins[sel->n_bins++] = b->slots;
        } else if (k == VS_BIN_EDGE) {
            if (bounds)
                bounds[runs++] = sel->n_edge;
            if (!vs_bins_edge(c, b, r, n, !sel->complement, sel)) {
                free(bounds);
                return false;
            }
        }
    }
    /* Cut bins hold disjoint slots, each run ascending: merge the runs. */
    bool ok = true;
    if (bounds) {
        bounds[runs] = sel->n_edge;
        uint32_t *tmp = malloc((sel->n_edge ? sel->n_edge : 1) * sizeof *tmp);
        if (tmp)
            sel->n_edge = (uint32_t)vs_attr_merge_runs(sel->edge, tmp, bounds, runs);
        ok = tmp != NULL;
        free(tmp);
    }
    free(bounds);
    return ok;
}

/* Frees sel's buffers. */
void vs_attr_select_free(vs_attr_select *sel)
{
    free(sel->bins);
    free(sel->edge);
    memset(sel, 0, sizeof *sel);
}

/* Checks every bin against the values of its slots (tests). */
bool vs_attr_bins_check(const vs_attr_col *c, uint32_t field, vs_status *st)
{
    uint64_t total = 0;
    if (c->n_bins == 0 || c->bins[0].lo != INT64_MIN)
        return vs_status_set(st, VS_ERR_INTERNAL, "field %u: the first bin is wrong", field), false;
    for (uint32_t i = 0; i < c->n_bins; i++) {
        const vs_attr_bin *b = &c->bins[i];
        int64_t hi = i + 1 < c->n_bins ? c->bins[i + 1].lo - 1 : INT64_MAX;
        if (i + 1 < c->n_bins && c->bins[i + 1].lo <= b->lo)
            return vs_status_set(st, VS_ERR_INTERNAL, "field %u: bins out of order", field), false;
        if (roaring_bitmap_get_cardinality(b->slots) != b->n)
            return vs_status_set(st, VS_ERR_INTERNAL, "field %u bin %u: count is wrong", field, i),
                   false;
        if (i > 0 && b->n == 0)
            return vs_status_set(st, VS_ERR_INTERNAL, "field %u bin %u: empty", field, i), false;
        total += b->n;
        roaring_uint32_iterator_t it;
        roaring_init_iterator(b->slots, &it);
        for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
            int64_t v;
            if (!vs_attr_int_at(c, it.current_value, &v) || v < b->lo || v > hi || v < b->vmin ||
                v > b->vmax)
                return vs_status_set(st, VS_ERR_INTERNAL,
                                     "field %u bin %u: slot %u does not belong there", field, i,
                                     it.current_value),
                       false;
        }
    }
    if (total != c->n_present)
        return vs_status_set(st, VS_ERR_INTERNAL, "field %u: bins hold %llu slots of %llu", field,
                             (unsigned long long)total, (unsigned long long)c->n_present),
               false;
    return true;
}
