{{/* Egress rules both services' NetworkPolicies share: DNS, Redis, RabbitMQ and the OTLP
endpoint, by port (the addresses may be outside the cluster). */}}
{{- define "bakery.netpolEgress" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- ports:
    - port: {{ include "bakery.addressPort" .Values.redis.address | int }}
      protocol: TCP
    - port: {{ include "bakery.addressPort" .Values.rabbitmq.address | int }}
      protocol: TCP
    - port: {{ include "bakery.otlpPort" . | int }}
      protocol: TCP
{{- end }}
