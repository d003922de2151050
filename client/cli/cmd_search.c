/*
 * cmd_search.c: `vecscan search`, one vector from the command line or rows of a query file.
 *
 * --vector may repeat, each with its own --field (and --weight): that is one query of several
 * terms combined by --combine. A query file gives one single-term query per row, sent in
 * SearchBatch calls of up to 256 queries.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define NOPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define BATCH 256

/* Prints one result (text: "query rank id score" lines; JSON: an object in the results array). */
static void print_result(cli_json *j, uint64_t qi, const Vecscan__V1__SearchResult *res)
{
    if (j) {
        cli_json_begin_object(j);
        cli_json_kv_u64(j, "query", qi);
        cli_json_key(j, "hits");
        cli_json_begin_array(j);
    }
    for (size_t h = 0; res && h < res->n_hits; h++) {
        const Vecscan__V1__Hit *hit = res->hits[h];
        if (j) {
            cli_json_begin_object(j);
            cli_json_kv_u64(j, "id", hit->id);
            cli_json_kv_double(j, "score", hit->score);
            if (hit->n_attributes) {
                cli_json_key(j, "attributes");
                cli_json_begin_object(j);
                for (size_t a = 0; a < hit->n_attributes; a++) {
                    const Vecscan__V1__Attribute *at = hit->attributes[a];
                    cli_json_key(j, at->name);
                    if (at->value_case == VECSCAN__V1__ATTRIBUTE__VALUE_INT_VALUE) {
                        cli_json_i64(j, at->int_value);
                    } else {
                        cli_json_begin_array(j);
                        for (size_t t = 0; at->tags && t < at->tags->n_values; t++) cli_json_string(j, at->tags->values[t]);
                        cli_json_end_array(j);
                    }
                }
                cli_json_end_object(j);
            }
            cli_json_end_object(j);
        } else {
            printf("%" PRIu64 "\t%zu\t%" PRIu64 "\t%.6g", qi, h + 1, hit->id, hit->score);
            for (size_t a = 0; a < hit->n_attributes; a++) {
                const Vecscan__V1__Attribute *at = hit->attributes[a];
                if (at->value_case == VECSCAN__V1__ATTRIBUTE__VALUE_INT_VALUE) {
                    printf("\t%s=%" PRId64, at->name, at->int_value);
                } else {
                    printf("\t%s=", at->name);
                    for (size_t t = 0; at->tags && t < at->tags->n_values; t++)
                        printf("%s%s", t ? "," : "", at->tags->values[t]);
                }
            }
            printf("\n");
        }
    }
    if (j) {
        cli_json_end_array(j);
        cli_json_end_object(j);
    }
}

