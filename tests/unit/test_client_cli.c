/*
 * test_client_cli.c: the CLI's pieces that need no daemon: option parsing (common options before
 * or after the command, --opt=value, repeats, unknown flags, missing values), the list parsers,
 * the JSON writer (its output parses as JSON: checked by exact text here, by python3 in the
 * integration tests), latency percentiles, progress lines, and the exit codes of cli_main for
 * usage errors and for a daemon that is down.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "testutil.h"

static void test_parse(void)
{
    const char *coll = NULL;
    uint64_t k = 10;
    double w = 0;
    bool json = false;
    cli_strlist fields = {0};
    cli_opt opts[] = {
        {"collection", CLI_STR, &coll, "NAME", ""},
        {"k", CLI_U64, &k, "K", ""},
        {"w", CLI_DOUBLE, &w, "W", ""},
        {"json", CLI_FLAG, &json, NULL, ""},
        {"field", CLI_STRLIST, &fields, "F", ""},
    };
    cli_cmd cmd = {"t", "", "", opts, 5, {0}};
    char *a1[] = {"--collection", "c1", "--k=7", "--addr", "h:1", "--json", "--field", "a", "--field=b", "--w", "0.5",
                  "--timeout=2.5"};
    CHECK(cli_parse(&cmd, 12, a1) == 0);
    CHECK(coll && strcmp(coll, "c1") == 0);
    CHECK(k == 7 && json && w == 0.5);
    CHECK(fields.n == 2 && strcmp(fields.v[0], "a") == 0 && strcmp(fields.v[1], "b") == 0);
    CHECK(cmd.common.addr && strcmp(cmd.common.addr, "h:1") == 0);
    CHECK(cmd.common.timeout_s == 2.5);
    CHECK(!cmd.common.help);
    cli_free_opts(&cmd);

    char *bad1[] = {"--bogus"};
    CHECK(cli_parse(&cmd, 1, bad1) == CLI_EXIT_USAGE);
    char *bad2[] = {"--collection"};
    CHECK(cli_parse(&cmd, 1, bad2) == CLI_EXIT_USAGE);
    char *bad3[] = {"--k", "-3"};
    CHECK(cli_parse(&cmd, 2, bad3) == CLI_EXIT_USAGE);
    char *bad4[] = {"--k", "12x"};
    CHECK(cli_parse(&cmd, 2, bad4) == CLI_EXIT_USAGE);
    char *bad5[] = {"stray"};
    CHECK(cli_parse(&cmd, 1, bad5) == CLI_EXIT_USAGE);
    char *bad6[] = {"--json=yes"};
    CHECK(cli_parse(&cmd, 1, bad6) == CLI_EXIT_USAGE);
    char *bad7[] = {"--timeout", "-1"};
    CHECK(cli_parse(&cmd, 2, bad7) == CLI_EXIT_USAGE);
    char *help[] = {"--bogus", "--help"};
    CHECK(cli_parse(&cmd, 2, help) == 0 && cmd.common.help);
    cli_free_opts(&cmd);

    /* the common options before the command */
    cli_common pre = {0};
    int used = -1;
    char *p1[] = {"--addr", "x:2", "--timeout", "3", "search", "--k", "1"};
    CHECK(cli_parse_common_prefix(&pre, 7, p1, &used) == 0);
    CHECK(used == 4 && strcmp(pre.addr, "x:2") == 0 && pre.timeout_s == 3);
    char *p2[] = {"--k", "1", "search"};
    CHECK(cli_parse_common_prefix(&pre, 3, p2, &used) == CLI_EXIT_USAGE);
}

