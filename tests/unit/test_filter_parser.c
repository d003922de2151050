/*
 * test_filter_parser.c: the filter language's grammar, types and messages.
 *
 * Two tables: valid filters with the canonical text each must format to (which shows how it
 * parsed: precedence, flattening, int comparisons as ranges, tag integers as text), and invalid
 * filters with the exact message, column included. Then the limits (length, depth) and that every
 * canonical text parses back to itself.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vs_filter.h"

static vs_attr_schema *schema;

/* Builds the schema the tables are written against. */
static void make_schema(void)
{
    schema = vs_attr_schema_create();
    CHECK(vs_attr_schema_add(schema, "digit", VS_ATTR_TAG, NULL) == VS_OK);
    CHECK(vs_attr_schema_add(schema, "ink", VS_ATTR_INT, NULL) == VS_OK);
    CHECK(vs_attr_schema_add(schema, "color", VS_ATTR_TAG, NULL) == VS_OK);
    CHECK(vs_attr_schema_add(schema, "ts", VS_ATTR_INT, NULL) == VS_OK);
    CHECK(vs_attr_schema_add(schema, "_x9", VS_ATTR_TAG, NULL) == VS_OK);
}

/* Parses text (with default limits) and returns its canonical form in out, or "" on error. */
static vs_err parse_fmt(const char *text, size_t len, const vs_filter_limits *lim, char *out,
                        size_t cap, vs_status *st)
{
    vs_filter *f = NULL;
    vs_err e = vs_filter_parse(schema, text, len, lim, &f, st);
    out[0] = '\0';
    if (e == VS_OK) {
        size_t n = vs_filter_format(f, out, cap);
        CHECKF(n < cap, "canonical text of '%s' is too long", text);
    }
    vs_filter_destroy(f);
    return e;
}

