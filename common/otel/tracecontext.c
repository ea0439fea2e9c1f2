/* tracecontext.c — W3C traceparent, tracestate and baggage: pure functions over (bytes, length). */
#include "tracecontext.h"

#include <errno.h>
#include <string.h>

#define STATE_LONG_MEMBER 128 /* members this long are dropped first when truncating */

static const char hexdigits[] = "0123456789abcdef";

bool tracecontext_is_valid(const struct trace_context *ctx)
{
	static const uint8_t zero[16];

	return ctx && memcmp(ctx->trace_id, zero, 16) != 0 && memcmp(ctx->span_id, zero, 8) != 0;
}

/* Every byte's two hex digits: one 2-byte copy per byte. */
static const char hexpairs[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

void tracecontext_hex(const uint8_t *bytes, size_t n, char *out)
{
	size_t i = 0;

	for (; i + 4 <= n; i += 4) { /* 4 bytes a turn: an id takes 2 or 4 */
		memcpy(out + 2 * i, hexpairs + 2 * (size_t)bytes[i], 2);
		memcpy(out + 2 * i + 2, hexpairs + 2 * (size_t)bytes[i + 1], 2);
		memcpy(out + 2 * i + 4, hexpairs + 2 * (size_t)bytes[i + 2], 2);
		memcpy(out + 2 * i + 6, hexpairs + 2 * (size_t)bytes[i + 3], 2);
	}
	for (; i < n; i++)
		memcpy(out + 2 * i, hexpairs + 2 * (size_t)bytes[i], 2);
	out[2 * n] = '\0';
}

/* Decodes 2n lowercase hex digits into n bytes. Returns 0 or -EINVAL. */
static int unhex(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		const char *hi = memchr(hexdigits, s[2 * i], 16),
		           *lo = memchr(hexdigits, s[2 * i + 1], 16);
		if (!hi || !lo)
			return -EINVAL;
		out[i] = (uint8_t)((hi - hexdigits) << 4 | (lo - hexdigits));
	}
	return 0;
}

/* Narrows [*s, *s + *len) by the spaces and tabs at both ends. */
static void trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

int tracecontext_parse_traceparent(const char *s, size_t len, struct trace_context *ctx)
{
	const size_t n = TRACECONTEXT_TRACEPARENT_LEN;
	uint8_t version, flags;

	if (s)
		trim(&s, &len);
	if (!s || len < n || unhex(s, 1, &version) < 0 || version == 0xff ||
	    (version == 0 && len != n) || (len > n && s[n] != '-') || s[2] != '-' || s[35] != '-' ||
	    s[52] != '-' || unhex(s + 3, 16, ctx->trace_id) < 0 ||
	    unhex(s + 36, 8, ctx->span_id) < 0 || unhex(s + 53, 1, &flags) < 0 ||
	    !tracecontext_is_valid(ctx)) {
		memset(ctx, 0, offsetof(struct trace_context, remote)); /* the ids and flags */
		return -EINVAL;
	}
	/* Only the sampled flag is defined; unknown flags are not passed on. */
	ctx->flags = flags & TRACECONTEXT_FLAG_SAMPLED;
	return 0;
}

int tracecontext_format_traceparent(const struct trace_context *ctx,
                                    char out[TRACECONTEXT_TRACEPARENT_LEN + 1])
{
	out[0] = '\0';
	if (!tracecontext_is_valid(ctx))
		return -EINVAL;
	memcpy(out, "00-", 3);
	tracecontext_hex(ctx->trace_id, 16, out + 3);
	out[35] = '-';
	tracecontext_hex(ctx->span_id, 8, out + 36);
	out[52] = '-';
	tracecontext_hex(&ctx->flags, 1, out + 53);
	return 0;
}

static bool is_keychar(char c)
{
	return c && strchr("abcdefghijklmnopqrstuvwxyz0123456789_-*/@", c);
}

/* key = (lcalpha / DIGIT) 0*255(keychar); keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
 * (W3C Trace Context Level 2: '@' anywhere after the first character). */
