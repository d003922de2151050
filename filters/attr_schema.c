/* attr_schema.c: the attribute fields of a collection (see vs_attr_schema.h). */
#include "vs_attr_schema.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct vs_attr_field {
    char name[VS_ATTR_NAME_MAX + 1];
    vs_attr_type type;
} vs_attr_field;

struct vs_attr_schema {
    vs_attr_field *fields;
    uint32_t n, cap;
};

/* The keywords of the filter language, which no field may be named. */
static const char *const vs_attr_keywords[] = {"AND", "OR", "NOT", "IN", "BETWEEN", "EXISTS"};

/* Creates an empty schema. */
vs_attr_schema *vs_attr_schema_create(void) { return calloc(1, sizeof(vs_attr_schema)); }

/* Frees s. */
void vs_attr_schema_destroy(vs_attr_schema *s)
{
    if (s) {
        free(s->fields);
        free(s);
    }
}

/* Returns a copy of s. */
vs_attr_schema *vs_attr_schema_copy(const vs_attr_schema *s)
{
    vs_attr_schema *c = vs_attr_schema_create();
    if (!c)
        return NULL;
    if (s->n) {
        c->fields = malloc(s->n * sizeof *c->fields);
        if (!c->fields) {
            free(c);
            return NULL;
        }
        memcpy(c->fields, s->fields, s->n * sizeof *c->fields);
        c->n = c->cap = s->n;
    }
    return c;
}

/* Whether name is a valid field name: an identifier of the filter language that is no keyword. */
static bool vs_attr_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > VS_ATTR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    for (size_t k = 0; k < sizeof vs_attr_keywords / sizeof *vs_attr_keywords; k++)
        if (strlen(vs_attr_keywords[k]) == len && strncasecmp(vs_attr_keywords[k], name, len) == 0)
            return false;
    return true;
}

/* Appends a field after checking its name and type. */
vs_err vs_attr_schema_add(vs_attr_schema *s, const char *name, vs_attr_type type, vs_status *st)
{
    size_t len = name ? strnlen(name, VS_ATTR_NAME_MAX + 1) : 0;
    if (!vs_attr_name_ok(name, len))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "attribute name '%.*s' is not valid: use 1-64 of [A-Za-z0-9_], not "
                             "starting with a digit, and no keyword (AND OR NOT IN BETWEEN EXISTS)",
                             (int)(len > VS_ATTR_NAME_MAX ? VS_ATTR_NAME_MAX : len),
                             name ? name : "");
    if (type != VS_ATTR_TAG && type != VS_ATTR_INT)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "attribute '%s': unknown type %d", name,
                             (int)type);
    if (vs_attr_schema_find(s, name, len) >= 0)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "attribute '%s' is defined twice", name);
    if (s->n >= VS_ATTR_MAX_FIELDS)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                             "attribute '%s': a collection has at most %d attribute fields", name,
                             VS_ATTR_MAX_FIELDS);
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 8;
        vs_attr_field *f = realloc(s->fields, cap * sizeof *f);
        if (!f)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory adding attribute");
        s->fields = f;
        s->cap = cap;
    }
    memcpy(s->fields[s->n].name, name, len);
    s->fields[s->n].name[len] = '\0';
    s->fields[s->n].type = type;
    s->n++;
    return VS_OK;
}

/* The number of fields. */
uint32_t vs_attr_schema_count(const vs_attr_schema *s) { return s->n; }

/* The name of field i, or NULL. */
const char *vs_attr_schema_name(const vs_attr_schema *s, uint32_t i)
{
    return i < s->n ? s->fields[i].name : NULL;
}

/* The type of field i, or 0. */
vs_attr_type vs_attr_schema_type(const vs_attr_schema *s, uint32_t i)
{
    return i < s->n ? s->fields[i].type : (vs_attr_type)0;
}

/* The number of the field with this exact name, or -1. */
int vs_attr_schema_find(const vs_attr_schema *s, const char *name, size_t len)
{
    if (len > VS_ATTR_NAME_MAX)
        return -1;
    for (uint32_t i = 0; i < s->n; i++)
        if (strlen(s->fields[i].name) == len && memcmp(s->fields[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* "tag" or "int". */
const char *vs_attr_type_name(vs_attr_type t)
{
    switch (t) {
    case VS_ATTR_TAG: return "tag";
    case VS_ATTR_INT: return "int";
    }
    return "?";
}