static const struct {
    const char *in, *canon;
} valid[] = {
    {"digit = 7", "digit = '7'"},
    {"digit = '7'", "digit = '7'"},
    {"digit=7", "digit = '7'"},
    {"  \tdigit\n=\r7  ", "digit = '7'"},
    {"digit = 007", "digit = '7'"},
    {"digit = -0", "digit = '0'"},
    {"digit = +12", "digit = '12'"},
    {"digit = -12", "digit = '-12'"},
    {"digit != 7", "digit != '7'"},
    {"digit in (3, 1, 2)", "digit IN ('1', '2', '3')"},
    {"digit IN ('b','a','b', 'a')", "digit IN ('a', 'b')"},
    {"digit IN (1, '1')", "digit = '1'"},
    {"digit not in ('b','a')", "digit NOT IN ('a', 'b')"},
    {"digit NOT IN (5)", "digit != '5'"},
    {"digit EXISTS", "digit EXISTS"},
    {"digit exists", "digit EXISTS"},
    {"NOT digit EXISTS", "NOT digit EXISTS"},
    {"color = ''", "color = ''"},
    {"color = 'it\\'s'", "color = 'it\\'s'"},
    {"color = 'a\\\\b'", "color = 'a\\\\b'"},
    {"color = 'AND OR ( ) , = \"'", "color = 'AND OR ( ) , = \"'"},
    {"_x9 = 'x'", "_x9 = 'x'"},
    {"ink = 5", "ink = 5"},
    {"ink != 5", "ink != 5"},
    {"ink < 5", "ink <= 4"},
    {"ink <= 5", "ink <= 5"},
    {"ink > 5", "ink >= 6"},
    {"ink >= 5", "ink >= 5"},
    {"ink >= -3", "ink >= -3"},
    {"ink<=+3", "ink <= 3"},
    {"ink BETWEEN 3 AND 9", "ink BETWEEN 3 AND 9"},
    {"ink between -9 and -9", "ink = -9"},
    {"ink BETWEEN 9 AND 3", "ink BETWEEN 1 AND 0"},
    {"ink IN (3, 1, 2, 7, 3)", "ink IN (1, 2, 3, 7)"},
    {"ink IN (1, 2)", "ink BETWEEN 1 AND 2"},
    {"ink IN (4)", "ink = 4"},
    {"ink NOT IN (1, 5)", "ink NOT IN (1, 5)"},
    {"ink NOT IN (1, 2)", "NOT ink BETWEEN 1 AND 2"},
    {"ink < -9223372036854775808", "ink BETWEEN 1 AND 0"},
    {"ink > 9223372036854775807", "ink BETWEEN 1 AND 0"},
    {"ink >= -9223372036854775808", "ink <= 9223372036854775807"},
    {"ink = -9223372036854775808", "ink = -9223372036854775808"},
    {"ink = 9223372036854775807", "ink = 9223372036854775807"},
    {"ink IN (9223372036854775807, 9223372036854775806)",
     "ink >= 9223372036854775806"},
    {"not not ink = 1", "NOT ink != 1"},
    {"NOT NOT NOT ink EXISTS", "NOT NOT NOT ink EXISTS"},
    {"digit = 1 AND ink = 2 OR color = 'x'", "digit = '1' AND ink = 2 OR color = 'x'"},
    {"digit = 1 OR ink = 2 AND color = 'x'", "digit = '1' OR ink = 2 AND color = 'x'"},
    {"digit = 1 AND (ink = 2 OR color = 'x')", "digit = '1' AND (ink = 2 OR color = 'x')"},
    {"(digit = 1 AND ink = 2) AND color = 'x'", "digit = '1' AND ink = 2 AND color = 'x'"},
    {"digit = 1 OR (ink = 2 OR (color = 'x' OR ts EXISTS))",
     "digit = '1' OR ink = 2 OR color = 'x' OR ts EXISTS"},
    {"NOT (digit = 1 OR ink = 2)", "NOT (digit = '1' OR ink = 2)"},
    {"NOT (digit = 1 AND ink = 2)", "NOT (digit = '1' AND ink = 2)"},
    {"NOT digit = 1 AND ink = 2", "digit != '1' AND ink = 2"},
    {"((((digit = 1))))", "digit = '1'"},
    {"ink BETWEEN 1 AND 5 AND digit = 2", "ink BETWEEN 1 AND 5 AND digit = '2'"},
    {"digit In (1) aNd ink bEtWeEn 1 AnD 2 Or ts eXiStS", "digit = '1' AND ink BETWEEN 1 AND 2 OR ts EXISTS"},
    {"ts EXISTS AND NOT color EXISTS", "ts EXISTS AND NOT color EXISTS"},
};

