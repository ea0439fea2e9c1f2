# STAND-IN for the official curlimages/curl:8.22.0 image (the chart's `helm test` pod), built by
# scripts/standin-images.sh ONLY where no registry is reachable (this CI). What runs inside is
# NOT curl 8.22.0 but Debian bookworm's curl package (curl 7.88): the options the test script
# uses (-fsS, --retry, --retry-connrefused, --max-time, -H, -d) behave the same. Like the
# official image: sh and curl, user curl_user (uid 100, gid 101), arguments starting with "-"
# go to curl, anything else is run as a command.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -r -g 101 curl_group && useradd -r -u 100 -g 101 -M -d /home/curl_user -s /bin/sh curl_user \
 && printf '%s\n' '#!/bin/sh' 'set -e' 'if [ "${1#-}" != "$1" ]; then set -- curl "$@"; fi' 'exec "$@"' \
      >/entrypoint.sh && chmod 755 /entrypoint.sh
LABEL org.opencontainers.image.title="curl (local stand-in)" \
      org.opencontainers.image.description="Debian bookworm curl 7.88 standing in for curlimages/curl:8.22.0 where no registry is reachable; not curl 8.22.0"
USER curl_user
ENTRYPOINT ["/entrypoint.sh"]
CMD ["curl"]
