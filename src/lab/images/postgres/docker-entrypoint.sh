#!/bin/bash
# The contract of docker.io/library/postgres, on Debian's packages (postgres is 70:70 as in
# the alpine variants, the role's default):
# - first start with an empty PGDATA: initdb as the postgres user with POSTGRES_USER
#   (default postgres) and POSTGRES_PASSWORD, create POSTGRES_DB (default: the user),
#   run /docker-entrypoint-initdb.d/*.sh|*.sql; trust on the local socket, scram-sha-256
#   over TCP from anywhere (POSTGRES_HOST_AUTH_METHOD overrides); listen on *:5432
# - later starts never look at POSTGRES_PASSWORD again
# - postgres runs in the foreground as our child; SIGTERM and SIGINT both mean a fast,
#   clean shutdown (plain SIGTERM would wait for every client to leave)
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

say() { echo "entrypoint: $*"; }

if [ "$1" = postgres ]; then
  # As upstream's docker_create_db_directories: PGDATA 0700, and as root whatever in it is
  # not the postgres user's becomes its (the owner only: a host directory keeps its group).
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql || :
  chmod 03775 /var/run/postgresql || :
  if [ "$(id -u)" = 0 ]; then
    find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
  fi

  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    POSTGRES_USER=${POSTGRES_USER:-postgres}
    POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
      echo "entrypoint: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
      echo "entrypoint: give -e POSTGRES_PASSWORD=... (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
      exit 1
    fi
    say "initialising $PGDATA for user $POSTGRES_USER, database $POSTGRES_DB"
    args=(--username="$POSTGRES_USER" --encoding=UTF8 --locale=C.UTF-8
      --auth-local=trust --auth-host="$auth" -D "$PGDATA")
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list, as upstream.
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
      initdb "${args[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") ${POSTGRES_INITDB_ARGS:-} >/dev/null
    else
      initdb "${args[@]}" ${POSTGRES_INITDB_ARGS:-} >/dev/null
    fi
    {
      echo
      echo "# hostctl lab image: TCP from anywhere with $auth"
      echo "host all all all $auth"
    } >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"

    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -s start
    psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --no-password)
    if [ "$POSTGRES_DB" != postgres ]; then
      "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" -q <<<'CREATE DATABASE :"db";'
    fi
    shopt -s nullglob
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh) say "running $f"; . "$f" ;;
        *.sql) say "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
        *.sql.gz) say "running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
        *) say "ignoring $f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w -s stop
    unset POSTGRES_PASSWORD
    say "initialised; starting postgres"
  fi

  postgres "${@:2}" &
  pid=$!
  forward() { kill -INT "$pid" 2>/dev/null || true; }
  trap forward TERM INT
  trap 'kill -QUIT "$pid" 2>/dev/null || true' QUIT
  # wait returns early when a trapped signal arrives: wait again until postgres is gone.
  status=0
  while :; do
    wait "$pid" && status=0 || status=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  exit "$status"
fi

exec "$@"
