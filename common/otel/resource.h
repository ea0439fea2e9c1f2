/* resource.h — who is sending: the resource attributes and the instrumentation scope. */
#ifndef BAKERY_OTEL_RESOURCE_H
#define BAKERY_OTEL_RESOURCE_H

#include "span.h"

struct otlp_resource {
	struct otlp_attrs attrs;
	const char *scope_name, *scope_version; /* static strings */
};

/* Fills r (zeroed) with service.*, host.name, telemetry.sdk.*, k8s.* from K8S_POD_NAME,
 * K8S_NAMESPACE_NAME and K8S_NODE_NAME, then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME,
 * later ones winning; service.name defaults to default_service_name, service.version is
 * service_version (NULL: none). Returns 0 or -EINVAL (otel_env_bad); free r->attrs either way. */
int otel_resource_from_env(struct otlp_resource *r, const char *default_service_name,
                           const char *service_version);

#endif
