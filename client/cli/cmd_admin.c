/*
 * cmd_admin.c: the small commands: create, drop, describe, list, stats, get, delete.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define NOPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Reports a failed call as the command's one line; returns CLI_EXIT_FAIL. */
static int rpc_fail(const cli_cmd *cmd, const char *what, const vsc_status *st)
{
    return cli_fail(cmd->name, CLI_EXIT_FAIL, "%s: %s: %s", what, vsc_code_name(st->code), st->message);
}

/* ===== create ===== */

/* Parses NAME:DIM:METRIC:STORAGE[:rerank] into f (name points into spec's copy buf). 0 or -1. */
static int parse_field(const cli_cmd *cmd, const char *orig, char *spec, Vecscan__V1__VectorField *f)
{
    char *parts[6];
    int n = 0;
    for (char *p = spec, *save = NULL; n < 6 && (p = strtok_r(p, ":", &save)); p = NULL) parts[n++] = p;
    if (n < 4 || n > 5)
        return cli_fail(cmd->name, -1, "--field '%s': want NAME:DIM:METRIC:STORAGE[:rerank]", orig);
    f->name = parts[0];
    char *end;
    unsigned long dim = strtoul(parts[1], &end, 10);
    if (*end || dim < 1 || dim > 4096)
        return cli_fail(cmd->name, -1, "--field %s: dim '%s' is not in 1..4096", parts[0], parts[1]);
    f->dim = (uint32_t)dim;
    if (strcmp(parts[2], "ip") == 0) f->metric = VECSCAN__V1__METRIC__METRIC_IP;
    else if (strcmp(parts[2], "cosine") == 0) f->metric = VECSCAN__V1__METRIC__METRIC_COSINE;
    else if (strcmp(parts[2], "l2") == 0) f->metric = VECSCAN__V1__METRIC__METRIC_L2;
    else return cli_fail(cmd->name, -1, "--field %s: metric '%s' is not ip, cosine or l2", parts[0], parts[2]);
    if (strcmp(parts[3], "f32") == 0) f->storage = VECSCAN__V1__STORAGE__STORAGE_F32;
    else if (strcmp(parts[3], "f16") == 0) f->storage = VECSCAN__V1__STORAGE__STORAGE_F16;
    else if (strcmp(parts[3], "i8") == 0) f->storage = VECSCAN__V1__STORAGE__STORAGE_I8;
    else if (strcmp(parts[3], "b1") == 0) f->storage = VECSCAN__V1__STORAGE__STORAGE_B1;
    else return cli_fail(cmd->name, -1, "--field %s: storage '%s' is not f32, f16, i8 or b1", parts[0], parts[3]);
    if (n == 5) {
        if (strcmp(parts[4], "rerank") != 0)
            return cli_fail(cmd->name, -1, "--field %s: the fifth part may only be 'rerank', got '%s'",
                            parts[0], parts[4]);
        f->rerank = true;
    }
    return 0;
}

