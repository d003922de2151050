/*
 * cmd_load.c: `vecscan load`, streaming dataset files and an attributes TSV into a collection
 * through StreamUpdates.
 *
 * Row i of every --vectors file and of the TSV is one item; its id is the TSV's `id` cell when the
 * TSV has that column, else i + --id-offset. The files are read in chunks, each row becomes one
 * Mutation, and vsc_stream_send holds the loop back whenever the daemon's flow-control window is
 * shut, so memory stays bounded whatever the file's size. Acks are drained as they come; the
 * command returns only when every ack is in and the daemon's applied_seq has reached the last one
 * (a Get with min_seq), so a search right after it sees every row.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "tsv.h"

#define NOPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define CHUNK_ROWS 256
#define MAX_TAGS 1024

/* One --vectors file. */
typedef struct vfile {
    const char *path;
    const Vecscan__V1__VectorField *field;
    vs_dataset *ds;
    float *buf; /* CHUNK_ROWS x dim */
    uint64_t buf_rows, buf_at;
} vfile;

/* One TSV column. */
typedef struct acol {
    const char *name;
    bool is_id, is_int;
} acol;

typedef struct load_state {
    const cli_cmd *cmd;
    uint64_t sent, acked, failed, last_seq, first_fail_row;
    char first_fail[VSC_MSG_LEN];
} load_state;

/* Takes one ack. */
static void take_ack(load_state *ls, const Vecscan__V1__MutationAck *a)
{
    ls->acked++;
    if (a->code != 0) {
        if (ls->failed++ == 0) {
            ls->first_fail_row = a->tag;
            snprintf(ls->first_fail, sizeof ls->first_fail, "%s: %s", vsc_code_name(a->code), a->message);
        }
    } else if (a->seq > ls->last_seq) {
        ls->last_seq = a->seq;
    }
}

/* Drains the acks that have arrived (wait_ms: how long to wait for the first). */
static int drain_acks(load_state *ls, vsc_stream *s, int wait_ms, vsc_status *st)
{
    for (;;) {
        ProtobufCMessage *m;
        int rc = vsc_stream_recv(s, &m, wait_ms, st);
        if (rc != VSC_OK) return rc;
        if (!m) return VSC_OK;
        take_ack(ls, (Vecscan__V1__MutationAck *)m);
        vsc_free(m);
        wait_ms = 0;
    }
}

