/*
 * metrics.c: the Prometheus registry (see vs_metrics.h).
 *
 * One mutex per family guards its children's values: updates are a few nanoseconds under an
 * uncontended lock, and a scrape sees a consistent histogram (buckets, sum and count together).
 */
#include "vs_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 4

struct vs_metrics_cell {
    vs_metrics_fam *fam;
    char *values[MAX_LABELS];
    double value;         /* counter, gauge */
    double sum;           /* histogram */
    unsigned long long count;
    unsigned long long *buckets; /* histogram: per bucket (not cumulative) */
    vs_metrics_cell *next;
};

struct vs_metrics_fam {
    char *name, *help;
    vs_metrics_type type;
    int n_labels;
    char *labels[MAX_LABELS];
    double *bounds;
    size_t n_bounds;
    pthread_mutex_t mu;
    vs_metrics_cell *children, **tail;
};

typedef struct collector {
    void (*fn)(vs_metrics *m, void *ctx);
    void *ctx;
} collector;

struct vs_metrics {
    pthread_mutex_t mu; /* families and collectors lists */
    vs_metrics_fam **fams;
    size_t n_fams, cap_fams;
    collector *cols;
    size_t n_cols, cap_cols;
};

static const double default_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1,
                                        2.5,     5,      10};

vs_metrics *vs_metrics_create(void)
{
    vs_metrics *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void family_free(vs_metrics_fam *f)
{
    vs_metrics_cell *c = f->children;
    while (c) {
        vs_metrics_cell *n = c->next;
        for (int i = 0; i < f->n_labels; i++) free(c->values[i]);
        free(c->buckets);
        free(c);
        c = n;
    }
    for (int i = 0; i < f->n_labels; i++) free(f->labels[i]);
    free(f->bounds);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void vs_metrics_destroy(vs_metrics *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_fams; i++) family_free(m->fams[i]);
    free(m->fams);
    free(m->cols);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

vs_metrics_fam *vs_metrics_family(vs_metrics *m, const char *name, const char *help,
                                    vs_metrics_type type, const char *labels,
                                    const double *buckets, size_t n_buckets)
{
    if (!m) return NULL;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_fams; i++) {
        if (strcmp(m->fams[i]->name, name) == 0) {
            pthread_mutex_unlock(&m->mu);
            return m->fams[i];
        }
    }
    vs_metrics_fam *f = calloc(1, sizeof *f);
    if (!f) goto fail;
    pthread_mutex_init(&f->mu, NULL);
    f->tail = &f->children;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->type = type;
    if (!f->name || !f->help) goto fail_f;
    if (labels && *labels) {
        const char *p = labels;
        while (*p && f->n_labels < MAX_LABELS) {
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            f->labels[f->n_labels] = strndup(p, n);
            if (!f->labels[f->n_labels]) goto fail_f;
            f->n_labels++;
            p += n;
            if (*p == ',') p++;
        }
    }
    if (type == VS_METRICS_HISTOGRAM) {
        if (!buckets || n_buckets == 0) {
            buckets = default_bounds;
            n_buckets = sizeof default_bounds / sizeof default_bounds[0];
        }
        f->bounds = malloc(n_buckets * sizeof *f->bounds);
        if (!f->bounds) goto fail_f;
        memcpy(f->bounds, buckets, n_buckets * sizeof *f->bounds);
        f->n_bounds = n_buckets;
    }
    if (m->n_fams == m->cap_fams) {
        size_t cap = m->cap_fams ? m->cap_fams * 2 : 16;
        vs_metrics_fam **nf = realloc(m->fams, cap * sizeof *nf);
        if (!nf) goto fail_f;
        m->fams = nf;
        m->cap_fams = cap;
    }
    m->fams[m->n_fams++] = f;
    pthread_mutex_unlock(&m->mu);
    return f;
fail_f:
    family_free(f);
fail:
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

vs_metrics_cell *vs_metrics_childv(vs_metrics_fam *f, const char *const *values)
{
    if (!f) return NULL;
    pthread_mutex_lock(&f->mu);
    vs_metrics_cell *c;
    for (c = f->children; c; c = c->next) {
        int i;
        for (i = 0; i < f->n_labels; i++)
            if (strcmp(c->values[i], values[i] ? values[i] : "") != 0) break;
        if (i == f->n_labels) goto out;
    }
    c = calloc(1, sizeof *c);
    if (!c) goto out;
    c->fam = f;
    for (int i = 0; i < f->n_labels; i++) {
        c->values[i] = strdup(values[i] ? values[i] : "");
        if (!c->values[i]) goto fail;
    }
    if (f->type == VS_METRICS_HISTOGRAM) {
        c->buckets = calloc(f->n_bounds + 1, sizeof *c->buckets);
        if (!c->buckets) goto fail;
    }
    *f->tail = c;
    f->tail = &c->next;
out:
    pthread_mutex_unlock(&f->mu);
    return c;
fail:
    for (int i = 0; i < f->n_labels; i++) free(c->values[i]);
    free(c);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

vs_metrics_cell *vs_metrics_child(vs_metrics_fam *f, ...)
{
    if (!f) return NULL;
    const char *values[MAX_LABELS] = {0};
    va_list ap;
    va_start(ap, f);
    for (int i = 0; i < f->n_labels; i++) values[i] = va_arg(ap, const char *);
    va_end(ap);
    return vs_metrics_childv(f, values);
}

void vs_metrics_add(vs_metrics_cell *c, double v)
{
    if (!c) return;
    pthread_mutex_lock(&c->fam->mu);
    c->value += v;
    pthread_mutex_unlock(&c->fam->mu);
}

void vs_metrics_set(vs_metrics_cell *c, double v)
{
    if (!c) return;
    pthread_mutex_lock(&c->fam->mu);
    c->value = v;
    pthread_mutex_unlock(&c->fam->mu);
}

void vs_metrics_observe(vs_metrics_cell *c, double v)
{
    if (!c || !c->buckets) return;
    vs_metrics_fam *f = c->fam;
    size_t b = 0;
    while (b < f->n_bounds && v > f->bounds[b]) b++;
    pthread_mutex_lock(&f->mu);
    c->buckets[b]++;
    c->count++;
    c->sum += v;
    pthread_mutex_unlock(&f->mu);
}

void vs_metrics_add_collector(vs_metrics *m, void (*fn)(vs_metrics *m, void *ctx), void *ctx)
{
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    if (m->n_cols == m->cap_cols) {
        size_t cap = m->cap_cols ? m->cap_cols * 2 : 8;
        collector *nc = realloc(m->cols, cap * sizeof *nc);
        if (!nc) {
            pthread_mutex_unlock(&m->mu);
            return;
        }
        m->cols = nc;
        m->cap_cols = cap;
    }
    m->cols[m->n_cols++] = (collector){fn, ctx};
    pthread_mutex_unlock(&m->mu);
}

/* ===== Rendering ===== */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 1;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* Label values escape backslash, double quote and newline. */
static void sb_labels(sbuf *b, const vs_metrics_fam *f, const vs_metrics_cell *c, const char *le)
{
    if (f->n_labels == 0 && !le) return;
    sb_printf(b, "{");
    for (int i = 0; i < f->n_labels; i++) {
        sb_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
        for (const char *p = c->values[i]; *p; p++) {
            if (*p == '\\') sb_printf(b, "\\\\");
            else if (*p == '"') sb_printf(b, "\\\"");
            else if (*p == '\n') sb_printf(b, "\\n");
            else sb_printf(b, "%c", *p);
        }
        sb_printf(b, "\"");
    }
    if (le) sb_printf(b, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    sb_printf(b, "}");
}

static void sb_value(sbuf *b, double v)
{
    if (isnan(v)) sb_printf(b, " NaN\n");
    else if (isinf(v)) sb_printf(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else if (v == (double)(long long)v && fabs(v) < 1e15) sb_printf(b, " %lld\n", (long long)v);
    else sb_printf(b, " %.9g\n", v);
}

char *vs_metrics_render(vs_metrics *m, size_t *len)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    sbuf b = {.cap = 4096};
    b.p = malloc(b.cap);
    if (!b.p) return NULL;
    b.p[0] = 0;
    pthread_mutex_lock(&m->mu);
    size_t n_cols = m->n_cols;
    collector cols[32];
    if (n_cols > 32) n_cols = 32;
    if (n_cols) memcpy(cols, m->cols, n_cols * sizeof *cols);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n_cols; i++) cols[i].fn(m, cols[i].ctx);

    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_fams; i++) {
        vs_metrics_fam *f = m->fams[i];
        pthread_mutex_lock(&f->mu);
        if (f->children) {
            sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
        }
        for (vs_metrics_cell *c = f->children; c; c = c->next) {
            if (f->type != VS_METRICS_HISTOGRAM) {
                sb_printf(&b, "%s", f->name);
                sb_labels(&b, f, c, NULL);
                sb_value(&b, c->value);
                continue;
            }
            unsigned long long cum = 0;
            for (size_t k = 0; k <= f->n_bounds; k++) {
                char le[32];
                cum += c->buckets[k];
                if (k < f->n_bounds) snprintf(le, sizeof le, "%g", f->bounds[k]);
                else snprintf(le, sizeof le, "+Inf");
                sb_printf(&b, "%s_bucket", f->name);
                sb_labels(&b, f, c, le);
                sb_printf(&b, " %llu\n", cum);
            }
            sb_printf(&b, "%s_sum", f->name);
            sb_labels(&b, f, c, NULL);
            sb_value(&b, c->sum);
            sb_printf(&b, "%s_count", f->name);
            sb_labels(&b, f, c, NULL);
            sb_printf(&b, " %llu\n", c->count);
        }
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&m->mu);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