int cmd_create(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL;
    cli_strlist fields = {0}, tags = {0}, ints = {0};
    cli_opt opts[] = {
        {"collection", CLI_STR, &coll, "NAME", "the new collection's name ([A-Za-z0-9_-]{1,64})"},
        {"field", CLI_STRLIST, &fields, "SPEC",
         "a vector field NAME:DIM:METRIC:STORAGE[:rerank]; METRIC ip|cosine|l2, STORAGE f32|f16|i8|b1 "
         "(repeat for several)"},
        {"tag", CLI_STRLIST, &tags, "NAME", "a tag attribute (a set of strings; repeat)"},
        {"int", CLI_STRLIST, &ints, "NAME", "an int64 attribute (repeat)"},
    };
    cli_cmd cmd = {"create", "--collection NAME --field SPEC ... [--tag NAME ...] [--int NAME ...]",
                   "Creates a collection with its schema, which is fixed from then on.", opts, NOPTS(opts), {0}};
    int rc = cli_start(&cmd, argc, argv, pre);
    if (rc == 0 && !(rc = cli_require(&cmd, coll, "collection")) && fields.n == 0)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "at least one --field is required");
    Vecscan__V1__VectorField *vf = calloc((size_t)fields.n + 1, sizeof *vf);
    Vecscan__V1__VectorField **vfp = calloc((size_t)fields.n + 1, sizeof *vfp);
    Vecscan__V1__AttributeField *af = calloc((size_t)(tags.n + ints.n) + 1, sizeof *af);
    Vecscan__V1__AttributeField **afp = calloc((size_t)(tags.n + ints.n) + 1, sizeof *afp);
    char **copies = calloc((size_t)fields.n + 1, sizeof *copies);
    vsc_conn *c = NULL;
    if (rc == 0 && (!vf || !vfp || !af || !afp || !copies)) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
    for (int i = 0; rc == 0 && i < fields.n; i++) {
        vecscan__v1__vector_field__init(&vf[i]);
        vfp[i] = &vf[i];
        copies[i] = strdup(fields.v[i]);
        if (!copies[i] || parse_field(&cmd, fields.v[i], copies[i], &vf[i]) != 0) rc = CLI_EXIT_USAGE;
    }
    for (int i = 0; rc == 0 && i < tags.n + ints.n; i++) {
        vecscan__v1__attribute_field__init(&af[i]);
        afp[i] = &af[i];
        af[i].name = (char *)(i < tags.n ? tags.v[i] : ints.v[i - tags.n]);
        af[i].type = i < tags.n ? VECSCAN__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TAG : VECSCAN__V1__ATTRIBUTE_TYPE__ATTRIBUTE_INT;
    }
    if (rc == 0) rc = cli_connect(&cmd, &c);
    if (rc == 0) {
        Vecscan__V1__Schema schema = VECSCAN__V1__SCHEMA__INIT;
        schema.n_vectors = (size_t)fields.n;
        schema.vectors = vfp;
        schema.n_attributes = (size_t)(tags.n + ints.n);
        schema.attributes = afp;
        Vecscan__V1__CreateCollectionRequest req = VECSCAN__V1__CREATE_COLLECTION_REQUEST__INIT;
        req.name = (char *)coll;
        req.schema = &schema;
        Vecscan__V1__CreateCollectionResponse *resp;
        vsc_status st;
        if (vsc_create_collection(c, &req, &resp, &st) != VSC_OK) {
            rc = rpc_fail(&cmd, coll, &st);
        } else {
            printf("created collection %s (seq %" PRIu64 ")\n", coll, resp->seq);
            vsc_free(resp);
        }
    }
    vsc_close(c);
    for (int i = 0; copies && i < fields.n; i++) free(copies[i]);
    free(copies);
    free(vf);
    free(vfp);
    free(af);
    free(afp);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}

/* ===== drop ===== */

int cmd_drop(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL;
    cli_opt opts[] = {{"collection", CLI_STR, &coll, "NAME", "the collection to drop"}};
    cli_cmd cmd = {"drop", "--collection NAME", "Drops a collection and all its items.", opts, NOPTS(opts), {0}};
    int rc = cli_start(&cmd, argc, argv, pre);
    if (rc == 0) rc = cli_require(&cmd, coll, "collection");
    vsc_conn *c = NULL;
    if (rc == 0) rc = cli_connect(&cmd, &c);
    if (rc == 0) {
        Vecscan__V1__DropCollectionRequest req = VECSCAN__V1__DROP_COLLECTION_REQUEST__INIT;
        req.name = (char *)coll;
        Vecscan__V1__DropCollectionResponse *resp;
        vsc_status st;
        if (vsc_drop_collection(c, &req, &resp, &st) != VSC_OK) {
            rc = rpc_fail(&cmd, coll, &st);
        } else {
            printf("dropped collection %s (seq %" PRIu64 ")\n", coll, resp->seq);
            vsc_free(resp);
        }
    }
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}

/* ===== describe / stats ===== */

