/*
 * vs_log.h: one line per event on stderr, with a level:
 *   2026-01-02T03:04:05.678Z INFO rpc: listening on 127.0.0.1:7070
 * Thread-safe (one write(2) per line). Lines below the set level are dropped.
 */
#ifndef VS_LOG_H
#define VS_LOG_H

typedef enum vs_log_level { VS_LOG_DEBUG = 0, VS_LOG_INFO, VS_LOG_WARN, VS_LOG_ERROR } vs_log_level;

void vs_log_set_level(vs_log_level level);
/* Parses "debug", "info", "warn", "error". */
int vs_log_parse_level(const char *s, vs_log_level *out);
void vs_log(vs_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define VS_LOGD(mod, ...) vs_log(VS_LOG_DEBUG, mod, __VA_ARGS__)
#define VS_LOGI(mod, ...) vs_log(VS_LOG_INFO, mod, __VA_ARGS__)
#define VS_LOGW(mod, ...) vs_log(VS_LOG_WARN, mod, __VA_ARGS__)
#define VS_LOGE(mod, ...) vs_log(VS_LOG_ERROR, mod, __VA_ARGS__)

#endif
