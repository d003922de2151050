/*
 * import.c: bulk import, `vecscand import`: dataset files straight into a data dir's `items` and
 * a snapshot, for loads far too large for per-item writes.
 *
 * No engine runs: the import takes the data dir's lock itself (so no daemon may hold it), reads
 * the dataset files and the attribute TSV in chunks of chunk_rows (memory is bounded by one chunk,
 * not by the files), checks each row as a mutation would be checked, and writes each chunk as one
 * WriteBatch of items without RocksDB's WAL. Before the first chunk it commits (synced) a log
 * record IMPORT under the next seq: recovery cannot replay such a record, so if the import dies
 * half way, the next open rebuilds every collection from `items`, which then holds exactly the rows
 * written. At the end it flushes `items` to disk and writes a snapshot at that seq, so the next
 * open loads the snapshot instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "engine_internal.h"
#include "tsv.h"

/* Commits one synced batch with a log record at seq and meta last_seq = seq. */
static vs_err commit_record(vs_store *s, rocksdb_writebatch_t *wb, const Vsstore__LogRecord *rec,
                            vs_status *st)
{
    size_t sz = vsstore__log_record__get_packed_size(rec);
    uint8_t *buf = malloc(sz ? sz : 1);
    if (!buf)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    vsstore__log_record__pack(rec, buf);
    char k[8], v[8];
    vs_store_seq_key(rec->seq, k);
    rocksdb_writebatch_put_cf(wb, s->cf[VS_CF_LOG], k, 8, (const char *)buf, sz);
    vs_store_put_be64(v, rec->seq);
    rocksdb_writebatch_put_cf(wb, s->cf[VS_CF_META], "last_seq", 8, v, 8);
    char *err = NULL;
    rocksdb_write(s->db, s->wo_sync, wb, &err);
    free(buf);
    if (err)
        return vs_store_error(st, VS_ERR_IO, "writing to the store", err);
    s->last_seq = rec->seq;
    return VS_OK;
}

/* Creates the collection in the store (meta + CREATE record). */
static vs_err create_in_store(vs_store *s, vs_coll *c, vs_status *st)
{
    c->id = s->next_coll_id;
    c->created_seq = s->last_seq + 1;
    Vsstore__CollectionMeta m;
    Vsstore__VectorField vf[VS_MAX_FIELDS], *vfp[VS_MAX_FIELDS];
    uint32_t na = vs_attr_schema_count(c->attrs);
    Vsstore__AttrField *af = calloc(na ? na : 1, sizeof *af);
    Vsstore__AttrField **afp = calloc(na ? na : 1, sizeof *afp);
    uint8_t *buf = NULL;
    vs_err rc = VS_OK;
    if (!af || !afp) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    vs_coll_to_meta(c, &m, vf, vfp, af, afp);
    size_t sz = vsstore__collection_meta__get_packed_size(&m);
    if (!(buf = malloc(sz ? sz : 1))) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    vsstore__collection_meta__pack(&m, buf);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    char key[9], nid[8];
    vs_store_coll_key(c->id, key);
    rocksdb_writebatch_put_cf(wb, s->cf[VS_CF_META], key, 9, (const char *)buf, sz);
    vs_store_put_be64(nid, c->id + 1);
    rocksdb_writebatch_put_cf(wb, s->cf[VS_CF_META], "next_coll_id", 12, nid, 8);
    Vsstore__LogRecord rec = VSSTORE__LOG_RECORD__INIT;
    rec.seq = c->created_seq;
    rec.kind = VSSTORE__LOG_RECORD__KIND__CREATE;
    rec.collection_id = c->id;
    rec.collection = &m;
    rc = commit_record(s, wb, &rec, st);
    rocksdb_writebatch_destroy(wb);
    if (!rc)
        s->next_coll_id = c->id + 1;
out:
    free(buf);
    free(af);
    free(afp);
    return rc;
}

