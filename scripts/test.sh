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

# Every cargo command of one kind selects the same packages, so dependencies resolve to the same
# features and are compiled once: `-p x` alone would resolve fewer features, and rebuild a hundred
# dependencies (on a bare machine, minutes). `hearth` and the test-hook server come from the native
# test build; the Postgres tests re-run its test binaries.
NATIVE=(--workspace --exclude web-ui --exclude worker --locked)
WASM=(-p shared-schema -p client-wasm -p worker -p web-ui --target wasm32-unknown-unknown --locked)

step "clippy (native, with the benchmarks: client-wasm --features bench)"
cargo clippy "${NATIVE[@]}" --all-targets --features client-wasm/bench -- -D warnings

step "clippy (the server as released: no test-hooks feature)"
cargo clippy -p hearth-server --locked -- -D warnings

step "clippy (wasm32, with the benchmarks)"
cargo clippy "${WASM[@]}" --all-targets --features client-wasm/bench -- -D warnings

step "clippy (wasm32: the JavaScript package, worker --features js)"
cargo clippy "${WASM[@]}" --lib --features worker/js -- -D warnings

# The release-like build (no features) must not know the test hook. Built before the tests, whose
# build then puts the test-hook server back at target/debug/hearth-server for the end-to-end tests.
step "the server as released refuses the test hook"
cargo build -p hearth-server --locked
if "$TARGET_DIR/debug/hearth-server" --test-tamper-pulls --help >/dev/null 2>&1; then
  die "hearth-server without the test-hooks feature accepts --test-tamper-pulls"
fi

step "native tests (server on SQLite)"
cargo test "${NATIVE[@]}"

step "server tests on a real Postgres"
pg_start
# Hostile HEARTH_* settings in the environment: the tests must not inherit them (they start
# from Config::defaults(), which ignores the environment); if they did, most would fail.
HEARTH_TEST_DATABASE_URL="$HEARTH_TEST_PG_URL" HEARTH_TEST_PG_DATA="${PG_DIR:+$PG_DIR/data}" \
  HEARTH_RATE_LIMIT=1 HEARTH_MAX_UPDATE_BYTES=16 HEARTH_ANONYMOUS_PER_MINUTE=1 \
  cargo test "${NATIVE[@]}" $(for t in server/tests/*.rs; do printf -- '--test %s ' "$(basename "$t" .rs)"; done) -- --include-ignored

step "browser tests (wasm-bindgen-test, headless Chromium, real IndexedDB)"
CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=120 \
  cargo test -p client-wasm --target wasm32-unknown-unknown --locked

bash scripts/build-web.sh
# One wasm on a first load: the sync worker runs the app's own bundle.
if [ "$(ls dist/*.wasm | wc -l)" != 1 ]; then
  die "dist/ holds more than one wasm: the sync worker must run the app's bundle (web-ui/src/api.rs)."
fi

# The end-to-end tests run the native test build's binaries: the server with its test hooks (the
# tests' dev-dependency turns them on) and the `hearth` command line.
"$TARGET_DIR/debug/hearth-server" --test-tamper-pulls --help >/dev/null 2>&1 \
  || die "target/debug/hearth-server lacks the test hooks the end-to-end tests use: run the native tests' build (cargo test ${NATIVE[*]})."
[ -x "$TARGET_DIR/debug/hearth" ] || die "target/debug/hearth is missing: run the native tests' build (cargo test ${NATIVE[*]})."

step "end-to-end tests (Playwright, Debian Chromium)"
HEARTH_SERVER_BIN="$TARGET_DIR/debug/hearth-server" HEARTH_DIST="$ROOT/dist" \
  HEARTH_CLI_BIN="$TARGET_DIR/debug/hearth" \
  HEARTH_SCREENSHOTS="$ROOT/target/e2e" HEARTH_TEST_PG_URL="$HEARTH_TEST_PG_URL" \
  node --test --test-concurrency=1 e2e/tests/

echo
echo "all tests passed in $(( $(date +%s) - started ))s"
