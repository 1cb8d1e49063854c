#!/bin/sh
# Entry point of the local stand-in image (services.Containerfile): `postgres` (the default)
# behaves like the official image (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA);
# `redis-server ...` listens on every interface as the official image does; anything else runs.
set -eu
case "${1:-postgres}" in
  postgres)
    bin=/usr/lib/postgresql/15/bin
    user=${POSTGRES_USER:-postgres}
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
      pwfile=$(mktemp) && printf '%s\n' "${POSTGRES_PASSWORD:?}" >"$pwfile" && chown postgres "$pwfile"
      runuser -u postgres -- "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
      rm -f "$pwfile"
      echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
      runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
      runuser -u postgres -- psql -q -U "$user" -d postgres -c "CREATE DATABASE \"${POSTGRES_DB:-$user}\""
      runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    exec runuser -u postgres -- "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' ;;
  redis-server)
    mkdir -p /data && cd /data
    exec "$@" --protected-mode no ;;
  *)
    exec "$@" ;;
esac