/* Whether c's schema is the one the options give. */
static bool same_schema(const vs_coll *c, const vs_import_options *o)
{
    if (c->n_fields != o->n_fields)
        return false;
    for (uint32_t f = 0; f < c->n_fields; f++) {
        const vs_field_spec *a = &c->fields[f], *b = &o->fields[f];
        if (strcmp(a->name, b->name) || a->dim != b->dim || a->metric != b->metric ||
            a->storage != b->storage || a->rerank != b->rerank)
            return false;
    }
    uint32_t na = vs_attr_schema_count(c->attrs), nb = o->attrs ? vs_attr_schema_count(o->attrs) : 0;
    if (na != nb)
        return false;
    for (uint32_t i = 0; i < na; i++)
        if (strcmp(vs_attr_schema_name(c->attrs, i), vs_attr_schema_name(o->attrs, i)) ||
            vs_attr_schema_type(c->attrs, i) != vs_attr_schema_type(o->attrs, i))
            return false;
    return true;
}

/* Parses a whole cell as a signed 64-bit integer. */
static bool parse_i64(const char *s, int64_t *v)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *v = x;
    return true;
}

/* Parses a whole cell as an unsigned 64-bit id. */
static bool parse_u64(const char *s, uint64_t *v)
{
    if (!*s || *s == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *v = x;
    return true;
}

typedef struct import_ctx {
    const vs_import_options *o;
    vs_store *s;
    vs_coll *c;
    vs_dataset *ds[VS_MAX_FIELDS];
    vs_tsv *tsv;
    int col_attr[VS_ATTR_MAX_FIELDS + 1]; /* TSV column -> attribute field, -1 = id */
    uint32_t n_cols;
    float *buf[VS_MAX_FIELDS];
    vs_attr_str *tagbuf;
    size_t tagcap;
} import_ctx;

/* Reads, checks and writes one chunk of rows starting at row0. */
static vs_err import_chunk(import_ctx *x, uint64_t row0, uint64_t n, vs_status *st)
{
    vs_err rc = VS_OK;
    const vs_coll *c = x->c;
    for (uint32_t f = 0; f < c->n_fields; f++) {
        if (!x->ds[f])
            continue;
        uint64_t got = 0;
        if ((rc = vs_dataset_read_f32(x->ds[f], n, x->buf[f], &got, st)))
            return rc;
        if (got != n)
            return vs_status_set(st, VS_ERR_DATA_LOSS, "'%s' ended at row %llu",
                                 x->o->vector_files[f], (unsigned long long)(row0 + got));
    }
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    vs_vector_in vin[VS_MAX_FIELDS];
    vs_attr_in ain[VS_ATTR_MAX_FIELDS];
    for (uint64_t i = 0; i < n && !rc; i++) {
        vs_mutation m = {.op = VS_MUT_UPSERT, .id = x->o->first_id + row0 + i, .vectors = vin,
                         .attrs = ain};
        for (uint32_t f = 0; f < c->n_fields; f++)
            if (x->ds[f])
                vin[m.n_vectors++] = (vs_vector_in){.field = c->fields[f].name,
                                                    .values = x->buf[f] + i * c->dims[f],
                                                    .dim = c->dims[f]};
        if (x->tsv) {
            const char *const *cells;
            if ((rc = vs_tsv_next(x->tsv, &cells, st)))
                break;
            if (!cells) {
                rc = vs_status_set(st, VS_ERR_DATA_LOSS, "'%s' has fewer rows than the vectors "
                                   "(ends before row %llu)", x->o->attrs_tsv,
                                   (unsigned long long)(row0 + i));
                break;
            }
            size_t tags_needed = 0;
            for (uint32_t k = 0; k < x->n_cols; k++)
                for (const char *p = cells[k]; *p; p++)
                    tags_needed += *p == ',';
            tags_needed += x->n_cols;
            if (tags_needed > x->tagcap) {
                vs_attr_str *nt = realloc(x->tagbuf, tags_needed * sizeof *nt);
                if (!nt) {
                    rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
                    break;
                }
                x->tagbuf = nt;
                x->tagcap = tags_needed;
            }
            size_t t0 = 0;
            for (uint32_t k = 0; k < x->n_cols && !rc; k++) {
                const char *cell = cells[k];
                int a = x->col_attr[k];
                if (a == -1) {
                    if (!parse_u64(cell, &m.id))
                        rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                           "'%s' line %llu: id '%s' is not an unsigned integer",
                                           x->o->attrs_tsv,
                                           (unsigned long long)vs_tsv_line(x->tsv), cell);
                    continue;
                }
                if (!*cell)
                    continue; /* absent */
                vs_attr_in *ai = &ain[m.n_attrs++];
                memset(ai, 0, sizeof *ai);
                ai->field = vs_attr_schema_name(c->attrs, (uint32_t)a);
                ai->type = vs_attr_schema_type(c->attrs, (uint32_t)a);
                if (ai->type == VS_ATTR_INT) {
                    if (!parse_i64(cell, &ai->int_value))
                        rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                           "'%s' line %llu: '%s' is an int field; '%s' is not an "
                                           "integer", x->o->attrs_tsv,
                                           (unsigned long long)vs_tsv_line(x->tsv), ai->field,
                                           cell);
                    continue;
                }
                ai->tags = x->tagbuf + t0;
                const char *p = cell;
                for (;;) {
                    const char *comma = strchr(p, ',');
                    size_t len = comma ? (size_t)(comma - p) : strlen(p);
                    if (len) {
                        x->tagbuf[t0].s = p;
                        x->tagbuf[t0].len = len;
                        t0++;
                        ai->n_tags++;
                    }
                    if (!comma)
                        break;
                    p = comma + 1;
                }
            }
            if (rc)
                break;
        }
        vs_eitem *it;
        uint32_t vc, nac;
        uint64_t *ac;
        if ((rc = vs_coll_build_mutation(c, &m, (size_t)(row0 + i), &it, &vc, &ac, &nac, st)))
            break;
        free(ac);
        uint8_t *buf;
        size_t len;
        rc = vs_eitem_pack(it, c->dims, c->n_fields, &buf, &len, st);
        vs_eitem_free(it);
        if (rc)
            break;
        char key[12];
        vs_store_item_key(c->id, m.id, key);
        rocksdb_writebatch_put_cf(wb, x->s->cf[VS_CF_ITEMS], key, 12, (const char *)buf, len);
        free(buf);
    }
    if (!rc) {
        char *err = NULL;
        rocksdb_write(x->s->db, x->s->wo_nowal, wb, &err);
        if (err)
            rc = vs_store_error(st, VS_ERR_IO, "writing items", err);
    }
    rocksdb_writebatch_destroy(wb);
    return rc;
}

