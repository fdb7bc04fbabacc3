#!/usr/bin/env bash
# Builds everything the server serves into dist/: the web UI and the sync worker (Trunk), and the
# plain-JavaScript example of the engine (dist/js-example/, wasm-bindgen --target web).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
# dist/ built from exactly these sources is reused, so a restart takes seconds, not minutes.
sources_hash() {
  { find web-ui worker client-wasm shared-schema -type f -not -path '*/target/*' -print0 | sort -z | xargs -0 sha256sum
    sha256sum Cargo.toml Cargo.lock Trunk.toml scripts/build-web.sh scripts/versions.env; } | sha256sum | cut -c1-32
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
step "engine JS example (wasm-bindgen --target web)"
cargo build -p client-wasm --target wasm32-unknown-unknown --release --locked
wasm-bindgen --target web --out-dir dist/js-example/pkg "$TARGET_DIR/wasm32-unknown-unknown/release/client_wasm.wasm"
cp client-wasm/example/index.html dist/js-example/index.html
cp client-wasm/README.md dist/js-example/pkg/README.md
echo "$stamp" > dist/.sources
