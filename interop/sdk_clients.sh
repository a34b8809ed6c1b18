#!/usr/bin/env bash
# The official Python SDK client (mcp, pinned in interop/requirements.txt) against `mcpsim serve`:
# initialize, list tools, a fast call, a slow call, a call with progress — on each stack.
#
#   bash interop/sdk_clients.sh [STACK ...]      (default: native python-sdk-1.20)
#
# A virtualenv with the pinned packages is made once in target/interop/venv.
set -euo pipefail
cd "$(dirname "$0")/.."
. interop/venv.sh
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
  serve_stop
done
exit $status