/* Splits [FIELD=]FILE. */
static void split_spec(const char *spec, char *field, size_t cap, const char **path)
{
    const char *eq = strchr(spec, '=');
    field[0] = 0;
    *path = spec;
    if (!eq || (size_t)(eq - spec) >= cap || eq == spec) return;
    for (const char *p = spec; p < eq; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') return;
    memcpy(field, spec, (size_t)(eq - spec));
    field[eq - spec] = 0;
    *path = eq + 1;
}

/* Waits until the daemon's applied_seq reaches seq (Get with min_seq, retried while the daemon's
 * own bounded wait runs out). */
static int wait_visible(const cli_cmd *cmd, vsc_conn *c, const char *coll, uint64_t seq, double limit_s)
{
    double end = cli_now() + limit_s;
    uint64_t id = 0;
    for (;;) {
        Vecscan__V1__GetRequest req = VECSCAN__V1__GET_REQUEST__INIT;
        req.collection = (char *)coll;
        req.ids = &id;
        req.n_ids = 1;
        req.min_seq = seq;
        Vecscan__V1__GetResponse *r;
        vsc_status st;
        int rc = vsc_get(c, &req, &r, &st);
        if (rc == VSC_OK) {
            vsc_free(r);
            return 0;
        }
        if ((rc != VSC_DEADLINE_EXCEEDED && rc != VSC_UNAVAILABLE) || !vsc_conn_ok(c) || cli_now() > end)
            return cli_fail(cmd->name, CLI_EXIT_FAIL, "waiting for seq %" PRIu64 " to be applied: %s: %s", seq,
                            vsc_code_name(st.code), st.message);
    }
}

int cmd_load(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL, *attrs_path = NULL;
    cli_strlist specs = {0};
    uint64_t id_offset = 0, limit = 0;
    bool patch = false, json = false;
    cli_opt opts[] = {
        {"collection", CLI_STR, &coll, "NAME", "the collection to load into"},
        {"vectors", CLI_STRLIST, &specs, "[FIELD=]FILE",
         "a dataset file (fvecs, bvecs, fbin, u8bin, i8bin, npy, IDX, .gz) for vector field FIELD; "
         "repeat for several fields; FIELD may be left out when the collection has one"},
        {"attrs", CLI_STR, &attrs_path, "FILE.tsv",
         "attributes: a TSV with a header; an 'id' column gives the ids, the other columns are attribute "
         "names (a tag cell holds comma-separated values; an empty cell leaves the attribute out)"},
        {"id-offset", CLI_U64, &id_offset, "N", "ids are row + N when the TSV has no id column (default 0)"},
        {"limit", CLI_U64, &limit, "N", "load only the first N rows"},
        {"patch", CLI_FLAG, &patch, NULL,
         "send patches: the given fields replace those of the stored items, the rest stay"},
        {"json", CLI_FLAG, &json, NULL, "print one JSON object at the end"},
    };
    cli_cmd cmd = {"load", "--collection NAME --vectors [FIELD=]FILE ... [--attrs FILE.tsv] [--id-offset N] [--patch]",
                   "Streams items through StreamUpdates (flow-controlled), with a progress bar on a terminal,\n"
                   "and returns once every write is acknowledged and visible to searches. Prints the rows\n"
                   "loaded and the last acknowledged seq.",
                   opts, NOPTS(opts), {0}};
    int rc = cli_start(&cmd, argc, argv, pre);
    if (rc == 0) rc = cli_require(&cmd, coll, "collection");
    if (rc == 0 && specs.n == 0 && !attrs_path)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "give --vectors FILE and/or --attrs FILE.tsv");
    if (rc == 0 && specs.n > 8) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "at most 8 --vectors files");

    vsc_conn *c = NULL;
    Vecscan__V1__DescribeCollectionResponse *d = NULL;
    vfile vf[8];
    memset(vf, 0, sizeof vf);
    int nvf = specs.n;
    vs_tsv *tsv = NULL;
    acol *cols = NULL;
    uint32_t ncols = 0;
    char *tagbuf = NULL;
    vsc_stream *s = NULL;
    if (rc == 0) rc = cli_connect(&cmd, &c);
    if (rc == 0) rc = cli_describe(&cmd, c, coll, &d);
    const Vecscan__V1__Schema *schema = rc == 0 ? d->info->schema : NULL;
    uint64_t total = 0;
    vs_status vst;
    /* open the vector files and check them against the schema */
    for (int i = 0; rc == 0 && i < nvf; i++) {
        char fname[80];
        split_spec(specs.v[i], fname, sizeof fname, &vf[i].path);
        vf[i].field = cli_pick_field(&cmd, schema, fname[0] ? fname : NULL);
        if (!vf[i].field) {
            rc = CLI_EXIT_USAGE;
            break;
        }
        for (int k = 0; k < i; k++)
            if (vf[k].field == vf[i].field)
                rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "two --vectors files for field '%s'", vf[i].field->name);
        if (rc) break;
        if (vs_dataset_open(vf[i].path, &vf[i].ds, &vst) != VS_OK) {
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
            break;
        }
        uint32_t dim = vs_dataset_dim(vf[i].ds);
        if (dim != vf[i].field->dim) {
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s has dim %u but field '%s' of collection '%s' has dim %u",
                          vf[i].path, dim, vf[i].field->name, coll, vf[i].field->dim);
            break;
        }
        uint64_t rows = vs_dataset_rows(vf[i].ds);
        if (i > 0 && rows != total) {
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s has %" PRIu64 " rows but %s has %" PRIu64, vf[i].path, rows,
                          vf[0].path, total);
            break;
        }
        total = rows;
        vf[i].buf = malloc((size_t)CHUNK_ROWS * dim * sizeof(float));
        if (!vf[i].buf) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
    }
    /* open the TSV and map its columns */
    if (rc == 0 && attrs_path) {
        if (vs_tsv_open(attrs_path, &tsv, &vst) != VS_OK) {
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
        } else {
            ncols = vs_tsv_n_cols(tsv);
            cols = calloc(ncols, sizeof *cols);
            tagbuf = malloc(VS_TSV_MAX_LINE + 1);
            if (!cols || !tagbuf) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
            for (uint32_t k = 0; rc == 0 && k < ncols; k++) {
                cols[k].name = vs_tsv_col_name(tsv, k);
                if (strcmp(cols[k].name, "id") == 0) {
                    cols[k].is_id = true;
                    continue;
                }
                size_t a = 0;
                while (a < schema->n_attributes && strcmp(schema->attributes[a]->name, cols[k].name) != 0) a++;
                if (a == schema->n_attributes)
                    rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s: column '%s' is not an attribute of collection '%s'",
                                  attrs_path, cols[k].name, coll);
                else
                    cols[k].is_int = schema->attributes[a]->type == VECSCAN__V1__ATTRIBUTE_TYPE__ATTRIBUTE_INT;
            }
        }
    }
    if (rc == 0 && limit && (nvf == 0 || limit < total)) total = nvf ? limit : 0;
    if (rc == 0 && vsc_stream_open(c, "/vecscan.v1.VecScan/StreamUpdates", &vecscan__v1__mutation_ack__descriptor, 0,
                                   &s, &(vsc_status){0}) != VSC_OK)
        rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "cannot open StreamUpdates");

    load_state ls = {.cmd = &cmd};
    cli_progress pg;
    double t0 = cli_now();
    if (rc == 0) cli_progress_start(&pg, "load", total, stderr);
    /* the per-row message, reused */
    Vecscan__V1__Vector vec[8], *vecp[8];
    Vecscan__V1__Attribute at[64], *atp[64];
    Vecscan__V1__Tags tags[64];
    char *tagv[MAX_TAGS];
    Vecscan__V1__Item item = VECSCAN__V1__ITEM__INIT;
    Vecscan__V1__Mutation mut = VECSCAN__V1__MUTATION__INIT;
    mut.collection = (char *)coll;
    mut.op = patch ? VECSCAN__V1__OP__OP_PATCH : VECSCAN__V1__OP__OP_UPSERT;
    mut.item = &item;
    if (rc == 0 && ncols > 64) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s: more than 64 columns", attrs_path);
    vsc_status st = {0};
    for (uint64_t row = 0; rc == 0; row++) {
        if (limit && row >= limit) break;
        if (nvf && row >= total) break;
        /* vectors */
        for (int i = 0; i < nvf && rc == 0; i++) {
            if (vf[i].buf_at == vf[i].buf_rows) {
                uint64_t want = total - row < CHUNK_ROWS ? total - row : CHUNK_ROWS;
                if (vs_dataset_read_f32(vf[i].ds, want, vf[i].buf, &vf[i].buf_rows, &vst) != VS_OK)
                    rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
                else if (vf[i].buf_rows == 0)
                    rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s: ends early at row %" PRIu64, vf[i].path, row);
                vf[i].buf_at = 0;
            }
            vecscan__v1__vector__init(&vec[i]);
            vec[i].field = vf[i].field->name;
            vec[i].n_values = vf[i].field->dim;
            vec[i].values = vf[i].buf + vf[i].buf_at * vf[i].field->dim;
            vf[i].buf_at++;
            vecp[i] = &vec[i];
        }
        if (rc) break;
        item.n_vectors = (size_t)nvf;
        item.vectors = vecp;
        item.id = row + id_offset;
        item.n_attributes = 0;
        item.attributes = atp;
        /* attributes */
        if (tsv) {
            const char *const *cells;
            if (vs_tsv_next(tsv, &cells, &vst) != VS_OK) {
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
                break;
            }
            if (!cells) {
                if (nvf) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s has %" PRIu64 " rows but the vector files have %" PRIu64,
                                       attrs_path, row, total);
                break;
            }
            size_t tb = 0, nt = 0;
            for (uint32_t k = 0; k < ncols && rc == 0; k++) {
                const char *cell = cells[k];
                if (cols[k].is_id) {
                    int64_t idv;
                    if (cli_parse_i64(cell, &idv) != 0 || idv < 0)
                        rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s line %" PRIu64 ": id '%s' is not a non-negative integer",
                                      attrs_path, vs_tsv_line(tsv), cell);
                    item.id = (uint64_t)idv;
                    continue;
                }
                if (!cell[0]) continue;
                Vecscan__V1__Attribute *a = &at[item.n_attributes];
                vecscan__v1__attribute__init(a);
                a->name = (char *)cols[k].name;
                if (cols[k].is_int) {
                    if (cli_parse_i64(cell, &a->int_value) != 0) {
                        rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s line %" PRIu64 ": %s '%s' is not an integer",
                                      attrs_path, vs_tsv_line(tsv), cols[k].name, cell);
                        break;
                    }
                    a->value_case = VECSCAN__V1__ATTRIBUTE__VALUE_INT_VALUE;
                } else {
                    Vecscan__V1__Tags *tg = &tags[item.n_attributes];
                    vecscan__v1__tags__init(tg);
                    tg->values = tagv + nt;
                    size_t len = strlen(cell);
                    memcpy(tagbuf + tb, cell, len + 1);
                    for (char *p = tagbuf + tb, *save = NULL, *tok; (tok = strtok_r(p, ",", &save)); p = NULL) {
                        while (*tok == ' ') tok++;
                        if (!*tok) continue;
                        if (nt >= MAX_TAGS) {
                            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s line %" PRIu64 ": more than %d tag values",
                                          attrs_path, vs_tsv_line(tsv), MAX_TAGS);
                            break;
                        }
                        tagv[nt++] = tok;
                        tg->n_values++;
                    }
                    tb += len + 1;
                    a->value_case = VECSCAN__V1__ATTRIBUTE__VALUE_TAGS;
                    a->tags = tg;
                }
                atp[item.n_attributes++] = a;
            }
            if (rc) break;
        }
        mut.tag = row;
        if (vsc_stream_send(s, &mut.base, &st) != VSC_OK) {
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "streaming row %" PRIu64 ": %s: %s", row, vsc_code_name(st.code),
                          st.message);
            break;
        }
        ls.sent++;
        if ((ls.sent & 63) == 0) {
            if (drain_acks(&ls, s, 0, &st) != VSC_OK) {
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "stream: %s: %s", vsc_code_name(st.code), st.message);
                break;
            }
            cli_progress_update(&pg, ls.acked, false);
        }
    }
    if (rc == 0 && tsv && nvf) {
        const char *const *cells;
        if (!limit && vs_tsv_next(tsv, &cells, &vst) == VS_OK && cells)
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s has more rows than the vector files (%" PRIu64 ")", attrs_path,
                          total);
    }
    /* the rest of the acks, then the stream's own status */
    if (s) {
        vsc_stream_close_send(s, NULL);
        while (rc == 0 && !vsc_stream_done(s)) {
            if (drain_acks(&ls, s, 200, &st) != VSC_OK) {
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "stream: %s: %s", vsc_code_name(st.code), st.message);
                break;
            }
            cli_progress_update(&pg, ls.acked, false);
        }
        if (rc == 0) {
            if (vsc_stream_finish(s, &st) != VSC_OK)
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "stream ended with %s: %s", vsc_code_name(st.code), st.message);
        } else {
            vsc_stream_cancel(s);
        }
        s = NULL;
        cli_progress_end(&pg, ls.acked);
    }
    if (rc == 0 && ls.acked != ls.sent)
        rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%" PRIu64 " rows sent but %" PRIu64 " acknowledged", ls.sent, ls.acked);
    if (rc == 0 && ls.last_seq) rc = wait_visible(&cmd, c, coll, ls.last_seq, cmd.common.timeout_s > 0 ? cmd.common.timeout_s : 600);
    double el = cli_now() - t0;
    if (rc == 0 && ls.failed)
        rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%" PRIu64 " of %" PRIu64 " rows failed; first, row %" PRIu64 ": %s",
                      ls.failed, ls.sent, ls.first_fail_row, ls.first_fail);
    if (rc == 0) {
        if (json) {
            cli_json j;
            cli_json_init(&j, stdout);
            cli_json_begin_object(&j);
            cli_json_kv_u64(&j, "rows", ls.sent);
            cli_json_kv_u64(&j, "last_seq", ls.last_seq);
            cli_json_kv_double(&j, "seconds", el);
            cli_json_kv_double(&j, "rows_per_s", el > 0 ? (double)ls.sent / el : 0);
            cli_json_end_object(&j);
        } else {
            printf("loaded %" PRIu64 " rows into %s in %.2f s (%.0f rows/s); last acked seq %" PRIu64 "\n", ls.sent, coll,
                   el, el > 0 ? (double)ls.sent / el : 0, ls.last_seq);
        }
    }
    for (int i = 0; i < nvf; i++) {
        vs_dataset_close(vf[i].ds);
        free(vf[i].buf);
    }
    vs_tsv_close(tsv);
    free(cols);
    free(tagbuf);
    vsc_free(d);
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}
