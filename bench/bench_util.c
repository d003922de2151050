/* bench_util.c: helpers shared by the bench drivers (see bench_util.h). */
#include "bench_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dataset.h"

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float *read_fbin(const char *path, uint32_t *rows, uint32_t *dim)
{
    float *x = NULL;
    uint64_t n = 0;
    vs_status st;
    if (vs_dataset_load_f32(path, &x, &n, dim, &st) != VS_OK)
        die("%s", st.msg);
    if (n == 0 || n > UINT32_MAX)
        die("'%s': %llu rows; the drivers take 1 to 2^32-1", path, (unsigned long long)n);
    *rows = (uint32_t)n;
    return x;
}
