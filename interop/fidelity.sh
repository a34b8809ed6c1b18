#!/usr/bin/env bash
# Each python-sdk model against the real stack it models, scenario by scenario:
# `mcpsim run` gives the model's verdict, `mcpsim drive --server-cmd <real server>` the real one.
#
#   bash interop/fidelity.sh [--release 1.20|2.3|all] [--fixed] [--fixed-seeds A..B] [--seeds A..B]
#                            [--time-scale K] [SCENARIO ...]
#
#   --release 1.20   python-sdk-1.20 vs mcp 1.20.0 (interop/real_server.py, interop/requirements.txt)
#   --release 2.3    python-sdk-2.3 vs mcp 2.3.0 (interop/real_server_2.py, interop/requirements-2.3.txt)
#   --release rmcp-3.11  rmcp-3.11 simulated vs the same rmcp 3.11.0 under `mcpsim serve` (no Python)
#   --release all    both Python releases (the default)
#   --fixed          also python-sdk-2.3+fixed vs mcp 2.3.0 with interop/patches/ applied, then
#                    interop/fix_check.py: where the unpatched real stack shows missing-final-body,
#                    the patched one must not, and nothing else may get worse that the model did
#                    not predict
#   --fixed-seeds    the seeds of that pass (default: --seeds; each must be among --seeds)
#   --once SCENARIO  only the first seed of SCENARIO (repeatable)
#
# Writes target/interop/fidelity-<release>/{table.md,results.json} (fidelity-2.3+fixed for --fixed).
# Fails on a run that could not be made, or on a disagreement not explained in
# interop/fidelity_explained.json.
set -euo pipefail
cd "$(dirname "$0")/.."
releases="1.20 2.3"
fixed=0
seeds=0..2
fixed_seeds=
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release)
      [ $# -ge 2 ] || { echo "fidelity.sh: --release needs 1.20, 2.3 or all" >&2; exit 2; }
      case "$2" in
        1.20|2.3|rmcp-3.11) releases="$2" ;;
        all) releases="1.20 2.3" ;;
        *) echo "fidelity.sh: --release $2: use 1.20, 2.3 or all" >&2; exit 2 ;;
      esac
      shift 2 ;;
    --fixed) fixed=1; shift ;;
    --seeds|--fixed-seeds)
      [ $# -ge 2 ] || { echo "fidelity.sh: $1 needs A..B" >&2; exit 2; }
      case "$2" in
        [0-9]*..[0-9]*) ;;
        *) echo "fidelity.sh: $1 $2: use A..B, e.g. 0..2" >&2; exit 2 ;;
      esac
      if [ "$1" = --seeds ]; then seeds="$2"; else fixed_seeds="$2"; fi
      shift 2 ;;
    --once)
      [ $# -ge 2 ] || { echo "fidelity.sh: --once needs a scenario" >&2; exit 2; }
      args+=("$1" "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
cargo build --release -q
status=0
for r in $releases; do
  if [ "$r" = rmcp-3.11 ]; then
    # rmcp needs no Python: `mcpsim serve --server rmcp-3.11` is the real server.
    echo "== fidelity, rmcp-3.11 (simulated) against itself on loopback"
    python3 interop/fidelity.py --release "$r" --seeds "$seeds" \
      --out "target/interop/fidelity-$r" ${args[@]+"${args[@]}"} || status=1
    continue
  fi
  MCPSIM_RELEASE=$r . interop/venv.sh
  echo "== fidelity, release $r"
  python3 interop/fidelity.py --python "$venv/bin/python" --release "$r" --seeds "$seeds" \
    --out "target/interop/fidelity-$r" ${args[@]+"${args[@]}"} || status=1
  if [ "$fixed" = 1 ] && [ "$r" = 2.3 ]; then
    echo "== fidelity, release $r +fixed (the real stack patched with interop/patches/)"
    python3 interop/fidelity.py --python "$venv/bin/python" --release "$r" --fixed \
      --seeds "${fixed_seeds:-$seeds}" \
      --out "target/interop/fidelity-$r+fixed" ${args[@]+"${args[@]}"} || status=1
    python3 interop/fix_check.py "target/interop/fidelity-$r" "target/interop/fidelity-$r+fixed" || status=1
  fi
done
exit $status
