/*
 * filter_format.c: a parsed filter back to text, in a canonical form that parses to the same AST:
 * tag values sorted and quoted, int comparisons as their ranges (`=`, `<=`, `>=`, BETWEEN, or IN
 * for several points), NOT over = and IN as != and NOT IN, and parentheses only where precedence
 * needs them. Logs and tests use it; formatting it twice gives the same text.
 */
#include "filter_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct vs_fwriter {
    char *buf;
    size_t cap, len; /* len counts every byte, written or not */
} vs_fwriter;

/* Appends s[0 .. n). */
static void vs_fmt_put(vs_fwriter *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, w->len++)
        if (w->len + 1 < w->cap)
            w->buf[w->len] = s[i];
}

/* Appends NUL-terminated s. */
static void vs_fmt_puts(vs_fwriter *w, const char *s) { vs_fmt_put(w, s, strlen(s)); }

/* Appends v in decimal. */
static void vs_fmt_int(vs_fwriter *w, int64_t v)
{
    char dec[24];
    int n = snprintf(dec, sizeof dec, "%lld", (long long)v);
    vs_fmt_put(w, dec, (size_t)n);
}

/* Appends a quoted string, escaping ' and \. */
static void vs_fmt_quoted(vs_fwriter *w, const char *s, size_t n)
{
    vs_fmt_put(w, "'", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'' || s[i] == '\\')
            vs_fmt_put(w, "\\", 1);
        vs_fmt_put(w, s + i, 1);
    }
    vs_fmt_put(w, "'", 1);
}

/* Appends "(v1, v2, ...)" for the values of leaf nd (tag strings, or every integer of its ranges;
 * ranges of an IN leaf came from listed values, so they are short). */
static void vs_fmt_list(vs_fwriter *w, const vs_filter *f, const vs_fnode *nd)
{
    vs_fmt_puts(w, "(");
    bool first = true;
    for (uint32_t i = 0; i < nd->n; i++) {
        if (nd->kind == VS_FN_TAG) {
            if (!first)
                vs_fmt_puts(w, ", ");
            first = false;
            const vs_fstr *s = &f->strs[nd->off + i];
            vs_fmt_quoted(w, f->arena + s->off, s->len);
            continue;
        }
        const vs_attr_range *r = &f->ranges[nd->off + i];
        for (int64_t v = r->lo;; v++) {
            if (!first)
                vs_fmt_puts(w, ", ");
            first = false;
            vs_fmt_int(w, v);
            if (v == r->hi)
                break;
        }
    }
    vs_fmt_puts(w, ")");
}

/* Appends leaf nd; negate asks for its NOT (written as != or NOT IN where it can be). Returns
 * false when the leaf cannot carry the negation itself (the caller writes NOT before it). */
static bool vs_fmt_leaf(vs_fwriter *w, const vs_filter *f, const vs_fnode *nd, bool negate)
{
    const char *name = vs_attr_schema_name(f->schema, nd->field);
    if (nd->kind == VS_FN_EXISTS) {
        if (negate)
            return false;
        vs_fmt_puts(w, name);
        vs_fmt_puts(w, " EXISTS");
        return true;
    }
    if (nd->kind == VS_FN_TAG) {
        vs_fmt_puts(w, name);
        if (nd->n == 1) {
            vs_fmt_puts(w, negate ? " != " : " = ");
            const vs_fstr *s = &f->strs[nd->off];
            vs_fmt_quoted(w, f->arena + s->off, s->len);
        } else {
            vs_fmt_puts(w, negate ? " NOT IN " : " IN ");
            vs_fmt_list(w, f, nd);
        }
        return true;
    }
    /* INT: one point is = or !=; several ranges (only IN makes them) are an IN list. */
    if (nd->n > 1 || (nd->n == 1 && f->ranges[nd->off].lo == f->ranges[nd->off].hi)) {
        vs_fmt_puts(w, name);
        if (nd->n == 1) {
            vs_fmt_puts(w, negate ? " != " : " = ");
            vs_fmt_int(w, f->ranges[nd->off].lo);
        } else {
            vs_fmt_puts(w, negate ? " NOT IN " : " IN ");
            vs_fmt_list(w, f, nd);
        }
        return true;
    }
    if (negate)
        return false;
    vs_fmt_puts(w, name);
    if (nd->n == 0) {
        vs_fmt_puts(w, " BETWEEN 1 AND 0");
        return true;
    }
    const vs_attr_range *r = &f->ranges[nd->off];
    if (r->lo == INT64_MIN) {
        vs_fmt_puts(w, " <= ");
        vs_fmt_int(w, r->hi);
    } else if (r->hi == INT64_MAX) {
        vs_fmt_puts(w, " >= ");
        vs_fmt_int(w, r->lo);
    } else {
        vs_fmt_puts(w, " BETWEEN ");
        vs_fmt_int(w, r->lo);
        vs_fmt_puts(w, " AND ");
        vs_fmt_int(w, r->hi);
    }
    return true;
}

/* Appends node i; parent is the kind of the node it sits in (0 at the top). Recursion is bounded
 * by the AST's depth, which the parser bounded. */
static void vs_fmt_node(vs_fwriter *w, const vs_filter *f, uint32_t i, int parent)
{
    const vs_fnode *nd = &f->nodes[i];
    switch (nd->kind) {
    case VS_FN_AND:
    case VS_FN_OR: {
        bool paren = parent == VS_FN_NOT || (nd->kind == VS_FN_OR && parent == VS_FN_AND);
        if (paren)
            vs_fmt_puts(w, "(");
        for (uint32_t k = 0; k < nd->n; k++) {
            if (k)
                vs_fmt_puts(w, nd->kind == VS_FN_AND ? " AND " : " OR ");
            vs_fmt_node(w, f, f->kids[nd->off + k], nd->kind);
        }
        if (paren)
            vs_fmt_puts(w, ")");
        return;
    }
    case VS_FN_NOT: {
        const vs_fnode *kid = &f->nodes[f->kids[nd->off]];
        if (kid->kind >= VS_FN_TAG && vs_fmt_leaf(w, f, kid, true))
            return;
        vs_fmt_puts(w, "NOT ");
        vs_fmt_node(w, f, f->kids[nd->off], VS_FN_NOT);
        return;
    }
    default: vs_fmt_leaf(w, f, nd, false); return;
    }
}

/* Writes the canonical text of f, snprintf-style. */
size_t vs_filter_format(const vs_filter *f, char *buf, size_t cap)
{
    vs_fwriter w = {buf, cap, 0};
    vs_fmt_node(&w, f, f->root, 0);
    if (cap)
        buf[w.len < cap ? w.len : cap - 1] = '\0';
    return w.len;
}
