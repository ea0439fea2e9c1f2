/* test_otlp.c — OTLP encoders: protobuf read back with a minimal decoder, JSON field names, gzip.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <zlib.h>

#include "check.h"
#include "otel/env.h"
#include "otel/exporter.h"

/* ---- a minimal protobuf reader ------------------------------------------------------- */

struct field {
	unsigned wire;
	uint64_t v;       /* varint and fixed values */
	const uint8_t *p; /* length-delimited */
	size_t len;
};

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* Finds the index-th occurrence of field in the message [p, p + n). Returns 1, 0 (absent), or
 * -1 when the message is malformed. */
static int pb_get(const uint8_t *p, size_t n, unsigned field, int index, struct field *out)
{
	const uint8_t *end = p + n;

	while (p < end) {
		uint64_t tag, v = 0, len = 0;
		const uint8_t *data = NULL;
		if (read_varint(&p, end, &tag) < 0)
			return -1;
		switch (tag & 7) {
		case 0:
			if (read_varint(&p, end, &v) < 0)
				return -1;
			break;
		case 1:
		case 5: {
			int k = (tag & 7) == 1 ? 8 : 4;
			if (end - p < k)
				return -1;
			for (int i = 0; i < k; i++)
				v |= (uint64_t)p[i] << (8 * i);
			p += k;
			break;
		}
		case 2:
			if (read_varint(&p, end, &len) < 0 || len > (uint64_t)(end - p))
				return -1;
			data = p;
			p += len;
			break;
		default:
			return -1;
		}
		if ((tag >> 3) == field && index-- == 0) {
			*out = (struct field){(unsigned)(tag & 7), v, data, (size_t)len};
			return 1;
		}
	}
	return 0;
}

/* The index-th sub-message (or bytes) of field in f, checked to be length-delimited. */
static struct field sub(struct field f, unsigned field, int index)
{
	struct field out = {0};

	if (pb_get(f.p, f.len, field, index, &out) != 1 || out.wire != 2)
		memset(&out, 0, sizeof(out));
	return out;
}

static uint64_t num(struct field f, unsigned field)
{
	struct field out = {0};

	return pb_get(f.p, f.len, field, 0, &out) == 1 ? out.v : 0;
}

static bool str_is(struct field f, const char *s)
{
	return f.p && f.len == strlen(s) && memcmp(f.p, s, f.len) == 0;
}

/* The AnyValue of the attribute named key among the KeyValues in field of msg. */
static struct field attr(struct field msg, unsigned field, const char *key)
{
	struct field kv, none = {0};

	for (int i = 0; (kv = sub(msg, field, i)).p; i++)
		if (str_is(sub(kv, 1, 0), key))
			return sub(kv, 2, 0);
	return none;
}

/* ---- a span to encode ---------------------------------------------------------------- */

