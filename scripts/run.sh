#!/usr/bin/env bash
# Builds the web UI and starts the server with SQLite under ./data; prints the URL.
# Extra arguments go to hearth-server (see `hearth-server --help`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
# A taken address is reported before anything is built: --bind ADDR (or --bind=ADDR), else HEARTH_BIND.
bind="${HEARTH_BIND:-127.0.0.1:8080}"
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    --bind=*) bind="${args[$i]#--bind=}" ;;
    --bind) bind="${args[$((i + 1))]:-$bind}" ;;
  esac
done
if ! python3 - "$bind" <<'PY' 2>/dev/null
import errno, socket, sys
try:
    host, _, port = sys.argv[1].rpartition(":")
    host = host.strip("[]")
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host or "0.0.0.0", int(port)))
except OSError as e:
    sys.exit(1 if e.errno == errno.EADDRINUSE else 0)
except ValueError:
    pass  # not HOST:PORT: the server says what is wrong with it
PY
then
  port="${bind##*:}"
  die "$bind is taken (is Hearth already running?); pick another port: bash scripts/run.sh --bind 127.0.0.1:$((port + 1))"
fi
bash scripts/setup.sh
bash scripts/build-web.sh
step "building the server"
cargo build --release --locked -p hearth-server
mkdir -p data
exec "$TARGET_DIR/release/hearth-server" --data-dir ./data --static-dir ./dist "$@"
