/*
 * main.c: `vecscan <command> [options]`, the command-line client of vecscand.
 */
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv, const cli_common *pre);
    const char *what;
} command;

static const command commands[] = {
    {"create", cmd_create, "create a collection"},
    {"drop", cmd_drop, "drop a collection"},
    {"describe", cmd_describe, "show a collection's schema and size"},
    {"list", cmd_list, "list the collections"},
    {"stats", cmd_stats, "show the daemon's state (seqs, rows, bytes)"},
    {"load", cmd_load, "stream dataset files (+ attributes TSV) into a collection"},
    {"search", cmd_search, "search with a vector or a file of queries"},
    {"get", cmd_get, "fetch items by id"},
    {"delete", cmd_delete, "delete items by id"},
    {"eval", cmd_eval, "recall@k, QPS and latency against ground truth"},
    {"loadtest", cmd_loadtest, "drive Search calls for a while: QPS, latency, status codes"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: vecscan [--addr HOST:PORT] [--token-file F] [--timeout S] <command> [options]\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\n'vecscan <command> --help' describes each. Results go to stdout, progress to stderr;\n"
               "with --json stdout holds one JSON object. Exit 0 on success, 1 on failure, 2 on a usage error.\n");
}

int cli_main(int argc, char **argv)
{
    cli_common pre = {0};
    int used = 0;
    if (cli_parse_common_prefix(&pre, argc - 1, argv + 1, &used) != 0) return CLI_EXIT_USAGE;
    int at = 1 + used;
    if (at >= argc) {
        if (pre.help) {
            usage(stdout);
            return 0;
        }
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[at], commands[i].name) == 0) {
            if (pre.help) {
                char *h[] = {"--help"};
                return commands[i].run(1, h, &pre);
            }
            return commands[i].run(argc - at - 1, argv + at + 1, &pre);
        }
    return cli_fail("", CLI_EXIT_USAGE, "unknown command '%s' (see vecscan --help)", argv[at]);
}
