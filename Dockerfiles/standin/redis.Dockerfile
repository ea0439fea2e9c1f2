# STAND-IN for the official redis:7.4.2 image, built by scripts/standin-images.sh ONLY where no
# registry is reachable (this CI). Debian's redis-server, laid out like the official image:
# redis-server and redis-cli on PATH under /usr/local/bin, data in /data, port 6379, protected
# mode off by default (the official build patches that default), runs as the redis user.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/redis-server /usr/local/bin/redis-server \
 && ln -s /usr/bin/redis-cli /usr/local/bin/redis-cli \
 && mkdir /data && chown redis:redis /data
LABEL org.opencontainers.image.title="redis (local stand-in)" \
      org.opencontainers.image.description="Debian redis-server standing in for redis:7.4.2 where no registry is reachable"
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
# The official image runs `redis-server` with protected mode compiled off; say it on the
# command line first so later arguments can still override it.
ENTRYPOINT ["redis-server", "--protected-mode", "no"]
