/*
 * vs_dlog.h: one line per event on stderr, with a level:
 *   2026-01-02T03:04:05.678Z INFO rpc: listening on 127.0.0.1:7070
 * Thread-safe (one write(2) per line). Lines below the set level are dropped.
 */
#ifndef VS_DLOG_H
#define VS_DLOG_H

typedef enum vs_dlog_level { VS_DLOG_DEBUG = 0, VS_DLOG_INFO, VS_DLOG_WARN, VS_DLOG_ERROR } vs_dlog_level;

void vs_dlog_set_level(vs_dlog_level level);
/* Parses "debug", "info", "warn", "error". */
int vs_dlog_parse_level(const char *s, vs_dlog_level *out);
void vs_dlog(vs_dlog_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define VS_LOGD(mod, ...) vs_dlog(VS_DLOG_DEBUG, mod, __VA_ARGS__)
#define VS_LOGI(mod, ...) vs_dlog(VS_DLOG_INFO, mod, __VA_ARGS__)
#define VS_LOGW(mod, ...) vs_dlog(VS_DLOG_WARN, mod, __VA_ARGS__)
#define VS_LOGE(mod, ...) vs_dlog(VS_DLOG_ERROR, mod, __VA_ARGS__)

#endif
