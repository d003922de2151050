/*
 * test_cpu_kernels.c: every SIMD kernel table against the scalar reference on random data of odd
 * sizes: the integer kernel (b1) and the i8 kernel's finished scores must agree bit for bit (and
 * the scalar i8 scores equal quant.h's arithmetic on a plain integer dot), float kernels (f32, f16)
 * up to summation order. Extreme codes (-128 with 127) check that the AVX2 path never saturates.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/kernels.h"
#include "quant.h"
#include "testutil.h"

static void check_table(const vs_cpu_kernels *k, vs_rng *r)
{
    static const uint32_t dims[] = {1, 4, 7, 64, 129, 784};
    static const uint32_t ms[] = {1, 2, 3, 4, 5, 6, 7, 13};
    const vs_cpu_kernels *ref = &vs_cpu_kernels_scalar;
    for (int di = 0; di < 6; di++)
        for (int mi = 0; mi < 8; mi++) {
            uint32_t d = dims[di], m = ms[mi], dpad = (d + 3) & ~3u, nblocks = 3, n = nblocks * 16 - 5;
            uint32_t ld = nblocks * 16 + 3;
            /* i8, with a third of the codes at the extremes; rows of codes and constants, at a
             * stride of dpad + 12 (the backend's) or wider */
            size_t stride = dpad + 12 + 4 * (di % 2);
            int8_t *x = calloc((size_t)nblocks * 16 * stride, 1), *q = calloc((size_t)m * dpad, 1);
            int8_t *scratch = malloc(VS_I8_SCRATCH(dpad));
            int32_t *qcsum = calloc(m, sizeof *qcsum);
            float *qscale = malloc(m * sizeof(float)), *qsum = malloc(m * sizeof(float));
            float *qnorm2 = malloc(m * sizeof(float));
            for (uint32_t row = 0; row < nblocks * 16; row++) {
                for (uint32_t c = 0; c < stride; c++) {
                    uint64_t u = vs_rng_below(r, 3);
                    int8_t v = u == 0 ? -128 : u == 1 ? 127 : (int8_t)(vs_rng_below(r, 256) - 128);
                    x[row * stride + c] = c < d ? v : c < dpad ? 0 : (int8_t)vs_rng_next(r);
                }
                float k3[3] = {(float)vs_rng_gauss(r), (float)(0.01 + 0.1 * vs_rng_below(r, 100) / 100.0),
                               (float)(d * (1.0 + vs_rng_gauss(r) * 0.1))};
                memcpy(x + row * stride + dpad, k3, sizeof k3);
            }
            for (uint32_t j = 0; j < m; j++) {
                for (uint32_t c = 0; c < d; c++) {
                    int8_t v = vs_rng_below(r, 2) ? 127 : (int8_t)(vs_rng_below(r, 255) - 127);
                    if (vs_rng_below(r, 4) == 0)
                        v = -127;
                    q[(size_t)j * dpad + c] = v;
                    qcsum[j] += v;
                }
                qscale[j] = (float)(0.5 + vs_rng_gauss(r) * 0.01) / 127.0f;
                qsum[j] = (float)vs_rng_gauss(r) * 3.0f;
                qnorm2[j] = (float)d * (1.0f + (float)vs_rng_gauss(r) * 0.1f);
            }
            vs_i8_queries qs = {.c = q, .csum = qcsum, .scale = qscale, .sum = qsum, .norm2 = qnorm2, .m = m};
            float *sa = calloc((size_t)m * ld, 4), *sb = calloc((size_t)m * ld, 4);
            for (int l2 = 0; l2 < 2; l2++)
                for (uint32_t rows = n; rows + 20 > n; rows -= 20) { /* a whole tile and a short one */
                    memset(sa, 0x55, (size_t)m * ld * 4);
                    k->i8_scores(x, stride, rows, dpad, &qs, l2, sa, ld, scratch);
                    ref->i8_scores(x, stride, rows, dpad, &qs, l2, sb, ld, scratch);
                    for (uint32_t j = 0; j < m; j++)
                        for (uint32_t row = 0; row < rows; row++) {
                            /* the reference against quant.h's arithmetic on a plain integer dot */
                            int32_t idot = 0;
                            for (uint32_t c = 0; c < d; c++)
                                idot += (int32_t)q[(size_t)j * dpad + c] * x[row * stride + c];
                            float k3[3], want;
                            memcpy(k3, x + row * stride + dpad, sizeof k3);
                            want = vs_i8_dot(idot, k3[0], k3[1], qsum[j], qscale[j]);
                            if (l2)
                                want = vs_score_from_dot(1, want, qnorm2[j], k3[2]);
                            CHECKF(memcmp(&sb[j * ld + row], &want, 4) == 0,
                                   "scalar i8 d=%u m=%u l2=%d q%u row %u: %.9g, want %.9g", d, m, l2, j, row,
                                   sb[j * ld + row], want);
                            /* every table bit for bit */
                            CHECKF(memcmp(&sa[j * ld + row], &sb[j * ld + row], 4) == 0,
                                   "%s i8 d=%u m=%u l2=%d rows=%u q%u row %u: %.9g vs %.9g", k->name, d, m, l2,
                                   rows, j, row, sa[j * ld + row], sb[j * ld + row]);
                        }
                    for (uint32_t j = 0; j < m; j++) /* nothing written past the rows asked for */
                        for (uint32_t row = rows; row < ld && row < rows + 16; row++) {
                            uint32_t bits;
                            memcpy(&bits, &sa[j * ld + row], 4);
                            CHECKF(bits == 0x55555555, "%s i8 wrote row %u of %u", k->name, row, rows);
                        }
                    if (rows < 20)
                        break;
                }
            free(scratch), free(qscale), free(qsum), free(qnorm2), free(sa), free(sb);
            /* b1 */
            int32_t *a = calloc((size_t)m * ld, 4), *b = calloc((size_t)m * ld, 4);
            uint32_t words = (d + 63) / 64;
            uint64_t *xb = malloc((size_t)n * words * 8), *qb = malloc((size_t)m * words * 8);
            for (size_t i = 0; i < (size_t)n * words; i++)
                xb[i] = vs_rng_next(r);
            for (size_t i = 0; i < (size_t)m * words; i++)
                qb[i] = vs_rng_next(r);
            k->b1_tile(xb, n, words, qb, m, a, ld);
            ref->b1_tile(xb, n, words, qb, m, b, ld);
            for (uint32_t j = 0; j < m; j++)
                for (uint32_t row = 0; row < n; row++)
                    CHECKF(a[j * ld + row] == b[j * ld + row], "%s b1 words=%u m=%u", k->name, words, m);
            /* f32 and f16 */
            float *xf = malloc((size_t)n * d * 4), *qf = malloc((size_t)m * d * 4);
            uint16_t *xh = malloc((size_t)n * d * 2);
            float *fa = calloc((size_t)m * ld, 4), *fb = calloc((size_t)m * ld, 4);
            for (size_t i = 0; i < (size_t)n * d; i++) {
                xf[i] = (float)vs_rng_gauss(r);
                xh[i] = vs_f32_to_f16(xf[i]);
            }
            for (size_t i = 0; i < (size_t)m * d; i++)
                qf[i] = (float)vs_rng_gauss(r);
            float tolf = 1e-5f * (float)d + 1e-5f;
            k->f32_tile(xf, n, d, qf, m, fa, ld);
            ref->f32_tile(xf, n, d, qf, m, fb, ld);
            for (uint32_t j = 0; j < m; j++)
                for (uint32_t row = 0; row < n; row++)
                    CHECKF(fabsf(fa[j * ld + row] - fb[j * ld + row]) <= tolf, "%s f32 d=%u m=%u", k->name, d, m);
            k->f16_tile(xh, n, d, qf, m, fa, ld);
            ref->f16_tile(xh, n, d, qf, m, fb, ld);
            for (uint32_t j = 0; j < m; j++)
                for (uint32_t row = 0; row < n; row++)
                    CHECKF(fabsf(fa[j * ld + row] - fb[j * ld + row]) <= tolf, "%s f16 d=%u m=%u", k->name, d, m);
            k->f16_to_f32(xh, fa, (size_t)n * d < (size_t)m * ld ? (size_t)n * d : (size_t)m * ld);
            for (size_t i = 0; i < ((size_t)n * d < (size_t)m * ld ? (size_t)n * d : (size_t)m * ld); i++)
                CHECKF(fa[i] == vs_f16_to_f32(xh[i]), "%s f16_to_f32 at %zu", k->name, i);
            /* above: same positions as the scalar scan, with ties at the threshold included */
            uint32_t *ia = malloc((size_t)n * d * 4), *ib = malloc((size_t)n * d * 4);
            float thr = xf[0];
            uint32_t ca = k->above(xf, n * d, thr, ia), cb = ref->above(xf, n * d, thr, ib);
            CHECKF(ca == cb && memcmp(ia, ib, ca * 4) == 0, "%s above: %u vs %u positions", k->name, ca, cb);
            CHECK(cb >= 1 && ib[0] == 0);
            free(ia), free(ib);
            free(x), free(q), free(qcsum), free(a), free(b), free(xb), free(qb);
            free(xf), free(qf), free(xh), free(fa), free(fb);
        }
}

int main(void)
{
    vs_rng r;
    vs_rng_seed(&r, 7);
    const vs_cpu_kernels *tables[] = {vs_cpu_kernels_avx2, vs_cpu_kernels_avx512};
    int ran = 0;
    __builtin_cpu_init();
    for (int i = 0; i < 2; i++) {
        if (!tables[i])
            continue;
        bool runs = i == 0 ? __builtin_cpu_supports("avx2") && vs_cpu_has_f16c()
                           : __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vpopcntdq");
        if (!runs) {
            printf("SKIP %s kernels: this processor lacks them\n", tables[i]->name);
            continue;
        }
        check_table(tables[i], &r);
        ran++;
        printf("%s kernels agree with the scalar reference\n", tables[i]->name);
    }
    printf("best table here: %s\n", vs_cpu_kernels_best()->name);
    if (!ran)
        return vs_test_skip("test_cpu_kernels", "no SIMD table runs on this processor");
    return vs_test_finish("test_cpu_kernels");
}