/* One collection as a JSON object. */
static void json_info(cli_json *j, const Vecscan__V1__CollectionInfo *in)
{
    cli_json_begin_object(j);
    cli_json_kv_string(j, "name", in->name);
    cli_json_kv_u64(j, "rows", in->rows);
    cli_json_kv_u64(j, "bytes", in->bytes);
    cli_json_kv_u64(j, "applied_seq", in->applied_seq);
    cli_json_key(j, "vectors");
    cli_json_begin_array(j);
    for (size_t i = 0; in->schema && i < in->schema->n_vectors; i++) {
        const Vecscan__V1__VectorField *f = in->schema->vectors[i];
        cli_json_begin_object(j);
        cli_json_kv_string(j, "name", f->name);
        cli_json_kv_u64(j, "dim", f->dim);
        cli_json_kv_string(j, "metric", cli_metric_name(f->metric));
        cli_json_kv_string(j, "storage", cli_storage_name(f->storage));
        cli_json_kv_bool(j, "rerank", f->rerank);
        for (size_t k = 0; k < in->n_fields; k++)
            if (strcmp(in->fields[k]->name, f->name) == 0) {
                cli_json_kv_u64(j, "rows", in->fields[k]->rows);
                cli_json_kv_u64(j, "bytes", in->fields[k]->bytes);
            }
        cli_json_end_object(j);
    }
    cli_json_end_array(j);
    cli_json_key(j, "attributes");
    cli_json_begin_array(j);
    for (size_t i = 0; in->schema && i < in->schema->n_attributes; i++) {
        cli_json_begin_object(j);
        cli_json_kv_string(j, "name", in->schema->attributes[i]->name);
        cli_json_kv_string(j, "type", in->schema->attributes[i]->type == VECSCAN__V1__ATTRIBUTE_TYPE__ATTRIBUTE_INT ? "int" : "tag");
        cli_json_end_object(j);
    }
    cli_json_end_array(j);
    cli_json_end_object(j);
}

/* One collection as text. */
static void text_info(const Vecscan__V1__CollectionInfo *in)
{
    printf("collection %s: %" PRIu64 " rows, %" PRIu64 " bytes, applied seq %" PRIu64 "\n", in->name,
           in->rows, in->bytes, in->applied_seq);
    for (size_t i = 0; in->schema && i < in->schema->n_vectors; i++) {
        const Vecscan__V1__VectorField *f = in->schema->vectors[i];
        uint64_t rows = 0, bytes = 0;
        for (size_t k = 0; k < in->n_fields; k++)
            if (strcmp(in->fields[k]->name, f->name) == 0) {
                rows = in->fields[k]->rows;
                bytes = in->fields[k]->bytes;
            }
        printf("  vector %s: dim %u, %s, %s%s, %" PRIu64 " rows, %" PRIu64 " bytes\n", f->name, f->dim,
               cli_metric_name(f->metric), cli_storage_name(f->storage), f->rerank ? " + rerank" : "", rows,
               bytes);
    }
    for (size_t i = 0; in->schema && i < in->schema->n_attributes; i++)
        printf("  attribute %s: %s\n", in->schema->attributes[i]->name,
               in->schema->attributes[i]->type == VECSCAN__V1__ATTRIBUTE_TYPE__ATTRIBUTE_INT ? "int" : "tag");
}

int cmd_describe(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL;
    bool json = false;
    cli_opt opts[] = {{"collection", CLI_STR, &coll, "NAME", "the collection"},
                      {"json", CLI_FLAG, &json, NULL, "print one JSON object"}};
    cli_cmd cmd = {"describe", "--collection NAME [--json]", "Shows a collection's schema, rows and bytes.",
                   opts, NOPTS(opts), {0}};
    int rc = cli_start(&cmd, argc, argv, pre);
    if (rc == 0) rc = cli_require(&cmd, coll, "collection");
    vsc_conn *c = NULL;
    Vecscan__V1__DescribeCollectionResponse *d = NULL;
    if (rc == 0) rc = cli_connect(&cmd, &c);
    if (rc == 0) rc = cli_describe(&cmd, c, coll, &d);
    if (rc == 0) {
        if (json) {
            cli_json j;
            cli_json_init(&j, stdout);
            json_info(&j, d->info);
        } else {
            text_info(d->info);
        }
    }
    vsc_free(d);
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}

