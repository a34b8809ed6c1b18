"""Does the +fixed change, as a patch to the real package, do on the real
stack what the model says it does?

    python3 interop/fix_check.py AS_RELEASED_DIR FIXED_DIR

reads the results.json that interop/fidelity.py wrote for a release as
released (the real stack unpatched) and for its +fixed variant (the real
stack with interop/patches/ applied), and checks, run by run:

* where the unpatched real stack shows missing-final-body, the patched one
  does not;
* every oracle that fails on the patched real stack but not on the unpatched
  one (what got worse) is one the +fixed model predicts for that run.

Every run of the fixed pass is compared with the unpatched run of the same
scenario and seed (the fixed pass may cover fewer seeds). Writes
FIXED_DIR/fix.md (the table) and exits 1 if either rule is broken, or a fixed
run could not be made or has no unpatched counterpart.
"""

from __future__ import annotations

import json
import pathlib
import sys


def load(d: pathlib.Path) -> dict[tuple[str, int], dict]:
    rows = json.loads((d / "results.json").read_text())
    return {(r["scenario"], r["seed"]): r for r in rows}


def cell(oracles: list[str]) -> str:
    return ", ".join(oracles) if oracles else "pass"


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    released_dir, fixed_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    released, fixed = load(released_dir), load(fixed_dir)
    out = [
        "| scenario | seed | real, unpatched | real, patched | model +fixed | the fix |",
        "|---|---|---|---|---|---|",
    ]
    status = 0
    closed = 0
    for key in sorted(fixed):
        a, b = released.get(key), fixed.get(key)
        if a is None or b is None or "error" in a or "error" in b:
            why = "missing" if a is None or b is None else (a.get("error") or b.get("error"))
            out.append(f"| {key[0]} | {key[1]} | | | | **no run**: {why[:80]} |")
            status = 1
            continue
        before, after, predicted = set(a["real"]), set(b["real"]), set(b["model"])
        notes = []
        ok = True
        if "missing-final-body" in before:
            if "missing-final-body" in after:
                notes.append("**missing-final-body remains**")
                ok = False
            else:
                notes.append("closes missing-final-body")
                closed += 1
        worse = sorted(after - before)
        unpredicted = [o for o in worse if o not in predicted]
        if unpredicted:
            notes.append(f"**worse, not predicted: {', '.join(unpredicted)}**")
            ok = False
        elif worse:
            notes.append(f"worse as the model predicts: {', '.join(worse)}")
        if not notes:
            notes.append("no change" if before == after else "better")
        if not ok:
            status = 1
        out.append(
            f"| {key[0]} | {key[1]} | {cell(sorted(before))} | {cell(sorted(after))} | "
            f"{cell(sorted(predicted))} | {'; '.join(notes)} |"
        )
    out.append("")
    out.append(
        f"{closed} run(s) where the patch closes the real stack's missing-final-body; "
        + ("every rule holds." if status == 0 else "A RULE IS BROKEN (marked above).")
    )
    text = "\n".join(out) + "\n"
    (fixed_dir / "fix.md").write_text(text)
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
