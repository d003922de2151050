/*
 * filter_parse.c: the filter language's grammar and types, into the AST of filter_internal.h.
 *
 * A recursive-descent parser, one function per rule of the grammar in vs_filter.h. The only
 * recursion is through '(' and NOT, and each of those counts one level against the depth limit
 * before it recurses, so the C stack holds at most a few frames per allowed level whatever the
 * text. Types are checked as each atom is read, against the schema, so an error names the field
 * and points at the token that is wrong: the operator for `tag < 5`, the value for `int = 'x'`.
 */
#include "filter_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct vs_fparser {
    vs_flexer lx;
    vs_filter *f;
    uint32_t depth, max_depth;
    uint32_t *stack; /* children being collected by the open AND/OR levels */
    uint32_t n_stack, cap_stack;
    int64_t *ints; /* values of the IN list being read */
    uint32_t n_ints, cap_ints;
    vs_status *st;
} vs_fparser;

/* Sets the out-of-memory error. */
static vs_err vs_parse_oom(vs_fparser *p)
{
    return vs_status_set(p->st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory parsing a filter");
}

/* Reads the next token. */
static vs_err vs_parse_next(vs_fparser *p) { return vs_filter_lex_next(&p->lx, p->st); }

/* Sets an INVALID_ARGUMENT error "<what> at column <col>". */
static vs_err vs_parse_expected(vs_fparser *p, const char *what)
{
    return vs_status_set(p->st, VS_ERR_INVALID_ARGUMENT, "expected %s at column %zu", what,
                         p->lx.tok.col);
}

/* Appends a node; returns its number in *out. */
static vs_err vs_parse_node(vs_fparser *p, vs_fkind kind, uint32_t field, uint32_t off,
                            uint32_t n, uint16_t depth, uint32_t *out)
{
    vs_filter *f = p->f;
    if (!VS_ATTR_GROW(f->nodes, f->cap_nodes, (uint64_t)f->n_nodes + 1))
        return vs_parse_oom(p);
    f->nodes[f->n_nodes] = (vs_fnode){(uint8_t)kind, depth, field, off, n};
    *out = f->n_nodes++;
    return VS_OK;
}

/* Pushes child c of an open AND/OR level of kind `kind`, splicing in c's own children when c is
 * of the same kind (so "(a AND b) AND c" becomes one AND of three). */
static vs_err vs_parse_push(vs_fparser *p, vs_fkind kind, uint32_t c)
{
    const vs_fnode *cn = &p->f->nodes[c];
    uint32_t n = cn->kind == kind ? cn->n : 1;
    if (!VS_ATTR_GROW(p->stack, p->cap_stack, (uint64_t)p->n_stack + n))
        return vs_parse_oom(p);
    if (cn->kind == kind)
        memcpy(p->stack + p->n_stack, p->f->kids + cn->off, n * sizeof *p->stack);
    else
        p->stack[p->n_stack] = c;
    p->n_stack += n;
    return VS_OK;
}

/* Closes the open level whose children start at stack[base]: a node of `kind` over them, or the
 * single child itself. */
static vs_err vs_parse_close(vs_fparser *p, vs_fkind kind, uint32_t base, uint32_t *out)
{
    vs_filter *f = p->f;
    uint32_t n = p->n_stack - base;
    if (n == 1) {
        *out = p->stack[base];
        p->n_stack = base;
        return VS_OK;
    }
    if (!VS_ATTR_GROW(f->kids, f->cap_kids, (uint64_t)f->n_kids + n))
        return vs_parse_oom(p);
    uint16_t depth = 0;
    for (uint32_t i = 0; i < n; i++) {
        f->kids[f->n_kids + i] = p->stack[base + i];
        if (f->nodes[p->stack[base + i]].depth > depth)
            depth = f->nodes[p->stack[base + i]].depth;
    }
    uint32_t off = f->n_kids;
    f->n_kids += n;
    p->n_stack = base;
    return vs_parse_node(p, kind, 0, off, n, (uint16_t)(depth + 1), out);
}

/* Wraps node c in a NOT. */
static vs_err vs_parse_not(vs_fparser *p, uint32_t c, uint32_t *out)
{
    vs_filter *f = p->f;
    if (!VS_ATTR_GROW(f->kids, f->cap_kids, (uint64_t)f->n_kids + 1))
        return vs_parse_oom(p);
    f->kids[f->n_kids] = c;
    return vs_parse_node(p, VS_FN_NOT, 0, f->n_kids++, 1, (uint16_t)(f->nodes[c].depth + 1), out);
}

/* Counts one level of nesting at the current token ('(' or NOT). */
static vs_err vs_parse_enter(vs_fparser *p)
{
    if (++p->depth > p->max_depth)
        return vs_status_set(p->st, VS_ERR_INVALID_ARGUMENT,
                             "filter nests deeper than %u levels at column %zu", p->max_depth,
                             p->lx.tok.col);
    return VS_OK;
}

/* ===== Values ===== */

/* Appends bytes s[0 .. len) to the filter's tag values. */
static vs_err vs_parse_add_str(vs_fparser *p, const char *s, size_t len)
{
    vs_filter *f = p->f;
    if (!VS_ATTR_GROW(f->arena, f->cap_arena, (uint64_t)f->n_arena + len + 1) ||
        !VS_ATTR_GROW(f->strs, f->cap_strs, (uint64_t)f->n_strs + 1))
        return vs_parse_oom(p);
    if (len)
        memcpy(f->arena + f->n_arena, s, len);
    f->strs[f->n_strs++] = (vs_fstr){f->n_arena, (uint32_t)len};
    f->n_arena += (uint32_t)len;
    return VS_OK;
}

/* Appends the current INT or STR token as a tag value (an integer as its decimal text). */
static vs_err vs_parse_tag_value(vs_fparser *p)
{
    if (p->lx.tok.kind == VS_TK_STR)
        return vs_parse_add_str(p, p->lx.tok.s, p->lx.tok.len);
    char dec[24];
    int n = snprintf(dec, sizeof dec, "%lld", (long long)p->lx.tok.ival);
    return vs_parse_add_str(p, dec, (size_t)n);
}

/* The filter owning the strings being sorted (qsort has no context argument). */
static _Thread_local const vs_filter *vs_parse_sort_filter;

/* Byte order of two tag values, for qsort. */
static int vs_parse_cmp_str(const void *a, const void *b)
{
    const vs_fstr *x = a, *y = b;
    const char *ar = vs_parse_sort_filter->arena;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(ar + x->off, ar + y->off, n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Sorts the tag values strs[off ..] and drops duplicates; returns how many remain. */
static uint32_t vs_parse_unique_strs(vs_fparser *p, uint32_t off)
{
    vs_filter *f = p->f;
    uint32_t n = f->n_strs - off;
    vs_parse_sort_filter = f;
    if (n > 1)
        qsort(f->strs + off, n, sizeof *f->strs, vs_parse_cmp_str);
    uint32_t k = n ? 1 : 0;
    for (uint32_t i = 1; i < n; i++)
        if (vs_parse_cmp_str(&f->strs[off + i], &f->strs[off + k - 1]) != 0)
            f->strs[off + k++] = f->strs[off + i];
    f->n_strs = off + k;
    return k;
}

/* Ascending order of int64 values, for qsort. */
static int vs_parse_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Appends the range [lo, hi] to the filter's ranges, merging it into the previous one when they
 * touch (ranges must come in ascending order). */
static vs_err vs_parse_add_range(vs_fparser *p, uint32_t off, int64_t lo, int64_t hi)
{
    vs_filter *f = p->f;
    if (f->n_ranges > off) {
        vs_attr_range *last = &f->ranges[f->n_ranges - 1];
        if (last->hi == INT64_MAX || lo <= last->hi + 1) {
            if (hi > last->hi)
                last->hi = hi;
            return VS_OK;
        }
    }
    if (!VS_ATTR_GROW(f->ranges, f->cap_ranges, (uint64_t)f->n_ranges + 1))
        return vs_parse_oom(p);
    f->ranges[f->n_ranges++] = (vs_attr_range){lo, hi};
    return VS_OK;
}

/* ===== Atoms ===== */

/* Reads `IN ( value, ... )` (the current token is IN) for field; negate for NOT IN. */
static vs_err vs_parse_in(vs_fparser *p, uint32_t field, bool negate, uint32_t *out)
{
    vs_filter *f = p->f;
    vs_attr_type type = vs_attr_schema_type(f->schema, field);
    const char *name = vs_attr_schema_name(f->schema, field);
    vs_err e;
    if ((e = vs_parse_next(p)))
        return e;
    if (p->lx.tok.kind != VS_TK_LPAREN)
        return vs_parse_expected(p, "'(' after IN");
    if ((e = vs_parse_next(p)))
        return e;
    uint32_t str_off = f->n_strs;
    p->n_ints = 0;
    for (;;) {
        vs_ftok_kind k = p->lx.tok.kind;
        if (k != VS_TK_INT && k != VS_TK_STR)
            return vs_parse_expected(p, "an integer or a quoted string");
        if (type == VS_ATTR_INT) {
            if (k == VS_TK_STR)
                return vs_status_set(p->st, VS_ERR_INVALID_ARGUMENT,
                                     "'%s' is an int field; %s needs integers at column %zu", name,
                                     negate ? "NOT IN" : "IN", p->lx.tok.col);
            if (!VS_ATTR_GROW(p->ints, p->cap_ints, (uint64_t)p->n_ints + 1))
                return vs_parse_oom(p);
            p->ints[p->n_ints++] = p->lx.tok.ival;
        } else if ((e = vs_parse_tag_value(p))) {
            return e;
        }
        if ((e = vs_parse_next(p)))
            return e;
        if (p->lx.tok.kind == VS_TK_RPAREN)
            break;
        if (p->lx.tok.kind != VS_TK_COMMA)
            return vs_parse_expected(p, "',' or ')'");
        if ((e = vs_parse_next(p)))
            return e;
    }
    if ((e = vs_parse_next(p)))
        return e;
    uint32_t leaf;
    if (type == VS_ATTR_INT) {
        qsort(p->ints, p->n_ints, sizeof *p->ints, vs_parse_cmp_i64);
        uint32_t off = f->n_ranges;
        for (uint32_t i = 0; i < p->n_ints; i++)
            if ((e = vs_parse_add_range(p, off, p->ints[i], p->ints[i])))
                return e;
        e = vs_parse_node(p, VS_FN_INT, field, off, f->n_ranges - off, 1, &leaf);
    } else {
        uint32_t n = vs_parse_unique_strs(p, str_off);
        e = vs_parse_node(p, VS_FN_TAG, field, str_off, n, 1, &leaf);
    }
    if (e)
        return e;
    return negate ? vs_parse_not(p, leaf, out) : (*out = leaf, VS_OK);
}

/* Reads `BETWEEN int AND int` (the current token is BETWEEN) for int field `field`. */
static vs_err vs_parse_between(vs_fparser *p, uint32_t field, uint32_t *out)
{
    vs_filter *f = p->f;
    const char *name = vs_attr_schema_name(f->schema, field);
    if (vs_attr_schema_type(f->schema, field) != VS_ATTR_INT)
        return vs_status_set(p->st, VS_ERR_INVALID_ARGUMENT,
                             "'%s' is a tag field; BETWEEN needs an int field at column %zu", name,
                             p->lx.tok.col);
    int64_t b[2];
    vs_err e;
    for (int i = 0; i < 2; i++) {
        if ((e = vs_parse_next(p)))
            return e;
        if (i == 1) {
            if (p->lx.tok.kind != VS_TK_AND)
                return vs_parse_expected(p, "AND in BETWEEN");
            if ((e = vs_parse_next(p)))
                return e;
        }
        if (p->lx.tok.kind == VS_TK_STR)
            return vs_status_set(p->st, VS_ERR_INVALID_ARGUMENT,
                                 "'%s' is an int field; BETWEEN needs integers at column %zu", name,
                                 p->lx.tok.col);
        if (p->lx.tok.kind != VS_TK_INT)
            return vs_parse_expected(p, "an integer");
        b[i] = p->lx.tok.ival;
    }
    if ((e = vs_parse_next(p)))
        return e;
    uint32_t off = f->n_ranges;
    if (b[0] <= b[1] && (e = vs_parse_add_range(p, off, b[0], b[1])))
        return e;
    return vs_parse_node(p, VS_FN_INT, field, off, f->n_ranges - off, 1, out);
}

/* Reads `op value` (the current token is the operator) for field. */
static vs_err vs_parse_compare(vs_fparser *p, uint32_t field, uint32_t *out)
{
    vs_filter *f = p->f;
    vs_attr_type type = vs_attr_schema_type(f->schema, field);
    const char *name = vs_attr_schema_name(f->schema, field);
    vs_ftok_kind op = p->lx.tok.kind;
    if (type == VS_ATTR_TAG && op != VS_TK_EQ && op != VS_TK_NE)
        return vs_status_set(p->st, VS_ERR_INVALID_ARGUMENT,
                             "'%s' is a tag field; %s needs an int field at column %zu", name,
                             vs_filter_op_text(op), p->lx.tok.col);
    vs_err e;
    if ((e = vs_parse_next(p)))
        return e;
    vs_ftok_kind k = p->lx.tok.kind;
    if (k != VS_TK_INT && k != VS_TK_STR)
        return vs_parse_expected(p, "an integer or a quoted string");
    uint32_t leaf;
    if (type == VS_ATTR_TAG) {
        uint32_t off = f->n_strs;
        if ((e = vs_parse_tag_value(p)) || (e = vs_parse_node(p, VS_FN_TAG, field, off, 1, 1, &leaf)))
            return e;
    } else {
        if (k == VS_TK_STR)
            return vs_status_set(p->st, VS_ERR_INVALID_ARGUMENT,
                                 "'%s' is an int field; %s needs an integer at column %zu", name,
                                 vs_filter_op_text(op), p->lx.tok.col);
        int64_t v = p->lx.tok.ival, lo = v, hi = v;
        bool empty = false;
        switch (op) {
        case VS_TK_LT: lo = INT64_MIN, hi = v - (v > INT64_MIN), empty = v == INT64_MIN; break;
        case VS_TK_LE: lo = INT64_MIN; break;
        case VS_TK_GT: lo = v + (v < INT64_MAX), hi = INT64_MAX, empty = v == INT64_MAX; break;
        case VS_TK_GE: hi = INT64_MAX; break;
        default: break; /* = and != */
        }
        uint32_t off = f->n_ranges;
        if (!empty && (e = vs_parse_add_range(p, off, lo, hi)))
            return e;
        if ((e = vs_parse_node(p, VS_FN_INT, field, off, f->n_ranges - off, 1, &leaf)))
            return e;
    }
    if ((e = vs_parse_next(p)))
        return e;
    return op == VS_TK_NE ? vs_parse_not(p, leaf, out) : (*out = leaf, VS_OK);
}

static vs_err vs_parse_or(vs_fparser *p, uint32_t *out);

/* atom := '(' expr ')' | name op value | name [NOT] IN (...) | name BETWEEN .. | name EXISTS */
static vs_err vs_parse_atom(vs_fparser *p, uint32_t *out)
{
    vs_err e;
    if (p->lx.tok.kind == VS_TK_LPAREN) {
        if ((e = vs_parse_enter(p)) || (e = vs_parse_next(p)) || (e = vs_parse_or(p, out)))
            return e;
        if (p->lx.tok.kind != VS_TK_RPAREN)
            return vs_parse_expected(p, "')'");
        p->depth--;
        return vs_parse_next(p);
    }
    if (p->lx.tok.kind != VS_TK_NAME)
        return vs_parse_expected(p, "a field name, NOT or '('");
    int field = vs_attr_schema_find(p->f->schema, p->lx.tok.s, p->lx.tok.len);
    if (field < 0) {
        size_t len = p->lx.tok.len;
        return vs_status_set(p->st, VS_ERR_INVALID_ARGUMENT, "unknown field '%.*s%s' at column %zu",
                             (int)(len > 64 ? 64 : len), p->lx.tok.s, len > 64 ? "..." : "",
                             p->lx.tok.col);
    }
    if ((e = vs_parse_next(p)))
        return e;
    switch (p->lx.tok.kind) {
    case VS_TK_EQ:
    case VS_TK_NE:
    case VS_TK_LT:
    case VS_TK_LE:
    case VS_TK_GT:
    case VS_TK_GE: return vs_parse_compare(p, (uint32_t)field, out);
    case VS_TK_IN: return vs_parse_in(p, (uint32_t)field, false, out);
    case VS_TK_NOT:
        if ((e = vs_parse_next(p)))
            return e;
        if (p->lx.tok.kind != VS_TK_IN)
            return vs_parse_expected(p, "IN after NOT");
        return vs_parse_in(p, (uint32_t)field, true, out);
    case VS_TK_BETWEEN: return vs_parse_between(p, (uint32_t)field, out);
    case VS_TK_EXISTS:
        if ((e = vs_parse_next(p)))
            return e;
        return vs_parse_node(p, VS_FN_EXISTS, (uint32_t)field, 0, 0, 1, out);
    default: {
        char what[128];
        snprintf(what, sizeof what, "an operator, IN, BETWEEN or EXISTS after '%s'",
                 vs_attr_schema_name(p->f->schema, (uint32_t)field));
        return vs_parse_expected(p, what);
    }
    }
}

/* unary := NOT unary | atom */
static vs_err vs_parse_unary(vs_fparser *p, uint32_t *out)
{
    if (p->lx.tok.kind != VS_TK_NOT)
        return vs_parse_atom(p, out);
    uint32_t c;
    vs_err e;
    if ((e = vs_parse_enter(p)) || (e = vs_parse_next(p)) || (e = vs_parse_unary(p, &c)))
        return e;
    p->depth--;
    return vs_parse_not(p, c, out);
}

/* and := unary (AND unary)* */
static vs_err vs_parse_and(vs_fparser *p, uint32_t *out)
{
    uint32_t base = p->n_stack, c;
    vs_err e;
    for (;;) {
        if ((e = vs_parse_unary(p, &c)) || (e = vs_parse_push(p, VS_FN_AND, c)))
            return e;
        if (p->lx.tok.kind != VS_TK_AND)
            break;
        if ((e = vs_parse_next(p)))
            return e;
    }
    return vs_parse_close(p, VS_FN_AND, base, out);
}

/* or := and (OR and)* */
static vs_err vs_parse_or(vs_fparser *p, uint32_t *out)
{
    uint32_t base = p->n_stack, c;
    vs_err e;
    for (;;) {
        if ((e = vs_parse_and(p, &c)) || (e = vs_parse_push(p, VS_FN_OR, c)))
            return e;
        if (p->lx.tok.kind != VS_TK_OR)
            break;
        if ((e = vs_parse_next(p)))
            return e;
    }
    return vs_parse_close(p, VS_FN_OR, base, out);
}

/* Parses text against schema into a new filter. */
vs_err vs_filter_parse(const vs_attr_schema *schema, const char *text, size_t len,
                       const vs_filter_limits *lim, vs_filter **out, vs_status *st)
{
    *out = NULL;
    size_t max_len = lim && lim->max_len ? lim->max_len : VS_FILTER_MAX_LEN;
    uint32_t max_depth = lim && lim->max_depth ? lim->max_depth : VS_FILTER_MAX_DEPTH;
    if (max_depth > VS_FILTER_DEPTH_CEILING)
        max_depth = VS_FILTER_DEPTH_CEILING;
    if (max_len > (1u << 30))
        max_len = 1u << 30;
    if (len > max_len)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "filter is %zu bytes; the limit is %zu",
                             len, max_len);
    vs_fparser p = {.max_depth = max_depth, .st = st};
    p.f = calloc(1, sizeof *p.f);
    if (!p.f || !(p.f->schema = vs_attr_schema_copy(schema))) {
        vs_filter_destroy(p.f);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory parsing a filter");
    }
    vs_filter_lex_init(&p.lx, text, len);
    vs_err e = vs_parse_next(&p);
    if (!e)
        e = vs_parse_or(&p, &p.f->root);
    if (!e && p.lx.tok.kind != VS_TK_END)
        e = p.lx.tok.kind == VS_TK_RPAREN
                ? vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "unmatched ')' at column %zu",
                                p.lx.tok.col)
                : vs_parse_expected(&p, "AND, OR or the end of the filter");
    vs_filter_lex_free(&p.lx);
    free(p.stack);
    free(p.ints);
    if (e) {
        vs_filter_destroy(p.f);
        return e;
    }
    *out = p.f;
    return VS_OK;
}

/* Frees f. */
void vs_filter_destroy(vs_filter *f)
{
    if (!f)
        return;
    vs_attr_schema_destroy(f->schema);
    free(f->nodes);
    free(f->kids);
    free(f->strs);
    free(f->arena);
    free(f->ranges);
    free(f);
}
