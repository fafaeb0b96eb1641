#!/bin/sh
# Like the official redis image (docker-library/redis docker-entrypoint.sh): as root, what
# in /data is not the redis user's (999) becomes its (the owner only), then it runs as redis
# with umask 0077; `redis-server` (or only options) runs in the foreground on every
# address, without protected mode (the official build's defaults; Debian's differ).
set -eu
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$(umask)" = 0022 ]; then
  umask 0077
fi
if [ "$1" = redis-server ]; then
  shift
  exec redis-server --bind 0.0.0.0 --protected-mode no --daemonize no --dir /data "$@"
fi
exec "$@"
