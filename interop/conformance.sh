#!/usr/bin/env bash
# Run the official MCP conformance suite (@modelcontextprotocol/conformance, pinned) against
# `mcpsim serve` for each stack, and write a table of the results.
#
#   bash interop/conformance.sh [STACK ...]      (default: native python-sdk-1.20)
#
# The suite needs Node >= 22 (it imports fs.globSync); a pinned Node 22 comes from the npm registry
# (the `node` package) into target/interop/node, so only npm is needed on the machine.
# Exit status: 1 if the active suite has a FAILURE on `native` (the reference must pass it all);
# the other stacks are reported, not judged.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFORMANCE=0.1.16
NODE=22.23.3
work=target/interop/node
mkdir -p "$work"
if [ ! -x "$work/node_modules/.bin/node" ] || [ ! -d "$work/node_modules/@modelcontextprotocol/conformance" ]; then
  (cd "$work" && [ -f package.json ] || echo '{"private":true}' > package.json
   npm install --no-audit --no-fund --loglevel=error "node@$NODE" "@modelcontextprotocol/conformance@$CONFORMANCE")
fi
node22="$work/node_modules/.bin/node"
suite="$work/node_modules/@modelcontextprotocol/conformance/dist/index.js"
"$node22" --version

. interop/serve.sh
stacks=("$@")
[ ${#stacks[@]} -gt 0 ] || stacks=(native python-sdk-1.20)
out=target/interop/conformance
rm -rf "$out"; mkdir -p "$out"
status=0
for stack in "${stacks[@]}"; do
  serve_start "$stack" "$out"
  echo "== $stack at $url"
  set +e
  timeout 600 "$node22" "$suite" server --url "$url" --suite active -o "$out/$stack/active" > "$out/$stack.active.txt" 2>&1
  active=$?
  timeout 300 "$node22" "$suite" server --url "$url" --suite pending -o "$out/$stack/pending" > "$out/$stack.pending.txt" 2>&1
  set -e
  serve_stop
  grep -E '^Total' "$out/$stack.active.txt" || true
  if [ "$stack" = native ] && [ "$active" -ne 0 ]; then
    echo "the active suite failed on native (exit $active):" >&2
    grep -E '✗' "$out/$stack.active.txt" >&2 || true
    status=1
  fi
done
python3 interop/conformance_table.py "$out" "${stacks[@]}" | tee "$out/table.md"
exit $status
