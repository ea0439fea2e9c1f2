{{/* Egress rules both services' NetworkPolicies share: DNS, then Redis (with Sentinels: theirs,
and redis.address's port for the primary they name), RabbitMQ (every node of
rabbitmq.addresses) and the OTLP endpoint, by port (the addresses may be outside the
cluster). */}}
{{- define "bakery.netpolEgress" -}}
{{- $ports := list (include "bakery.addressPort" .Values.redis.address) }}
{{- range .Values.redis.sentinel.addresses }}
{{- $ports = append $ports (include "bakery.addressPort" .) }}
{{- end }}
{{- range splitList "," (include "bakery.rabbitHost" .) }}
{{- $ports = append $ports (include "bakery.addressPort" .) }}
{{- end }}
{{- $ports = append $ports (include "bakery.otlpPort" .) -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- ports:
{{- range uniq $ports }}
    - port: {{ . | int }}
      protocol: TCP
{{- end }}
{{- end }}
