/*
 * main.c: vecscand, the vecscan daemon: flags and config file, wiring, signals.
 *
 *   vecscand --data-dir DIR [flags]     serve gRPC on --port and the admin port on --admin-port
 *   vecscand import --data-dir DIR ...  bulk-load a data dir that no daemon holds open
 *   vecscand --help
 *
 * One libevent loop thread owns every socket (the gRPC port and the admin port). SIGTERM or
 * SIGINT: stop accepting, let calls in flight finish (--shutdown-grace-ms, then fail them with
 * UNAVAILABLE), flush, exit 0.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>

#include "vs_admin.h"
#include "vs_dlog.h"
#include "vs_metrics.h"
#include "vs_rpc.h"
#include "vs_rpc_services.h"
#ifdef VS_HAVE_ENGINE
#include "vs_api.h"
#include "vs_engine.h"
#endif

/* ===== Options ===== */

typedef struct options {
    char data_dir[PATH_MAX];
    char bind[256];
    char device[32];
    char sync[64];
    char auth_token_file[PATH_MAX];
    char log_level[16];
    uint64_t port, admin_port;
    uint64_t max_batch, max_wait_us, queue_depth;
    uint64_t max_message_bytes, max_k, max_batch_queries, max_batch_results, max_terms,
        max_term_vectors, max_dim, max_filter_bytes, max_filter_depth, max_seq_wait_ms;
    uint64_t max_connections, max_concurrent_streams, shutdown_grace_ms;
    uint64_t enable_test_service;
} options;

enum { T_STR, T_U64, T_BOOL };

typedef struct flag {
    const char *name;
    int type;
    size_t off;
    size_t size; /* T_STR: buffer size */
    uint64_t min, max;
    const char *help; /* NULL: hidden */
} flag;

#define S(f) T_STR, offsetof(options, f), sizeof(((options *)0)->f), 0, 0
#define U(f, lo, hi) T_U64, offsetof(options, f), 0, lo, hi
#define B(f) T_BOOL, offsetof(options, f), 0, 0, 1

static const flag flags[] = {
    {"data-dir", S(data_dir), "directory of the store (created when missing); required"},
    {"port", U(port, 0, 65535), "gRPC port (default 7070; 0 picks a free one)"},
    {"admin-port", U(admin_port, 0, 65535), "HTTP admin port: /metrics /healthz /readyz (default 7071)"},
    {"bind", S(bind), "address to listen on (default 127.0.0.1; the bearer token crosses in clear text)"},
    {"device", S(device), "cpu or cuda:N (default cpu)"},
    {"sync", S(sync), "always (fsync before every ack, the default) or interval:MS"},
    {"max-batch", U(max_batch, 1, 65536), "searches the executor scores together (default 64)"},
    {"max-wait-us", U(max_wait_us, 0, 1000000), "how long the executor waits to fill a batch (default 200)"},
    {"queue-depth", U(queue_depth, 1, 1u << 24), "queued searches and writes before RESOURCE_EXHAUSTED (default 4096)"},
    {"max-message-bytes", U(max_message_bytes, 1024, 1u << 30), "largest gRPC message (default 67108864)"},
    {"max-k", U(max_k, 1, 10000), "largest k (default 10000)"},
    {"max-batch-queries", U(max_batch_queries, 1, 65536), "queries per SearchBatch (default 1024)"},
    {"max-batch-results", U(max_batch_results, 1, 1u << 28), "sum of k over a SearchBatch (default 1048576)"},
    {"max-terms", U(max_terms, 1, 8), "terms per query (default 8)"},
    {"max-term-vectors", U(max_term_vectors, 1, 16), "vectors per term (default 16)"},
    {"max-dim", U(max_dim, 1, 4096), "largest vector dimension (default 4096)"},
    {"max-filter-bytes", U(max_filter_bytes, 1, 1u << 20), "longest filter string (default 16384)"},
    {"max-filter-depth", U(max_filter_depth, 1, 1024), "deepest filter nesting (default 64)"},
    {"max-seq-wait-ms", U(max_seq_wait_ms, 0, 3600000), "longest wait for min_seq (default 5000)"},
    {"max-connections", U(max_connections, 1, 1u << 20), "open gRPC connections (default 4096)"},
    {"max-concurrent-streams", U(max_concurrent_streams, 1, 1u << 20), "calls per connection (default 256)"},
    {"shutdown-grace-ms", U(shutdown_grace_ms, 0, 3600000), "on SIGTERM, how long calls may finish (default 10000)"},
    {"auth-token-file", S(auth_token_file), "file holding a bearer token every call must present"},
    {"log-level", S(log_level), "debug, info, warn or error (default info)"},
    {"enable-test-service", B(enable_test_service), NULL},
};
#define N_FLAGS (sizeof flags / sizeof flags[0])

