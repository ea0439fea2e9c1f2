/* diag.c — the registered diagnostics callbacks (silent by default) and the SDK's calls to them. */
#include "diag.h"

static struct trace_diag diag; /* set before trace_init, read by every thread after */

void trace_set_diag(const struct trace_diag *d)
{
	diag = d ? *d : (struct trace_diag){0};
}

void otel_diag_log(enum trace_diag_level level, const char *msg, const char *const kv[6])
{
	if (diag.log)
		diag.log(diag.arg, level, msg, kv);
}

void otel_diag_dropped(const char *reason, uint64_t n)
{
	if (diag.dropped)
		diag.dropped(diag.arg, reason, n);
}
