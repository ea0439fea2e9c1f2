/* buf.h — the byte buffer an OTLP request is encoded into, and its gzip compression. */
#ifndef BAKERY_OTEL_BUF_H
#define BAKERY_OTEL_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define OTLP_BODY_MAX (8 * 1024 * 1024) /* an encoded request larger than this is refused */

/* Bytes of v as a protobuf varint. */
static inline size_t pb_varint_len(uint64_t v)
{
	size_t n = 1;

	for (; v > 0x7f; v >>= 7)
		n++;
	return n;
}

/* Writes v at p as a protobuf varint (pb_varint_len(v) bytes); returns the byte after it. */
static inline uint8_t *pb_put_varint(uint8_t *p, uint64_t v)
{
	for (; v > 0x7f; v >>= 7)
		*p++ = (uint8_t)(v | 0x80);
	*p++ = (uint8_t)v;
	return p;
}

/* A byte buffer capped at OTLP_BODY_MAX; err (-ENOMEM or -E2BIG) sticks after a failed write. */
struct otlp_buf {
	uint8_t *data;
	size_t len, cap;
	int err;
};

/* Makes room for extra more bytes. Returns 0, or b->err. */
int otlp_buf_reserve(struct otlp_buf *b, size_t extra);

/* Appends n bytes of p; a failure only sets b->err. */
void otlp_buf_put(struct otlp_buf *b, const void *p, size_t n);

/* Where the next n bytes go (advance b->len past what is written), or NULL after setting
 * b->err: for encoders writing a small item whose largest size is known. */
static inline uint8_t *otlp_buf_room(struct otlp_buf *b, size_t n)
{
	if (b->err || (b->cap - b->len < n && otlp_buf_reserve(b, n) < 0))
		return NULL;
	return b->data + b->len;
}

/* Copies n bytes from src to p and returns p + n: up to 32 bytes (most keys and values) with
 * overlapping moves and no call. */
static inline uint8_t *otlp_bytes_copy(uint8_t *p, const void *src, size_t n)
{
	const uint8_t *s = src;

	if (n > 16 && n <= 32) {
		uint64_t a, b, c, d;
		memcpy(&a, s, 8);
		memcpy(&b, s + 8, 8);
		memcpy(&c, s + n - 16, 8);
		memcpy(&d, s + n - 8, 8);
		memcpy(p, &a, 8);
		memcpy(p + 8, &b, 8);
		memcpy(p + n - 16, &c, 8);
		memcpy(p + n - 8, &d, 8);
	} else if (n >= 8 && n <= 16) {
		uint64_t a, b;
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(p, &a, 8);
		memcpy(p + n - 8, &b, 8);
	} else if (n >= 4 && n < 8) {
		uint32_t a, b;
		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		memcpy(p, &a, 4);
		memcpy(p + n - 4, &b, 4);
	} else if (n < 4) {
		for (size_t i = 0; i < n; i++)
			p[i] = s[i];
	} else {
		memcpy(p, s, n);
	}
	return p + n;
}

/* Replaces in with its gzip compression. Returns 0, -ENOMEM, -E2BIG or -EIO. */
int otlp_gzip(struct otlp_buf *in);

/* Frees the buffer's memory and zeroes it. */
void otlp_buf_free(struct otlp_buf *b);

#endif
