#!/usr/bin/env bash
# Installs what a fresh machine lacks, idempotently: the wasm32 target, the pinned nightly that builds
# the browser bundle, wasm-bindgen-cli (pinned to
# the crate's version), trunk, Debian's chromium + chromium-driver, and the npm packages of the
# end-to-end tests (playwright-core, binaryen's wasm-opt). A second run takes seconds.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# 1. The wasm-bindgen crate in Cargo.lock must equal the CLI pin.
lock_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
[ "$lock_version" = "$WASM_BINDGEN_VERSION" ] || die "Cargo.lock has wasm-bindgen $lock_version but scripts/versions.env pins $WASM_BINDGEN_VERSION: make them equal (Cargo.toml pins the crate with '=')."

# 2. wasm32 target.
if ! rustup target list --installed | grep -qx "$WASM_TARGET"; then
  step "rustup target add $WASM_TARGET"
  rustup target add "$WASM_TARGET" >/dev/null || die "could not add the $WASM_TARGET target: check rustup and the network."
fi

# 2b. The pinned nightly of the browser bundle, with std's sources (rebuilt for size) and wasm32.
#     Not fatal: without it scripts/build-web.sh builds on stable (a bigger first load) and says so.
if ! rustup component list --toolchain "$WEB_NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src' \
   || ! rustup target list --toolchain "$WEB_NIGHTLY" --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then
  step "rustup toolchain install $WEB_NIGHTLY (the browser bundle's compiler; about 30 seconds, once)"
  rustup toolchain install "$WEB_NIGHTLY" --profile minimal --component rust-src --target "$WASM_TARGET" >/dev/null 2>&1 \
    || echo "setup: warning: could not install $WEB_NIGHTLY; the web bundle will be built on stable (about 130 KB more to download on a first load)." >&2
fi

# 3. wasm-bindgen-cli at the exact version (not --locked: see toolchain notes).
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  step "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about a minute, once)"
  # Unoptimised, like Trunk below: 57 s to compile instead of 173 s; it then takes 3.0 s instead of
  # 1.0 s on the largest wasm of the tests (40 MB), 2.0 s instead of 0.6 s on the app's.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force >/dev/null 2>"${TMPDIR:-/tmp}/hearth-wbg.log" \
    || die "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION failed: see ${TMPDIR:-/tmp}/hearth-wbg.log."
fi
[ "$(wasm-bindgen --version | awk '{print $2}')" = "$WASM_BINDGEN_VERSION" ] || die "wasm-bindgen on PATH is not $WASM_BINDGEN_VERSION: remove the other one from PATH."

# 4. trunk.
if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  step "cargo install trunk $TRUNK_VERSION (about 3 minutes, once)"
  # Trunk's own release profile is fat LTO with one codegen unit (9 minutes on two cores). A build
  # tool whose time goes to cargo, wasm-bindgen and wasm-opt needs none of that speed: unoptimised
  # it compiles in 176 s instead of 342 s at opt-level 1, and `trunk build` takes the same 30-32 s.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    cargo install trunk --version "$TRUNK_VERSION" --locked --force >/dev/null 2>"${TMPDIR:-/tmp}/hearth-trunk.log" \
    || die "installing trunk $TRUNK_VERSION failed: see ${TMPDIR:-/tmp}/hearth-trunk.log."
fi

# 5. Chromium and its driver from Debian.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  step "apt-get install chromium chromium-driver"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null || die "apt-get update failed: check the Debian mirror."
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null \
    || die "apt-get install chromium chromium-driver failed."
fi

# 6. npm packages of the e2e tests (lock file committed).
if [ ! -d e2e/node_modules/playwright-core ] || [ ! -x e2e/node_modules/.bin/wasm-opt ] \
   || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then
  step "npm ci (e2e)"
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in e2e/ failed: check the npm registry."
fi
# Debian's wasm-opt 108 breaks the output; ours (binaryen@132 from npm) is first on PATH.
[ "$(command -v wasm-opt)" = "$ROOT/e2e/node_modules/.bin/wasm-opt" ] || die "wasm-opt on PATH is not e2e/node_modules/.bin/wasm-opt."
echo "setup: toolchain ready (wasm-bindgen $WASM_BINDGEN_VERSION, trunk $TRUNK_VERSION, $(chromium --version 2>/dev/null | head -1))"
