/*
 * admin.c: /metrics, /healthz and /readyz over evhttp (see vs_admin.h).
 */
#include "vs_admin.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

struct vs_admin {
    struct evhttp *http;
    vs_metrics *metrics;
    const atomic_bool *ready;
    vs_metrics_cell *scrapes;
};

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    vs_admin *a = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (!path) path = "/";
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, 405, "only GET is served");
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        reply_text(req, 200, "OK", "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        if (atomic_load(a->ready)) reply_text(req, 200, "OK", "ready\n");
        else reply_text(req, 503, "Service Unavailable", "not ready: recovering or shutting down\n");
    } else if (strcmp(path, "/metrics") == 0) {
        vs_metrics_add(a->scrapes, 1);
        size_t len;
        char *text = vs_metrics_render(a->metrics, &len);
        if (!text) {
            evhttp_send_error(req, 500, "out of memory");
            return;
        }
        struct evbuffer *b = evbuffer_new();
        if (!b) {
            free(text);
            evhttp_send_error(req, 500, "out of memory");
            return;
        }
        evbuffer_add(b, text, len);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
        free(text);
    } else {
        evhttp_send_error(req, 404, "try /metrics, /healthz or /readyz");
    }
}

vs_err vs_admin_start(struct event_base *base, const char *host, int port, vs_metrics *metrics,
                      const atomic_bool *ready, int *bound_port, vs_admin **out, vs_status *st)
{
    vs_admin *a = calloc(1, sizeof *a);
    if (!a) return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    a->metrics = metrics;
    a->ready = ready;
    a->http = evhttp_new(base);
    if (!a->http) {
        free(a);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "evhttp_new failed");
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(a->http, 16384);
    evhttp_set_max_body_size(a->http, 4096);
    evhttp_set_timeout(a->http, 30);
    evhttp_set_gencb(a->http, on_request, a);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(a->http, host, (ev_uint16_t)port);
    if (!bs) {
        int e = errno;
        evhttp_free(a->http);
        free(a);
        return vs_status_set(st, VS_ERR_IO, "cannot listen on %s:%d (admin port): %s", host, port,
                             strerror(e));
    }
    if (bound_port) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl);
        *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                               : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    a->scrapes = vs_metrics_child(vs_metrics_family(metrics, "vecscan_admin_scrapes_total",
                                                   "Scrapes of /metrics", VS_METRICS_COUNTER, "", NULL, 0));
    *out = a;
    return VS_OK;
}

void vs_admin_stop(vs_admin *a)
{
    if (!a) return;
    evhttp_free(a->http);
    free(a);
}
