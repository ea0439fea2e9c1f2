# STAND-IN for the official jaegertracing/jaeger:2.13.0 image (Jaeger v2), built by
# scripts/standin-images.sh ONLY where no registry is reachable (this CI). Same layout as the
# official image (cmd/jaeger/Dockerfile of v2.13.0): binary /cmd/jaeger/jaeger-linux as the
# entrypoint, /cmd/jaeger/sampling-strategies.json, JAEGER_LISTEN_HOST=0.0.0.0, user 10001,
# /tmp a volume; OTLP on 4317/4318, UI and query API on 16686, health on 13133 (with the
# configuration k8s/jaeger/config.yaml, as the official all-in-one default). Built from the Go
# module proxy (cmd/jaeger at module v1.76.0, the same commit), so the UI is a placeholder; the
# query API works.
FROM debian:bookworm-slim AS certs
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM scratch
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY jaeger /cmd/jaeger/jaeger-linux
COPY sampling-strategies.json /cmd/jaeger/sampling-strategies.json
LABEL org.opencontainers.image.title="jaeger v2 (local stand-in)" \
      org.opencontainers.image.description="Jaeger v2.13.0 (cmd/jaeger) from the Go module proxy standing in for jaegertracing/jaeger:2.13.0 where no registry is reachable"
ENV JAEGER_LISTEN_HOST=0.0.0.0
USER 10001
VOLUME /tmp
EXPOSE 4317 4318 5778 5779 9411 13132 13133 14250 14268 16686
ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]