static void test_lists(void)
{
    uint64_t *ids;
    size_t n;
    CHECK(cli_parse_ids("1,2, 30", &ids, &n) == 0 && n == 3 && ids[2] == 30);
    free(ids);
    CHECK(cli_parse_ids("18446744073709551615", &ids, &n) == 0 && n == 1 && ids[0] == UINT64_MAX);
    free(ids);
    CHECK(cli_parse_ids("1,,2", &ids, &n) != 0);
    CHECK(cli_parse_ids("-1", &ids, &n) != 0);
    CHECK(cli_parse_ids("", &ids, &n) != 0);
    CHECK(cli_parse_ids("1,x", &ids, &n) != 0);
    float *v;
    CHECK(cli_parse_floats("0.5,-1,2e3", &v, &n) == 0 && n == 3 && v[1] == -1 && v[2] == 2000);
    free(v);
    CHECK(cli_parse_floats("1,nan", &v, &n) != 0);
    CHECK(cli_parse_floats("1,", &v, &n) != 0);
    CHECK(cli_parse_floats("1 2", &v, &n) != 0);
    uint64_t a, b;
    CHECK(cli_parse_range("10:20", &a, &b) == 0 && a == 10 && b == 20);
    CHECK(cli_parse_range(":5", &a, &b) == 0 && a == 0 && b == 5);
    CHECK(cli_parse_range("5:", &a, &b) == 0 && a == 5 && b == UINT64_MAX);
    CHECK(cli_parse_range("5:5", &a, &b) != 0);
    CHECK(cli_parse_range("5", &a, &b) != 0);
    CHECK(cli_parse_range("a:b", &a, &b) != 0);
    uint32_t ks[8];
    int nk;
    const char *kv[] = {"100", "10,1", "10"};
    cli_strlist kl = {kv, 3};
    CHECK(cli_parse_ks(&kl, ks, 8, &nk) == 0 && nk == 3 && ks[0] == 1 && ks[1] == 10 && ks[2] == 100);
    const char *kb[] = {"0"};
    cli_strlist kbl = {kb, 1};
    CHECK(cli_parse_ks(&kbl, ks, 8, &nk) != 0);
    int64_t x;
    CHECK(cli_parse_i64("-42", &x) == 0 && x == -42);
    CHECK(cli_parse_i64("4.2", &x) != 0);
    Vecscan__V1__Combine cm;
    CHECK(cli_parse_combine("interleave", &cm) == 0 && cm == VECSCAN__V1__COMBINE__COMBINE_INTERLEAVE);
    CHECK(cli_parse_combine("avg", &cm) != 0);
}

static void test_json(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_json j;
    cli_json_init(&j, f);
    cli_json_begin_object(&j);
    cli_json_key(&j, "recall");
    cli_json_begin_object(&j);
    cli_json_key(&j, "10");
    cli_json_double(&j, 1.0);
    cli_json_key(&j, "100");
    cli_json_double(&j, 0.9987);
    cli_json_end_object(&j);
    cli_json_key(&j, "qps");
    cli_json_double(&j, 812.5);
    cli_json_key(&j, "s");
    cli_json_string(&j, "a\"b\\c\n\x01");
    cli_json_key(&j, "l");
    cli_json_begin_array(&j);
    cli_json_u64(&j, 1);
    cli_json_i64(&j, -2);
    cli_json_bool(&j, true);
    cli_json_double(&j, 1.0 / 0.0);
    cli_json_end_array(&j);
    cli_json_key(&j, "big");
    cli_json_double(&j, 12345678.0);
    cli_json_end_object(&j);
    fclose(f);
    const char *want = "{\"recall\": {\"10\": 1.0, \"100\": 0.9987}, \"qps\": 812.5, \"s\": \"a\\\"b\\\\c\\n\\u0001\", "
                       "\"l\": [1, -2, true, null], \"big\": 12345678.0}\n";
    CHECKF(strcmp(buf, want) == 0, "got %s", buf);
    free(buf);
    char b[64];
    cli_fmt_double(b, sizeof b, 0.1);
    CHECK(strcmp(b, "0.1") == 0);
    cli_fmt_double(b, sizeof b, 3e-9);
    CHECK(strcmp(b, "3e-09") == 0);
}

