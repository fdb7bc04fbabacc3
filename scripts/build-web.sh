#!/usr/bin/env bash
# Builds everything the server serves into dist/: the web UI and the sync worker (Trunk), and the
# plain-JavaScript example of the engine (dist/js-example/, wasm-bindgen --target web).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
step "trunk build --release --cargo-profile web"
trunk build --release --offline --cargo-profile web
# Stamp the service worker with this build's id so browsers see a new version.
build_id=$(cat dist/*.wasm dist/*.js | sha256sum | cut -c1-12)
sed -i "s/__HEARTH_BUILD__/$build_id/" dist/sw.js
step "engine JS example (wasm-bindgen --target web)"
cargo build -p client-wasm --target wasm32-unknown-unknown --release --locked
wasm-bindgen --target web --out-dir dist/js-example/pkg "$TARGET_DIR/wasm32-unknown-unknown/release/client_wasm.wasm"
cp client-wasm/example/index.html dist/js-example/index.html