int cmd_list(int argc, char **argv, const cli_common *pre)
{
    bool json = false;
    cli_opt opts[] = {{"json", CLI_FLAG, &json, NULL, "print one JSON object"}};
    cli_cmd cmd = {"list", "[--json]", "Lists the collections, one name a line.", opts, NOPTS(opts), {0}};
    int rc = cli_start(&cmd, argc, argv, pre);
    vsc_conn *c = NULL;
    if (rc == 0) rc = cli_connect(&cmd, &c);
    if (rc == 0) {
        Vecscan__V1__ListCollectionsRequest req = VECSCAN__V1__LIST_COLLECTIONS_REQUEST__INIT;
        Vecscan__V1__ListCollectionsResponse *resp;
        vsc_status st;
        if (vsc_list_collections(c, &req, &resp, &st) != VSC_OK) {
            rc = rpc_fail(&cmd, "list", &st);
        } else {
            if (json) {
                cli_json j;
                cli_json_init(&j, stdout);
                cli_json_begin_object(&j);
                cli_json_key(&j, "collections");
                cli_json_begin_array(&j);
                for (size_t i = 0; i < resp->n_names; i++) cli_json_string(&j, resp->names[i]);
                cli_json_end_array(&j);
                cli_json_end_object(&j);
            } else {
                for (size_t i = 0; i < resp->n_names; i++) printf("%s\n", resp->names[i]);
            }
            vsc_free(resp);
        }
    }
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}

int cmd_stats(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL;
    bool json = false;
    cli_opt opts[] = {{"collection", CLI_STR, &coll, "NAME", "only this collection (default: all)"},
                      {"json", CLI_FLAG, &json, NULL, "print one JSON object"}};
    cli_cmd cmd = {"stats", "[--collection NAME] [--json]",
                   "Shows the daemon's state: device, applied and acknowledged seqs, rows and bytes per collection.",
                   opts, NOPTS(opts), {0}};
    int rc = cli_start(&cmd, argc, argv, pre);
    vsc_conn *c = NULL;
    if (rc == 0) rc = cli_connect(&cmd, &c);
    if (rc == 0) {
        Vecscan__V1__StatsRequest req = VECSCAN__V1__STATS_REQUEST__INIT;
        req.collection = (char *)(coll ? coll : "");
        Vecscan__V1__StatsResponse *r;
        vsc_status st;
        if (vsc_stats(c, &req, &r, &st) != VSC_OK) {
            rc = rpc_fail(&cmd, "stats", &st);
        } else {
            if (json) {
                cli_json j;
                cli_json_init(&j, stdout);
                cli_json_begin_object(&j);
                cli_json_kv_string(&j, "device", r->device);
                cli_json_kv_u64(&j, "applied_seq", r->applied_seq);
                cli_json_kv_u64(&j, "last_acked_seq", r->last_acked_seq);
                cli_json_kv_bool(&j, "read_only", r->read_only);
                cli_json_kv_u64(&j, "uptime_s", r->uptime_s);
                cli_json_key(&j, "collections");
                cli_json_begin_array(&j);
                for (size_t i = 0; i < r->n_collections; i++) json_info(&j, r->collections[i]);
                cli_json_end_array(&j);
                cli_json_end_object(&j);
            } else {
                printf("device %s, applied seq %" PRIu64 ", last acked seq %" PRIu64 ", %s, up %" PRIu64 " s\n",
                       r->device, r->applied_seq, r->last_acked_seq, r->read_only ? "READ-ONLY" : "writable",
                       r->uptime_s);
                for (size_t i = 0; i < r->n_collections; i++) text_info(r->collections[i]);
            }
            vsc_free(r);
        }
    }
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}

/* ===== get / delete ===== */