static void set_defaults(options *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->bind, sizeof o->bind, "127.0.0.1");
    snprintf(o->device, sizeof o->device, "cpu");
    snprintf(o->sync, sizeof o->sync, "always");
    snprintf(o->log_level, sizeof o->log_level, "info");
    o->port = 7070;
    o->admin_port = 7071;
    o->max_batch = 64;
    o->max_wait_us = 200;
    o->queue_depth = 4096;
    o->max_message_bytes = 64u << 20;
    o->max_k = 10000;
    o->max_batch_queries = 1024;
    o->max_batch_results = 1u << 20;
    o->max_terms = 8;
    o->max_term_vectors = 16;
    o->max_dim = 4096;
    o->max_filter_bytes = 16384;
    o->max_filter_depth = 64;
    o->max_seq_wait_ms = 5000;
    o->max_connections = 4096;
    o->max_concurrent_streams = 256;
    o->shutdown_grace_ms = 10000;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vecscand [--config FILE] [flags]\n"
               "       vecscand import --data-dir DIR ...   (bulk load; vecscand import --help)\n\n"
               "Serves vecscan's gRPC API (vecscan.v1.VecScan, grpc.health.v1.Health).\n\n"
               "flags (each also a key of --config FILE, one 'key = value' a line, '#' comments;\n"
               "flags on the command line win over the file):\n");
    for (size_t i = 0; i < N_FLAGS; i++) {
        if (!flags[i].help) continue;
        fprintf(f, "  --%-24s %s\n", flags[i].name, flags[i].help);
    }
    fprintf(f, "  --%-24s %s\n  --%-24s %s\n", "config FILE", "read flags from FILE", "help", "this text");
}

/* Sets flag `name` to `value`; where says where it came from, for the message. */
static int set_flag(options *o, const char *name, const char *value, const char *where)
{
    for (size_t i = 0; i < N_FLAGS; i++) {
        const flag *f = &flags[i];
        if (strcmp(f->name, name) != 0) continue;
        char *dst = (char *)o + f->off;
        if (f->type == T_STR) {
            if (strlen(value) >= f->size) {
                fprintf(stderr, "vecscand: %s: --%s is too long (at most %zu bytes)\n", where, name, f->size - 1);
                return -1;
            }
            memcpy(dst, value, strlen(value) + 1);
            return 0;
        }
        if (f->type == T_BOOL && (!*value || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)) {
            *(uint64_t *)dst = 1;
            return 0;
        }
        if (f->type == T_BOOL && (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)) {
            *(uint64_t *)dst = 0;
            return 0;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || v < f->min || v > f->max) {
            fprintf(stderr, "vecscand: %s: --%s wants an integer in %llu..%llu, got '%s'\n", where, name,
                    (unsigned long long)f->min, (unsigned long long)f->max, value);
            return -1;
        }
        *(uint64_t *)dst = v;
        return 0;
    }
    fprintf(stderr, "vecscand: %s: unknown flag --%s (see vecscand --help)\n", where, name);
    return -1;
}

