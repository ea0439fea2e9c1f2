/* resource.h — who is sending: the resource attributes and the instrumentation scope. */
#ifndef BAKERY_OTEL_RESOURCE_H
#define BAKERY_OTEL_RESOURCE_H

#include "span.h"

struct otlp_resource {
	struct otlp_attrs attrs;
	const char *scope_name, *scope_version; /* static strings */
};

/* Fills r (zeroed) with service.name (default_service_name), service.version (service_version
 * unless NULL), service.instance.id, host.name, telemetry.sdk.*, k8s.* from K8S_{POD, NAMESPACE,
 * NODE}_NAME, then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, the later winning. Returns 0
 * or -EINVAL (otel_env_bad); free r->attrs either way. */
int otel_resource_from_env(struct otlp_resource *r, const char *default_service_name,
                           const char *service_version);

#endif
