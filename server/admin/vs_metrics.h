/*
 * vs_metrics.h: a small Prometheus metrics registry that any part of the daemon can feed, and
 * its text rendering for the admin port's /metrics.
 *
 * A family has a name, a help line, a type and fixed label names; its children are created on
 * first use per tuple of label values and live as long as the registry, so a caller may keep the
 * pointer and update it from any thread without a lookup. Collectors run at each scrape to set
 * gauges from state kept elsewhere (rows per collection, applied seq).
 *
 *   vs_metrics_fam *f = vs_metrics_family(reg, "vecscan_rpc_requests_total", "Calls served",
 *                                           VS_METRICS_COUNTER, "method,code", NULL, 0);
 *   vs_metrics_add(vs_metrics_child(f, "Search", "OK"), 1);
 */
#ifndef VS_METRICS_H
#define VS_METRICS_H

#include <stddef.h>

typedef struct vs_metrics vs_metrics;
typedef struct vs_metrics_fam vs_metrics_fam;
typedef struct vs_metrics_cell vs_metrics_cell;

typedef enum vs_metrics_type { VS_METRICS_COUNTER = 0, VS_METRICS_GAUGE, VS_METRICS_HISTOGRAM } vs_metrics_type;

/* A new, empty registry; the caller's, freed with vs_metrics_destroy. NULL when out of memory. */
vs_metrics *vs_metrics_create(void);
void vs_metrics_destroy(vs_metrics *m);

/* The family `name` (created on first call; a later call with the same name returns it). labels:
 * comma-separated label names, "" or NULL for none (at most 4). buckets: ascending upper bounds
 * for a histogram (copied; NULL: a latency ladder in seconds from 50 us to 10 s). */
vs_metrics_fam *vs_metrics_family(vs_metrics *m, const char *name, const char *help,
                                    vs_metrics_type type, const char *labels,
                                    const double *buckets, size_t n_buckets);
/* The child for these label values (as many as the family has labels). Thread-safe. NULL only
 * when out of memory; the update functions accept NULL and do nothing. */
vs_metrics_cell *vs_metrics_child(vs_metrics_fam *f, ...);
/* Same, the values as an array. */
vs_metrics_cell *vs_metrics_childv(vs_metrics_fam *f, const char *const *values);

void vs_metrics_add(vs_metrics_cell *c, double v);     /* counter or gauge */
void vs_metrics_set(vs_metrics_cell *c, double v);     /* gauge (or a counter mirrored from elsewhere) */
void vs_metrics_observe(vs_metrics_cell *c, double v); /* histogram */

/* fn(m, ctx) runs at the start of every vs_metrics_render, to set gauges. */
void vs_metrics_add_collector(vs_metrics *m, void (*fn)(vs_metrics *m, void *ctx), void *ctx);

/* The registry in Prometheus text format 0.0.4; malloc'd, the caller's; *len its length. */
char *vs_metrics_render(vs_metrics *m, size_t *len);

#endif
