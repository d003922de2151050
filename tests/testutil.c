/* testutil.c: shared test helpers (see testutil.h). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

int vs_test_failures = 0;

int vs_test_finish(const char *name)
{
    if (vs_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, vs_test_failures);
        return 1;
    }
    fprintf(stderr, "%s: all checks passed\n", name);
    return 0;
}

int vs_test_skip(const char *name, const char *why)
{
    printf("SKIP %s: %s\n", name, why);
    fflush(stdout);
    return VS_TEST_SKIP;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void vs_rng_seed(vs_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t vs_rng_next(vs_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double vs_rng_uniform(vs_rng *r) { return (double)(vs_rng_next(r) >> 11) * 0x1.0p-53; }

double vs_rng_gauss(vs_rng *r)
{
    double u1 = vs_rng_uniform(r), u2 = vs_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t vs_rng_below(vs_rng *r, uint64_t n) { return n ? vs_rng_next(r) % n : 0; }

const char *vs_test_data_dir(void)
{
    const char *d = getenv("VECSCAN_DATA_DIR");
    struct stat sb;
    if (!d || !*d || stat(d, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return NULL;
    return d;
}
