/*
 * filter_lex.c: the filter language's tokens.
 *
 * Names are [A-Za-z_][A-Za-z0-9_]*; the six keywords are names compared without case. Integers
 * are decimal digits with an optional sign written right before them ("-5", "+5"; "- 5" is an
 * error), checked against the int64 range. Strings are single-quoted; inside, \' and \\ are the
 * only escapes and every other byte stands for itself. Whitespace is space, tab, CR and LF.
 * Columns are 1-based byte offsets, so they point at the byte in the text the caller sent.
 */
#include "filter_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Starts lx on the text. */
void vs_filter_lex_init(vs_flexer *lx, const char *text, size_t len)
{
    memset(lx, 0, sizeof *lx);
    lx->text = text;
    lx->len = len;
}

/* Frees the lexer's buffer. */
void vs_filter_lex_free(vs_flexer *lx)
{
    free(lx->buf);
    lx->buf = NULL;
    lx->cap = 0;
}

/* A comparison token's operator text. */
const char *vs_filter_op_text(vs_ftok_kind k)
{
    switch (k) {
    case VS_TK_EQ: return "=";
    case VS_TK_NE: return "!=";
    case VS_TK_LT: return "<";
    case VS_TK_LE: return "<=";
    case VS_TK_GT: return ">";
    case VS_TK_GE: return ">=";
    default: return "?";
    }
}

/* Writes byte c for a message: itself when printable, else \xHH. */
static const char *vs_lex_show(unsigned char c, char out[8])
{
    if (c >= 0x20 && c < 0x7f && c != '\'')
        snprintf(out, 8, "%c", c);
    else
        snprintf(out, 8, "\\x%02x", c);
    return out;
}

/* Whether c may start a name. */
static bool vs_lex_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

/* Whether c may continue a name. */
static bool vs_lex_name_char(char c) { return vs_lex_name_start(c) || (c >= '0' && c <= '9'); }

/* The keyword token for name s[0 .. len), or VS_TK_NAME. */
static vs_ftok_kind vs_lex_keyword(const char *s, size_t len)
{
    static const struct {
        const char *w;
        vs_ftok_kind k;
    } kw[] = {{"AND", VS_TK_AND}, {"OR", VS_TK_OR},           {"NOT", VS_TK_NOT},
              {"IN", VS_TK_IN},   {"BETWEEN", VS_TK_BETWEEN}, {"EXISTS", VS_TK_EXISTS}};
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
        if (strlen(kw[i].w) == len && strncasecmp(kw[i].w, s, len) == 0)
            return kw[i].k;
    return VS_TK_NAME;
}

/* Reads an integer whose first digit is at lx->pos (the sign, if any, already consumed). */
static vs_err vs_lex_int(vs_flexer *lx, bool neg, size_t col, vs_status *st)
{
    uint64_t mag = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    bool over = false;
    while (lx->pos < lx->len && lx->text[lx->pos] >= '0' && lx->text[lx->pos] <= '9') {
        unsigned d = (unsigned)(lx->text[lx->pos++] - '0');
        if (mag > (lim - d) / 10)
            over = true;
        else
            mag = mag * 10 + d;
    }
    if (over)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "integer out of range at column %zu",
                             col);
    lx->tok.kind = VS_TK_INT;
    lx->tok.ival = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    return VS_OK;
}

/* Reads a quoted string whose opening quote is at lx->pos. */
static vs_err vs_lex_string(vs_flexer *lx, size_t col, vs_status *st)
{
    size_t need = 0, p = lx->pos + 1;
    /* First pass: find the end and the unescaped length; reject bad escapes. */
    for (;;) {
        if (p >= lx->len)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "unterminated string at column %zu",
                                 col);
        char c = lx->text[p];
        if (c == '\'')
            break;
        if (c == '\\') {
            if (p + 1 >= lx->len)
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                     "unterminated string at column %zu", col);
            char e = lx->text[p + 1];
            if (e != '\'' && e != '\\') {
                char show[8];
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                     "invalid escape '\\%s' in string at column %zu (only \\' and "
                                     "\\\\ are escapes)",
                                     vs_lex_show((unsigned char)e, show), p + 1);
            }
            p += 2;
        } else {
            p++;
        }
        need++;
    }
    if (need > lx->cap) {
        char *b = realloc(lx->buf, need);
        if (!b)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory parsing a filter");
        lx->buf = b;
        lx->cap = need;
    }
    size_t n = 0;
    for (p = lx->pos + 1; lx->text[p] != '\''; n++) {
        if (lx->text[p] == '\\')
            p++;
        lx->buf[n] = lx->text[p++];
    }
    lx->pos = p + 1;
    lx->tok.kind = VS_TK_STR;
    lx->tok.s = lx->buf;
    lx->tok.len = n;
    return VS_OK;
}

/* Reads the next token into lx->tok. */
vs_err vs_filter_lex_next(vs_flexer *lx, vs_status *st)
{
    while (lx->pos < lx->len && (lx->text[lx->pos] == ' ' || lx->text[lx->pos] == '\t' ||
                                 lx->text[lx->pos] == '\n' || lx->text[lx->pos] == '\r'))
        lx->pos++;
    size_t col = lx->pos + 1;
    lx->tok = (vs_ftok){VS_TK_END, col, NULL, 0, 0};
    if (lx->pos >= lx->len)
        return VS_OK;
    const char *t = lx->text;
    char c = t[lx->pos];
    char c1 = lx->pos + 1 < lx->len ? t[lx->pos + 1] : '\0';
    if (vs_lex_name_start(c)) {
        size_t start = lx->pos;
        while (lx->pos < lx->len && vs_lex_name_char(t[lx->pos]))
            lx->pos++;
        lx->tok.s = t + start;
        lx->tok.len = lx->pos - start;
        lx->tok.kind = vs_lex_keyword(lx->tok.s, lx->tok.len);
        return VS_OK;
    }
    if (c >= '0' && c <= '9')
        return vs_lex_int(lx, false, col, st);
    if ((c == '-' || c == '+') && c1 >= '0' && c1 <= '9') {
        lx->pos++;
        return vs_lex_int(lx, c == '-', col, st);
    }
    if (c == '\'')
        return vs_lex_string(lx, col, st);
    vs_ftok_kind k = VS_TK_END;
    size_t w = 1;
    switch (c) {
    case '(': k = VS_TK_LPAREN; break;
    case ')': k = VS_TK_RPAREN; break;
    case ',': k = VS_TK_COMMA; break;
    case '=': k = VS_TK_EQ; break;
    case '<': k = c1 == '=' ? (w = 2, VS_TK_LE) : VS_TK_LT; break;
    case '>': k = c1 == '=' ? (w = 2, VS_TK_GE) : VS_TK_GT; break;
    case '!':
        if (c1 == '=')
            k = VS_TK_NE, w = 2;
        break;
    default: break;
    }
    if (k == VS_TK_END) {
        char show[8];
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "unexpected character '%s' at column %zu",
                             vs_lex_show((unsigned char)c, show), col);
    }
    lx->tok.kind = k;
    lx->pos += w;
    return VS_OK;
}
