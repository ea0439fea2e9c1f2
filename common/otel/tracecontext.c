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

void tracecontext_hex(const uint8_t *bytes, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[bytes[i] >> 4];
		out[2 * i + 1] = hexdigits[bytes[i] & 15];
	}
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

static bool is_lcalpha(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_keychar(char c)
{
	return c && strchr("abcdefghijklmnopqrstuvwxyz0123456789_-*/", c);
}

/* key = lcalpha 0*255(keychar) / (lcalpha/DIGIT) 0*240(keychar) "@" lcalpha 0*13(keychar) */
static bool valid_key(const char *k, size_t n)
{
	const char *at = memchr(k, '@', n);
	size_t tn = at ? (size_t)(at - k) : n; /* the tenant, or the whole key */

	if (tn == 0 || tn > (at ? 241 : 256) ||
	    !(is_lcalpha(k[0]) || (at && k[0] >= '0' && k[0] <= '9')))
		return false;
	if (at && (n - tn - 1 == 0 || n - tn - 1 > 14 || !is_lcalpha(at[1])))
		return false;
	for (size_t i = 1; i < n; i++)
		if (i != tn && !is_keychar(k[i]))
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

struct member {
	const char *p;
	size_t len;    /* of "key=value" */
	size_t keylen; /* of "key" */
	bool keep;
};

int tracecontext_parse_tracestate(const char *s, size_t len, char *out, size_t cap)
{
	struct member m[TRACECONTEXT_STATE_ENTRIES];
	size_t n = 0, total = 0, used = 0;
	const char *end;

	if (cap == 0)
		return -EINVAL;
	out[0] = '\0';
	if (!s)
		return 0;
	end = s + len;
	while (s <= end) {
		const char *comma = memchr(s, ',', (size_t)(end - s)), *eq;
		const char *mend = comma ? comma : end, *p = s;
		size_t mlen = (size_t)(mend - s);

		trim(&p, &mlen);
		if (mlen > 0) {
			if (n == TRACECONTEXT_STATE_ENTRIES)
				return -EINVAL;
			eq = memchr(p, '=', mlen);
			if (!eq || !valid_key(p, (size_t)(eq - p)) ||
			    !valid_value(eq + 1, mlen - (size_t)(eq - p) - 1))
				return -EINVAL;
			m[n] = (struct member){p, mlen, (size_t)(eq - p), true};
			for (size_t i = 0; i < n; i++)
				if (m[i].keylen == m[n].keylen && !memcmp(m[i].p, p, m[n].keylen))
					return -EINVAL;
			total += mlen + (n > 0);
			n++;
		}
		if (!comma)
			break;
		s = comma + 1;
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

int tracecontext_parse_baggage(const char *s, size_t len, char *out, size_t cap)
{
	if (cap == 0)
		return -EINVAL;
	out[0] = '\0';
	if (!s)
		return 0;
	trim(&s, &len);
	if (len > TRACECONTEXT_BAGGAGE_MAX || len + 1 > cap)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((s[i] < 0x20 && s[i] != '\t') || s[i] > 0x7e)
			return -EINVAL;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}