/* Writes an item's attributes as "name=v1,v2" words (text) or a JSON object. */
static void item_attrs(cli_json *j, const Vecscan__V1__Item *it)
{
    for (size_t a = 0; a < it->n_attributes; a++) {
        const Vecscan__V1__Attribute *at = it->attributes[a];
        if (j) cli_json_key(j, at->name);
        if (at->value_case == VECSCAN__V1__ATTRIBUTE__VALUE_INT_VALUE) {
            if (j) cli_json_i64(j, at->int_value);
            else printf(" %s=%" PRId64, at->name, at->int_value);
        } else if (at->value_case == VECSCAN__V1__ATTRIBUTE__VALUE_TAGS && at->tags) {
            if (j) cli_json_begin_array(j);
            else printf(" %s=", at->name);
            for (size_t t = 0; t < at->tags->n_values; t++) {
                if (j) cli_json_string(j, at->tags->values[t]);
                else printf("%s%s", t ? "," : "", at->tags->values[t]);
            }
            if (j) cli_json_end_array(j);
        } else if (j) {
            cli_json_string(j, "");
        }
    }
}

/* The start that get and delete share: options, --collection and --ids required, the ids parsed,
 * a connection. Returns 0 to go on, else what the command returns. */
static int start_by_ids(cli_cmd *cmd, int argc, char **argv, const cli_common *pre,
                        const char **coll, const char **ids_s, uint64_t **ids, size_t *n,
                        vsc_conn **c)
{
    int rc = cli_start(cmd, argc, argv, pre);
    if (rc == 0) rc = cli_require(cmd, *coll, "collection");
    if (rc == 0) rc = cli_require(cmd, *ids_s, "ids");
    if (rc == 0 && cli_parse_ids(*ids_s, ids, n) != 0)
        rc = cli_fail(cmd->name, CLI_EXIT_USAGE, "--ids wants comma-separated non-negative integers, got '%s'", *ids_s);
    if (rc == 0) rc = cli_connect(cmd, c);
    return rc;
}

int cmd_get(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL, *ids_s = NULL;
    bool json = false, vectors = false;
    uint64_t min_seq = 0;
    cli_opt opts[] = {{"collection", CLI_STR, &coll, "NAME", "the collection"},
                      {"ids", CLI_STR, &ids_s, "1,2,3", "the ids to fetch"},
                      {"vectors", CLI_FLAG, &vectors, NULL, "print the vectors too (as they were given)"},
                      {"min-seq", CLI_U64, &min_seq, "SEQ", "wait until the writes up to SEQ are visible"},
                      {"json", CLI_FLAG, &json, NULL, "print one JSON object"}};
    cli_cmd cmd = {"get", "--collection NAME --ids 1,2,3 [--vectors] [--json]",
                   "Fetches items by id: one line per item found (id, attributes), then the missing ids.",
                   opts, NOPTS(opts), {0}};
    uint64_t *ids = NULL;
    size_t n = 0;
    vsc_conn *c = NULL;
    int rc = start_by_ids(&cmd, argc, argv, pre, &coll, &ids_s, &ids, &n, &c);
    if (rc == 0) {
        Vecscan__V1__GetRequest req = VECSCAN__V1__GET_REQUEST__INIT;
        req.collection = (char *)coll;
        req.ids = ids;
        req.n_ids = n;
        req.with_vectors = vectors;
        req.min_seq = min_seq;
        Vecscan__V1__GetResponse *r;
        vsc_status st;
        if (vsc_get(c, &req, &r, &st) != VSC_OK) {
            rc = rpc_fail(&cmd, coll, &st);
        } else {
            cli_json j = {0};
            cli_json *jp = json ? &j : NULL;
            if (json) {
                cli_json_init(&j, stdout);
                cli_json_begin_object(&j);
                cli_json_key(&j, "items");
                cli_json_begin_array(&j);
            }
            for (size_t i = 0; i < r->n_items; i++) {
                const Vecscan__V1__Item *it = r->items[i];
                if (json) {
                    cli_json_begin_object(&j);
                    cli_json_kv_u64(&j, "id", it->id);
                    cli_json_key(&j, "attributes");
                    cli_json_begin_object(&j);
                    item_attrs(jp, it);
                    cli_json_end_object(&j);
                } else {
                    printf("%" PRIu64, it->id);
                    item_attrs(NULL, it);
                }
                if (vectors) {
                    if (json) {
                        cli_json_key(&j, "vectors");
                        cli_json_begin_object(&j);
                    }
                    for (size_t v = 0; v < it->n_vectors; v++) {
                        const Vecscan__V1__Vector *vec = it->vectors[v];
                        if (json) {
                            cli_json_key(&j, vec->field);
                            cli_json_begin_array(&j);
                        } else {
                            printf(" %s=", vec->field);
                        }
                        for (size_t x = 0; x < vec->n_values; x++) {
                            if (json) cli_json_double(&j, vec->values[x]);
                            else printf("%s%g", x ? "," : "", vec->values[x]);
                        }
                        if (json) cli_json_end_array(&j);
                    }
                    if (json) cli_json_end_object(&j);
                }
                if (json) cli_json_end_object(&j);
                else printf("\n");
            }
            if (json) {
                cli_json_end_array(&j);
                cli_json_key(&j, "missing");
                cli_json_begin_array(&j);
                for (size_t i = 0; i < r->n_missing; i++) cli_json_u64(&j, r->missing[i]);
                cli_json_end_array(&j);
                cli_json_kv_u64(&j, "applied_seq", r->applied_seq);
                cli_json_end_object(&j);
            } else if (r->n_missing) {
                printf("missing:");
                for (size_t i = 0; i < r->n_missing; i++) printf("%s%" PRIu64, i ? "," : " ", r->missing[i]);
                printf("\n");
            }
            vsc_free(r);
        }
    }
    free(ids);
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}

