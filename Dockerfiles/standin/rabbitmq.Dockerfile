# STAND-IN for the official rabbitmq:3.13.7-management image, built by scripts/standin-images.sh
# ONLY where no registry is reachable (this CI). Debian's rabbitmq-server with the management
# plugin enabled and the official image's defaults: guest may connect over the network, logs go
# to the console, AMQP on 5672, management UI and API on 15672, data in /var/lib/rabbitmq.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* /var/lib/rabbitmq/mnesia \
 && mkdir -p /etc/rabbitmq/conf.d \
 && printf '%s\n' 'loopback_users.guest = false' 'log.console = true' \
      'listeners.tcp.default = 5672' 'management.tcp.port = 15672' \
      >/etc/rabbitmq/conf.d/10-defaults.conf \
 && /usr/lib/rabbitmq/bin/rabbitmq-plugins enable --offline rabbitmq_management \
 && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
LABEL org.opencontainers.image.title="rabbitmq (local stand-in)" \
      org.opencontainers.image.description="Debian rabbitmq-server + management standing in for rabbitmq:3.13.7-management where no registry is reachable"
# Debian's /usr/sbin wrappers send the server's output to files; the real scripts come first.
ENV PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/rabbitmq RABBITMQ_LOGS=- RABBITMQ_DATA_DIR=/var/lib/rabbitmq
VOLUME /var/lib/rabbitmq
WORKDIR /var/lib/rabbitmq
USER rabbitmq
EXPOSE 4369 5671 5672 15671 15672 15691 15692 25672
CMD ["rabbitmq-server"]
