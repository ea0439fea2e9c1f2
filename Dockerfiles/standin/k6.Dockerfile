# STAND-IN for the official grafana/k6:1.8.1 image, built by scripts/standin-images.sh ONLY where
# no registry is reachable (this CI). Same layout as the official image: /usr/bin/k6 as the
# entrypoint, user k6 (12345), working directory /home/k6.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 12345 k6 && useradd -u 12345 -g 12345 -m -d /home/k6 -s /bin/sh k6
COPY k6 /usr/bin/k6
LABEL org.opencontainers.image.title="k6 (local stand-in)" \
      org.opencontainers.image.description="k6 v1.8.1 from the Go module proxy standing in for grafana/k6:1.8.1 where no registry is reachable"
USER k6
WORKDIR /home/k6
ENTRYPOINT ["k6"]