int cmd_search(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL, *queries = NULL, *rows_s = NULL, *filter = NULL, *combine_s = NULL;
    cli_strlist vectors = {0}, fields = {0}, weights = {0};
    uint64_t k = 10, rerank = 0, min_seq = 0;
    bool json = false, attrs = false;
    cli_opt opts[] = {
        {"collection", CLI_STR, &coll, "NAME", "the collection"},
        {"vector", CLI_STRLIST, &vectors, "v1,v2,...", "a query vector (repeat, each with its --field, for several terms)"},
        {"queries", CLI_STR, &queries, "FILE", "a dataset file of query vectors, one query per row"},
        {"rows", CLI_STR, &rows_s, "A:B", "only rows A..B-1 of --queries"},
        {"field", CLI_STRLIST, &fields, "NAME", "the vector field (default: the collection's only one)"},
        {"weight", CLI_STRLIST, &weights, "W", "the weight of each --vector's term (default 1)"},
        {"k", CLI_U64, &k, "K", "results per query (default 10)"},
        {"filter", CLI_STR, &filter, "EXPR", "a filter, e.g. \"digit IN (1, 7) AND ink > 100\""},
        {"combine", CLI_STR, &combine_s, "MODE", "sum, max or interleave: how several terms combine (default sum)"},
        {"rerank", CLI_U64, &rerank, "R", "take k x R candidates and rescore them exactly (fields with rerank)"},
        {"attributes", CLI_FLAG, &attrs, NULL, "return each hit's attributes"},
        {"min-seq", CLI_U64, &min_seq, "SEQ", "wait until the writes up to SEQ are visible"},
        {"json", CLI_FLAG, &json, NULL, "print one JSON object"},
    };
    cli_cmd cmd = {"search",
                   "--collection NAME (--vector \"v1,v2,...\" | --queries FILE [--rows A:B]) [--field NAME] [--k K]\n"
                   "       [--filter EXPR] [--combine sum|max|interleave] [--rerank R] [--json]",
                   "Searches a collection. Text output: one line per hit, \"query<TAB>rank<TAB>id<TAB>score\".",
                   opts, NOPTS(opts), {0}};
    int rc = cli_start(&cmd, argc, argv, pre);
    if (rc == 0) rc = cli_require(&cmd, coll, "collection");
    if (rc == 0 && (vectors.n > 0) == (queries != NULL))
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "give either --vector or --queries");
    if (rc == 0 && vectors.n > 0 && fields.n > 1 && fields.n != vectors.n)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "%d --vector but %d --field: give one field per vector", vectors.n, fields.n);
    if (rc == 0 && queries && fields.n > 1) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--queries takes one --field");
    if (rc == 0 && weights.n && weights.n != vectors.n)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "give one --weight per --vector");
    if (rc == 0 && (k < 1 || k > 10000)) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--k must be 1..10000");
    if (rc == 0 && rows_s && !queries) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--rows goes with --queries");
    uint64_t ra = 0, rb = UINT64_MAX;
    if (rc == 0 && rows_s && cli_parse_range(rows_s, &ra, &rb) != 0)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--rows wants A:B with A < B, got '%s'", rows_s);
    Vecscan__V1__Combine combine = VECSCAN__V1__COMBINE__COMBINE_SUM;
    if (rc == 0 && combine_s && cli_parse_combine(combine_s, &combine) != 0)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--combine wants sum, max or interleave, got '%s'", combine_s);

    vsc_conn *c = NULL;
    Vecscan__V1__DescribeCollectionResponse *d = NULL;
    float *qv = NULL;
    uint64_t nq = 0;
    uint32_t qdim = 0;
    if (rc == 0) rc = cli_connect(&cmd, &c);
    if (rc == 0) rc = cli_describe(&cmd, c, coll, &d);
    cli_json j, *jp = NULL;
    vsc_status st;
    if (rc == 0 && vectors.n > 0) {
        /* one query of vectors.n terms */
        int nt = vectors.n;
        Vecscan__V1__Term *terms = calloc((size_t)nt, sizeof *terms), **tp = calloc((size_t)nt, sizeof *tp);
        Vecscan__V1__Vector *vs = calloc((size_t)nt, sizeof *vs), **vp = calloc((size_t)nt, sizeof *vp);
        float **vals = calloc((size_t)nt, sizeof *vals);
        if (!terms || !tp || !vs || !vp || !vals) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
        for (int i = 0; rc == 0 && i < nt; i++) {
            const Vecscan__V1__VectorField *f =
                cli_pick_field(&cmd, d->info->schema, fields.n ? fields.v[fields.n == 1 ? 0 : i] : NULL);
            size_t n;
            if (!f) {
                rc = CLI_EXIT_USAGE;
                break;
            }
            if (cli_parse_floats(vectors.v[i], &vals[i], &n) != 0) {
                rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--vector wants comma-separated finite numbers");
                break;
            }
            if (n != f->dim) {
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "--vector has %zu values but field '%s' has dim %u", n, f->name,
                              f->dim);
                break;
            }
            vecscan__v1__vector__init(&vs[i]);
            vs[i].n_values = n;
            vs[i].values = vals[i];
            vp[i] = &vs[i];
            vecscan__v1__term__init(&terms[i]);
            terms[i].field = f->name;
            terms[i].n_vectors = 1;
            terms[i].vectors = &vp[i];
            if (weights.n) {
                char *end;
                terms[i].weight = strtof(weights.v[i], &end);
                if (*end || !(terms[i].weight > 0))
                    rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--weight wants a number > 0, got '%s'", weights.v[i]);
            }
            tp[i] = &terms[i];
        }
        if (rc == 0) {
            Vecscan__V1__Query q = VECSCAN__V1__QUERY__INIT;
            q.n_terms = (size_t)nt;
            q.terms = tp;
            q.combine = combine;
            q.filter = (char *)(filter ? filter : "");
            q.k = (uint32_t)k;
            q.rerank_factor = (uint32_t)rerank;
            q.with_attributes = attrs;
            Vecscan__V1__SearchRequest req = VECSCAN__V1__SEARCH_REQUEST__INIT;
            req.collection = (char *)coll;
            req.query = &q;
            req.min_seq = min_seq;
            Vecscan__V1__SearchResponse *r;
            if (vsc_search(c, &req, &r, &st) != VSC_OK) {
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s: %s", vsc_code_name(st.code), st.message);
            } else {
                if (json) {
                    cli_json_init(&j, stdout);
                    jp = &j;
                    cli_json_begin_object(&j);
                    cli_json_key(&j, "results");
                    cli_json_begin_array(&j);
                }
                print_result(jp, 0, r->result);
                if (json) {
                    cli_json_end_array(&j);
                    cli_json_kv_u64(&j, "applied_seq", r->applied_seq);
                    cli_json_end_object(&j);
                }
                vsc_free(r);
            }
        }
        for (int i = 0; vals && i < nt; i++) free(vals[i]);
        free(vals);
        free(terms);
        free(tp);
        free(vs);
        free(vp);
    } else if (rc == 0) {
        const Vecscan__V1__VectorField *f = cli_pick_field(&cmd, d->info->schema, fields.n ? fields.v[0] : NULL);
        if (!f) rc = CLI_EXIT_USAGE;
        if (rc == 0) rc = cli_load_rows(cmd.name, queries, ra, rb, &qv, &nq, &qdim);
        if (rc == 0 && qdim != f->dim)
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s has dim %u but field '%s' of collection '%s' has dim %u", queries,
                          qdim, f->name, coll, f->dim);
        cli_qopts qo = {.collection = coll, .field = f ? f->name : NULL, .k = (uint32_t)k, .filter = filter,
                        .combine = combine, .rerank = (uint32_t)rerank, .with_attributes = attrs, .min_seq = min_seq};
        uint64_t applied = 0;
        char *jbuf = NULL;
        size_t jlen = 0;
        FILE *jf = NULL; /* JSON is held back until every batch succeeded: one object or none */
        if (rc == 0 && json && !(jf = open_memstream(&jbuf, &jlen))) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
        if (rc == 0 && json) {
            cli_json_init(&j, jf);
            jp = &j;
            cli_json_begin_object(&j);
            cli_json_key(&j, "results");
            cli_json_begin_array(&j);
        }
        for (uint64_t at = 0; rc == 0 && at < nq; at += BATCH) {
            uint32_t n = (uint32_t)(nq - at < BATCH ? nq - at : BATCH);
            Vecscan__V1__Query q[BATCH], *qp[BATCH];
            Vecscan__V1__Term t[BATCH], *tp[BATCH];
            Vecscan__V1__Vector v[BATCH], *vp[BATCH];
            for (uint32_t i = 0; i < n; i++) {
                cli_fill_query(&q[i], &t[i], &tp[i], &v[i], &vp[i], &qo, qv + (at + i) * qdim, qdim, NULL);
                qp[i] = &q[i];
            }
            Vecscan__V1__SearchBatchRequest req = VECSCAN__V1__SEARCH_BATCH_REQUEST__INIT;
            req.collection = (char *)coll;
            req.n_queries = n;
            req.queries = qp;
            req.min_seq = min_seq;
            Vecscan__V1__SearchBatchResponse *r;
            if (vsc_search_batch(c, &req, &r, &st) != VSC_OK) {
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s: %s", vsc_code_name(st.code), st.message);
                break;
            }
            for (size_t i = 0; i < r->n_results; i++) print_result(jp, ra + at + i, r->results[i]);
            applied = r->applied_seq;
            vsc_free(r);
        }
        if (jf) {
            if (rc == 0) {
                cli_json_end_array(&j);
                cli_json_kv_u64(&j, "applied_seq", applied);
                cli_json_end_object(&j);
            }
            fclose(jf);
            if (rc == 0) fwrite(jbuf, 1, jlen, stdout);
            free(jbuf);
        }
    }
    free(qv);
    vsc_free(d);
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}
