#!/usr/bin/env bash
# The python-sdk-1.20 model against the real stack it models (mcp 1.20.0, sse-starlette 3.0.3,
# uvicorn 0.38.0 and the rest pinned in interop/requirements.txt), scenario by scenario:
# `mcpsim run` gives the model's verdict, `mcpsim drive --server-cmd interop/real_server.py`
# the real one. Writes target/interop/fidelity/{table.md,results.json}.
#
#   bash interop/fidelity.sh [--seeds A..B] [--time-scale K] [SCENARIO ...]
#
# Fails on a run that could not be made, or on a disagreement not explained in
# interop/fidelity_explained.json.
set -euo pipefail
cd "$(dirname "$0")/.."
. interop/venv.sh
cargo build --release -q
exec python3 interop/fidelity.py --python "$venv/bin/python" "$@"
