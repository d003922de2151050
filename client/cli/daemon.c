/*
 * daemon.c: the CLI's helpers that talk to vecscand or read datasets: connecting with the common
 * options, describing a collection, picking a vector field, loading query rows.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"

/* Reads the token from path (surrounding whitespace dropped) into buf. 0 or -1. */
static int read_token(const char *cmd, const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return cli_fail(cmd, -1, "cannot read --token-file %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = 0;
    size_t s = strspn(buf, " \t\r\n");
    memmove(buf, buf + s, n - s + 1);
    if (!buf[0]) return cli_fail(cmd, -1, "--token-file %s is empty", path);
    return 0;
}

int cli_connect_opts(const cli_cmd *cmd, size_t send_buffer, vsc_conn **out)
{
    char token[1024] = "";
    if (cmd->common.token_file && read_token(cmd->name, cmd->common.token_file, token, sizeof token) != 0)
        return CLI_EXIT_FAIL;
    vsc_options o = {.token = token[0] ? token : NULL, .timeout_s = cmd->common.timeout_s,
                     .stream_send_buffer = send_buffer};
    vsc_status st;
    const char *addr = cmd->common.addr ? cmd->common.addr : "127.0.0.1:7070";
    if (vsc_connect_opts(addr, &o, out, &st) != VSC_OK)
        return cli_fail(cmd->name, st.code == VSC_INVALID_ARGUMENT ? CLI_EXIT_USAGE : CLI_EXIT_FAIL, "%s",
                        st.message);
    return 0;
}

int cli_connect(const cli_cmd *cmd, vsc_conn **out)
{
    return cli_connect_opts(cmd, 0, out);
}

int cli_describe(const cli_cmd *cmd, vsc_conn *c, const char *name,
                 Vecscan__V1__DescribeCollectionResponse **info)
{
    Vecscan__V1__DescribeCollectionRequest req = VECSCAN__V1__DESCRIBE_COLLECTION_REQUEST__INIT;
    req.name = (char *)name;
    vsc_status st;
    if (vsc_describe_collection(c, &req, info, &st) != VSC_OK)
        return cli_fail(cmd->name, CLI_EXIT_FAIL, "collection '%s': %s: %s", name, vsc_code_name(st.code),
                        st.message);
    if (!(*info)->info || !(*info)->info->schema) {
        vsc_free(*info);
        *info = NULL;
        return cli_fail(cmd->name, CLI_EXIT_FAIL, "collection '%s': the daemon sent no schema", name);
    }
    return 0;
}

const Vecscan__V1__VectorField *cli_pick_field(const cli_cmd *cmd, const Vecscan__V1__Schema *schema,
                                               const char *name)
{
    if (!name) {
        if (schema->n_vectors == 1) return schema->vectors[0];
        char names[512] = "";
        for (size_t i = 0; i < schema->n_vectors; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     schema->vectors[i]->name);
        cli_fail(cmd->name, 0, "the collection has %zu vector fields (%s): say which with --field",
                 schema->n_vectors, names);
        return NULL;
    }
    for (size_t i = 0; i < schema->n_vectors; i++)
        if (strcmp(schema->vectors[i]->name, name) == 0) return schema->vectors[i];
    cli_fail(cmd->name, 0, "the collection has no vector field '%s'", name);
    return NULL;
}

int cli_load_rows(const char *cmd, const char *path, uint64_t a, uint64_t b, float **data,
                  uint64_t *rows, uint32_t *dim)
{
    *data = NULL;
    vs_dataset *ds;
    vs_status st;
    if (vs_dataset_open(path, &ds, &st) != VS_OK) return cli_fail(cmd, CLI_EXIT_FAIL, "%s", st.msg);
    uint64_t n = vs_dataset_rows(ds);
    *dim = vs_dataset_dim(ds);
    if (b == UINT64_MAX) b = n;
    if (a >= b || b > n) {
        vs_dataset_close(ds);
        return cli_fail(cmd, CLI_EXIT_USAGE, "rows %llu:%llu are outside %s (%llu rows)",
                        (unsigned long long)a, (unsigned long long)b, path, (unsigned long long)n);
    }
    float *v = malloc((size_t)(b - a) * (*dim ? *dim : 1) * sizeof *v);
    if (!v) {
        vs_dataset_close(ds);
        return cli_fail(cmd, CLI_EXIT_FAIL, "out of memory for %s", path);
    }
    uint64_t got = 0, nr;
    vs_err e = vs_dataset_seek(ds, a, &st);
    while (e == VS_OK && got < b - a) {
        e = vs_dataset_read_f32(ds, b - a - got, v + got * *dim, &nr, &st);
        if (e == VS_OK && nr == 0) break;
        got += nr;
    }
    vs_dataset_close(ds);
    if (e != VS_OK || got != b - a) {
        free(v);
        return cli_fail(cmd, CLI_EXIT_FAIL, "%s", e != VS_OK ? st.msg : "short read");
    }
    *data = v;
    *rows = got;
    return 0;
}

int cli_parse_combine(const char *s, Vecscan__V1__Combine *out)
{
    if (strcmp(s, "sum") == 0) *out = VECSCAN__V1__COMBINE__COMBINE_SUM;
    else if (strcmp(s, "max") == 0) *out = VECSCAN__V1__COMBINE__COMBINE_MAX;
    else if (strcmp(s, "interleave") == 0) *out = VECSCAN__V1__COMBINE__COMBINE_INTERLEAVE;
    else return -1;
    return 0;
}

const char *cli_metric_name(int m)
{
    switch (m) {
    case VECSCAN__V1__METRIC__METRIC_IP: return "ip";
    case VECSCAN__V1__METRIC__METRIC_COSINE: return "cosine";
    case VECSCAN__V1__METRIC__METRIC_L2: return "l2";
    default: return "?";
    }
}

const char *cli_storage_name(int s)
{
    switch (s) {
    case VECSCAN__V1__STORAGE__STORAGE_F32: return "f32";
    case VECSCAN__V1__STORAGE__STORAGE_F16: return "f16";
    case VECSCAN__V1__STORAGE__STORAGE_I8: return "i8";
    case VECSCAN__V1__STORAGE__STORAGE_B1: return "b1";
    default: return "?";
    }
}
