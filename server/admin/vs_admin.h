/*
 * vs_admin.h: the admin port, HTTP/1.1 by libevent's evhttp on the daemon's loop:
 *   GET /metrics  Prometheus text (the vs_metrics registry)
 *   GET /healthz  200 "ok" while the loop serves
 *   GET /readyz   200 "ready" once recovery is done (*ready), else 503
 */
#ifndef VS_ADMIN_H
#define VS_ADMIN_H

#include <stdatomic.h>

#include "vs_metrics.h"
#include "vs_status.h"

struct event_base;
typedef struct vs_admin vs_admin;

/* Listens on host:port (0: a free port, said in *bound_port). The caller keeps metrics and ready,
 * which must outlive the admin server. *out is the caller's, freed with vs_admin_stop. */
vs_err vs_admin_start(struct event_base *base, const char *host, int port, vs_metrics *metrics,
                      const atomic_bool *ready, int *bound_port, vs_admin **out, vs_status *st);
void vs_admin_stop(vs_admin *a);

#endif
