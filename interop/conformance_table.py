"""Summarise conformance results (checks.json per scenario) as a markdown table.

    python3 interop/conformance_table.py OUT_DIR STACK ...
"""

import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
stacks = sys.argv[2:]
rows: dict[str, dict[str, str]] = {}
order: list[str] = []
for stack in stacks:
    for suite in ("active", "pending"):
        for d in sorted((out / stack / suite).glob("server-*")):
            scenario = d.name[len("server-"):].rsplit("-", 6)[0]
            checks = json.loads((d / "checks.json").read_text())
            scored = [c for c in checks if c["status"] in ("SUCCESS", "FAILURE", "WARNING")]
            bad = [c for c in scored if c["status"] == "FAILURE"]
            warn = [c for c in scored if c["status"] == "WARNING"]
            ok = len(scored) - len(bad) - len(warn)
            cell = f"{ok}/{len(scored)}"
            if bad:
                cell += " ✗ " + "; ".join(
                    f"{c['id']}: {(c.get('errorMessage') or '')[:70]}" for c in bad
                )
            elif warn:
                cell += " (warn: " + ", ".join(c["id"] for c in warn) + ")"
            else:
                cell += " ✓"
            key = f"{scenario}{' (pending)' if suite == 'pending' else ''}"
            if key not in rows:
                rows[key] = {}
                order.append(key)
            rows[key][stack] = cell.replace("|", "/").replace("\n", " ")
print("| scenario | " + " | ".join(stacks) + " |")
print("|---|" + "---|" * len(stacks))
for key in order:
    print(f"| `{key}` | " + " | ".join(rows[key].get(s, "—") for s in stacks) + " |")
