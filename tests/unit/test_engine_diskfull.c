/*
 * test_engine_diskfull.c: the disk fills up under a stream of writes.
 *
 * The data dir lives on a small tmpfs (mounting needs root; elsewhere the test is skipped). Upserts
 * stream in until a write fails; then: the failure is UNAVAILABLE and says "disk full", later
 * writes are refused at once with the same reason, searches go on and still see every
 * acknowledged write, the stats say writes are stopped. After the tmpfs is grown (space freed) and
 * the engine reopened, every acknowledged item is there and writes work again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "vs_engine.h"

#define DIM 256
#define GROUP 32

/* Keeps errors quiet but counted. */
static int g_errors;
static void quiet_log(void *ctx, vs_log_level level, const char *line)
{
    (void)ctx;
    (void)line;
    g_errors += level == VS_LOG_ERROR;
}

/* Opens the engine on dir. */
static vs_engine *open_engine(const char *dir, vs_status *st)
{
    vs_engine_options o;
    vs_engine_options_init(&o, dir);
    o.index.n_threads = 1;
    o.snapshot_every = UINT64_MAX;
    o.log = quiet_log;
    vs_engine *e = NULL;
    if (vs_engine_open(&o, &e, st))
        return NULL;
    return e;
}

/* Writes a group of upserts with ids from id0. */
static vs_err write_group(vs_engine *e, uint64_t id0, uint64_t *seq, vs_status *st)
{
    static float v[GROUP][DIM];
    vs_vector_in vi[GROUP];
    vs_mutation m[GROUP];
    for (int j = 0; j < GROUP; j++) {
        for (int d = 0; d < DIM; d++)
            v[j][d] = (float)((id0 + (uint64_t)j) % 97) + (float)d * 0.01f;
        vi[j] = (vs_vector_in){.field = "v", .values = v[j], .dim = DIM};
        m[j] = (vs_mutation){.op = VS_MUT_UPSERT, .id = id0 + (uint64_t)j, .vectors = &vi[j],
                             .n_vectors = 1};
    }
    return vs_engine_write_wait(e, "c", m, GROUP, seq, NULL, st);
}

/* Fills the disk, checks the failure, frees space, reopens. */
int main(void)
{
    char base[4096], mnt[4200], dir[4300];
    snprintf(base, sizeof base, "%s/vs-full-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(base))
        return 1;
    snprintf(mnt, sizeof mnt, "%s/mnt", base);
    snprintf(dir, sizeof dir, "%s/data", mnt);
    mkdir(mnt, 0755);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=24m") != 0) {
        int en = errno;
        rmdir(mnt);
        rmdir(base);
        char why[256];
        snprintf(why, sizeof why, "cannot mount a tmpfs (%s); needs root", strerror(en));
        return vs_test_skip("test_engine_diskfull", why);
    }
    vs_status st;
    vs_engine *e = open_engine(dir, &st);
    CHECKF(e != NULL, "open: %s", st.msg);
    if (e) {
        vs_field_spec fs = {.name = "v", .dim = DIM, .metric = VS_METRIC_L2,
                            .storage = VS_STORAGE_I8};
        CHECK(vs_engine_create_collection(e, "c", &fs, 1, NULL, NULL, &st) == VS_OK);
        uint64_t acked = 0, last_seq = 0;
        vs_err rc = VS_OK;
        for (uint64_t id0 = 0; id0 < 10000000; id0 += GROUP) {
            uint64_t seq;
            if ((rc = write_group(e, id0, &seq, &st)))
                break;
            acked = id0 + GROUP;
            last_seq = seq;
        }
        printf("test_engine_diskfull: %llu items acknowledged before: %s\n",
               (unsigned long long)acked, st.msg);
        CHECK(acked > 0);
        CHECKF(rc == VS_ERR_UNAVAILABLE && strstr(st.msg, "disk full"), "%d %s", rc, st.msg);
        /* later writes are refused at once, with the reason */
        vs_status st2;
        CHECK(write_group(e, 0, NULL, &st2) == VS_ERR_UNAVAILABLE && strstr(st2.msg, "disk full"));
        vs_engine_stats es;
        vs_engine_stats_get(e, &es);
        CHECK(es.writes_stopped && !es.read_only && es.last_acked_seq == last_seq);
        /* searches go on and see the last acknowledged write */
        float q[DIM];
        for (int d = 0; d < DIM; d++)
            q[d] = (float)((acked - 1) % 97) + (float)d * 0.01f;
        vs_search_term_in t = {.field = "v", .vectors = q, .n_vectors = 1, .dim = DIM};
        vs_search_request sr = {.collection = "c", .terms = &t, .n_terms = 1, .k = 1,
                                .min_seq = last_seq};
        vs_search_result *res = NULL;
        CHECK(vs_engine_search_wait(e, &sr, &res, &st) == VS_OK);
        CHECK(res && res->n_hits == 1 && res->applied_seq >= last_seq);
        vs_search_result_free(res);
        vs_engine_close(e);

        /* free space, reopen: everything acknowledged is there */
        CHECK(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=256m") == 0);
        e = open_engine(dir, &st);
        CHECKF(e != NULL, "reopen: %s", st.msg);
        if (e) {
            vs_collection_info info;
            CHECK(vs_engine_describe(e, "c", &info, &st) == VS_OK);
            CHECKF(info.count >= acked, "%llu items after reopen, %llu acknowledged",
                   (unsigned long long)info.count, (unsigned long long)acked);
            vs_collection_info_clear(&info);
            uint64_t *ids = malloc(acked * sizeof *ids);
            for (uint64_t i = 0; i < acked; i++)
                ids[i] = i;
            vs_get_result *g = NULL;
            CHECK(vs_engine_get(e, "c", ids, acked, false, &g, &st) == VS_OK);
            CHECK(g && g->n_found == acked && g->n_missing == 0);
            vs_get_result_free(g);
            free(ids);
            CHECK(vs_engine_last_acked_seq(e) >= last_seq);
            CHECK(write_group(e, 50000000, NULL, &st) == VS_OK);
            vs_engine_close(e);
        }
    }
    if (umount(mnt) != 0)
        perror("umount");
    rmdir(mnt);
    rmdir(base);
    return vs_test_finish("test_engine_diskfull");
}