/* Imports dataset files and a TSV into a collection and writes a snapshot. */
vs_err vs_engine_import(const vs_import_options *o, vs_import_stats *stats, vs_status *st)
{
    uint64_t t0 = vs_now_ns();
    if (!o || !o->data_dir || !o->collection)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "import needs a data dir and a collection");
    import_ctx x;
    memset(&x, 0, sizeof x);
    x.o = o;
    vs_err rc = vs_store_open(o->data_dir, o->log, o->log_ctx, &x.s, st);
    if (rc)
        return rc;
    vs_index_options iopt = {0};
    Vsstore__CollectionMeta **metas = NULL;
    size_t n_metas = 0;
    if ((rc = vs_store_read_collections(x.s, NULL, &metas, &n_metas, st)))
        goto out;
    for (size_t i = 0; i < n_metas && !rc; i++)
        if (strcmp(metas[i]->name, o->collection) == 0)
            rc = vs_coll_from_meta(metas[i], &iopt, &x.c, st);
    if (rc)
        goto out;
    if (x.c && o->n_fields && !same_schema(x.c, o)) {
        rc = vs_status_set(st, VS_ERR_FAILED_PRECONDITION,
                           "collection '%s' exists with another schema; import into a new name or "
                           "give its schema", o->collection);
        goto out;
    }
    if (!x.c) {
        if (!o->n_fields) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "collection '%s' does not exist; give its vector fields to create "
                               "it", o->collection);
            goto out;
        }
        if ((rc = vs_coll_create(0, o->collection, o->fields, o->n_fields, o->attrs, 0, &iopt,
                                 &x.c, st)) ||
            (rc = create_in_store(x.s, x.c, st)))
            goto out;
    }
    uint64_t rows = UINT64_MAX;
    uint32_t chunk = o->chunk_rows ? o->chunk_rows : 8192;
    for (uint32_t f = 0; f < x.c->n_fields; f++) {
        const char *path = o->vector_files ? o->vector_files[f] : NULL;
        if (!path)
            continue;
        if ((rc = vs_dataset_open(path, &x.ds[f], st)))
            goto out;
        if (vs_dataset_dim(x.ds[f]) != x.c->dims[f]) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "'%s' has dim %u; field '%s' has dim %u", path,
                               vs_dataset_dim(x.ds[f]), x.c->fields[f].name, x.c->dims[f]);
            goto out;
        }
        uint64_t r = vs_dataset_rows(x.ds[f]);
        if (rows != UINT64_MAX && r != rows) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "'%s' has %llu rows; the other files have %llu", path,
                               (unsigned long long)r, (unsigned long long)rows);
            goto out;
        }
        rows = r;
        x.buf[f] = malloc((size_t)chunk * x.c->dims[f] * sizeof(float));
        if (!x.buf[f]) {
            rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory for a chunk");
            goto out;
        }
    }
    if (rows == UINT64_MAX) {
        rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "no vector file given");
        goto out;
    }
    if (o->attrs_tsv) {
        if ((rc = vs_tsv_open(o->attrs_tsv, &x.tsv, st)))
            goto out;
        x.n_cols = vs_tsv_n_cols(x.tsv);
        if (x.n_cols > VS_ATTR_MAX_FIELDS + 1) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "'%s' has too many columns",
                               o->attrs_tsv);
            goto out;
        }
        for (uint32_t k = 0; k < x.n_cols; k++) {
            const char *name = vs_tsv_col_name(x.tsv, k);
            if (strcmp(name, "id") == 0) {
                x.col_attr[k] = -1;
                continue;
            }
            int a = vs_attr_schema_find(x.c->attrs, name, strlen(name));
            if (a < 0) {
                rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                   "'%s': column '%s' is not an attribute field of '%s'",
                                   o->attrs_tsv, name, o->collection);
                goto out;
            }
            x.col_attr[k] = a;
        }
    }
    {
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        Vsstore__LogRecord rec = VSSTORE__LOG_RECORD__INIT;
        rec.seq = x.s->last_seq + 1;
        rec.kind = VSSTORE__LOG_RECORD__KIND__IMPORT;
        rec.collection_id = x.c->id;
        rc = commit_record(x.s, wb, &rec, st);
        rocksdb_writebatch_destroy(wb);
        if (rc)
            goto out;
    }
    vs_elog(o->log, o->log_ctx, VS_LOG_INFO, "import: %llu rows into '%s'",
            (unsigned long long)rows, o->collection);
    for (uint64_t r0 = 0; r0 < rows; r0 += chunk) {
        uint64_t n = rows - r0 < chunk ? rows - r0 : chunk;
        if ((rc = import_chunk(&x, r0, n, st)))
            goto out;
        if (o->progress)
            o->progress(o->progress_ctx, r0 + n, rows);
    }
    {
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        char *err = NULL;
        rocksdb_flush_cf(x.s->db, fo, x.s->cf[VS_CF_ITEMS], &err);
        rocksdb_flushoptions_destroy(fo);
        if (err) {
            rc = vs_store_error(st, VS_ERR_IO, "flushing items", err);
            goto out;
        }
    }
    uint64_t seq = 0;
    if ((rc = vs_snapshot_write(x.s, &seq, st)))
        goto out;
    if (stats) {
        stats->rows = rows;
        stats->snapshot_seq = seq;
        stats->seconds = (double)(vs_now_ns() - t0) / 1e9;
    }
out:
    for (uint32_t f = 0; f < VS_MAX_FIELDS; f++) {
        vs_dataset_close(x.ds[f]);
        free(x.buf[f]);
    }
    vs_tsv_close(x.tsv);
    free(x.tagbuf);
    vs_coll_unref(x.c);
    for (size_t i = 0; i < n_metas; i++)
        vsstore__collection_meta__free_unpacked(metas[i], NULL);
    free(metas);
    vs_store_close(x.s);
    return rc;
}
