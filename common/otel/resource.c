/* resource.c — builds the resource from the host, the downward API and OTEL_* variables. */
#include "resource.h"

#include <stdio.h>
#include <unistd.h>

#include "env.h"
#include "id.h"

#define SDK_VERSION "1.0.0"

static int set(void *r, const char *key, const char *value)
{
	otlp_attrs_set(&((struct otlp_resource *)r)->attrs, &TRACE_STR(key, value));
	return 0;
}

int otel_resource_from_env(struct otlp_resource *r, const char *default_service_name,
                           const char *service_version)
{
	static const char *const k8s[][2] = {{"K8S_POD_NAME", "k8s.pod.name"},
	                                     {"K8S_NAMESPACE_NAME", "k8s.namespace.name"},
	                                     {"K8S_NODE_NAME", "k8s.node.name"}};
	uint8_t u[16];
	char uuid[37], hex[33], host[256] = "";
	const char *v;

	otel_id_random(u, 16);
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	tracecontext_hex(u, 16, hex);
	snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
	         hex + 20);
	set(r, "service.name", default_service_name);
	if (service_version)
		set(r, "service.version", service_version);
	set(r, "service.instance.id", uuid);
	if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
		set(r, "host.name", host);
	set(r, "telemetry.sdk.name", "bakery");
	set(r, "telemetry.sdk.language", "c");
	set(r, "telemetry.sdk.version", SDK_VERSION);
	for (size_t i = 0; i < sizeof(k8s) / sizeof(k8s[0]); i++)
		if ((v = otel_env(k8s[i][0])))
			set(r, k8s[i][1], v);
	if ((v = otel_env("OTEL_RESOURCE_ATTRIBUTES")) && otlp_kv_list_parse(v, set, r) < 0)
		return otel_env_bad("OTEL_RESOURCE_ATTRIBUTES", v, "not a k=v,k=v list");
	if ((v = otel_env("OTEL_SERVICE_NAME")))
		set(r, "service.name", v);
	r->scope_name = "bakery";
	r->scope_version = SDK_VERSION;
	return 0;
}
