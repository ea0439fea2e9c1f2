# reception's images: `build` (toolchain), `dev` (Tilt live update), and the runtime (last stage).
#
#   docker build -f Dockerfiles/reception.Dockerfile -t bakery/reception .              (runtime)
#   docker build -f Dockerfiles/reception.Dockerfile --target dev -t bakery/reception:dev .
#
# Build context: the repository root (.dockerignore keeps it small). The runtime image is FROM
# scratch: the stripped binary, exactly the shared libraries `ldd` lists (with the dynamic
# loader), CA certificates, passwd/group entries for user 10001 and nsswitch.conf. No shell, no
# package manager; it runs as 10001:10001 and works with a read-only root filesystem.
# Plain Dockerfile syntax: builds with BuildKit and with the legacy builder alike.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates gcc libc6-dev make pkg-config \
      libcivetweb-dev libcurl4-openssl-dev libhiredis-dev libjansson-dev librabbitmq-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY common/ common/
COPY reception/ reception/
RUN make -j2 build/reception

# Tilt's target: toolchain and source in /src, owned by the service user so live update can sync
# into it and scripts/dev-run.sh can rebuild there; sh, tar, touch come with Debian.
FROM build AS dev
RUN groupadd -g 10001 bakery && useradd -u 10001 -g 10001 -M -d /src -s /usr/sbin/nologin bakery
COPY scripts/dev-run.sh scripts/dev-run.sh
RUN chown -R 10001:10001 /src
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/src/scripts/dev-run.sh", "reception"]

# The runtime's root filesystem, assembled from the build stage.
FROM build AS rootfs
RUN set -eu; \
    bin=build/reception; \
    if ldd "$bin" | grep -q 'not found'; then ldd "$bin"; exit 1; fi; \
    mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs; \
    mkdir -m 1777 /rootfs/tmp; \
    strip --strip-unneeded -o /rootfs/usr/local/bin/reception "$bin"; \
    for lib in $(ldd "$bin" | awk '$(NF-1) ~ /^\// { print $(NF-1) }'); do \
        cp -L --parents "$lib" /rootfs; \
    done; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    echo 'bakery:x:10001:10001:bakery:/nonexistent:/usr/sbin/nologin' >/rootfs/etc/passwd; \
    echo 'bakery:x:10001:' >/rootfs/etc/group; \
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >/rootfs/etc/nsswitch.conf

FROM scratch
COPY --from=rootfs /rootfs/ /
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/reception"]
ARG REVISION=unknown
LABEL org.opencontainers.image.title="bakery-reception" \
      org.opencontainers.image.description="Bakery reception: HTTP API that stores orders in Redis and queues them on RabbitMQ" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="scratch"
