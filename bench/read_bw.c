/*
 * read_bw.c: the machine's streaming read bandwidth, the denominator of every CPU read floor.
 *
 * A thin front to bw.c (see bw.h): T threads sum their shares of an M MiB buffer (1 GiB by default
 * against this machine's 32 MiB L3), best of R passes.
 *
 * usage: read_bw [--threads T] [--mib M] [--reps R]
 * prints one line: read_bw_gbs=<best GB/s> threads=T mib=M reps=R median_gbs=<GB/s> kernel=K
 * (GB = 1e9 bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

static int usage(void)
{
    fprintf(stderr, "usage: read_bw [--threads T] [--mib M] [--reps R]\n"
                    "  T: reading threads (default 2); M: buffer size in MiB (default 1024, at least"
                    " 16); R: passes, the best counts (default 10)\n");
    return 2;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 10;
    long mib = 1024;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--mib") == 0)
            mib = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else
            return usage();
    }
    if (threads < 1 || threads > 256 || mib < 16 || mib > (1L << 20) || reps < 1 || reps > 1000)
        return usage();
    bw_ctx *c = bw_open(threads, (size_t)mib);
    if (!c) {
        fprintf(stderr, "read_bw: cannot allocate %ld MiB; try a smaller --mib\n", mib);
        return 1;
    }
    double median = 0, best = bw_measure(c, reps, &median);
    printf("read_bw_gbs=%.2f threads=%d mib=%ld reps=%d median_gbs=%.2f kernel=%s\n", best, threads,
           mib, reps, median, bw_kernel(c));
    bw_close(c);
    return 0;
}
