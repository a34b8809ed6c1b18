# Sourced by the interop scripts: start and stop `mcpsim serve` on a free loopback port.
#
#   serve_start STACK OUTDIR     sets $url and $serve_pid; the server's log goes to OUTDIR/STACK.server.log
#   serve_stop                   Ctrl-C, then wait for the graceful exit

serve_start() {
  local bin=target/release/mcpsim
  [ -x "$bin" ] || cargo build --release -q
  "$bin" serve --server "$1" --listen 127.0.0.1:0 > "$2/$1.url" 2> "$2/$1.server.log" &
  serve_pid=$!
  for _ in $(seq 100); do grep -q http "$2/$1.url" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[^ ]*' "$2/$1.url")
}

serve_stop() {
  kill -INT "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
}