static void test_latency(void)
{
    cli_lat l = {0};
    CHECK(cli_lat_pct(&l, 50) == 0);
    for (int i = 100; i >= 1; i--) cli_lat_add(&l, i);
    CHECK(cli_lat_pct(&l, 50) == 50);
    CHECK(cli_lat_pct(&l, 99) == 99);
    CHECK(cli_lat_pct(&l, 100) == 100);
    CHECK(cli_lat_pct(&l, 0) == 1);
    cli_lat m = {0};
    cli_lat_add(&m, 7);
    CHECK(cli_lat_pct(&m, 99) == 7); /* the upper rank on a small sample */
    CHECK(cli_lat_merge(&m, &l) == 0 && m.n == 101);
    cli_lat_free(&l);
    cli_lat_free(&m);
}

static void test_progress(void)
{
    char b[256];
    cli_progress_format(b, sizeof b, "load", 4500, 9000, 1.5, 0);
    CHECKF(strcmp(b, "load 4500/9000 rows (50%) 3000 rows/s ETA 0:02") == 0, "%s", b);
    cli_progress_format(b, sizeof b, "load", 10, 100, 1.0, 10);
    CHECKF(strcmp(b, "load [#.........] 10/100 rows (10%) 10 rows/s ETA 0:09") == 0, "%s", b);
    cli_progress_format(b, sizeof b, "load", 10, 0, 2.0, 10);
    CHECKF(strcmp(b, "load 10 rows 5 rows/s") == 0, "%s", b);
    cli_progress_format(b, sizeof b, "load", 0, 10, 0, 0);
    CHECK(strstr(b, "ETA --:--") != NULL);
    /* not a terminal: plain lines */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_progress p;
    cli_progress_start(&p, "load", 10, f);
    CHECK(!p.tty);
    cli_progress_update(&p, 5, true);
    cli_progress_end(&p, 10);
    fclose(f);
    CHECK(buf && strchr(buf, '\r') == NULL && strstr(buf, "10/10 rows (100%)") != NULL);
    free(buf);
}

/* cli_main's exit code with stderr silenced. */
static int run_main(int argc, char **argv)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *null = fopen("/dev/null", "w");
    dup2(fileno(null), 2);
    int rc = cli_main(argc, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(null);
    return rc;
}

static void test_main(void)
{
    char *a[] = {"vecscan"};
    CHECK(run_main(1, a) == CLI_EXIT_USAGE);
    char *b[] = {"vecscan", "frobnicate"};
    CHECK(run_main(2, b) == CLI_EXIT_USAGE);
    char *c[] = {"vecscan", "search", "--collection", "x", "--bogus"};
    CHECK(run_main(5, c) == CLI_EXIT_USAGE);
    char *d[] = {"vecscan", "search", "--collection", "x"};
    CHECK(run_main(4, d) == CLI_EXIT_USAGE); /* neither --vector nor --queries */
    char *e[] = {"vecscan", "create", "--collection", "x", "--field", "img:784:cosine"};
    CHECK(run_main(6, e) == CLI_EXIT_USAGE);
    char *e2[] = {"vecscan", "create", "--collection", "x", "--field", "img:784:cosine:q4"};
    CHECK(run_main(6, e2) == CLI_EXIT_USAGE);
    /* a daemon that is not there: port 1 on loopback */
    char *f[] = {"vecscan", "--addr", "127.0.0.1:1", "list"};
    CHECK(run_main(4, f) == CLI_EXIT_FAIL);
    char *g[] = {"vecscan", "list", "--addr=127.0.0.1:1"};
    CHECK(run_main(3, g) == CLI_EXIT_FAIL);
    char *h[] = {"vecscan", "list", "--addr", "nonsense:port"};
    CHECK(run_main(4, h) == CLI_EXIT_USAGE);
    char *i[] = {"vecscan", "list", "--token-file", "/nonexistent/token"};
    CHECK(run_main(4, i) == CLI_EXIT_FAIL);
    char *j[] = {"vecscan", "eval", "--collection", "x", "--queries", "q.fvecs"};
    CHECK(run_main(6, j) == CLI_EXIT_USAGE); /* no --gt */
}

int main(void)
{
    test_parse();
    test_lists();
    test_json();
    test_latency();
    test_progress();
    test_main();
    return vs_test_finish("test_client_cli");
}
