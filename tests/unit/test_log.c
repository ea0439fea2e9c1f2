/* test_log.c — log lines are single JSON objects with the fields and the trace context. */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

/* Runs one log call with stdout on a pipe and returns the parsed line (or NULL). */
static json_t *capture(void (*emit)(void), size_t *lines)
{
	char buf[8192];
	int fds[2], saved = dup(STDOUT_FILENO);
	ssize_t n;
	json_t *j;

	fflush(stdout);
	if (pipe(fds) < 0)
		return NULL;
	dup2(fds[1], STDOUT_FILENO);
	emit();
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	*lines = 0;
	for (ssize_t i = 0; i < n; i++)
		*lines += buf[i] == '\n';
	j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
	return j;
}

static int ctx_hook(char trace_id[33], char span_id[17])
{
	memcpy(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
	memcpy(span_id, "00f067aa0ba902b7", 17);
	return 1;
}

static void emit_info(void)
{
	log_info("order accepted", "order_key", "abc", "skipped", NULL, "quote", "a\"b\nc");
}

static void emit_debug(void)
{
	log_debug("hidden");
}

static void emit_bad_utf8(void)
{
	log_warn("x", "field", "\xff");
}

static void test_line(void)
{
	size_t lines = 0;
	json_t *j;

	log_init("tester", LOG_LEVEL_INFO);
	j = capture(emit_info, &lines);
	CHECK(j != NULL);
	CHECK(lines == 1);
	CHECK_STR(json_string_value(json_object_get(j, "level")), "info");
	CHECK_STR(json_string_value(json_object_get(j, "service")), "tester");
	CHECK_STR(json_string_value(json_object_get(j, "msg")), "order accepted");
	CHECK_STR(json_string_value(json_object_get(j, "order_key")), "abc");
	CHECK_STR(json_string_value(json_object_get(j, "quote")), "a\"b\nc");
	CHECK(json_object_get(j, "skipped") == NULL);
	CHECK(json_object_get(j, "trace_id") == NULL);
	const char *t = json_string_value(json_object_get(j, "time"));
	CHECK(t && strlen(t) == 24 && t[10] == 'T' && t[23] == 'Z');
	json_decref(j);
}

static void test_context_hook(void)
{
	size_t lines = 0;
	json_t *j;

	log_set_context_hook(ctx_hook);
	j = capture(emit_info, &lines);
	CHECK_STR(json_string_value(json_object_get(j, "trace_id")),
	          "4bf92f3577b34da6a3ce929d0e0e4736");
	CHECK_STR(json_string_value(json_object_get(j, "span_id")), "00f067aa0ba902b7");
	json_decref(j);
	log_set_context_hook(NULL);
}

static void test_levels(void)
{
	enum log_level l;
	size_t lines = 0;
	json_t *j;

	CHECK(log_level_parse("debug", &l) == 0 && l == LOG_LEVEL_DEBUG);
	CHECK(log_level_parse("error", &l) == 0 && l == LOG_LEVEL_ERROR);
	CHECK(log_level_parse("loud", &l) < 0);
	log_init("tester", LOG_LEVEL_INFO);
	CHECK(capture(emit_debug, &lines) == NULL); /* filtered: nothing written */
	j = capture(emit_bad_utf8, &lines);
	CHECK_STR(json_string_value(json_object_get(j, "field")), "<invalid utf-8>");
	json_decref(j);
}

int main(void)
{
	RUN(test_line);
	RUN(test_context_hook);
	RUN(test_levels);
	return CHECK_DONE();
}
