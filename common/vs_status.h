/*
 * vs_status.h: the error code every vecscan function returns, and the status that carries its
 * message.
 *
 * A function that can fail returns a vs_err and, when it fails, fills the caller's vs_status with
 * the same code and one line that names the bad input ("field 'img': dim 785 does not match 784").
 * The caller may pass NULL for the status when it only wants the code. Nothing below main() exits
 * or aborts on bad input.
 */
#ifndef VS_STATUS_H
#define VS_STATUS_H

#include <stddef.h>

/* Codes follow gRPC's meanings so the server maps them one to one. */
typedef enum vs_err {
    VS_OK = 0,
    VS_ERR_INVALID_ARGUMENT,  /* the caller's input is wrong: dims, NaN, unknown field, syntax */
    VS_ERR_NOT_FOUND,         /* a named thing does not exist */
    VS_ERR_ALREADY_EXISTS,    /* a named thing exists already */
    VS_ERR_OUT_OF_RANGE,      /* a value past a limit that may move (min_seq above the last ack) */
    VS_ERR_RESOURCE_EXHAUSTED,/* out of memory, a queue is full, a limit was hit */
    VS_ERR_FAILED_PRECONDITION,/* the call is valid but not in this state (read-only engine) */
    VS_ERR_UNAVAILABLE,       /* try again later: recovering, disk full */
    VS_ERR_DATA_LOSS,         /* stored data is corrupt or truncated */
    VS_ERR_IO,                /* the operating system refused a read or write */
    VS_ERR_UNIMPLEMENTED,     /* valid, but this build or backend cannot do it */
    VS_ERR_DEADLINE_EXCEEDED, /* the caller's deadline passed before the work was done */
    VS_ERR_INTERNAL           /* a bug in vecscan, never the caller's mistake */
} vs_err;

#define VS_STATUS_MSG_LEN 256

typedef struct vs_status {
    vs_err code;
    char msg[VS_STATUS_MSG_LEN];
} vs_status;

/* Sets st (when not NULL) to code and the printf-formatted message; returns code. */
vs_err vs_status_set(vs_status *st, vs_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resets st (when not NULL) to VS_OK with an empty message. */
void vs_status_clear(vs_status *st);

/* A short upper-case name for code, e.g. "INVALID_ARGUMENT". Never NULL. */
const char *vs_err_name(vs_err code);

#endif