static bool flag_is_bool(const char *name)
{
    for (size_t i = 0; i < N_FLAGS; i++)
        if (strcmp(flags[i].name, name) == 0) return flags[i].type == T_BOOL;
    return false;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

static int load_config(options *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "vecscand: cannot read config %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        char where[PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!eq) {
            fprintf(stderr, "vecscand: %s: expected 'key = value'\n", where);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (strncmp(key, "--", 2) == 0) key += 2;
        if (set_flag(o, key, val, where) != 0) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int parse_args(options *o, int argc, char **argv)
{
    /* The config file first, so that flags override it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            if (load_config(o, argv[i + 1]) != 0) return -1;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            if (load_config(o, argv[i] + 9) != 0) return -1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "vecscand: unexpected argument '%s' (see vecscand --help)\n", a);
            return -1;
        }
        char name[64];
        const char *eq = strchr(a, '=');
        const char *val;
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof name) nl = sizeof name - 1;
        memcpy(name, a + 2, nl);
        name[nl] = 0;
        if (eq) {
            val = eq + 1;
        } else if (flag_is_bool(name)) {
            val = "";
        } else {
            if (i + 1 >= argc) {
                fprintf(stderr, "vecscand: --%s needs a value\n", name);
                return -1;
            }
            val = argv[++i];
        }
        if (strcmp(name, "config") == 0) continue;
        if (set_flag(o, name, val, "command line") != 0) return -1;
    }
    return 0;
}

/* Checks values that the table cannot. */
static int check_options(options *o)
{
    if (!o->data_dir[0]) {
        fprintf(stderr, "vecscand: --data-dir is required (the store's directory; created when missing)\n");
        return -1;
    }
    if (strcmp(o->device, "cpu") != 0) {
        char *end;
        if (strncmp(o->device, "cuda:", 5) != 0 || !o->device[5] || strtol(o->device + 5, &end, 10) < 0 || *end) {
            fprintf(stderr, "vecscand: --device wants cpu or cuda:N, got '%s'\n", o->device);
            return -1;
        }
    }
    if (strcmp(o->sync, "always") != 0) {
        char *end;
        long ms = strncmp(o->sync, "interval:", 9) == 0 ? strtol(o->sync + 9, &end, 10) : -1;
        if (ms <= 0 || *end) {
            fprintf(stderr, "vecscand: --sync wants always or interval:MS (MS > 0), got '%s'\n", o->sync);
            return -1;
        }
    }
    vs_dlog_level lv;
    if (!vs_dlog_parse_level(o->log_level, &lv)) {
        fprintf(stderr, "vecscand: --log-level wants debug, info, warn or error, got '%s'\n", o->log_level);
        return -1;
    }
    vs_dlog_set_level(lv);
    return 0;
}

/* Reads the token: the file's first line, without surrounding white space. */
static int read_token(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "vecscand: cannot read --auth-token-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    char *t = trim(line);
    if (!*t || strlen(t) >= cap) {
        fprintf(stderr, "vecscand: --auth-token-file %s: %s\n", path, *t ? "token too long" : "the file holds no token");
        return -1;
    }
    for (const char *p = t; *p; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            fprintf(stderr, "vecscand: --auth-token-file %s: the token must be printable ASCII without spaces\n", path);
            return -1;
        }
    }
    memcpy(out, t, strlen(t) + 1);
    return 0;
}

static int make_dir(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0750) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0750) != 0 && errno != EEXIST) return -1;
    struct stat sb;
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* ===== Serving ===== */

typedef struct daemon_state {
    struct event_base *base;
    vs_rpc_server *rpc;
    atomic_bool ready;
    atomic_bool open_failed;
    bool stopping;
    uint32_t grace_ms;
    const options *o;
#ifdef VS_HAVE_ENGINE
    vs_api *api;
    vs_engine *engine; /* set by the opener thread before `ready` */
#endif
} daemon_state;

#ifdef VS_HAVE_ENGINE
/* The engine's log lines, into the daemon's log. */
static void engine_log(void *ctx, vs_log_level level, const char *line)
{
    vs_dlog_level l = level == VS_LOG_ERROR  ? VS_DLOG_ERROR
                      : level == VS_LOG_WARN ? VS_DLOG_WARN
                      : level == VS_LOG_INFO ? VS_DLOG_INFO
                                             : VS_DLOG_DEBUG;
    vs_dlog(l, "engine", "%s", line);
}

static void engine_options(const options *o, vs_engine_options *eo)
{
    vs_engine_options_init(eo, o->data_dir);
    if (strncmp(o->sync, "interval:", 9) == 0) {
        eo->sync = VS_SYNC_INTERVAL;
        eo->sync_interval_ms = (uint32_t)strtoul(o->sync + 9, NULL, 10);
    }
    eo->write_queue_cap = (uint32_t)o->queue_depth * 16;
    eo->search_queue_cap = (uint32_t)o->queue_depth;
    eo->max_batch = (uint32_t)o->max_batch;
    eo->max_wait_us = (uint32_t)o->max_wait_us;
    eo->max_seq_wait_ms = (uint32_t)o->max_seq_wait_ms;
    if (strncmp(o->device, "cuda:", 5) == 0) {
        eo->index.device = VS_DEVICE_CUDA;
        eo->index.device_ordinal = atoi(o->device + 5);
    }
    eo->log = engine_log;
}

