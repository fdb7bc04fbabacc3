#!/usr/bin/env bash
# Benchmarks. Each prints a table and asserts nothing; every figure is compared with a baseline
# measured in the same run (ratios), because these machines are noisy.
#   1. server: pushes/s and p50/p99 for 1 KiB updates at 1/8/64 clients vs raw INSERTs (SQLite, Postgres)
#   2. engine: open from IndexedDB in Chromium vs native Loro import; snapshot, pending, edit latency
#   3. sync: edit on A → visible on B vs a fetch of /healthz; bytes per edit vs raw Loro update
#   3b/3c. the command line: cold hearth join and browser → hearth --watch propagation, beside a browser
#   3d. the C API: a call through a handle (engine kept) vs the engine opened for the call
#   4. web UI: first render of 10k/100k-edit notebooks from IndexedDB (cold, warm); bundle size
#   5. native propagation beside Hocuspocus and y-websocket (../shared/bench-peers, latency phase),
#      when that folder is beside this checkout
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/pg.sh"
cd "$ROOT"
bash scripts/setup.sh
PG_FSYNC=on pg_start
out=$(mktemp -d)

step "1. server push benchmark"
cargo run --release --locked -p hearth-server --bin hearth-bench -- --pg "$HEARTH_TEST_PG_URL" "$@"

step "2. engine benchmark (native half)"
cargo run --release --locked -p client-wasm --features bench --example engine_bench -- --write-backups "$out" | tee "$out/native.txt"
step "2. engine benchmark (browser half: headless Chromium, real IndexedDB)"
CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=900 \
  cargo test --release --locked -p client-wasm --features bench --target wasm32-unknown-unknown --test bench_browser -- --nocapture \
  | tee "$out/browser.txt"
python3 - "$out/native.txt" "$out/browser.txt" <<'PY'
import re, sys
def rows(path, tag):
    out = {}
    for line in open(path):
        m = re.search(tag + r" n=(\d+) (.*)", line)
        if m:
            out[int(m.group(1))] = dict(kv.split("=") for kv in m.group(2).split())
    return out
