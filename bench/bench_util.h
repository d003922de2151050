/*
 * bench_util.h: the small helpers every bench driver shares. A driver is a main program: any
 * failure prints one line naming the program and ends the run.
 */
#ifndef VS_BENCH_UTIL_H
#define VS_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Prints "<program>: <message>" and exits 1. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* malloc that dies when memory runs out (n = 0 gives a valid pointer). */
void *xmalloc(size_t n);
/* Monotonic seconds. */
double now_s(void);
/* qsort comparison of doubles, ascending. */
int cmp_double(const void *a, const void *b);
/* splitmix64: the generator of every seeded stream in the drivers. */
uint64_t splitmix64(uint64_t *s);
/* Reads a whole .fbin file through formats/ (header and size checked there); the caller frees it. */
float *read_fbin(const char *path, uint32_t *rows, uint32_t *dim);

#endif
