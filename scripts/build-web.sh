#!/usr/bin/env bash
# Builds everything the server serves into dist/: the web UI and the sync worker (Trunk), and the
# JavaScript package — the engine's API, HearthSync and the sync worker in one module (the `worker`
# crate with feature `js`) — with its example page (dist/js-example/, wasm-bindgen --target web).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
# dist/ built from exactly these sources is reused, so a restart takes seconds, not minutes.
sources_hash() {
  { find web-ui worker client-wasm shared-schema -type f -not -path '*/target/*' -print0 | sort -z | xargs -0 sha256sum
    sha256sum Cargo.toml Cargo.lock Trunk.toml scripts/build-web.sh scripts/precompress.mjs scripts/versions.env; } | sha256sum | cut -c1-32
}
stamp=$(sources_hash)
if [ -f dist/.sources ] && [ "$(cat dist/.sources)" = "$stamp" ] && [ -f dist/index.html ] && [ -f dist/js-example/index.html ]; then
  step "dist/ is up to date (no source changed since it was built)"
  exit 0
fi
step "trunk build --release --cargo-profile web"
trunk build --release --offline --cargo-profile web
# Stamp the service worker with this build's id so browsers see a new version.
build_id=$(cat dist/*.wasm dist/*.js | sha256sum | cut -c1-12)
sed -i "s/__HEARTH_BUILD__/$build_id/" dist/sw.js
step "JavaScript package and example (wasm-bindgen --target web)"
cargo build -p worker --features js --target wasm32-unknown-unknown --release --locked
rm -rf dist/js-example/pkg
wasm-bindgen --target web --out-name hearth --out-dir dist/js-example/pkg "$TARGET_DIR/wasm32-unknown-unknown/release/worker.wasm"
cp client-wasm/example/index.html dist/js-example/index.html
cp client-wasm/README.md dist/js-example/pkg/README.md
step "precompress dist/ (brotli .br and zopfli .gz beside each file; the server sends the best one the browser accepts)"
node scripts/precompress.mjs dist
echo "$stamp" > dist/.sources