nat, web = rows(sys.argv[1], "NATIVE"), rows(sys.argv[2], "BROWSER")
print("\nengine: one note body typed with a synthetic trace (runs of typing, backspaces, jumps); browser figures from one page of headless Chromium")
print("| edits | first open in the page ms | warm open (best of 3) ms | wasm Loro import, same page (best of 4) ms | warm open ÷ wasm import | native Loro import ms | snapshot bytes | pending queue (bytes / updates) | one covering update, bytes (pending ÷ it) | edit→durable IndexedDB p50 / p99 ms | native edit p50 / p99 µs |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in sorted(nat):
    a, b = nat[n], web.get(n, {})
    o, w = float(b.get("open_ms", "nan")), float(b.get("wasm_import_ms", "nan"))
    print(f"| {n} | {b.get('first_open_ms', '?')} | {o:.1f} | {w:.1f} | {o / w:.1f} | {a['import_ms']} | {a['snapshot_bytes']} | {a['pending_bytes']} / {a['pending_count']} | {a['covering_bytes']} ({int(a['pending_bytes']) / int(a['covering_bytes']):.2f}) | {b.get('edit_p50_ms', '?')} / {b.get('edit_p99_ms', '?')} | {a['edit_p50_us']} / {a['edit_p99_us']} |")
print("\nengine: a member device whose own edit reached the server before a 1 MB paste (target: open ≤ 2× the empty notebook's)")
print("| where | empty notebook: open ms | 1 MB note: open ms (÷ empty) | same open without the open cache ms | reading the paste when it arrives ms |")
print("|---|---:|---:|---:|---:|")
for path, tag, where in [(sys.argv[1], "BIGNOTE", "native, in-memory store"), (sys.argv[2], "BROWSER_BIGNOTE", "Chromium, IndexedDB")]:
    for line in open(path):
        m = re.search(tag + r" (.*)", line)
        if m:
            v = dict(kv.split("=") for kv in m.group(1).split())
            e, o = float(v["empty_open_ms"]), float(v["open_ms"])
            print(f"| {where} | {e:.2f} | {o:.2f} (×{o / e:.1f}) | {v['replay_open_ms']} | {v['receive_ms']} |")
def tagged(path, tag):
    for line in open(path):
        m = re.search(tag + r" (.*)", line)
        if m:
            return dict(kv.split("=") for kv in m.group(1).split())
    return None
print("\nend-to-end encryption: a one-character edit, p50 (XChaCha20-Poly1305; target ≤ 48 bytes added)")
print("| where | edit (stored) µs | seal µs (÷ edit) | open µs (÷ edit) | bytes added per update |")
print("|---|---:|---:|---:|---:|")
for path, tag, where in [(sys.argv[1], "SEAL", "native, in-memory store"), (sys.argv[2], "BROWSER_SEAL", "Chromium, IndexedDB")]:
    v = tagged(path, tag)
    if v:
        e, s_, o = float(v["edit_p50_us"]), float(v["seal_p50_us"]), float(v["open_p50_us"])
        print(f"| {where} | {e:.1f} | {s_:.2f} (×{s_ / e:.3f}) | {o:.2f} (×{o / e:.3f}) | {v['bytes_added_p50']} |")
v = tagged(sys.argv[1], "ROTATE")
if v:
    print("\nend-to-end encryption: revoking one of 20 links of a 10,000-edit notebook (native, in-memory server)")
    print("| key rotation ms (revoke, new key wrapped for 19 links, stored) | compaction under the new key ms | snapshot bytes | sealing it ms |")
    print("|---:|---:|---:|---:|")
    print(f"| {v['rotate_ms']} | {v['compact_ms']} | {v['snapshot_bytes']} | {v['seal_snapshot_ms']} |")
PY

step "3. sync latency benchmark (release server)"
bash scripts/build-web.sh >/dev/null
cargo build --release --locked -p hearth-server
HEARTH_SERVER_BIN="$TARGET_DIR/release/hearth-server" HEARTH_DIST="$ROOT/dist" node e2e/bench/sync-latency.mjs
HEARTH_SERVER_BIN="$TARGET_DIR/release/hearth-server" HEARTH_DIST="$ROOT/dist" node e2e/bench/tab-local.mjs

step "3b. join a notebook typed 10,000 times through the app vs a one-note notebook (release server; browser and hearth)"
cargo build --release --locked -p client-native --bin hearth
HEARTH_CLI_BIN="$TARGET_DIR/release/hearth" HEARTH_SERVER_BIN="$TARGET_DIR/release/hearth-server" HEARTH_DIST="$ROOT/dist" node e2e/bench/join.mjs

step "3c. propagation: browser A → browser B vs browser A → hearth sync --watch (release server)"
HEARTH_CLI_BIN="$TARGET_DIR/release/hearth" HEARTH_SERVER_BIN="$TARGET_DIR/release/hearth-server" HEARTH_DIST="$ROOT/dist" node e2e/bench/native.mjs

step "3d. the C API: a handle keeps each notebook's engine vs opening it per call"
cargo run --release --locked -p hearth-ffi --example handle_bench

step "4. web UI first render benchmark (release server)"
HEARTH_SERVER_BIN="$TARGET_DIR/release/hearth-server" HEARTH_DIST="$ROOT/dist" node e2e/bench/first-render.mjs "$out"

step "5. native propagation: Hearth beside Hocuspocus and y-websocket (../shared/bench-peers, latency)"
PEERS="$ROOT/../shared/bench-peers"
if [ -f "$PEERS/run.sh" ]; then
  HEARTH_BIN="$TARGET_DIR/release/hearth-server" ONLY=latency bash "$PEERS/run.sh"
else
  echo "skipped: $PEERS is not beside this checkout"
fi
