# STAND-IN for the official rabbitmq:4.4.1-management image, built by scripts/standin-images.sh
# ONLY where no registry is reachable (this CI). What runs inside is NOT RabbitMQ 4.4.1 but
# Debian bookworm's rabbitmq-server package (RabbitMQ 3.10.8, on Erlang 25) with the management
# plugin: for what Bakery uses (AMQP 0-9-1, durable classic queues, persistent messages,
# publisher confirms, dead-lettering, the management UI and API) it behaves the same. Laid out
# like the official image where the manifests rely on it: user rabbitmq with uid/gid 999, HOME
# and data in /var/lib/rabbitmq (the node's database in /var/lib/rabbitmq/mnesia/<node name>,
# the Erlang cookie in $HOME), the node name from RABBITMQ_NODENAME (default rabbit@<hostname>),
# guest may connect over the network, logs to the console, AMQP on 5672, management on 15672.
FROM debian:bookworm-slim
# The user first, with the official image's ids, so the package's postinst keeps it.
RUN groupadd -r -g 999 rabbitmq \
 && useradd -r -u 999 -g 999 -d /var/lib/rabbitmq -s /usr/sbin/nologin rabbitmq \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* /var/lib/rabbitmq/mnesia \
 && mkdir -p /etc/rabbitmq/conf.d \
 && printf '%s\n' 'loopback_users.guest = false' 'log.console = true' \
      'listeners.tcp.default = 5672' 'management.tcp.port = 15672' \
      >/etc/rabbitmq/conf.d/10-defaults.conf \
 && /usr/lib/rabbitmq/bin/rabbitmq-plugins enable --offline rabbitmq_management \
 && chown -R 999:999 /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
LABEL org.opencontainers.image.title="rabbitmq (local stand-in)" \
      org.opencontainers.image.description="Debian bookworm rabbitmq-server 3.10.8 + management standing in for rabbitmq:4.4.1-management where no registry is reachable; not RabbitMQ 4.4.1"
# Debian's /usr/sbin wrappers send the server's output to files; the real scripts come first.
ENV PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/rabbitmq RABBITMQ_LOGS=-
VOLUME /var/lib/rabbitmq
WORKDIR /var/lib/rabbitmq
USER 999:999
EXPOSE 4369 5671 5672 15671 15672 15691 15692 25672
CMD ["rabbitmq-server"]