/* Recovery runs here, off the loop, so that health checks and /readyz answer meanwhile. */
static void *open_engine(void *arg)
{
    daemon_state *d = arg;
    vs_engine_options eo;
    engine_options(d->o, &eo);
    vs_status st;
    uint64_t t0 = vs_rpc_now_ns();
    VS_LOGI("main", "recovering %s", d->o->data_dir);
    if (vs_engine_open(&eo, &d->engine, &st) != VS_OK) {
        VS_LOGE("main", "cannot open the data dir %s: %s", d->o->data_dir, st.msg);
        atomic_store(&d->open_failed, true);
        event_base_loopexit(d->base, NULL);
        return NULL;
    }
    vs_api_set_engine(d->api, d->engine);
    atomic_store(&d->ready, true);
    VS_LOGI("main", "ready: recovered to seq %llu in %.2f s", (unsigned long long)vs_engine_last_acked_seq(d->engine),
            (double)(vs_rpc_now_ns() - t0) / 1e9);
    return NULL;
}
#endif

static void rpc_drained(void *arg)
{
    daemon_state *d = arg;
    VS_LOGI("main", "every connection is closed");
    event_base_loopexit(d->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    daemon_state *d = arg;
    (void)what;
    if (d->stopping) {
        VS_LOGW("main", "%s again: exiting now", sig == SIGINT ? "SIGINT" : "SIGTERM");
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->stopping = true;
    atomic_store(&d->ready, false);
    VS_LOGI("main", "%s: stop accepting, %zu calls in flight, grace %u ms", sig == SIGINT ? "SIGINT" : "SIGTERM",
            vs_rpc_server_active_calls(d->rpc), d->grace_ms);
    vs_rpc_server_shutdown(d->rpc, d->grace_ms, rpc_drained, d);
}

static int serve(options *o)
{
    if (make_dir(o->data_dir) != 0) {
        VS_LOGE("main", "cannot create --data-dir %s: %s", o->data_dir, strerror(errno));
        return 1;
    }
    char token[1024] = "";
    if (o->auth_token_file[0] && read_token(o->auth_token_file, token, sizeof token) != 0) return 1;
    signal(SIGPIPE, SIG_IGN);

    daemon_state d = {.grace_ms = (uint32_t)o->shutdown_grace_ms, .o = o};
    atomic_init(&d.ready, false);
    atomic_init(&d.open_failed, false);
    evthread_use_pthreads();
    vs_metrics *metrics = vs_metrics_create();
    d.base = event_base_new();
    if (!metrics || !d.base) {
        VS_LOGE("main", "out of memory at start");
        return 1;
    }
    vs_status st;
    vs_rpc_options ro = {
        .max_message_bytes = o->max_message_bytes,
        .max_concurrent_streams = (uint32_t)o->max_concurrent_streams,
        .max_connections = (uint32_t)o->max_connections,
        .auth_token = token,
        .metrics = metrics,
    };
    vs_rpc_test_service *test_svc = NULL;
    vs_admin *admin = NULL;
    int rc = 1, port = 0, admin_port = 0;
#ifdef VS_HAVE_ENGINE
    pthread_t opener;
    bool opener_started = false;
#endif
    if (vs_rpc_server_create(d.base, &ro, &d.rpc, &st) != VS_OK) goto out;
    if (vs_rpc_add_health(d.rpc, &d.ready, &st) != VS_OK) goto out;
    if (o->enable_test_service && vs_rpc_add_test_service(d.rpc, &test_svc, &st) != VS_OK) goto out;
#ifdef VS_HAVE_ENGINE
    vs_api_limits lim = {
        .max_k = (uint32_t)o->max_k,
        .max_batch_queries = (uint32_t)o->max_batch_queries,
        .max_batch_results = o->max_batch_results,
        .max_terms = (uint32_t)o->max_terms,
        .max_term_vectors = (uint32_t)o->max_term_vectors,
        .max_dim = (uint32_t)o->max_dim,
        .max_filter_bytes = (uint32_t)o->max_filter_bytes,
        .max_filter_depth = (uint32_t)o->max_filter_depth,
        .worker_queue = (uint32_t)o->queue_depth,
        .device = o->device,
    };
    if (vs_api_create(d.rpc, &lim, metrics, &d.api, &st) != VS_OK) goto out;
#endif
    if (vs_rpc_server_listen(d.rpc, o->bind, (int)o->port, &port, &st) != VS_OK) goto out;
    if (vs_admin_start(d.base, o->bind, (int)o->admin_port, metrics, &d.ready, &admin_port, &admin, &st) != VS_OK)
        goto out;
    struct event *sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
    struct event *sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    /* Tests parse this line for the ports (they start the daemon with port 0). */
    VS_LOGI("main", "listening on %s: grpc port %d, admin port %d, data dir %s, device %s, sync %s%s",
            o->bind, port, admin_port, o->data_dir, o->device, o->sync, token[0] ? ", bearer auth on" : "");
#ifdef VS_HAVE_ENGINE
    if (pthread_create(&opener, NULL, open_engine, &d) == 0) {
        opener_started = true;
    } else {
        vs_status_set(&st, VS_ERR_RESOURCE_EXHAUSTED, "cannot start the recovery thread");
        goto out;
    }
#else
    atomic_store(&d.ready, true);
    VS_LOGI("main", "ready (no engine in this build: only the health and test services)");
#endif
    event_base_dispatch(d.base);
    atomic_store(&d.ready, false);
    event_free(sigterm);
    event_free(sigint);
    rc = atomic_load(&d.open_failed) ? 1 : 0;
    vs_status_set(&st, VS_ERR_UNAVAILABLE, "recovery failed");
out:
    if (rc != 0) VS_LOGE("main", "%s", st.msg);
    vs_admin_stop(admin);
    /* Handlers still working finish into the server's queue: stop them before it goes. */
    vs_rpc_test_service_destroy(test_svc);
#ifdef VS_HAVE_ENGINE
    if (opener_started) pthread_join(opener, NULL);
    vs_api_stop(d.api);
    if (d.engine) {
        VS_LOGI("main", "closing the engine (flush and fsync)");
        vs_engine_close(d.engine);
    }
    vs_api_destroy(d.api);
#endif
    vs_rpc_server_destroy(d.rpc);
    event_base_free(d.base);
    vs_metrics_destroy(metrics);
    if (rc == 0) VS_LOGI("main", "stopped");
    return rc;
}

#ifdef VS_HAVE_ENGINE
static void import_usage(FILE *f)
{
    fprintf(f,
            "usage: vecscand import --data-dir DIR --collection NAME --vectors [FIELD=]FILE ...\n"
            "                       [--field NAME:DIM:METRIC:STORAGE[:rerank] ...] [--tag NAME ...] [--int NAME ...]\n"
            "                       [--attrs FILE.tsv] [--first-id N] [--chunk-rows N]\n\n"
            "Bulk-loads dataset files (fvecs, bvecs, fbin, u8bin, i8bin, npy, ...) into a data dir that no\n"
            "daemon holds open, then writes a snapshot; the next vecscand start loads it.\n"
            "  --field      a vector field of a new collection (metric ip|cosine|l2, storage f32|f16|i8|b1);\n"
            "               left out, the existing collection's schema is used as it is\n"
            "  --vectors    the file of a field (row i = item i); FIELD may be left out with one field\n"
            "  --tag/--int  attribute fields of a new collection\n"
            "  --attrs      TSV: optional 'id' column, then attribute columns by name (tags comma-separated)\n"
            "  --first-id   ids are first-id + row when the TSV has no id column (default 0)\n");
}

static void import_progress(void *ctx, uint64_t done, uint64_t total)
{
    int *tty = ctx;
    if (*tty) fprintf(stderr, "\rimport: %llu / %llu rows (%.0f%%)", (unsigned long long)done,
                      (unsigned long long)total, total ? 100.0 * (double)done / (double)total : 0.0);
    else if (total && (done == total || done % 1000000 < 8192))
        fprintf(stderr, "import: %llu / %llu rows\n", (unsigned long long)done, (unsigned long long)total);
}

static int parse_field(const char *spec, vs_field_spec *f)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *parts[6] = {0};
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ":", &save); t && n < 6; t = strtok_r(NULL, ":", &save)) parts[n++] = t;
    memset(f, 0, sizeof *f);
    char *end;
    if (n < 4 || n > 5 || strlen(parts[0]) > VS_FIELD_NAME_MAX || !(f->dim = (uint32_t)strtoul(parts[1], &end, 10)) || *end ||
        !vs_metric_parse(parts[2], &f->metric) || !vs_storage_parse(parts[3], &f->storage) ||
        (n == 5 && strcmp(parts[4], "rerank") != 0)) {
        fprintf(stderr, "vecscand import: --field wants NAME:DIM:METRIC:STORAGE[:rerank], got '%s'\n", spec);
        return -1;
    }
    snprintf(f->name, sizeof f->name, "%s", parts[0]);
    f->rerank = n == 5;
    return 0;
}

