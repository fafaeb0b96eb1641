#!/bin/sh
# Like the official redis image: plain `redis-server` (or only options) runs in the
# foreground as the redis user, on every address, without protected mode.
set -eu
if [ "${1#-}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
  shift
  if [ "$(id -u)" = 0 ]; then
    mkdir -p /data
    chown redis:redis /data 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups \
      redis-server --bind 0.0.0.0 --protected-mode no --daemonize no --dir /data "$@"
  fi
  exec redis-server --bind 0.0.0.0 --protected-mode no --daemonize no --dir /data "$@"
fi
exec "$@"
