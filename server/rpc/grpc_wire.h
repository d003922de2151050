/*
 * grpc_wire.h: the byte-level pieces of gRPC that need no socket: the length-prefixed message
 * reader, grpc-timeout parsing, grpc-message percent-encoding, and the bearer token compare. Kept
 * apart so the unit tests and the fuzzer reach them directly.
 */
#ifndef VS_GRPC_WIRE_H
#define VS_GRPC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Incremental reader of gRPC messages: 1 byte compressed flag, 4 bytes big-endian length, then
 * the message. Feed it bytes in any pieces; it buffers one message at most.
 */
typedef struct vs_grpc_reader {
    uint8_t hdr[5];
    uint32_t hdr_have;
    uint8_t *buf;   /* the message being read (owned) */
    size_t len;     /* its length from the prefix */
    size_t have;    /* bytes of it so far */
    size_t cap;     /* bytes allocated in buf */
    size_t max;     /* the size limit */
    bool in_msg;    /* a prefix was read and the body is pending */
} vs_grpc_reader;

typedef enum vs_grpc_read_result {
    VS_GRPC_READ_MORE = 0,   /* everything consumed, no message complete */
    VS_GRPC_READ_MESSAGE,    /* a message is complete: *msg, *msg_len (caller owns *msg) */
    VS_GRPC_READ_TOO_LARGE,  /* the prefix announces more than max bytes */
    VS_GRPC_READ_COMPRESSED, /* the compressed flag is set (identity only is served) */
    VS_GRPC_READ_BAD_FLAG,   /* a flag byte other than 0 or 1 */
    VS_GRPC_READ_NOMEM
} vs_grpc_read_result;

void vs_grpc_reader_init(vs_grpc_reader *r, size_t max);
void vs_grpc_reader_free(vs_grpc_reader *r);
/* Consumes bytes from data[0..n) up to the end of the next message (*used says how many). On
 * VS_GRPC_READ_MESSAGE, *msg (malloc'd, the caller's; NULL when the message is empty) and *msg_len
 * hold it; call again with the rest. Errors are final. */
vs_grpc_read_result vs_grpc_reader_feed(vs_grpc_reader *r, const uint8_t *data, size_t n,
                                        size_t *used, uint8_t **msg, size_t *msg_len);
/* Whether the reader sits between messages (so an end of stream here is clean). */
bool vs_grpc_reader_idle(const vs_grpc_reader *r);
/* Bytes of the unfinished message so far (prefix included), for error messages. */
size_t vs_grpc_reader_partial(const vs_grpc_reader *r);

/* Parses a grpc-timeout value ("100m", "5S", 1..8 digits and one of H M S m u n) into ns. */
bool vs_grpc_parse_timeout(const char *v, size_t n, uint64_t *ns);

/* Percent-encodes msg as grpc-message wants (bytes outside 0x20..0x7e and '%') into out (size
 * cap, NUL-terminated, truncated at a character boundary). Returns the length. */
size_t vs_grpc_percent_encode(const char *msg, char *out, size_t cap);

/* Constant-time equality of a[0..an) and b[0..bn) (the time depends on the lengths only). */
bool vs_ct_equal(const void *a, size_t an, const void *b, size_t bn);

#endif