static const struct {
    const char *in, *msg;
} invalid[] = {
    {"dgit = 7", "unknown field 'dgit' at column 1"},
    {"Digit = 7", "unknown field 'Digit' at column 1"},
    {"ink IN ('a', 'b')", "'ink' is an int field; IN needs integers at column 9"},
    {"(digit = 7 AND ink > 3", "expected ')' at column 23"},
    {"digit < 5", "'digit' is a tag field; < needs an int field at column 7"},
    {"digit >= 5", "'digit' is a tag field; >= needs an int field at column 7"},
    {"ink = 'x'", "'ink' is an int field; = needs an integer at column 7"},
    {"ink != '5'", "'ink' is an int field; != needs an integer at column 8"},
    {"ink NOT IN (1, 'x')", "'ink' is an int field; NOT IN needs integers at column 16"},
    {"ink BETWEEN 'a' AND 3", "'ink' is an int field; BETWEEN needs integers at column 13"},
    {"ink BETWEEN 1 AND 'b'", "'ink' is an int field; BETWEEN needs integers at column 19"},
    {"digit BETWEEN 1 AND 2", "'digit' is a tag field; BETWEEN needs an int field at column 7"},
    {"ink BETWEEN 1 2", "expected AND in BETWEEN at column 15"},
    {"ink BETWEEN 1 AND x", "expected an integer at column 19"},
    {"ink BETWEEN", "expected an integer at column 12"},
    {"", "expected a field name, NOT or '(' at column 1"},
    {"   ", "expected a field name, NOT or '(' at column 4"},
    {"NOT", "expected a field name, NOT or '(' at column 4"},
    {"AND = 1", "expected a field name, NOT or '(' at column 1"},
    {"digit = 1 AND", "expected a field name, NOT or '(' at column 14"},
    {"digit = 1 OR OR ink = 1", "expected a field name, NOT or '(' at column 14"},
    {"()", "expected a field name, NOT or '(' at column 2"},
    {"digit = ", "expected an integer or a quoted string at column 9"},
    {"digit == 7", "expected an integer or a quoted string at column 8"},
    {"digit = x", "expected an integer or a quoted string at column 9"},
    {"digit = 7 ink = 3", "expected AND, OR or the end of the filter at column 11"},
    {"digit = 7)", "unmatched ')' at column 10"},
    {"(digit = 7))", "unmatched ')' at column 12"},
    {"(digit = 7 ink = 3)", "expected ')' at column 12"},
    {"digit NOT 5", "expected IN after NOT at column 11"},
    {"digit NOT BETWEEN 1 AND 2", "expected IN after NOT at column 11"},
    {"digit IN 5", "expected '(' after IN at column 10"},
    {"digit IN ()", "expected an integer or a quoted string at column 11"},
    {"digit IN (1 2)", "expected ',' or ')' at column 13"},
    {"digit IN (1,", "expected an integer or a quoted string at column 13"},
    {"digit IN (1, 2", "expected ',' or ')' at column 15"},
    {"digit", "expected an operator, IN, BETWEEN or EXISTS after 'digit' at column 6"},
    {"digit 7", "expected an operator, IN, BETWEEN or EXISTS after 'digit' at column 7"},
    {"digit = 'abc", "unterminated string at column 9"},
    {"digit = 'abc\\'", "unterminated string at column 9"},
    {"digit = 'abc\\", "unterminated string at column 9"},
    {"digit = 'a\\n'", "invalid escape '\\n' in string at column 11 (only \\' and \\\\ are escapes)"},
    {"ink = 9223372036854775808", "integer out of range at column 7"},
    {"ink = -9223372036854775809", "integer out of range at column 7"},
    {"ink = 99999999999999999999999", "integer out of range at column 7"},
    {"digit = 7 # x", "unexpected character '#' at column 11"},
    {"digit ! = 7", "unexpected character '!' at column 7"},
    {"ink = - 5", "unexpected character '-' at column 7"},
    {"ink = 1.5", "unexpected character '.' at column 8"},
    {"ink <> 1", "expected an integer or a quoted string at column 6"},
    {"digit = \"7\"", "unexpected character '\"' at column 9"},
    {"digit = 1 \xc3\xa9", "unexpected character '\\xc3' at column 11"},
    {"digit = 1 && ink = 2", "unexpected character '&' at column 11"},
};

/* The valid table: each parses, formats to its canonical text, and that text is a fixed point. */
static void test_valid(void)
{
    char out[512], again[512];
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        vs_status st = {0};
        vs_err e = parse_fmt(valid[i].in, strlen(valid[i].in), NULL, out, sizeof out, &st);
        CHECKF(e == VS_OK, "'%s' failed: %s", valid[i].in, st.msg);
        CHECKF(strcmp(out, valid[i].canon) == 0, "'%s' formats as '%s', want '%s'", valid[i].in,
               out, valid[i].canon);
        e = parse_fmt(out, strlen(out), NULL, again, sizeof again, &st);
        CHECKF(e == VS_OK && strcmp(out, again) == 0, "'%s' does not format to itself: '%s' (%s)",
               out, again, st.msg);
    }
}

