# Shared shell helpers for Hearth's scripts. Source it; do not run it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$ROOT/scripts/versions.env"
export PATH="$HOME/.cargo/bin:$ROOT/e2e/node_modules/.bin:$PATH"
# A shared build cache outside the clone keeps CI fast when it exists; everything works without it.
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d "${HEARTH_CACHE_DIR:-$HOME/.cache/hearth}/target" ]; then
  export CARGO_TARGET_DIR="${HEARTH_CACHE_DIR:-$HOME/.cache/hearth}/target"
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until URL answers 200, or fails after $2 seconds.
wait_http() {
  local url=$1 secs=${2:-60}
  for _ in $(seq 1 $((secs * 5))); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}
