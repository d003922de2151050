/* status.c: filling a vs_status, and the names of error codes. */
#include "vs_status.h"

#include <stdarg.h>
#include <stdio.h>

vs_err vs_status_set(vs_status *st, vs_err code, const char *fmt, ...)
{
    if (st) {
        va_list ap;
        va_start(ap, fmt);
        st->code = code;
        vsnprintf(st->msg, sizeof st->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void vs_status_clear(vs_status *st)
{
    if (st) {
        st->code = VS_OK;
        st->msg[0] = '\0';
    }
}

const char *vs_err_name(vs_err code)
{
    switch (code) {
    case VS_OK: return "OK";
    case VS_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case VS_ERR_NOT_FOUND: return "NOT_FOUND";
    case VS_ERR_ALREADY_EXISTS: return "ALREADY_EXISTS";
    case VS_ERR_OUT_OF_RANGE: return "OUT_OF_RANGE";
    case VS_ERR_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case VS_ERR_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case VS_ERR_UNAVAILABLE: return "UNAVAILABLE";
    case VS_ERR_DATA_LOSS: return "DATA_LOSS";
    case VS_ERR_IO: return "IO";
    case VS_ERR_UNIMPLEMENTED: return "UNIMPLEMENTED";
    case VS_ERR_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case VS_ERR_INTERNAL: return "INTERNAL";
    }
    return "UNKNOWN";
}
