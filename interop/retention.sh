#!/usr/bin/env bash
# Does a server forget a session its client DELETEd? Each python-sdk model
# (`mcpsim serve --observe`) and each real release (interop/real_server*.py)
# gets N initialize+DELETE rounds (interop/churn.py), then reports the sessions
# it still registers.
#
#   bash interop/retention.sh [ROUNDS]      (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
case "$n" in ''|*[!0-9]*) echo "retention.sh: ROUNDS must be a number, not '$n'" >&2; exit 2 ;; esac
cargo build --release -q
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "retention.sh: nothing listens on $1" >&2; return 1; }
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT
for r in 1.20 2.3; do
  p=$(port); o=$(port)
  target/release/mcpsim serve --server "python-sdk-$r" --listen "127.0.0.1:$p" --observe "127.0.0.1:$o" >/dev/null 2>&1 &
  pid=$!
  wait_port "$p"
  python3 interop/churn.py --url "http://127.0.0.1:$p/mcp" --observe "http://127.0.0.1:$o" --rounds "$n" \
    --label "model python-sdk-$r"
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true; pid=
  MCPSIM_RELEASE=$r . interop/venv.sh
  server=interop/real_server.py
  [ "$r" = 2.3 ] && server=interop/real_server_2.py
  p=$(port)
  "$venv/bin/python" "$server" --port "$p" >/dev/null 2>&1 &
  pid=$!
  wait_port "$p"
  python3 interop/churn.py --url "http://127.0.0.1:$p/mcp" --observe "http://127.0.0.1:$p" --rounds "$n" \
    --label "real mcp $r ($server)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
