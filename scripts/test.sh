#!/usr/bin/env bash
# Runs every test, in order, stopping at the first failure:
#   fmt → clippy (native + wasm32) → native tests → server tests on SQLite and a real Postgres →
#   browser tests (wasm-bindgen-test in headless Chromium, real IndexedDB) → trunk build →
#   Playwright end-to-end tests against the running server.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/pg.sh"
cd "$ROOT"
started=$(date +%s)

bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all --check

step "clippy (native)"
cargo clippy --workspace --exclude web-ui --exclude worker --all-targets --locked -- -D warnings

step "clippy (the server as released: no test-hooks feature)"
cargo clippy -p hearth-server --locked -- -D warnings

step "clippy (wasm32)"
cargo clippy -p shared-schema -p client-wasm -p worker -p web-ui --target wasm32-unknown-unknown --all-targets --locked -- -D warnings

step "clippy (the benchmarks: client-wasm --features bench, native and wasm32)"
cargo clippy -p client-wasm --features bench --all-targets --locked -- -D warnings
cargo clippy -p client-wasm --features bench --target wasm32-unknown-unknown --tests --locked -- -D warnings

step "clippy (wasm32: the JavaScript package, worker --features js)"
cargo clippy -p worker --features js --target wasm32-unknown-unknown --locked -- -D warnings

step "native tests (server on SQLite)"
cargo test --workspace --exclude web-ui --exclude worker --locked

step "server tests on a real Postgres"
pg_start
# Hostile HEARTH_* settings in the environment: the tests must not inherit them (they start
# from Config::defaults(), which ignores the environment); if they did, most would fail.
HEARTH_TEST_DATABASE_URL="$HEARTH_TEST_PG_URL" HEARTH_TEST_PG_DATA="${PG_DIR:+$PG_DIR/data}" \
  HEARTH_RATE_LIMIT=1 HEARTH_MAX_UPDATE_BYTES=16 HEARTH_ANONYMOUS_PER_MINUTE=1 \
  cargo test -p hearth-server --locked --tests -- --include-ignored

step "browser tests (wasm-bindgen-test, headless Chromium, real IndexedDB)"
CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=120 \
  cargo test -p client-wasm --target wasm32-unknown-unknown --locked

bash scripts/build-web.sh
# One wasm on a first load: the sync worker runs the app's own bundle.
if [ "$(ls dist/*.wasm | wc -l)" != 1 ]; then
  die "dist/ holds more than one wasm: the sync worker must run the app's bundle (web-ui/src/api.rs)."
fi

# The release-like build (no features) must not know the test hook; the e2e tests need it.
cargo build -p hearth-server --locked
if "$TARGET_DIR/debug/hearth-server" --test-tamper-pulls --help >/dev/null 2>&1; then
  die "hearth-server without the test-hooks feature accepts --test-tamper-pulls"
fi
cargo build -p hearth-server --locked --features test-hooks
cargo build -p client-native --bin hearth --locked

step "end-to-end tests (Playwright, Debian Chromium)"
HEARTH_SERVER_BIN="$TARGET_DIR/debug/hearth-server" HEARTH_DIST="$ROOT/dist" \
  HEARTH_CLI_BIN="$TARGET_DIR/debug/hearth" \
  HEARTH_SCREENSHOTS="$ROOT/target/e2e" HEARTH_TEST_PG_URL="$HEARTH_TEST_PG_URL" \
  node --test --test-concurrency=1 e2e/tests/

echo
echo "all tests passed in $(( $(date +%s) - started ))s"
