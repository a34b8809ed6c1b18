#!/usr/bin/env bash
# The official SDK clients against `mcpsim serve`: the Python SDK (mcp, pinned in
# interop/requirements.txt) and the TypeScript SDK (@modelcontextprotocol/sdk, pinned below).
# Each initializes, lists tools, makes a fast call, a slow call and a call with progress — on
# each stack.
#
#   bash interop/sdk_clients.sh [STACK ...]      (default: native python-sdk-1.20)
#
# A virtualenv with the pinned Python packages is made once in target/interop/venv, the
# TypeScript SDK is installed from npm into target/interop/ts (run with the machine's node).
set -euo pipefail
cd "$(dirname "$0")/.."
TS_SDK=1.32.2
. interop/venv.sh
ts=target/interop/ts
if ! grep -qs "\"version\": \"$TS_SDK\"" "$ts/node_modules/@modelcontextprotocol/sdk/package.json"; then
  mkdir -p "$ts"
  (cd "$ts" && echo '{"private":true}' > package.json &&
   npm install --no-audit --no-fund --loglevel=error "@modelcontextprotocol/sdk@$TS_SDK")
fi
# Node resolves the SDK next to the script: run a copy from there.
cp interop/ts_client.mjs "$ts/"
. interop/serve.sh
stacks=("$@")
[ ${#stacks[@]} -gt 0 ] || stacks=(native python-sdk-1.20)
out=target/interop/sdk
mkdir -p "$out"
status=0
for stack in "${stacks[@]}"; do
  serve_start "$stack" "$out"
  echo "== Python SDK client (mcp $(grep '^mcp==' interop/requirements.txt | cut -d= -f3)) against $stack at $url"
  if ! timeout 120 "$venv/bin/python" interop/python_client.py "$url"; then
    status=1
  fi
  echo "== TypeScript SDK client (@modelcontextprotocol/sdk $TS_SDK, node $(node --version)) against $stack at $url"
  if ! timeout 120 node "$ts/ts_client.mjs" "$url"; then
    status=1
  fi
  serve_stop
done
exit $status
