#!/usr/bin/env bash
# Builds the web UI and starts the server with SQLite under ./data; prints the URL.
# Extra arguments go to hearth-server (see `hearth-server --help`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build-web.sh
step "building the server"
cargo build --release --locked -p hearth-server
mkdir -p data
exec "$TARGET_DIR/release/hearth-server" --data-dir ./data --static-dir ./dist "$@"
