/* otlp_config_fuzz.c — libFuzzer target for the OTLP exporter's configuration strings. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otel/env.h"
#include "otel/exporter.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The variables the exporter reads, filled from the input's newline-separated parts. */
static const char *const vars[] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",       "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",        "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_COMPRESSION",    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_CERTIFICATE"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* A bad variable is logged as a JSON line on stdout: keep the fuzzer's output readable. */
	if (!freopen("/dev/null", "w", stdout))
		abort();
	return 0;
}

/* Checks each pair the list parser hands out: a non-empty key, both NUL-terminated. */
static int check_pair(void *arg, const char *key, const char *value)
{
	size_t *n = arg;

	if (!key[0] || strlen(key) > 4096 || strlen(value) > 65536)
		abort();
	(*n)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *part, *next;
	struct otlp_exporter *e = NULL;
	size_t pairs = 0, i = 0;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	/* The whole input as one k=v,k=v list (the headers; also OTEL_RESOURCE_ATTRIBUTES). */
	otlp_kv_list_parse(s, check_pair, &pairs);
	/* Then as the exporter's variables, one per line (an embedded NUL ends the input). */
	for (part = s; i < sizeof(vars) / sizeof(vars[0]); i++, part = next) {
		next = part ? strchr(part, '\n') : NULL;
		if (next)
			*next++ = '\0';
		if (part)
			setenv(vars[i], part, 1);
		else
			unsetenv(vars[i]);
	}
	if (otlp_exporter_create(&e) == 0 && (!e || strncmp(otlp_exporter_url(e), "http", 4) != 0))
		abort();
	otlp_exporter_free(e);
	free(s);
	return 0;
}
