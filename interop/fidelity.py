"""A model of python-sdk against the real stack of its release, scenario by
scenario and seed by seed.

For each catalogue scenario and seed: the model's verdict comes from
`mcpsim run SCENARIO --seed N --server STACK --json`; the real one from
`mcpsim drive SCENARIO --seed N --server-cmd "<venv python> SERVER --port P
[--patch FILE]"`, which starts a fresh real server for the run, passes it the
scenario's [server] settings, replays the schedule through its fault proxy
(server faults as SIGTERM/SIGKILL/restart) and judges what the real stack did
with the same oracles. A verdict is the set of oracles that failed; the two
agree when the sets are equal.

    python3 interop/fidelity.py --python PY --release 1.20|2.3 [--fixed]
        [--seeds 0..2] [--time-scale 2] [--out DIR] [SCENARIO ...]
        [--model-cost zero] [--real-from RESULTS.json]

`--release 1.20` compares `python-sdk-1.20` with interop/real_server.py (mcp
1.20.0), `--release 2.3` compares `python-sdk-2.3` with
interop/real_server_2.py (mcp 2.3.0). `--fixed` compares the release's
`+fixed` model with its real stack under interop/patches/ (the same change as
a patch to the real package, applied when the server starts).

`--model-cost zero` runs the model without its processing time (each
realised scenario with `[server] cost = "zero"`), and `--real-from` takes the
real verdicts from an earlier run's results.json instead of driving the real
stack again: together they measure which cost setting agrees better with the
same real runs.

Writes DIR/results.json (every run, with both signatures sets) and
DIR/table.md. A real run has real timing: a disagreement not explained in
interop/fidelity_explained.json (per release) is run once more, and the table
keeps both outcomes. Exits 1 if a run could not be made (mcpsim failed, the
server did not start) or if a disagreement stays unexplained on the second
run.
"""

from __future__ import annotations

import argparse
import re
import json
import pathlib
import socket
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MCPSIM = ROOT / "target" / "release" / "mcpsim"

