/* buf.h — the byte buffer an OTLP request is encoded into, and its gzip compression. */
#ifndef BAKERY_OTEL_BUF_H
#define BAKERY_OTEL_BUF_H

#include <stddef.h>
#include <stdint.h>

#define OTLP_BODY_MAX (8 * 1024 * 1024) /* an encoded request larger than this is refused */

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

/* Replaces in with its gzip compression. Returns 0, -ENOMEM, -E2BIG or -EIO. */
int otlp_gzip(struct otlp_buf *in);

/* Frees the buffer's memory and zeroes it. */
void otlp_buf_free(struct otlp_buf *b);

#endif
