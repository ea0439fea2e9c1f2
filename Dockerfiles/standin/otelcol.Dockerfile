# STAND-IN for the official otel/opentelemetry-collector-contrib:0.165.0 image, built by
# scripts/standin-images.sh ONLY where no registry is reachable (this CI). Same layout as the
# official image: static binary /otelcol-contrib, config /etc/otelcol-contrib/config.yaml,
# user 10001, no shell. The binary is Bakery's own Collector build (scripts/tools.sh with
# scripts/otelcol-builder.yaml): it has the components Bakery's pipeline uses, not every
# contrib one, and its version is the one scripts/tools.sh pins.
FROM debian:bookworm-slim AS certs
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM scratch
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY otelcol /otelcol-contrib
COPY config.yaml /etc/otelcol-contrib/config.yaml
LABEL org.opencontainers.image.title="opentelemetry-collector-contrib (local stand-in)" \
      org.opencontainers.image.description="Bakery's Collector build (scripts/tools.sh) standing in for otel/opentelemetry-collector-contrib:0.165.0 where no registry is reachable"
USER 10001:10001
EXPOSE 4317 4318 55678 55679
ENTRYPOINT ["/otelcol-contrib"]
CMD ["--config", "/etc/otelcol-contrib/config.yaml"]