# What each release is compared with: the model's stack, the real server, and
# what the real stack is, in words.
RELEASES = {
    "1.20": {
        "stack": "python-sdk-1.20",
        "server": ROOT / "interop" / "real_server.py",
        "real": "mcp 1.20.0 on uvicorn 0.38.0",
        "patches": [],
    },
    # rmcp's code is the same in both worlds: the simulated run and
    # `mcpsim serve --server rmcp-3.11` on loopback run one build of it, so a
    # disagreement is about the network (turmoil's against the kernel's) or
    # about wall-clock time, never about a model.
    "rmcp-3.11": {
        "stack": "rmcp-3.11",
        "server": None,
        "real": "rmcp 3.11.0 under mcpsim serve, loopback",
        "patches": [],
    },
    "2.3": {
        "stack": "python-sdk-2.3",
        "server": ROOT / "interop" / "real_server_2.py",
        "real": "mcp 2.3.0 on uvicorn 0.54.0",
        "patches": [ROOT / "interop" / "patches" / "sse-starlette-final-body.patch"],
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def catalogue(stack: str) -> list[pathlib.Path]:
    """The catalogue, and the regressions bisected on a stack of the same
    family as `stack` (python-sdk-…, rmcp-…): a regression is the schedule of
    one stack's bug, compared where that stack's real code runs."""
    sims = ROOT / "sims"
    family = stack.split("-")[0]
    regressions = [
        p
        for p in sorted((sims / "regressions").glob("*.toml"))
        if re.search(r'^\[regression\]\s*\nstack = "' + re.escape(family) + "-", p.read_text(), re.M)
    ]
    return sorted(sims.glob("*.toml")) + regressions


def verdict(report: dict) -> tuple[list[str], list[str]]:
    oracles = sorted({f["oracle"] for f in report["failures"]})
    sigs = sorted({f["signature"] for f in report["failures"]})
    return oracles, sigs


def mcpsim(args: list[str], timeout: int) -> tuple[int, dict | None, str]:
    p = subprocess.run(
        [str(MCPSIM), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    try:
        return p.returncode, json.loads(p.stdout), p.stderr
    except ValueError:
        return p.returncode, None, p.stderr.strip() or p.stdout.strip()


def zero_cost(rel: str, seed: int, scale: str) -> pathlib.Path:
    """The realised scenario of `rel` for `seed` (time-scaled), with the
    Python model's processing time off; it runs with the same seed."""
    p = subprocess.run(
        [str(MCPSIM), "run", rel, "--seed", str(seed), "--time-scale", scale, "--print-scenario"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=True,
    )
    text, n = re.subn(r"^\[server\]$", '[server]\ncost = "zero"', p.stdout, count=1, flags=re.M)
    if n != 1:
        raise SystemExit(f"{rel}: the realised scenario has no [server] table")
    out = ROOT / "target" / "interop" / "zero-cost" / f"{pathlib.Path(rel).stem}-{seed}.toml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


def one(
    path: pathlib.Path, seed: int, python: str, scale: str, target: dict, real_from: dict | None = None
) -> dict:
    rel = str(path.relative_to(ROOT))
    row: dict = {"scenario": path.stem, "file": rel, "seed": seed}
    if target.get("model_cost") == "zero":
        # Realised and scaled already: it runs at scale 1 with the same seed.
        model_file, model_scale = str(zero_cost(rel, seed, scale).relative_to(ROOT)), "1"
    else:
        model_file, model_scale = rel, scale
    code, model, err = mcpsim(
        ["run", model_file, "--seed", str(seed), "--server", target["stack"], "--time-scale", model_scale, "--json"],
        120,
    )
    if model is None or code not in (0, 1):
        row["error"] = f"mcpsim run exited {code}: {err}"
        return row
    row["model"], row["model_signatures"] = verdict(model)
    if real_from is not None:
        earlier = real_from.get((rel, seed))
        if earlier is None or "real" not in earlier:
            row["error"] = f"--real-from has no real verdict for {rel} seed {seed}"
            return row
        for k in ("command", "real", "real_signatures", "skipped", "not_judged", "elapsed"):
            row[k] = earlier[k]
        row["agree"] = row["model"] == row["real"]
        return row
    port = free_port()
    observe = []
    if target["server"] is None:
        # mcpsim's own `serve`: the stack's code on real TCP, its
        # observations on a second port.
        oport = free_port()
        cmd = f"{MCPSIM} serve --server {target['stack']} --listen 127.0.0.1:{port} --observe 127.0.0.1:{oport}"
        observe = ["--observe", f"http://127.0.0.1:{oport}/__mcpsim/observations"]
    else:
        cmd = f"{python} {target['server']} --port {port}"
    for patch in target["patches"]:
        cmd += f" --patch {patch}"
    drive = [
        "drive", rel, "--seed", str(seed),
        "--target", f"http://127.0.0.1:{port}/mcp", *observe,
        "--server-cmd", cmd, "--time-scale", scale, "--json",
    ]
    row["command"] = "mcpsim " + " ".join(
        a if " " not in a else f"'{a}'" for a in drive
    )
    code, real, err = mcpsim(drive, 300)
    if real is None or code not in (0, 1):
        row["error"] = f"mcpsim drive exited {code}: {err}"
        return row
    row["real"], row["real_signatures"] = verdict(real)
    row["skipped"] = [f"{s['at']} {s['fault']}: {s['why']}" for s in real["skipped"]]
    row["not_judged"] = [n["oracle"] for n in real["not_judged"]]
    row["elapsed"] = real["elapsed"]
    row["agree"] = row["model"] == row["real"]
    return row


def is_explained(r: dict, explained: dict) -> bool:
    return f"{r['scenario']}/{r['seed']}" in explained or r["scenario"] in explained


def explanations(release: str, fixed: bool) -> dict:
    """The explained disagreements of one comparison: the file's entry for
    the release (`"2.3"`), or for its fixed variant (`"2.3+fixed"`), which
    also inherits the release's own."""
    path = ROOT / "interop" / "fidelity_explained.json"
    every = json.loads(path.read_text()) if path.exists() else {}
    mine = dict(every.get(release, {}))
    if fixed:
        mine.update(every.get(f"{release}+fixed", {}))
    return mine


def cell(oracles: list[str]) -> str:
    return ", ".join(oracles) if oracles else "pass"


def table(rows: list[dict], explained: dict, target: dict) -> str:
    real = target["real"] + (" + " + ", ".join(p.name for p in target["patches"]) if target["patches"] else "")
    out = [
        f"| scenario | seed | model ({target['stack']}) | real ({real}) | agree |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['scenario']} | {r['seed']} | | | error: {r['error'][:80]} |")
            continue
        agree = "yes" if r["agree"] else "**no**"
        if "first_real" in r:
            agree += f" (on a second run; the first gave {cell(r['first_real'])})"
        key = f"{r['scenario']}/{r['seed']}"
        if not r["agree"] and key in explained:
            agree = f"**no** (explained: {explained[key]['short']})"
        elif not r["agree"] and r["scenario"] in explained:
            agree = f"**no** (explained: {explained[r['scenario']]['short']})"
        out.append(
            f"| {r['scenario']} | {r['seed']} | {cell(r['model'])} | {cell(r['real'])} | {agree} |"
        )
    out.append("")
    out.append(summary(rows))
    return "\n".join(out) + "\n"


def summary(rows: list[dict]) -> str:
    agreed = [r for r in rows if r.get("agree")]
    same = sum(1 for r in agreed if r["model_signatures"] == r["real_signatures"])
    return f"{len(agreed)} of {len(rows)} runs agree, {same} of them with identical signatures."


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--python", default=None, help="the venv's python, with the pinned real stack (python releases)")
    p.add_argument("--release", choices=sorted(RELEASES), default="1.20")
    p.add_argument(
        "--fixed",
        action="store_true",
        help="the release's +fixed model against its real stack with the patch applied",
    )
    p.add_argument("--seeds", default="0..2", help="A..B, end excluded")
    p.add_argument(
        "--time-scale",
        default="2",
        help="stretch every scenario (model and real alike) by this factor: the real"
        " stack's own processing time then weighs half as much against the schedule",
    )
    p.add_argument(
        "--once",
        action="append",
        default=[],
        metavar="SCENARIO",
        help="run only the first seed of this scenario (repeatable): for CI, where elicitation's runs last 80 s",
    )
    p.add_argument(
        "--model-cost",
        choices=["scenario", "zero"],
        default="scenario",
        help="zero: run the model without its processing time (the realised scenario with cost = \"zero\")",
    )
    p.add_argument(
        "--real-from",
        metavar="RESULTS",
        help="take the real verdicts from an earlier results.json instead of driving the real stack",
    )
    p.add_argument("--out", default=str(ROOT / "target" / "interop" / "fidelity"))
    p.add_argument("scenarios", nargs="*")
    a = p.parse_args()
    lo, _, hi = a.seeds.partition("..")
    seeds = range(int(lo), int(hi))
    paths = catalogue(RELEASES[a.release]["stack"])
    if a.scenarios:
        paths = [x for x in paths if x.stem in a.scenarios]
    target = dict(RELEASES[a.release])
    target["model_cost"] = a.model_cost
    real_from = None
    if a.real_from:
        try:
            earlier = json.loads(pathlib.Path(a.real_from).read_text())
            real_from = {(r["file"], r["seed"]): r for r in earlier}
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"--real-from {a.real_from}: cannot read a results.json: {e}", file=sys.stderr)
            return 2
    if target["server"] is not None and not a.python and real_from is None:
        print(f"--release {a.release} needs --python (the venv with the real stack)", file=sys.stderr)
        return 2
    if a.fixed:
        if not target["patches"]:
            print(f"no patch for {a.release}: --fixed compares a patched real stack", file=sys.stderr)
            return 2
        target["stack"] += "+fixed"
    else:
        target["patches"] = []
    explained = explanations(a.release, a.fixed)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    status = 0
    for path in paths:
        for seed in seeds[:1] if path.stem in a.once else seeds:
            r = one(path, seed, a.python, a.time_scale, target, real_from)
            if real_from is None and "error" not in r and not r["agree"] and not is_explained(r, explained):
                # A real run has real timing: an unexplained disagreement is run
                # once more, and both outcomes are kept.
                first = r
                r = one(path, seed, a.python, a.time_scale, target)
                r["first_real"] = first.get("real")
            rows.append(r)
            if "error" in r:
                status = 1
                print(f"{path.stem} seed {seed}: ERROR {r['error']}", flush=True)
                continue
            mark = "agree" if r["agree"] else "DISAGREE"
            if "first_real" in r:
                mark += f" on a second run (first: {cell(r['first_real'])})"
            print(
                f"{path.stem} seed {seed}: model {cell(r['model'])} | real {cell(r['real'])}"
                f" | {mark} ({r['elapsed']})"
                + (f" | skipped {r['skipped']}" if r["skipped"] else ""),
                flush=True,
            )
            if not r["agree"] and not is_explained(r, explained):
                print(f"  unexplained; replay: {r['command']}", flush=True)
                status = 1
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    (out / "table.md").write_text(table(rows, explained, target))
    print(summary(rows))
    print(f"table: {out / 'table.md'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