static bool valid_key(const char *k, size_t n)
{
	if (n == 0 || n > 256 || k[0] == '@')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_keychar(k[i]))
			return false;
	return true;
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-7E except ',' '=' */
static bool valid_value(const char *v, size_t n)
{
	if (n == 0 || n > 256 || v[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=')
			return false;
	return true;
}

/* Walks the comma-separated members of a list split over several header fields. */
struct members {
	const struct trace_field *f;
	size_t n, i; /* fields, and the one being read */
	size_t pos;  /* in field i */
};

/* The next member, trimmed of blanks, in *p and *len (maybe empty). Returns false at the end. */
static bool member_next(struct members *it, const char **p, size_t *len)
{
	const char *s, *comma;
	size_t left;

	while (it->i < it->n && (!it->f[it->i].s || it->pos > it->f[it->i].len)) {
		it->i++;
		it->pos = 0;
	}
	if (it->i == it->n)
		return false;
	s = it->f[it->i].s + it->pos;
	left = it->f[it->i].len - it->pos;
	comma = memchr(s, ',', left);
	*p = s;
	*len = comma ? (size_t)(comma - s) : left;
	it->pos += *len + 1; /* past the comma, or past the end: the next field */
	trim(p, len);
	return true;
}

struct member {
	const char *p;
	size_t len; /* of "key=value" */
	bool keep;
};

int tracecontext_parse_tracestate(const struct trace_field *fields, size_t nf, char *out,
                                  size_t cap)
{
	struct member m[TRACECONTEXT_STATE_ENTRIES];
	struct members it = {fields, fields ? nf : 0, 0, 0};
	size_t n = 0, count = 0, total = 0, used = 0, mlen;
	const char *p, *eq;

	if (cap == 0)
		return -EINVAL;
	out[0] = '\0';
	while (member_next(&it, &p, &mlen)) {
		size_t keylen;
		bool dup = false;
		if (mlen == 0)
			continue;
		if (++count > TRACECONTEXT_STATE_ENTRIES)
			return -EINVAL;
		eq = memchr(p, '=', mlen);
		keylen = eq ? (size_t)(eq - p) : 0;
		if (!eq || !valid_key(p, keylen) || !valid_value(eq + 1, mlen - keylen - 1))
			return -EINVAL;
		for (size_t i = 0; i < n && !dup; i++) /* a repeated key: the left-most stays */
			dup = m[i].len > keylen && m[i].p[keylen] == '=' &&
			      !memcmp(m[i].p, p, keylen);
		if (dup)
			continue;
		m[n++] = (struct member){p, mlen, true};
		total += mlen + (n > 1);
	}
	/* Truncate to the propagation limit: long members first, then from the end. */
	for (size_t j = 0; j < 2 * n && total > TRACECONTEXT_STATE_MAX; j++) {
		size_t i = j < n ? j : 2 * n - 1 - j;
		if (m[i].keep && (j >= n || m[i].len > STATE_LONG_MEMBER)) {
			m[i].keep = false;
			total -= m[i].len + 1 < total ? m[i].len + 1 : total;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!m[i].keep)
			continue;
		size_t need = m[i].len + (used > 0);
		if (used + need + 1 > cap)
			break;
		if (used > 0)
			out[used++] = ',';
		memcpy(out + used, m[i].p, m[i].len);
		used += m[i].len;
	}
	out[used] = '\0';
	return 0;
}

int tracecontext_parse_baggage(const struct trace_field *fields, size_t nf, char *out, size_t cap)
{
	struct members it = {fields, fields ? nf : 0, 0, 0};
	size_t used = 0, len, room;
	const char *p;

	if (cap == 0)
		return -EINVAL;
	out[0] = '\0';
	room = cap - 1 < TRACECONTEXT_BAGGAGE_MAX ? cap - 1 : TRACECONTEXT_BAGGAGE_MAX;
	while (member_next(&it, &p, &len)) {
		for (size_t i = 0; i < len; i++) {
			if ((p[i] < 0x20 && p[i] != '\t') || p[i] > 0x7e) {
				out[0] = '\0';
				return -EINVAL;
			}
		}
		if (len == 0 || used + (used > 0) + len > room)
			continue; /* never part of a member */
		if (used > 0)
			out[used++] = ',';
		memcpy(out + used, p, len);
		used += len;
		out[used] = '\0';
	}
	return 0;
}
