/*
 * testutil.h: the few helpers every test shares: checks that report file and line and keep going,
 * a seeded random generator, and the data directory.
 */
#ifndef VS_TESTUTIL_H
#define VS_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>

extern int vs_test_failures;

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);            \
            vs_test_failures++;                                                                 \
        }                                                                                       \
    } while (0)

#define CHECKF(cond, ...)                                                                       \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);            \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fputc('\n', stderr);                                                                \
            vs_test_failures++;                                                                 \
        }                                                                                       \
    } while (0)

/* Ends a test's main: prints a summary line and returns the exit code. */
int vs_test_finish(const char *name);

/* Exit code and message for a test that cannot run here (ctest shows it as skipped). */
#define VS_TEST_SKIP 77
int vs_test_skip(const char *name, const char *why);

/* splitmix64-seeded xoshiro256**: fast, reproducible. */
typedef struct vs_rng { uint64_t s[4]; } vs_rng;
void vs_rng_seed(vs_rng *r, uint64_t seed);
uint64_t vs_rng_next(vs_rng *r);
double vs_rng_uniform(vs_rng *r);   /* [0, 1) */
double vs_rng_gauss(vs_rng *r);     /* N(0, 1) */
uint64_t vs_rng_below(vs_rng *r, uint64_t n); /* [0, n) */

/* The dataset directory (VECSCAN_DATA_DIR), or NULL when it is unset or missing. */
const char *vs_test_data_dir(void);

#endif
