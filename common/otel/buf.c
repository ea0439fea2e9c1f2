/* buf.c — the growable, capped byte buffer the encoders write into, and gzip over it. */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int otlp_buf_reserve(struct otlp_buf *b, size_t extra)
{
	size_t cap;
	uint8_t *p;

	if (b->err)
		return b->err;
	if (extra > OTLP_BODY_MAX - b->len)
		return b->err = -E2BIG;
	if (b->len + extra <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 1024;
	while (cap < b->len + extra)
		cap *= 2;
	if (cap > OTLP_BODY_MAX)
		cap = OTLP_BODY_MAX;
	p = realloc(b->data, cap);
	if (!p)
		return b->err = -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

void otlp_buf_put(struct otlp_buf *b, const void *p, size_t n)
{
	if (n == 0 || otlp_buf_reserve(b, n) < 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void otlp_buf_free(struct otlp_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int otlp_gzip(struct otlp_buf *in)
{
	struct otlp_buf out = {0};
	z_stream z = {0};
	int rc;

	if (in->err)
		return in->err;
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	if ((rc = otlp_buf_reserve(&out, deflateBound(&z, in->len))) == 0) {
		z.next_in = in->data;
		z.avail_in = (uInt)in->len;
		z.next_out = out.data;
		z.avail_out = (uInt)out.cap;
		rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : -EIO;
		out.len = out.cap - z.avail_out;
	}
	deflateEnd(&z);
	if (rc < 0) {
		otlp_buf_free(&out);
		return rc;
	}
	otlp_buf_free(in);
	*in = out;
	return 0;
}