int cmd_delete(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL, *ids_s = NULL;
    bool json = false;
    cli_opt opts[] = {{"collection", CLI_STR, &coll, "NAME", "the collection"},
                      {"ids", CLI_STR, &ids_s, "1,2,3", "the ids to delete (an absent id succeeds)"},
                      {"json", CLI_FLAG, &json, NULL, "print one JSON object"}};
    cli_cmd cmd = {"delete", "--collection NAME --ids 1,2,3 [--json]",
                   "Deletes items by id and says which were absent.", opts, NOPTS(opts), {0}};
    uint64_t *ids = NULL;
    size_t n = 0;
    vsc_conn *c = NULL;
    int rc = start_by_ids(&cmd, argc, argv, pre, &coll, &ids_s, &ids, &n, &c);
    if (rc == 0) {
        Vecscan__V1__DeleteRequest req = VECSCAN__V1__DELETE_REQUEST__INIT;
        req.collection = (char *)coll;
        req.ids = ids;
        req.n_ids = n;
        Vecscan__V1__DeleteResponse *r;
        vsc_status st;
        if (vsc_delete(c, &req, &r, &st) != VSC_OK) {
            rc = rpc_fail(&cmd, coll, &st);
        } else {
            if (json) {
                cli_json j;
                cli_json_init(&j, stdout);
                cli_json_begin_object(&j);
                cli_json_kv_u64(&j, "deleted", n - r->n_missing);
                cli_json_key(&j, "missing");
                cli_json_begin_array(&j);
                for (size_t i = 0; i < r->n_missing; i++) cli_json_u64(&j, r->missing[i]);
                cli_json_end_array(&j);
                cli_json_kv_u64(&j, "seq", r->seq);
                cli_json_end_object(&j);
            } else {
                printf("deleted %zu of %zu ids (seq %" PRIu64 ")", n - r->n_missing, n, r->seq);
                if (r->n_missing) {
                    printf("; absent:");
                    for (size_t i = 0; i < r->n_missing; i++) printf("%s%" PRIu64, i ? "," : " ", r->missing[i]);
                }
                printf("\n");
            }
            vsc_free(r);
        }
    }
    free(ids);
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}