/* The invalid table: each fails with INVALID_ARGUMENT and exactly its message. */
static void test_invalid(void)
{
    char out[512];
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        vs_status st = {0};
        vs_err e = parse_fmt(invalid[i].in, strlen(invalid[i].in), NULL, out, sizeof out, &st);
        CHECKF(e == VS_ERR_INVALID_ARGUMENT, "'%s' gave %s", invalid[i].in, vs_err_name(e));
        CHECKF(strcmp(st.msg, invalid[i].msg) == 0, "'%s': message '%s', want '%s'",
               invalid[i].in, st.msg, invalid[i].msg);
    }
    /* A NUL byte inside the text is a character like any other, not the end. */
    vs_status st = {0};
    vs_err e = parse_fmt("digit = 1\0x", 11, NULL, out, sizeof out, &st);
    CHECK(e == VS_ERR_INVALID_ARGUMENT && strcmp(st.msg, "unexpected character '\\x00' at column 10") == 0);
    /* ... and inside a string it is a byte of the value. */
    e = parse_fmt("color = 'a\0b'", 13, NULL, out, sizeof out, &st);
    CHECK(e == VS_OK);
    /* A long unknown name is cut in the message. */
    char longname[200];
    memset(longname, 'q', 100);
    strcpy(longname + 100, " = 1");
    e = parse_fmt(longname, strlen(longname), NULL, out, sizeof out, &st);
    CHECK(e == VS_ERR_INVALID_ARGUMENT && strstr(st.msg, "...' at column 1") != NULL);
}

/* Builds "(" x n + "digit = 1" + ")" x n. */
static char *nested(size_t n, size_t *len)
{
    char *s = malloc(2 * n + 16);
    memset(s, '(', n);
    memcpy(s + n, "digit = 1", 9);
    memset(s + n + 9, ')', n);
    *len = 2 * n + 9;
    s[*len] = '\0';
    return s;
}

/* The length and depth limits, their defaults and parameters; far past them, no crash. */
static void test_limits(void)
{
    char out[1024];
    vs_status st = {0};
    size_t len;
    char *s = nested(64, &len);
    CHECK(parse_fmt(s, len, NULL, out, sizeof out, &st) == VS_OK && strcmp(out, "digit = '1'") == 0);
    free(s);
    s = nested(65, &len);
    CHECK(parse_fmt(s, len, NULL, out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "filter nests deeper than 64 levels at column 65") == 0, "%s", st.msg);
    free(s);
    s = nested(1000000, &len); /* a million levels: refused at level 65, not a stack overflow */
    CHECK(parse_fmt(s, len, &(vs_filter_limits){.max_len = 1u << 30}, out, sizeof out, &st) ==
          VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "filter nests deeper than 64 levels at column 65") == 0, "%s", st.msg);
    free(s);

    /* NOT counts as a level too. */
    char nots[600] = "";
    for (int i = 0; i < 64; i++)
        strcat(nots, "NOT ");
    strcat(nots, "ink = 1");
    CHECK(parse_fmt(nots, strlen(nots), NULL, out, sizeof out, &st) == VS_OK);
    memmove(nots + 4, nots, strlen(nots) + 1);
    memcpy(nots, "NOT ", 4);
    CHECK(parse_fmt(nots, strlen(nots), NULL, out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "filter nests deeper than 64 levels at column 257") == 0, "%s", st.msg);

    /* A caller's depth limit, and the ceiling on it. */
    s = nested(3, &len);
    CHECK(parse_fmt(s, len, &(vs_filter_limits){.max_depth = 3}, out, sizeof out, &st) == VS_OK);
    CHECK(parse_fmt(s, len, &(vs_filter_limits){.max_depth = 2}, out, sizeof out, &st) ==
          VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "filter nests deeper than 2 levels at column 3") == 0, "%s", st.msg);
    free(s);
    s = nested(300, &len);
    CHECK(parse_fmt(s, len, &(vs_filter_limits){.max_depth = 100000}, out, sizeof out, &st) ==
          VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "filter nests deeper than 256 levels at column 257") == 0, "%s", st.msg);
    free(s);

    /* Length: exactly 16 KiB passes, one byte more does not. */
    size_t big = VS_FILTER_MAX_LEN;
    char *t = malloc(big + 2);
    memset(t, ' ', big + 1);
    memcpy(t, "digit = 1", 9);
    CHECK(parse_fmt(t, big, NULL, out, sizeof out, &st) == VS_OK);
    CHECK(parse_fmt(t, big + 1, NULL, out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "filter is 16385 bytes; the limit is 16384") == 0, "%s", st.msg);
    CHECK(parse_fmt(t, 11, &(vs_filter_limits){.max_len = 10}, out, sizeof out, &st) ==
          VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "filter is 11 bytes; the limit is 10") == 0, "%s", st.msg);
    free(t);

    /* A long IN list within the limit: thousands of values. */
    char *in = malloc(VS_FILTER_MAX_LEN + 1);
    size_t n = (size_t)sprintf(in, "ink NOT IN (0");
    for (int v = 1; n < VS_FILTER_MAX_LEN - 16; v += 2)
        n += (size_t)sprintf(in + n, ",%d", v);
    n += (size_t)sprintf(in + n, ")");
    vs_filter *f = NULL;
    CHECK(vs_filter_parse(schema, in, n, NULL, &f, &st) == VS_OK);
    size_t need = vs_filter_format(f, NULL, 0);
    char *canon = malloc(need + 1);
    CHECK(vs_filter_format(f, canon, need + 1) == need && strlen(canon) == need);
    vs_filter *g = NULL;
    CHECK(vs_filter_parse(schema, canon, need, &(vs_filter_limits){.max_len = 1u << 20}, &g,
                          &st) == VS_OK);
    vs_filter_destroy(f);
    vs_filter_destroy(g);
    free(canon);
    free(in);
}

