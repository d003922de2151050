/*
 * filter_internal.h: the parsed filter (AST), the lexer's tokens and the evaluation plan, shared by
 * the filter_* files. Not installed; nothing outside filters/ includes it.
 */
#ifndef VS_FILTER_INTERNAL_H
#define VS_FILTER_INTERNAL_H

#include "attr_internal.h"
#include "vs_filter.h"

/* ===== The AST =====
 * Nodes live in one array; a node's children come before it, so a forward pass over the array is
 * a bottom-up pass. AND and OR are n-ary and never have a child of their own kind (the parser
 * flattens "(a AND b) AND c"). != and NOT IN become NOT over = and IN. Int comparisons become a
 * sorted list of disjoint, non-adjacent inclusive ranges; tag values a sorted list of distinct
 * byte strings. A node the parser flattened away stays in the array, unreachable. */
typedef enum vs_fkind {
    VS_FN_AND = 1,
    VS_FN_OR,
    VS_FN_NOT,
    VS_FN_TAG,   /* the item's set holds one of strs[off .. off + n) */
    VS_FN_INT,   /* the item's value lies in ranges[off .. off + n) (n = 0: never) */
    VS_FN_EXISTS /* the item has the field */
} vs_fkind;

typedef struct vs_fnode {
    uint8_t kind;
    uint16_t depth; /* 1 for a leaf */
    uint32_t field; /* leaves */
    uint32_t off, n; /* AND/OR/NOT: kids; TAG: strs; INT: ranges */
} vs_fnode;

typedef struct vs_fstr {
    uint32_t off, len; /* into arena */
} vs_fstr;

struct vs_filter {
    vs_attr_schema *schema; /* a copy of the schema parsed against */
    vs_fnode *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *kids;
    uint32_t n_kids, cap_kids;
    vs_fstr *strs;
    uint32_t n_strs, cap_strs;
    char *arena;
    uint32_t n_arena, cap_arena;
    vs_attr_range *ranges;
    uint32_t n_ranges, cap_ranges;
    uint32_t root;
};

/* ===== Tokens (filter_lex.c) ===== */
typedef enum vs_ftok_kind {
    VS_TK_END = 0,
    VS_TK_NAME,
    VS_TK_INT,
    VS_TK_STR,
    VS_TK_LPAREN,
    VS_TK_RPAREN,
    VS_TK_COMMA,
    VS_TK_EQ,
    VS_TK_NE,
    VS_TK_LT,
    VS_TK_LE,
    VS_TK_GT,
    VS_TK_GE,
    VS_TK_AND,
    VS_TK_OR,
    VS_TK_NOT,
    VS_TK_IN,
    VS_TK_BETWEEN,
    VS_TK_EXISTS
} vs_ftok_kind;

typedef struct vs_ftok {
    vs_ftok_kind kind;
    size_t col;     /* 1-based byte column of the token's first byte */
    const char *s;  /* NAME: into the text; STR: the unescaped bytes, in the lexer's buffer */
    size_t len;
    int64_t ival;   /* INT */
} vs_ftok;

typedef struct vs_flexer {
    const char *text;
    size_t len, pos;
    vs_ftok tok;
    char *buf; /* unescaped string bytes of the current token */
    size_t cap;
} vs_flexer;

/* Starts lx on text[0 .. len) (no token read yet). */
void vs_filter_lex_init(vs_flexer *lx, const char *text, size_t len);

/* Reads the next token into lx->tok; INVALID_ARGUMENT with the column for a bad one. */
vs_err vs_filter_lex_next(vs_flexer *lx, vs_status *st);

/* Frees the lexer's buffer. */
void vs_filter_lex_free(vs_flexer *lx);

/* The operator text of a comparison token ("=", "!=", "<", ...). */
const char *vs_filter_op_text(vs_ftok_kind k);

/* ===== The plan of one evaluation (filter_plan.c) ===== */
#define VS_FILTER_NONE UINT64_MAX /* "no candidate set" */

typedef struct vs_fnode_plan {
    uint64_t est;          /* upper bound on the slots that pass */
    uint64_t cover;        /* size of the node's candidate set; VS_FILTER_NONE when it has none */
    bool exact;            /* the candidate set is exactly the passing slots (before live) */
    const vs_attr_col *col;
    const uint32_t *codes; /* TAG: the codes of its values that the dictionary holds, ascending */
    uint32_t n_codes;
    /* Leaves, once prepared: the slots are the union of sources src .. src + n_src of the plan,
     * or, when complement is set, source base (the presence bitmap) minus that union. */
    uint32_t src, n_src, base;
    bool complement;
    bool prepared;
    vs_attr_select sel;    /* INT: what the bins gave */
    const uint32_t *order; /* AND/OR: kids by ascending estimate */
} vs_fnode_plan;

typedef struct vs_fplan {
    const vs_filter *f;
    const vs_attr_store *store;
    uint64_t n_bits;
    vs_fnode_plan *np;
    uint32_t n_np, cap_np; /* n_np: entries the last bind filled */
    uint32_t *codes; /* pool for vs_fnode_plan.codes */
    uint32_t n_codes, cap_codes;
    uint32_t *order; /* pool for vs_fnode_plan.order */
    uint32_t cap_order;
    vs_attr_source *srcs; /* pool of leaf sources */
    vs_attr_cursor *curs; /* one cursor per source */
    uint32_t n_srcs, cap_srcs, cap_curs;
} vs_fplan;

/* Binds f to store for slots [0, n_bits): checks the schema, looks up tag values, computes every
 * node's estimate and candidate-set size and orders AND/OR children. Reuses p's buffers. */
vs_err vs_filter_plan_bind(vs_fplan *p, const vs_filter *f, const vs_attr_store *store,
                           uint64_t n_bits, vs_status *st);

/* Makes the sources of leaf `node` ready (an INT leaf asks the bins for its slots). */
vs_err vs_filter_plan_prepare(vs_fplan *p, uint32_t node, vs_status *st);

/* Frees what the last bind and prepare made (the bins' selections); keeps the buffers. */
void vs_filter_plan_reset(vs_fplan *p);

/* Frees p's buffers. */
void vs_filter_plan_free(vs_fplan *p);

#endif
