/* tracecontext.h — W3C traceparent, tracestate and baggage: bounded parsing and formatting. */
#ifndef BAKERY_OTEL_TRACECONTEXT_H
#define BAKERY_OTEL_TRACECONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACECONTEXT_TRACEPARENT_LEN 55  /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TRACECONTEXT_STATE_MAX       512 /* tracestate kept, in characters */
#define TRACECONTEXT_STATE_ENTRIES   32  /* tracestate list-members */
#define TRACECONTEXT_BAGGAGE_MAX     512 /* baggage passed through (whole members), in characters */
#define TRACECONTEXT_FLAG_SAMPLED    0x01

/* One header field's value: len bytes at s, not necessarily NUL-terminated. */
struct trace_field {
	const char *s;
	size_t len;
};

/* A span context as it travels between processes; plain data. Invalid when an id is zero. */
struct trace_context {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t flags; /* trace-flags; bit 0 = sampled */
	bool remote;   /* extracted from another process */
	char tracestate[TRACECONTEXT_STATE_MAX + 1];
	char baggage[TRACECONTEXT_BAGGAGE_MAX + 1];
};

/* True when ctx is not NULL and both ids are non-zero. */
bool tracecontext_is_valid(const struct trace_context *ctx);

/* Parses a traceparent of len bytes (surrounding blanks ignored) into ctx's ids and flags.
 * Version 00 is exactly 55 bytes; a higher one is read by its first four fields; version ff,
 * upper-case hex and zero ids are invalid. Returns 0, or -EINVAL with the ids zeroed. */
int tracecontext_parse_traceparent(const char *s, size_t len, struct trace_context *ctx);

/* Writes "00-<trace id>-<span id>-<flags>" into out. Returns 0, or -EINVAL (out "") if invalid. */
int tracecontext_format_traceparent(const struct trace_context *ctx,
                                    char out[TRACECONTEXT_TRACEPARENT_LEN + 1]);

/* Writes the tracestate made of n header fields (one list, in order: RFC 9110 5.3), normalized
 * ("k=v,k=v": empty members and blanks around members dropped, a repeated key's later members
 * dropped), into out (cap bytes); over 512 characters, members longer than 128 go first, then
 * members from the end. Returns 0, or -EINVAL (out "") on a malformed member or over 32
 * members. */
int tracecontext_parse_tracestate(const struct trace_field *fields, size_t n, char *out,
                                  size_t cap);

/* Writes the baggage made of n header fields (one list, in order), members trimmed and empty
 * ones dropped, into out (cap bytes): whole members in order while they fit in
 * min(cap - 1, TRACECONTEXT_BAGGAGE_MAX), a member that does not fit left out. Returns 0, or
 * -EINVAL (out "") on control or non-ASCII bytes. */
int tracecontext_parse_baggage(const struct trace_field *fields, size_t n, char *out, size_t cap);

/* Writes n bytes as 2n lowercase hex digits and a NUL into out. */
void tracecontext_hex(const uint8_t *bytes, size_t n, char *out);

#endif