static int import_main(int argc, char **argv)
{
    vs_field_spec fields[VS_MAX_FIELDS];
    const char *files[VS_MAX_FIELDS] = {0};
    const char *vec_args[VS_MAX_FIELDS];
    uint32_t n_fields = 0, n_vec = 0;
    vs_import_options io = {0};
    vs_attr_schema *attrs = vs_attr_schema_create();
    vs_status st;
    int rc = 2;
    if (!attrs) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            import_usage(stdout);
            rc = 0;
            goto out;
        }
        if (!v) {
            fprintf(stderr, "vecscand import: %s needs a value (vecscand import --help)\n", a);
            goto out;
        }
        i++;
        if (strcmp(a, "--data-dir") == 0) io.data_dir = v;
        else if (strcmp(a, "--collection") == 0) io.collection = v;
        else if (strcmp(a, "--attrs") == 0) io.attrs_tsv = v;
        else if (strcmp(a, "--first-id") == 0) io.first_id = strtoull(v, NULL, 10);
        else if (strcmp(a, "--chunk-rows") == 0) io.chunk_rows = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--field") == 0) {
            if (n_fields == VS_MAX_FIELDS || parse_field(v, &fields[n_fields]) != 0) goto out;
            n_fields++;
        } else if (strcmp(a, "--vectors") == 0) {
            if (n_vec == VS_MAX_FIELDS) goto out;
            vec_args[n_vec++] = v;
        } else if (strcmp(a, "--tag") == 0 || strcmp(a, "--int") == 0) {
            if (vs_attr_schema_add(attrs, v, a[2] == 't' ? VS_ATTR_TAG : VS_ATTR_INT, &st) != VS_OK) {
                fprintf(stderr, "vecscand import: %s\n", st.msg);
                goto out;
            }
        } else {
            fprintf(stderr, "vecscand import: unknown option %s (vecscand import --help)\n", a);
            goto out;
        }
    }
    if (!io.data_dir || !io.collection || n_vec == 0) {
        fprintf(stderr, "vecscand import: --data-dir, --collection and --vectors are required (vecscand import --help)\n");
        goto out;
    }
    /* Files go in field order: by FIELD= name against --field, or in the order given. */
    for (uint32_t k = 0; k < n_vec; k++) {
        const char *eq = strchr(vec_args[k], '=');
        uint32_t f = k;
        const char *path = vec_args[k];
        if (eq && n_fields) {
            for (f = 0; f < n_fields; f++)
                if (strlen(fields[f].name) == (size_t)(eq - vec_args[k]) && !strncmp(fields[f].name, vec_args[k], (size_t)(eq - vec_args[k])))
                    break;
            if (f == n_fields) {
                fprintf(stderr, "vecscand import: --vectors %s names no --field\n", vec_args[k]);
                goto out;
            }
            path = eq + 1;
        } else if (eq) {
            path = eq + 1;
        }
        if (f >= VS_MAX_FIELDS) goto out;
        files[f] = path;
    }
    int tty = isatty(STDERR_FILENO);
    io.fields = n_fields ? fields : NULL;
    io.n_fields = n_fields;
    io.attrs = vs_attr_schema_count(attrs) ? attrs : NULL;
    io.vector_files = files;
    io.progress = import_progress;
    io.progress_ctx = &tty;
    io.log = engine_log;
    vs_import_stats stats = {0};
    if (vs_engine_import(&io, &stats, &st) != VS_OK) {
        if (tty) fputc('\n', stderr);
        fprintf(stderr, "vecscand import: %s\n", st.msg);
        rc = 1;
        goto out;
    }
    if (tty) fputc('\n', stderr);
    fprintf(stderr, "vecscand import: %llu rows into '%s' in %.1f s (%.0f rows/s), snapshot at seq %llu\n",
            (unsigned long long)stats.rows, io.collection, stats.seconds,
            stats.seconds > 0 ? (double)stats.rows / stats.seconds : 0.0, (unsigned long long)stats.snapshot_seq);
    rc = 0;
out:
    vs_attr_schema_destroy(attrs);
    return rc;
}
#else
static int import_main(int argc, char **argv)
{
    fprintf(stderr, "vecscand import: this build has no engine (server/engine)\n");
    return 2;
}
#endif

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "import") == 0) return import_main(argc - 1, argv + 1);
    options o;
    set_defaults(&o);
    if (parse_args(&o, argc, argv) != 0 || check_options(&o) != 0) return 2;
    return serve(&o);
}
