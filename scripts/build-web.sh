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
# The app's wasm is what every first load downloads, so it is built for size: the pinned nightly
# rebuilds std with `optimize_for_size` and with panics that abort at once (no panic messages or
# formatting in the bundle; `trunk serve`'s debug builds keep them). Without that toolchain, stable.
web_toolchain=stable
if rustup component list --toolchain "$WEB_NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src' \
   && rustup target list --toolchain "$WEB_NIGHTLY" --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then
  web_toolchain=$WEB_NIGHTLY
fi
stamp="$(sources_hash)-$web_toolchain"
if [ -f dist/.sources ] && [ "$(cat dist/.sources)" = "$stamp" ] && [ -f dist/index.html ] && [ -f dist/js-example/index.html ]; then
  step "dist/ is up to date (no source changed since it was built)"
  exit 0
fi
# Runs a command that builds shipped wasm: on the pinned nightly with std rebuilt for size, or as is.
for_size() {
  if [ "$web_toolchain" = "$WEB_NIGHTLY" ]; then
    RUSTUP_TOOLCHAIN="$WEB_NIGHTLY" CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
      CARGO_UNSTABLE_BUILD_STD_FEATURES=optimize_for_size \
      CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" "$@"
  else
    "$@"
  fi
}
if [ "$web_toolchain" != "$WEB_NIGHTLY" ]; then
  echo "build-web: warning: $WEB_NIGHTLY (with rust-src and $WASM_TARGET) is not installed, so the app is built on stable: about 130 KB more on a first load. bash scripts/setup.sh installs it." >&2
fi
if [ "$web_toolchain" = "$WEB_NIGHTLY" ]; then
  # Trunk builds offline (Trunk.toml), and std rebuilt from source has crates of its own
  # (library/Cargo.lock in rust-src): fetched here once, or a fresh machine's build fails with
  # "no matching package named `wasip1` found".
  step "cargo fetch (the crates of $WEB_NIGHTLY's std, for rebuilding it)"
  RUSTUP_TOOLCHAIN="$WEB_NIGHTLY" cargo fetch --locked --quiet \
    --manifest-path "$(rustc "+$WEB_NIGHTLY" --print sysroot)/lib/rustlib/src/rust/library/Cargo.toml"
fi
step "trunk build --release --cargo-profile web ($web_toolchain)"
for_size trunk build --release --offline --cargo-profile web
# Stamp the service worker with this build's id so browsers see a new version.
build_id=$(cat dist/*.wasm dist/*.js | sha256sum | cut -c1-12)
sed -i "s/__HEARTH_BUILD__/$build_id/" dist/sw.js
step "JavaScript package and example (wasm-bindgen --target web, wasm-opt -Oz; $web_toolchain)"
# Selecting web-ui too (its lib-less package builds nothing with --lib) resolves the dependencies'
# features exactly as Trunk's build of the app did, so only worker and client-wasm compile again;
# `-p worker` alone would rebuild about a hundred of them, Loro and web-sys among them.
for_size cargo build -p web-ui -p worker --features worker/js --lib --target wasm32-unknown-unknown --profile web --locked
rm -rf dist/js-example/pkg
wasm-bindgen --target web --out-name hearth --out-dir dist/js-example/pkg "$TARGET_DIR/wasm32-unknown-unknown/web/worker.wasm"
# The same wasm-opt passes Trunk runs on the app (web-ui/index.html).
wasm-opt -Oz --zero-filled-memory --low-memory-unused --enable-bulk-memory --enable-mutable-globals \
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-reference-types --enable-multivalue \
  dist/js-example/pkg/hearth_bg.wasm -o dist/js-example/pkg/hearth_bg.wasm
cp client-wasm/example/index.html dist/js-example/index.html
cp client-wasm/README.md dist/js-example/pkg/README.md
step "precompress dist/ (brotli .br and zopfli .gz beside each file; the server sends the best one the browser accepts)"
node scripts/precompress.mjs dist
echo "$stamp" > dist/.sources
