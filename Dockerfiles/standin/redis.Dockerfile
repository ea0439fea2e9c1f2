# STAND-IN for the official redis:8.10.2 image, built by scripts/standin-images.sh ONLY where no
# registry is reachable (this CI). What runs inside is NOT Redis 8.10.2 but Debian bookworm's
# redis-server package (Redis 7.0, 7.0.15 when written): the commands, persistence flags
# (--appendonly yes --appendfsync everysec, RDB) and protocol Bakery uses behave the same. Laid
# out like the official image where the manifests rely on it: user redis with uid/gid 999,
# redis-server, redis-sentinel (the same binary, in Sentinel mode by that name) and redis-cli
# on PATH under /usr/local/bin, data (and the AOF directory) in /data, port 6379, protected
# mode off by default (the official build patches that default), extra arguments appended to
# the server's command line; sh and coreutils (k8s/ha's start scripts, run as the command).
FROM debian:bookworm-slim
# The user first, with the official image's ids, so the package's postinst keeps it.
RUN groupadd -r -g 999 redis \
 && useradd -r -u 999 -g 999 -d /var/lib/redis -s /usr/sbin/nologin redis \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/redis-server /usr/local/bin/redis-server \
 && ln -s /usr/bin/redis-server /usr/local/bin/redis-sentinel \
 && ln -s /usr/bin/redis-cli /usr/local/bin/redis-cli \
 && mkdir /data && chown 999:999 /data
LABEL org.opencontainers.image.title="redis (local stand-in)" \
      org.opencontainers.image.description="Debian bookworm redis-server 7.0 standing in for redis:8.10.2 where no registry is reachable; not Redis 8.10.2"
VOLUME /data
WORKDIR /data
USER 999:999
EXPOSE 6379
# The official image runs `redis-server` with protected mode compiled off; say it on the
# command line first so later arguments can still override it.
ENTRYPOINT ["redis-server", "--protected-mode", "no"]