static const uint8_t TID[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SID[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t PID[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static void make_span(struct otlp_span *s, const char *name)
{
	struct trace_context link = {
	    .trace_id = {9, 9}, .span_id = {7}, .flags = 1, .remote = true};
	struct trace_attr ev[] = {TRACE_STR("why", "burnt"), TRACE_INT("attempt", 2)};

	memset(s, 0, sizeof(*s));
	memcpy(s->trace_id, TID, 16);
	memcpy(s->span_id, SID, 8);
	memcpy(s->parent_span_id, PID, 8);
	s->has_parent = true;
	s->flags = 1 | OTLP_FLAG_HAS_IS_REMOTE | OTLP_FLAG_IS_REMOTE;
	s->trace_state = otlp_strdup("congo=t61");
	s->name = otlp_strdup(name);
	s->kind = TRACE_KIND_CLIENT;
	s->start_ns = 1700000000123456789ull;
	s->end_ns = 1700000000223456789ull;
	otlp_attrs_set(&s->attrs, &TRACE_STR("db.system", "redis"));
	otlp_attrs_set(&s->attrs, &TRACE_INT("server.port", -5));
	otlp_attrs_set(&s->attrs, &TRACE_DOUBLE("ratio", 0.25));
	otlp_attrs_set(&s->attrs, &TRACE_BOOL("baker.mistake", true));
	otlp_attrs_set(&s->attrs, &TRACE_BOOL("off", false));
	otlp_span_add_event(s, 1700000000200000000ull, "baker made mistake, redoing", ev, 2);
	strcpy(link.tracestate, "a=b");
	otlp_span_add_link(s, &link, &TRACE_STR("rel", "producer"), 1);
	s->error = true;
	s->status_message = otlp_strdup("redis down");
}

static struct otlp_resource make_resource(void)
{
	struct otlp_resource r = {.scope_name = "bakery", .scope_version = "1.0.0"};

	otlp_attrs_set(&r.attrs, &TRACE_STR("service.name", "reception"));
	return r;
}

/* The request holding n spans, encoded as the batch processor does: each span as it ends,
 * then the request around them. */
static int encode(bool json, const struct otlp_resource *r, struct otlp_span *const *spans,
                  size_t n, struct otlp_buf *out)
{
	struct otlp_buf b = {0};
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = json ? otlp_encode_json_span(spans[i], &b)
		          : otlp_encode_protobuf_span(spans[i], &b);
	if (rc == 0)
		rc = json ? otlp_encode_json_request(r, &b, out)
		          : otlp_encode_protobuf_request(r, &b, out);
	otlp_buf_free(&b);
	return rc;
}

static void test_protobuf(void)
{
	struct otlp_resource r = make_resource();
	struct otlp_span s, *spans[] = {&s};
	struct otlp_buf b = {0};
	struct field req, rs, res, ss, scope, span, v, ev, link, status;
	double d;

	make_span(&s, "read-order");
	CHECK(encode(false, &r, spans, 1, &b) == 0);
	req = (struct field){2, 0, b.data, b.len};
	rs = sub(req, 1, 0);
	res = sub(rs, 1, 0);
	CHECK(str_is(sub(attr(res, 1, "service.name"), 1, 0), "reception"));
	ss = sub(rs, 2, 0);
	scope = sub(ss, 1, 0);
	CHECK(str_is(sub(scope, 1, 0), "bakery"));
	CHECK(str_is(sub(scope, 2, 0), "1.0.0"));
	span = sub(ss, 2, 0);
	CHECK(sub(ss, 2, 1).p == NULL);
	CHECK(sub(span, 1, 0).len == 16 && memcmp(sub(span, 1, 0).p, TID, 16) == 0);
	CHECK(sub(span, 2, 0).len == 8 && memcmp(sub(span, 2, 0).p, SID, 8) == 0);
	CHECK(str_is(sub(span, 3, 0), "congo=t61"));
	CHECK(sub(span, 4, 0).len == 8 && memcmp(sub(span, 4, 0).p, PID, 8) == 0);
	CHECK(str_is(sub(span, 5, 0), "read-order"));
	CHECK(num(span, 6) == 3);
	CHECK(num(span, 7) == 1700000000123456789ull);
	CHECK(num(span, 8) == 1700000000223456789ull);
	CHECK(num(span, 16) == (1 | 0x100 | 0x200));
	CHECK(str_is(sub(attr(span, 9, "db.system"), 1, 0), "redis"));
	CHECK((int64_t)num(attr(span, 9, "server.port"), 3) == -5);
	v = attr(span, 9, "ratio");
	uint64_t bits = num(v, 4);
	memcpy(&d, &bits, 8);
	CHECK(d == 0.25);
	CHECK(num(attr(span, 9, "baker.mistake"), 2) == 1);
	/* false is still present as a oneof member */
	struct field fb;
	CHECK(pb_get(attr(span, 9, "off").p, attr(span, 9, "off").len, 2, 0, &fb) == 1);
	ev = sub(span, 11, 0);
	CHECK(num(ev, 1) == 1700000000200000000ull);
	CHECK(str_is(sub(ev, 2, 0), "baker made mistake, redoing"));
	CHECK(str_is(sub(attr(ev, 3, "why"), 1, 0), "burnt"));
	CHECK(num(attr(ev, 3, "attempt"), 3) == 2);
	link = sub(span, 13, 0);
	CHECK(sub(link, 1, 0).len == 16 && sub(link, 1, 0).p[0] == 9);
	CHECK(sub(link, 2, 0).len == 8 && sub(link, 2, 0).p[0] == 7);
	CHECK(str_is(sub(link, 3, 0), "a=b"));
	CHECK(str_is(sub(attr(link, 4, "rel"), 1, 0), "producer"));
	CHECK(num(link, 6) == (1 | 0x100 | 0x200));
	status = sub(span, 15, 0);
	CHECK(str_is(sub(status, 2, 0), "redis down"));
	CHECK(num(status, 3) == 2);

	otlp_span_clear(&s);
	otlp_buf_free(&b);
	otlp_attrs_free(&r.attrs);
}

/* Many spans with long strings: nested lengths need 2- and 3-byte varints. */
static void test_protobuf_large(void)
{
	struct otlp_resource r = make_resource();
	enum { N = 100 };
	struct otlp_span s[N], *spans[N];
	struct otlp_buf b = {0};
	char *big = malloc(5000);
	struct field req, ss, span;
	int count = 0;

	memset(big, 'x', 4999);
	big[4999] = '\0';
	for (int i = 0; i < N; i++) {
		make_span(&s[i], "span");
		otlp_attrs_set(&s[i].attrs, &TRACE_STR("big", big));
		otlp_attrs_set(&s[i].attrs, &TRACE_INT("i", i));
		spans[i] = &s[i];
	}
	CHECK(encode(false, &r, spans, N, &b) == 0);
	CHECK(b.len > N * 4096);
	req = (struct field){2, 0, b.data, b.len};
	ss = sub(sub(req, 1, 0), 2, 0);
	for (int i = 0; (span = sub(ss, 2, i)).p; i++) {
		CHECK((int)num(attr(span, 9, "i"), 3) == i);
		CHECK(sub(attr(span, 9, "big"), 1, 0).len == OTLP_STRING_MAX);
		count++;
	}
	CHECK(count == N);
	for (int i = 0; i < N; i++)
		otlp_span_clear(&s[i]);
	otlp_buf_free(&b);
	otlp_attrs_free(&r.attrs);
	free(big);
}

/* Attributes are encoded when set: lengths around each varint boundary, an empty key, and a
 * value cut at OTLP_STRING_MAX inside a character read back as they were set. */
static void test_attrs_encoded_when_set(void)
{
	static const size_t lens[] = {0, 1, 125, 126, 127, 128, 129, 300, 4096, 5000};
	struct otlp_resource r = make_resource();
	struct otlp_span s, *spans[] = {&s};
	struct otlp_buf b = {0};
	char *big = malloc(5001), key[16];
	struct field span, any;

	make_span(&s, "edges");
	memset(big, 'k', 5000);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		big[lens[i]] = '\0';
		snprintf(key, sizeof(key), "v%zu", lens[i]);
		CHECK(otlp_attrs_set(&s.attrs, &TRACE_STR(key, big)) == 0);
		if (lens[i] > 0)
			CHECK(otlp_attrs_set(&s.attrs, &TRACE_INT(big, (int64_t)lens[i])) == 0);
		big[lens[i]] = 'k';
	}
	memset(big, 'c', OTLP_STRING_MAX - 1); /* a two-byte character across the cut */
	memcpy(big + OTLP_STRING_MAX - 1, "\xc3\xa9tail", 7);
	CHECK(otlp_attrs_set(&s.attrs, &TRACE_STR("cut", big)) == 0);
	CHECK(otlp_attrs_set(&s.attrs, &TRACE_STR("", "no key")) == 0);
	CHECK(otlp_attrs_set(&s.attrs, &TRACE_DOUBLE("v0", -1.5)) == 0); /* replaces */
	CHECK(encode(false, &r, spans, 1, &b) == 0);
	span = sub(sub(sub((struct field){2, 0, b.data, b.len}, 1, 0), 2, 0), 2, 0);
	CHECK(span.p != NULL);
	any = attr(span, 9, "v0");
	CHECK(any.p && num(any, 4) != 0 && sub(any, 1, 0).p == NULL);
	for (size_t i = 1; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t want = lens[i] < OTLP_STRING_MAX ? lens[i] : OTLP_STRING_MAX;
		snprintf(key, sizeof(key), "v%zu", lens[i]);
		any = sub(attr(span, 9, key), 1, 0);
		CHECK(any.len == want && (want == 0 || memcmp(any.p, big, 0) == 0));
		for (size_t j = 0; any.p && j < any.len; j++)
			if (any.p[j] != 'k') {
				CHECK(!"value bytes");
				break;
			}
	}
	any = sub(attr(span, 9, "cut"), 1, 0);
	CHECK(any.len == OTLP_STRING_MAX - 1 && any.p[any.len - 1] == 'c');
	CHECK(str_is(sub(sub(sub(span, 9, 5 + 19), 2, 0), 1, 0), "no key"));
	CHECK(sub(sub(span, 9, 5 + 19), 1, 0).p == NULL); /* no key field */
	otlp_span_clear(&s);
	otlp_buf_free(&b);
	otlp_attrs_free(&r.attrs);
	free(big);
}

/* Spans whose length takes one, two and three varint bytes, around each boundary, decode. */
static void test_protobuf_span_sizes(void)
{
	static const size_t sizes[] = {0, 40, 90, 120, 130, 300, 16000, 16400, 20000};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct otlp_resource r = make_resource();
	struct otlp_span s[N], *spans[N];
	struct otlp_buf b = {0};
	char *fill = malloc(4001), key[16];
	struct field req, ss, span;
	int count = 0;

	memset(fill, 'y', 4000);
	for (int i = 0; i < N; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		memcpy(s[i].trace_id, TID, 16);
		memcpy(s[i].span_id, SID, 8);
		s[i].name = otlp_strdup("s");
		for (size_t left = sizes[i], k = 0; left > 0; k++) {
			size_t n = left < 4000 ? left : 4000;
			fill[n] = '\0';
			snprintf(key, sizeof(key), "k%zu", k);
			otlp_attrs_set(&s[i].attrs, &TRACE_STR(key, fill));
			fill[n] = 'y';
			left -= n;
		}
		spans[i] = &s[i];
	}
	CHECK(encode(false, &r, spans, N, &b) == 0);
	req = (struct field){2, 0, b.data, b.len};
	ss = sub(sub(req, 1, 0), 2, 0);
	for (int i = 0; (span = sub(ss, 2, i)).p; i++) {
		size_t total = 0;
		struct field kv;
		for (int k = 0; (kv = sub(span, 9, k)).p; k++)
			total += sub(sub(kv, 2, 0), 1, 0).len;
		CHECK(i < N && total == sizes[i]);
		CHECK(str_is(sub(span, 5, 0), "s"));
		count++;
	}
	CHECK(count == N);
	for (int i = 0; i < N; i++)
		otlp_span_clear(&s[i]);
	otlp_buf_free(&b);
	otlp_attrs_free(&r.attrs);
	free(fill);
}

/* Short strings take an inline path: every length and position of a bad byte is still repaired,
 * and a valid two-byte character kept. */
static void test_short_strings(void)
{
	char in[24], want[24];

	for (size_t n = 1; n <= 20; n++) {
		for (size_t at = 0; at < n; at++) {
			struct otlp_attrs a = {0};
			memset(in, 'a', n);
			in[n] = '\0';
			memcpy(want, in, n + 1);
			in[at] = (char)0xff;
			want[at] = '?';
			CHECK(otlp_attrs_set(&a, &TRACE_STR(in, in)) == 0);
			CHECK(memcmp(a.items[0].key, want, n) == 0); /* not NUL-terminated */
			CHECK(memcmp(a.items[0].v.s, want, n) == 0);
			CHECK(a.items[0].len == n && a.items[0].key_len == n);
			otlp_attrs_free(&a);
			if (at + 1 < n) {
				in[at] = (char)0xc3;
				in[at + 1] = (char)0xa9;
				CHECK(otlp_attrs_set(&a, &TRACE_STR("k", in)) == 0);
				CHECK(a.items[0].len == n && memcmp(a.items[0].v.s, in, n) == 0);
				otlp_attrs_free(&a);
			}
		}
	}
}

/* A batch wrapped in place (the head written into the room before its spans) is the request the
 * encoders make, byte for byte, in both protocols. */
static void test_wrap_in_place(void)
{
	struct otlp_resource r = make_resource();
	struct otlp_span s[2], *spans[] = {&s[0], &s[1]};

	make_span(&s[0], "one");
	make_span(&s[1], "two");
	for (int json = 0; json < 2; json++) {
		struct otlp_exporter *e = NULL;
		struct otlp_buf want = {0}, batch = {0}, body = {0}, req;
		size_t room;

		setenv("OTEL_EXPORTER_OTLP_PROTOCOL", json ? "http/json" : "http/protobuf", 1);
		CHECK(otlp_exporter_create(&e) == 0);
		room = otlp_exporter_head_room(e, &r);
		CHECK(room > 0 && otlp_buf_reserve(&batch, room) == 0);
		batch.len = room;
		for (int i = 0; i < 2; i++)
			CHECK(otlp_exporter_encode_span(e, spans[i], &batch) == 0);
		CHECK(encode(json, &r, spans, 2, &want) == 0);
		CHECK(otlp_exporter_wrap(e, &r, &batch, room, &body, &req) == 0);
		CHECK(req.len == want.len && memcmp(req.data, want.data, want.len) == 0);
		CHECK(body.data == NULL);
		otlp_buf_free(&want);
		otlp_buf_free(&batch);
		otlp_exporter_free(e);
	}
	unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL");
	otlp_span_clear(&s[0]);
	otlp_span_clear(&s[1]);
	otlp_attrs_free(&r.attrs);
}

static json_t *attr_json(json_t *attrs, const char *key)
{
	size_t i;
	json_t *a;

	json_array_foreach(attrs, i, a) if (strcmp(json_string_value(json_object_get(a, "key")),
	                                           key) == 0) return json_object_get(a, "value");
	return NULL;
}

static void test_json(void)
{
	struct otlp_resource r = make_resource();
	struct otlp_span s, *spans[] = {&s};
	struct otlp_buf b = {0};
	json_error_t err;
	json_t *doc, *rs, *span, *attrs, *ev, *link;

	make_span(&s, "publish-order");
	otlp_attrs_set(&s.attrs, &TRACE_DOUBLE("nan", 0.0 / 0.0));
	otlp_attrs_set(&s.attrs, &TRACE_DOUBLE("one", 1.0));
	otlp_attrs_set(&s.attrs, &TRACE_INT("min", INT64_MIN));
	otlp_attrs_set(&s.attrs, &TRACE_STR("escaped", "q\"b\\n\n\x01\x1f caf\xc3\xa9"));
	CHECK(encode(true, &r, spans, 1, &b) == 0);
	doc = json_loadb((const char *)b.data, b.len, 0, &err);
	CHECK(doc != NULL);
	if (!doc)
		goto out;
	rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
	CHECK_STR(json_string_value(json_object_get(
	              attr_json(json_object_get(json_object_get(rs, "resource"), "attributes"),
	                        "service.name"),
	              "stringValue")),
	          "reception");
	json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
	CHECK_STR(json_string_value(json_object_get(json_object_get(ss, "scope"), "name")),
	          "bakery");
	span = json_array_get(json_object_get(ss, "spans"), 0);
	CHECK_STR(json_string_value(json_object_get(span, "traceId")),
	          "4bf92f3577b34da6a3ce929d0e0e4736");
	CHECK_STR(json_string_value(json_object_get(span, "spanId")), "00f067aa0ba902b7");
	CHECK_STR(json_string_value(json_object_get(span, "parentSpanId")), "0102030405060708");
	CHECK_STR(json_string_value(json_object_get(span, "traceState")), "congo=t61");
	CHECK_STR(json_string_value(json_object_get(span, "name")), "publish-order");
	CHECK(json_integer_value(json_object_get(span, "kind")) == 3);
	CHECK(json_integer_value(json_object_get(span, "flags")) == 0x301);
	CHECK_STR(json_string_value(json_object_get(span, "startTimeUnixNano")),
	          "1700000000123456789");
	CHECK_STR(json_string_value(json_object_get(span, "endTimeUnixNano")),
	          "1700000000223456789");
	attrs = json_object_get(span, "attributes");
	CHECK_STR(json_string_value(json_object_get(attr_json(attrs, "db.system"), "stringValue")),
	          "redis");
	CHECK_STR(json_string_value(json_object_get(attr_json(attrs, "server.port"), "intValue")),
	          "-5");
	CHECK(json_real_value(json_object_get(attr_json(attrs, "ratio"), "doubleValue")) == 0.25);
	CHECK(json_is_true(json_object_get(attr_json(attrs, "baker.mistake"), "boolValue")));
	CHECK(json_is_false(json_object_get(attr_json(attrs, "off"), "boolValue")));
	CHECK_STR(json_string_value(json_object_get(attr_json(attrs, "nan"), "doubleValue")),
	          "NaN");
	/* A whole double stays a double; the longest integer fits; strings come back whole. */
	CHECK(json_is_real(json_object_get(attr_json(attrs, "one"), "doubleValue")));
	CHECK_STR(json_string_value(json_object_get(attr_json(attrs, "min"), "intValue")),
	          "-9223372036854775808");
	CHECK_STR(json_string_value(json_object_get(attr_json(attrs, "escaped"), "stringValue")),
	          "q\"b\\n\n\x01\x1f caf\xc3\xa9");
	ev = json_array_get(json_object_get(span, "events"), 0);
	CHECK_STR(json_string_value(json_object_get(ev, "name")), "baker made mistake, redoing");
	CHECK_STR(json_string_value(json_object_get(ev, "timeUnixNano")), "1700000000200000000");
	link = json_array_get(json_object_get(span, "links"), 0);
	CHECK_STR(json_string_value(json_object_get(link, "traceId")),
	          "09090000000000000000000000000000");
	CHECK_STR(json_string_value(json_object_get(link, "spanId")), "0700000000000000");
	CHECK(json_integer_value(json_object_get(link, "flags")) == 0x301);
	CHECK(json_integer_value(json_object_get(json_object_get(span, "status"), "code")) == 2);
	CHECK_STR(json_string_value(json_object_get(json_object_get(span, "status"), "message")),
	          "redis down");
	json_decref(doc);
out:
	otlp_span_clear(&s);
	otlp_buf_free(&b);
	otlp_attrs_free(&r.attrs);
}

/* The spans encoded one by one join into one list: none, one, several. */
static void test_json_span_list(void)
{
	struct otlp_resource r = make_resource();
	struct otlp_span s, *spans[] = {&s, &s, &s};
	json_error_t err;

	make_span(&s, "bake");
	for (size_t n = 0; n <= 3; n++) {
		struct otlp_buf b = {0};
		json_t *doc;
		CHECK(encode(true, &r, spans, n, &b) == 0);
		doc = json_loadb((const char *)b.data, b.len, 0, &err);
		CHECK(doc != NULL);
		json_t *list = json_object_get(
		    json_array_get(
		        json_object_get(json_array_get(json_object_get(doc, "resourceSpans"), 0),
		                        "scopeSpans"),
		        0),
		    "spans");
		CHECK(json_array_size(list) == n);
		for (size_t i = 0; i < n; i++)
			CHECK_STR(
			    json_string_value(json_object_get(json_array_get(list, i), "name")),
			    "bake");
		json_decref(doc);
		otlp_buf_free(&b);
	}
	otlp_span_clear(&s);
	otlp_attrs_free(&r.attrs);
}

static void test_gzip(void)
{
	struct otlp_buf b = {0};
	uint8_t out[4096];
	z_stream z = {0};
	const char *text = "hello hello hello hello hello hello hello hello";

	b.data = (uint8_t *)strdup(text);
	b.len = b.cap = strlen(text);
	CHECK(otlp_gzip(&b) == 0);
	CHECK(b.len > 10 && b.data[0] == 0x1f && b.data[1] == 0x8b);
	CHECK(inflateInit2(&z, 15 + 16) == Z_OK);
	z.next_in = b.data;
	z.avail_in = (uInt)b.len;
	z.next_out = out;
	z.avail_out = sizeof(out);
	CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
	CHECK(z.total_out == strlen(text) && memcmp(out, text, strlen(text)) == 0);
	inflateEnd(&z);
	otlp_buf_free(&b);
}

struct kv_seen {
	int n;
	char keys[4][32], values[4][32];
};

static int kv_collect(void *arg, const char *key, const char *value)
{
	struct kv_seen *s = arg;

	if (s->n == 4)
		return -ENOSPC;
	snprintf(s->keys[s->n], 32, "%s", key);
	snprintf(s->values[s->n], 32, "%s", value);
	s->n++;
	return 0;
}

static void test_kv_list(void)
{
	struct kv_seen s = {0};

	CHECK(otlp_kv_list_parse("a=1, b = x%20y ,,c=%3D%2c,api-key=", kv_collect, &s) == 0);
	CHECK(s.n == 4);
	CHECK_STR(s.keys[0], "a");
	CHECK_STR(s.values[0], "1");
	CHECK_STR(s.keys[1], "b");
	CHECK_STR(s.values[1], "x y");
	CHECK_STR(s.values[2], "=,");
	CHECK_STR(s.keys[3], "api-key");
	CHECK_STR(s.values[3], "");
	memset(&s, 0, sizeof(s));
	CHECK(otlp_kv_list_parse("novalue", kv_collect, &s) == -EINVAL);
	CHECK(otlp_kv_list_parse("=v", kv_collect, &s) == -EINVAL);
	CHECK(otlp_kv_list_parse("k=%zz", kv_collect, &s) == -EINVAL);
	CHECK(otlp_kv_list_parse("k=%2", kv_collect, &s) == -EINVAL);
	CHECK(otlp_kv_list_parse("k=%00", kv_collect, &s) == -EINVAL);
	CHECK(otlp_kv_list_parse("", kv_collect, &s) == 0);
}

static void test_strings_and_limits(void)
{
	struct otlp_attrs a = {0};
	char *s, *big = malloc(OTLP_STRING_MAX + 10);
	char key[16];

	s = otlp_strdup("caf\xc3\xa9 \xff\xc3 ok \xed\xa0\x80");
	CHECK_STR(s, "caf\xc3\xa9 ?? ok ???");
	free(s);
	/* ASCII is copied 8 bytes at a time: a bad byte anywhere in those 8 is still caught. */
	s = otlp_strdup("abcdefghijklm\x80nopqrstuvwxyz0123\xc3\xa9");
	CHECK_STR(s, "abcdefghijklm?nopqrstuvwxyz0123\xc3\xa9");
	free(s);
	/* Cut at the cap, never inside a character. */
	memset(big, 'a', OTLP_STRING_MAX - 1);
	strcpy(big + OTLP_STRING_MAX - 1, "\xc3\xa9zz");
	s = otlp_strdup(big);
	CHECK(strlen(s) == OTLP_STRING_MAX - 1);
	free(s);
	memset(big, 'a', OTLP_STRING_MAX + 9);
	big[OTLP_STRING_MAX + 9] = '\0';
	s = otlp_strdup(big);
	CHECK(strlen(s) == OTLP_STRING_MAX);
	free(s);
	free(big);

	CHECK(otlp_attrs_set(&a, &TRACE_STR("k", "one")) == 0);
	CHECK(otlp_attrs_set(&a, &TRACE_INT("k", 2)) == 0);
	CHECK(a.len == 1 && a.items[0].type == TRACE_ATTR_INT && a.items[0].v.i == 2);
	for (int i = 0; i < OTLP_ATTRS_MAX + 1; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		otlp_attrs_set(&a, &TRACE_BOOL(key, true));
	}
	CHECK(a.len == OTLP_ATTRS_MAX);
	CHECK(a.dropped == 2);
	otlp_attrs_free(&a);

	struct otlp_span sp = {0};
	for (int i = 0; i < OTLP_EVENTS_MAX + 3; i++)
		otlp_span_add_event(&sp, 1, "e", NULL, 0);
	CHECK(sp.n_events == OTLP_EVENTS_MAX && sp.dropped_events == 3);
	otlp_span_clear(&sp);
}

/* The i-th attribute of a, either way it holds them (otlp_attrs_next). */
static struct otlp_attr attr_at(const struct otlp_attrs *a, uint32_t i)
{
	struct otlp_attr x = {0};
	size_t it = 0;

	for (uint32_t j = 0; j <= i; j++)
		CHECK(otlp_attrs_next(a, &it, &x));
	return x;
}

/* A record from otlp_span_init keeps its name and attributes in its own storage until that is
 * full, then allocates: either way it encodes as a record that allocates everything does. */
static void test_span_record_storage(void)
{
	struct otlp_span *in = malloc(sizeof(*in)), heap = {0}, *spans[1];
	struct otlp_buf a = {0}, b = {0};
	char key[16], *long_value = malloc(2001);
	struct otlp_resource r = {0};

	memset(long_value, 'v', 2000);
	long_value[2000] = '\0';
	otlp_span_init(in);
	CHECK(otlp_span_set_name(in, "first") == 0 && otlp_span_set_name(in, "publish-order") == 0);
	CHECK(otlp_span_set_name(&heap, "publish-order") == 0);
	CHECK(in->name == in->name_bytes);
	for (int i = 0; i < 20; i++) {
		struct trace_attr x = TRACE_STR(key, i == 3 ? long_value : "a value \xc3\xa9 \xff");
		snprintf(key, sizeof(key), "key.%d", i);
		CHECK(otlp_attrs_set(&in->attrs, &x) == 0 && otlp_attrs_set(&heap.attrs, &x) == 0);
		CHECK((in->attrs.packed != NULL) == (i < 3)); /* the long value unpacks them */
	}
	CHECK(otlp_attrs_count(&in->attrs) == 20);
	/* Replacing a value whose key sits in the record, then one allocated on its own. */
	for (int i = 0; i < 2; i++) {
		struct trace_attr x = TRACE_INT(i ? "key.19" : "key.1", 7);
		CHECK(otlp_attrs_set(&in->attrs, &x) == 0 && otlp_attrs_set(&heap.attrs, &x) == 0);
	}
	CHECK(otlp_attrs_count(&in->attrs) == 20 && attr_at(&in->attrs, 1).v.i == 7);
	CHECK(attr_at(&in->attrs, 3).len == 2000 &&
	      memcmp(attr_at(&in->attrs, 3).v.s, long_value, 2000) == 0);
	CHECK(attr_at(&in->attrs, 0).len == 12 && /* not NUL-terminated */
	      memcmp(attr_at(&in->attrs, 0).v.s, "a value \xc3\xa9 ?", 12) == 0);
	spans[0] = in;
	CHECK(encode(false, &r, spans, 1, &a) == 0);
	spans[0] = &heap;
	CHECK(encode(false, &r, spans, 1, &b) == 0);
	CHECK(a.len == b.len && a.len > 2000 && memcmp(a.data, b.data, a.len) == 0);
	otlp_buf_free(&a);
	otlp_buf_free(&b);
	otlp_span_clear(&heap);
	otlp_span_clear(in);
	free(in);
	free(long_value);
}

/* Whether spans x and y encode to the same request, in protobuf and in JSON (whose
 * attributes are read back from a packed list: otlp_attrs_next). */
static bool same_encoding(struct otlp_span *x, struct otlp_span *y)
{
	struct otlp_buf a = {0}, b = {0};
	struct otlp_resource r = {0};
	bool same = true;

	for (int json = 0; json < 2 && same; json++) {
		same = encode(json, &r, &x, 1, &a) == 0 && encode(json, &r, &y, 1, &b) == 0 &&
		       a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
		otlp_buf_free(&a);
		otlp_buf_free(&b);
		a = b = (struct otlp_buf){0};
	}
	return same;
}

/* Attributes set back to back in a record's storage are encoded with one copy (packed); a
 * replaced one, or one whose encoding takes 128 bytes or more, ends that. Every way, the record
 * encodes as one that allocates everything does. */
static void test_packed_attrs(void)
{
	char long_value[200];

	memset(long_value, 'v', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	for (int step = 0; step < 3; step++) {
		struct otlp_span *in = malloc(sizeof(*in)), heap = {0};
		const struct trace_attr set[] = {
		    TRACE_STR("http.route", "/orders"), TRACE_INT("client.port", 53412),
		    TRACE_BOOL("ok", true), TRACE_DOUBLE("ratio", 0.5), TRACE_STR("", "no key")};
		const struct trace_attr more[] = {TRACE_STR("db.system", "redis"),
		                                  TRACE_INT("client.port", 1),
		                                  TRACE_STR("long", long_value)};

		otlp_span_init(in);
		CHECK(otlp_span_set_name(in, "s") == 0 && otlp_span_set_name(&heap, "s") == 0);
		for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
			CHECK(otlp_attrs_set(&in->attrs, &set[i]) == 0 &&
			      otlp_attrs_set(&heap.attrs, &set[i]) == 0);
		CHECK(in->attrs.packed != NULL && heap.attrs.packed == NULL);
		CHECK(same_encoding(in, &heap));
		CHECK(otlp_attrs_set(&in->attrs, &more[step]) == 0 &&
		      otlp_attrs_set(&heap.attrs, &more[step]) == 0);
		CHECK((in->attrs.packed != NULL) == (step == 0));
		CHECK(same_encoding(in, &heap));
		CHECK(otlp_attrs_set(&in->attrs, &set[0]) == 0 && /* replaced */
		      otlp_attrs_set(&heap.attrs, &set[0]) == 0);
		CHECK(in->attrs.packed == NULL && same_encoding(in, &heap));
		otlp_span_clear(&heap);
		otlp_span_clear(in);
		free(in);
	}
}

/* A packed list reads back (otlp_attrs_next, otlp_attrs_count) as the general one it encodes
 * as: every type, an empty key, the longest packed encoding (127 bytes) and the first that is
 * not (128, which unpacks); then filled to OTLP_ATTRS_MAX, past the record's room. */
static void test_packed_read_back(void)
{
	struct otlp_span *in = malloc(sizeof(*in)), heap = {0};
	struct otlp_attr x, y;
	char v[128], key[16];

	otlp_span_init(in);
	memset(v, 'v', sizeof(v));
	v[127 - 7] = '\0'; /* "k" (3) and the value's tags and lengths (4): 127 in all */
	const struct trace_attr set[] = {TRACE_STR("http.route", "/orders"),
	                                 TRACE_INT("neg", -5),
	                                 TRACE_INT("big", INT64_MAX),
	                                 TRACE_BOOL("ok", true),
	                                 TRACE_BOOL("no", false),
	                                 TRACE_DOUBLE("ratio", -0.25),
	                                 TRACE_STR("", "no key"),
	                                 TRACE_STR("empty", ""),
	                                 TRACE_STR("k", v)};
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		CHECK(otlp_attrs_set(&in->attrs, &set[i]) == 0 &&
		      otlp_attrs_set(&heap.attrs, &set[i]) == 0);
	CHECK(in->attrs.packed != NULL && otlp_attrs_count(&in->attrs) == 9);
	for (size_t i = 0, it = 0, jt = 0; i < 9; i++) {
		CHECK(otlp_attrs_next(&in->attrs, &it, &x) &&
		      otlp_attrs_next(&heap.attrs, &jt, &y));
		CHECK(x.type == y.type && x.key_len == y.key_len && x.enc_len == y.enc_len &&
		      memcmp(x.key, y.key, x.key_len) == 0 && memcmp(x.enc, y.enc, x.enc_len) == 0);
		CHECK(x.type == TRACE_ATTR_STRING
		          ? x.len == y.len && memcmp(x.v.s, y.v.s, x.len) == 0
		      : x.type == TRACE_ATTR_DOUBLE ? x.v.d == y.v.d
		      : x.type == TRACE_ATTR_BOOL   ? x.v.b == y.v.b
		                                    : x.v.i == y.v.i);
	}
	CHECK(attr_at(&in->attrs, 8).enc_len == 127);
	CHECK(same_encoding(in, &heap));
	v[127 - 7] = 'v';
	v[128 - 7] = '\0';
	CHECK(otlp_attrs_set(&in->attrs, &TRACE_STR("l", v)) == 0 &&
	      otlp_attrs_set(&heap.attrs, &TRACE_STR("l", v)) == 0);
	CHECK(in->attrs.packed == NULL && otlp_attrs_count(&in->attrs) == 10);
	CHECK(attr_at(&in->attrs, 9).enc_len == 128 && same_encoding(in, &heap));
	for (int i = 0; i < OTLP_ATTRS_MAX; i++) {
		snprintf(key, sizeof(key), "key.%d", i);
		otlp_attrs_set(&in->attrs, &TRACE_INT(key, i));
		otlp_attrs_set(&heap.attrs, &TRACE_INT(key, i));
	}
	CHECK(otlp_attrs_count(&in->attrs) == OTLP_ATTRS_MAX && in->attrs.dropped == 10);
	CHECK(same_encoding(in, &heap));
	otlp_span_clear(&heap);
	otlp_span_clear(in);
	/* Small attributes alone fill the record's room before OTLP_ATTRS_MAX; then general. */
	otlp_span_init(in);
	for (int i = 0; i < OTLP_ATTRS_MAX; i++) {
		size_t used =
		    in->attrs.packed ? (size_t)(in->attrs.fast.next - in->attrs.packed) : 0;
		snprintf(key, sizeof(key), "%d", i);
		CHECK(otlp_attrs_set_int(&in->attrs, key, strlen(key), i) == 0);
		if (used) /* unpacked only for want of room (the most one may take: 23 bytes) */
			CHECK(in->attrs.packed || OTLP_PACKED_BYTES - used < 23);
	}
	CHECK(in->attrs.packed == NULL && otlp_attrs_count(&in->attrs) == OTLP_ATTRS_MAX);
	CHECK(attr_at(&in->attrs, 100).v.i == 100 && in->attrs.dropped == 0);
	otlp_span_clear(in);
	free(in);
}

/* otlp_attrs_set_str and _int write the usual attribute themselves: lengths around their limits
 * and each word boundary, a bad byte at each place, a key set twice and a full record all come
 * out as otlp_attrs_set makes them. */
static void test_attrs_set_str(void)
{
	static const size_t lens[] = {0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 59, 60, 61, 130};
	enum { N = sizeof(lens) / sizeof(lens[0]) };
	char k[140], v[140];

	for (size_t i = 1; i < N; i++) {
		for (size_t j = 0; j < N; j++) {
			for (size_t bad = 0; bad <= lens[i] + lens[j]; bad += 3) {
				struct otlp_span *in = malloc(sizeof(*in)), heap = {0};
				memset(k, 'k', lens[i]);
				memset(v, 'v', lens[j]);
				k[lens[i]] = v[lens[j]] = '\0';
				if (bad < lens[i])
					k[bad] = (char)0xff;
				else if (bad < lens[i] + lens[j])
					v[bad - lens[i]] = (char)0xc3; /* cut short: invalid */
				otlp_span_init(in);
				CHECK(otlp_span_set_name(in, "s") == 0 &&
				      otlp_span_set_name(&heap, "s") == 0);
				for (int twice = 0; twice < 2; twice++) {
					CHECK(otlp_attrs_set_str(&in->attrs, "first", 5, "x", 1) ==
					      0);
					CHECK(otlp_attrs_set_str(&in->attrs, k, strlen(k), v,
					                         strlen(v)) == 0);
					CHECK(otlp_attrs_set(&heap.attrs,
					                     &TRACE_STR("first", "x")) == 0);
					CHECK(otlp_attrs_set(&heap.attrs, &TRACE_STR(k, v)) == 0);
				}
				CHECK(otlp_attrs_count(&in->attrs) == 2 &&
				      attr_at(&in->attrs, 1).key_len == lens[i] &&
				      attr_at(&in->attrs, 1).len == lens[j]);
				CHECK(memcmp(attr_at(&in->attrs, 1).v.s, heap.attrs.items[1].v.s,
				             lens[j]) == 0);
				CHECK(same_encoding(in, &heap));
				otlp_span_clear(&heap);
				otlp_span_clear(in);
				free(in);
			}
		}
	}
	/* Integers of every varint length, keys around the limit, each also set twice. */
	static const int64_t ints[] = {0, 1, 127, 128, 16384, -1, INT64_MIN, INT64_MAX};
	for (size_t i = 1; i < N; i++) {
		struct otlp_span *in = malloc(sizeof(*in)), heap = {0};
		otlp_span_init(in);
		CHECK(otlp_span_set_name(in, "s") == 0 && otlp_span_set_name(&heap, "s") == 0);
		memset(k, 'k', lens[i]);
		for (size_t j = 0; j < sizeof(ints) / sizeof(ints[0]); j++) {
			k[lens[i]] = (char)('a' + j % 4); /* four keys, each set twice */
			k[lens[i] + 1] = '\0';
			CHECK(otlp_attrs_set_int(&in->attrs, k, strlen(k), ints[j]) == 0 &&
			      otlp_attrs_set(&heap.attrs, &TRACE_INT(k, ints[j])) == 0);
			CHECK(attr_at(&in->attrs, j % 4).v.i == ints[j]);
		}
		CHECK(otlp_attrs_count(&in->attrs) == 4 && same_encoding(in, &heap));
		otlp_span_clear(&heap);
		otlp_span_clear(in);
		free(in);
	}
	/* Valid UTF-8 (a high bit in a word of key or value) leaves the direct path for
	 * otlp_attrs_set, which keeps it as it is and the list packed. */
	static const char *const utf8[][2] = {
	    {"caf\xc3\xa9", "x"},
	    {"key", "cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
	            "e"},
	    {"k\xe2\x82\xac.with.a.long.key", "\xf0\x9f\x8d\xb0"}};
	for (size_t i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++) {
		struct otlp_span *in = malloc(sizeof(*in)), heap = {0};
		otlp_span_init(in);
		CHECK(otlp_attrs_set_str(&in->attrs, "first", 5, "x", 1) == 0 &&
		      otlp_attrs_set_str(&in->attrs, utf8[i][0], strlen(utf8[i][0]), utf8[i][1],
		                         strlen(utf8[i][1])) == 0 &&
		      otlp_attrs_set_int(&in->attrs, "last", 4, 1) == 0);
		CHECK(otlp_attrs_set(&heap.attrs, &TRACE_STR("first", "x")) == 0 &&
		      otlp_attrs_set(&heap.attrs, &TRACE_STR(utf8[i][0], utf8[i][1])) == 0 &&
		      otlp_attrs_set(&heap.attrs, &TRACE_INT("last", 1)) == 0);
		CHECK(otlp_attrs_count(&in->attrs) == 3 && in->attrs.packed != NULL &&
		      attr_at(&in->attrs, 1).len == strlen(utf8[i][1]) &&
		      memcmp(attr_at(&in->attrs, 1).v.s, utf8[i][1], strlen(utf8[i][1])) == 0);
		CHECK(same_encoding(in, &heap));
		otlp_span_clear(&heap);
		otlp_span_clear(in);
		free(in);
	}
	/* Past the record's inline items and bytes. */
	struct otlp_span *in = malloc(sizeof(*in)), heap = {0};
	otlp_span_init(in);
	memset(v, 'v', 59);
	v[59] = '\0';
	for (int i = 0; i < 32; i++) {
		snprintf(k, sizeof(k), "key.%d", i);
		CHECK(otlp_attrs_set_str(&in->attrs, k, strlen(k), v, strlen(v)) == 0 &&
		      otlp_attrs_set(&heap.attrs, &TRACE_STR(k, v)) == 0);
	}
	CHECK(in->attrs.heap > 0 && in->attrs.packed == NULL);
	CHECK(same_encoding(in, &heap));
	otlp_span_clear(&heap);
	otlp_span_clear(in);
	free(in);
}

/* otlp_copy moves ASCII a word at a time: a high byte at every place of every word (and of the
 * 4-byte and byte-wise tails), around each length, is still repaired or kept; the cap cuts
 * before a character it would split, whatever its length. */
static void test_copy_words(void)
{
	char in[48], want[48], *s, *big = malloc(OTLP_STRING_MAX + 8);

	for (size_t n = 1; n <= 40; n++) {
		for (size_t at = 0; at < n; at++) {
			memset(in, 'a', n);
			in[n] = '\0';
			memcpy(want, in, n + 1);
			in[at] = (char)0x80; /* a stray continuation byte */
			want[at] = '?';
			s = otlp_strdup(in);
			CHECK_STR(s, want);
			free(s);
			if (at + 2 < n) { /* a valid three-byte character there is kept */
				memcpy(in + at, "\xe2\x82\xac", 3);
				s = otlp_strdup(in);
				CHECK_STR(s, in);
				free(s);
			}
		}
	}
	for (size_t n = OTLP_STRING_MAX - 1; n <= OTLP_STRING_MAX + 1; n++) {
		memset(big, 'a', n);
		big[n] = '\0';
		s = otlp_strdup(big);
		CHECK(strlen(s) == (n < OTLP_STRING_MAX ? n : OTLP_STRING_MAX));
		free(s);
	}
	memset(big, 'a', OTLP_STRING_MAX + 7);
	big[OTLP_STRING_MAX + 7] = '\0';
	for (size_t back = 1; back <= 3; back++) { /* a character starting 1 to 3 before the cap */
		memcpy(big + OTLP_STRING_MAX - back, "\xe2\x82\xac", 3);
		s = otlp_strdup(big);
		CHECK(strlen(s) == (back == 3 ? OTLP_STRING_MAX : OTLP_STRING_MAX - back));
		free(s);
		memset(big + OTLP_STRING_MAX - back, 'a', 3);
	}
	free(big);
}

int main(void)
{
	RUN(test_protobuf);
	RUN(test_protobuf_large);
	RUN(test_attrs_encoded_when_set);
	RUN(test_protobuf_span_sizes);
	RUN(test_wrap_in_place);
	RUN(test_short_strings);
	RUN(test_json);
	RUN(test_json_span_list);
	RUN(test_gzip);
	RUN(test_kv_list);
	RUN(test_strings_and_limits);
	RUN(test_span_record_storage);
	RUN(test_packed_attrs);
	RUN(test_packed_read_back);
	RUN(test_attrs_set_str);
	RUN(test_copy_words);
	return CHECK_DONE();
}