/* Formatting into small buffers truncates like snprintf and reports the full length. */
static void test_format_buffer(void)
{
    vs_filter *f = NULL;
    CHECK(vs_filter_parse(schema, "digit = 1", 9, NULL, &f, NULL) == VS_OK);
    char buf[8];
    CHECK(vs_filter_format(f, buf, sizeof buf) == 11);
    CHECK(strcmp(buf, "digit =") == 0);
    CHECK(vs_filter_format(f, NULL, 0) == 11);
    vs_filter_destroy(f);
}

/* Schemas refuse names that the language could not refer to. */
static void test_schema_names(void)
{
    vs_attr_schema *s = vs_attr_schema_create();
    vs_status st = {0};
    CHECK(vs_attr_schema_add(s, "and", VS_ATTR_TAG, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_attr_schema_add(s, "Exists", VS_ATTR_TAG, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_attr_schema_add(s, "9lives", VS_ATTR_TAG, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_attr_schema_add(s, "a-b", VS_ATTR_TAG, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_attr_schema_add(s, "", VS_ATTR_TAG, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_attr_schema_add(s, "ok", (vs_attr_type)7, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_attr_schema_add(s, "andy", VS_ATTR_TAG, &st) == VS_OK);
    CHECK(vs_attr_schema_add(s, "andy", VS_ATTR_INT, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strcmp(st.msg, "attribute 'andy' is defined twice") == 0, "%s", st.msg);
    char name[80];
    memset(name, 'n', 65);
    name[65] = '\0';
    CHECK(vs_attr_schema_add(s, name, VS_ATTR_TAG, &st) == VS_ERR_INVALID_ARGUMENT);
    name[64] = '\0';
    CHECK(vs_attr_schema_add(s, name, VS_ATTR_TAG, &st) == VS_OK);
    CHECK(vs_attr_schema_find(s, name, 64) == 1);
    CHECK(vs_attr_schema_find(s, "and", 3) == -1);
    vs_attr_schema_destroy(s);

    /* A filter refers to fields by the names of the schema it was parsed with. */
    vs_filter *f = NULL;
    CHECK(vs_filter_parse(schema, "andy = 1", 8, NULL, &f, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(f == NULL);
}

int main(void)
{
    make_schema();
    test_valid();
    test_invalid();
    test_limits();
    test_format_buffer();
    test_schema_names();
    vs_attr_schema_destroy(schema);
    return vs_test_finish("test_filter_parser");
}
