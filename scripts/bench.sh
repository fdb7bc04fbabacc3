#!/usr/bin/env bash
# Benchmarks (print tables; nothing is asserted): server push throughput/latency vs raw INSERTs,
# on SQLite and a throwaway Postgres.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/pg.sh"
cd "$ROOT"
bash scripts/setup.sh
pg_start
step "server push benchmark"
cargo run --release --locked -p hearth-server --bin hearth-bench -- --pg "$HEARTH_TEST_PG_URL" "$@"
