# STAND-IN for the official jaegertracing/all-in-one:1.76.0 image, built by
# scripts/standin-images.sh ONLY where no registry is reachable (this CI). Same layout as the
# official image: static binary /go/bin/all-in-one-linux, sampling strategies under
# /etc/jaeger, user 10001, no shell; OTLP on 4317/4318, UI and query API on 16686, admin
# (health) on 14269. Built from the Go module proxy, so the UI is a placeholder; the API works.
FROM debian:bookworm-slim AS certs
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM scratch
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY jaeger /go/bin/all-in-one-linux
COPY sampling_strategies.json /etc/jaeger/sampling_strategies.json
LABEL org.opencontainers.image.title="jaeger all-in-one (local stand-in)" \
      org.opencontainers.image.description="jaeger all-in-one v1.76.0 from the Go module proxy standing in for jaegertracing/all-in-one:1.76.0 where no registry is reachable"
ENV SAMPLING_STRATEGIES_FILE=/etc/jaeger/sampling_strategies.json
USER 10001
VOLUME /tmp
EXPOSE 4317 4318 5778 14250 14268 14269 16686
ENTRYPOINT ["/go/bin/all-in-one-linux"]
