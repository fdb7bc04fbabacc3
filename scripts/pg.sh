# Throwaway Postgres for tests. Source after lib.sh; `pg_start` exports HEARTH_TEST_PG_URL and
# PG_DIR (its data is $PG_DIR/data) and registers `pg_stop` on exit; PG_FSYNC=on (benchmarks) keeps
# the production fsync setting. With DATABASE_URL set, that database is used instead.
pg_start() {
  if [ -n "${DATABASE_URL:-}" ]; then
    export HEARTH_TEST_PG_URL="$DATABASE_URL"
    return
  fi
  command -v initdb >/dev/null && command -v pg_ctl >/dev/null \
    || die "initdb/pg_ctl not found: install Debian's postgresql package or set DATABASE_URL."
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hearth-pg.XXXXXX")
  PG_PORT=$(free_port)
  local run=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_DIR"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" initdb -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed (log above)."; }
  "${run[@]}" pg_ctl -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} -c max_connections=${PG_MAX_CONNECTIONS:-200}" start >/dev/null \
    || { cat "$PG_DIR/postgres.log" >&2; die "postgres did not start (log above)."; }
  trap pg_stop EXIT
  export HEARTH_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "postgres: throwaway cluster on port $PG_PORT ($PG_DIR)"
}

pg_stop() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
    local run=()
    [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
    "${run[@]}" pg_ctl -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
