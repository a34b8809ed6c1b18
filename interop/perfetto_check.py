"""Check `mcpsim run --perfetto` output against the Trace Event Format, and against the run it draws.

    python3 interop/perfetto_check.py SCENARIO SEED OUTDIR

No consumer of the format installs offline from a public registry (the `perfetto` package on PyPI downloads
its trace_processor binary when first used), so this checks the JSON Object Format as Google's "Trace Event
Format" document defines it and as the Perfetto UI's JSON importer reads it:

* a top-level object with a `traceEvents` list; `displayTimeUnit`, if present, "ms" or "ns";
* every event has a string `name`, a `ph` among the documented phases, integer `pid` and `tid`; every event
  but metadata a number `ts` >= 0 (microseconds);
* complete events (`X`) a number `dur` >= 0; instant events (`i`/`I`) a scope `s` among g, p, t;
* metadata (`M`) only process_name, process_labels, process_sort_index, thread_name, thread_sort_index, with
  the argument each needs (`args.name` text, `args.sort_index` integer);
* on each thread, complete events nest (Perfetto drops a slice that overlaps its parent's end);
* every process an event is drawn in is named by metadata, and every thread a thread-scoped event is in.

Then, against the run's own `--json`: each fault is a global instant at its virtual time (ts = seconds x 1e6),
and each failure an instant at its time in the process of its host.
"""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHASES = set("BEXiIbneCsPtfNODMRc") | {"(", ")"}
METADATA = {"process_name": "name", "process_labels": "labels", "thread_name": "name",
            "process_sort_index": "sort_index", "thread_sort_index": "sort_index"}


def fail(msg):
    sys.exit(f"perfetto_check: {msg}")


def seconds(text):
    """A duration as mcpsim prints it: "1.25s", "250ms", "0s"."""
    for unit, k in (("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * k
    fail(f"not a duration: {text!r}")


def check_format(doc):
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        fail("not a JSON Object Format trace: no traceEvents list")
    if doc.get("displayTimeUnit", "ms") not in ("ms", "ns"):
        fail(f"displayTimeUnit {doc['displayTimeUnit']!r}: must be ms or ns")
    named_pids, named_threads, used = set(), set(), set()
    slices = {}
    for i, e in enumerate(doc["traceEvents"]):
        where = f"traceEvents[{i}]"
        if not isinstance(e, dict):
            fail(f"{where}: not an object")
        if not isinstance(e.get("name"), str):
            fail(f"{where}: name must be a string")
        ph = e.get("ph")
        if ph not in PHASES:
            fail(f"{where}: ph {ph!r} is not a documented phase")
        for k in ("pid", "tid"):
            if not isinstance(e.get(k), int) or isinstance(e.get(k), bool):
                fail(f"{where}: {k} must be an integer")
        if ph == "M":
            arg = METADATA.get(e["name"])
            if arg is None:
                fail(f"{where}: metadata {e['name']!r} is not a documented metadata event")
            value = (e.get("args") or {}).get(arg)
            if arg == "sort_index" and not isinstance(value, int):
                fail(f"{where}: {e['name']} needs an integer args.sort_index")
            if arg == "name" and not isinstance(value, str):
                fail(f"{where}: {e['name']} needs a string args.name")
            if e["name"] == "process_name":
                named_pids.add(e["pid"])
            if e["name"] == "thread_name":
                named_threads.add((e["pid"], e["tid"]))
            continue
        ts = e.get("ts")
        if not isinstance(ts, (int, float)) or ts < 0:
            fail(f"{where}: ts must be a number >= 0 (microseconds)")
        if ph == "X":
            if not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
                fail(f"{where}: a complete event needs dur >= 0")
            slices.setdefault((e["pid"], e["tid"]), []).append((ts, ts + e["dur"], where))
        if ph in ("i", "I") and e.get("s", "t") not in ("g", "p", "t"):
            fail(f"{where}: instant scope {e.get('s')!r} must be g, p or t")
        # A global instant belongs to no process, a process-scoped one to no thread.
        scope = e.get("s", "t") if ph in ("i", "I") else "t"
        if scope == "p":
            used.add((e["pid"], None))
        elif scope == "t":
            used.add((e["pid"], e["tid"]))
    for thread, spans in slices.items():
        spans.sort(key=lambda s: (s[0], -s[1]))
        stack = []
        for start, end, where in spans:
            while stack and stack[-1] <= start:
                stack.pop()
            if stack and end > stack[-1]:
                fail(f"{where}: complete event overlaps the end of its parent on thread {thread}")
            stack.append(end)
    for pid, tid in sorted(used, key=lambda u: (u[0], -1 if u[1] is None else u[1])):
        if pid not in named_pids:
            fail(f"pid {pid} has no process_name")
        if tid is not None and (pid, tid) not in named_threads:
            fail(f"thread {pid}/{tid} has no thread_name")
    return len(doc["traceEvents"]), len(named_pids)


def main():
    scenario, seed, out = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{scenario}-{seed}.perfetto.json"
    run = subprocess.run([str(ROOT / "target/release/mcpsim"), "run", scenario, "--seed", seed, "--json",
                          "--perfetto", str(path)], capture_output=True, text=True)
    if run.returncode not in (0, 1):
        fail(f"mcpsim run exited {run.returncode}: {run.stderr.strip()}")
    report = json.loads(run.stdout)
    doc = json.loads(path.read_text())
    events, processes = check_format(doc)
    pid_of = {e["args"]["name"]: e["pid"] for e in doc["traceEvents"]
              if e["ph"] == "M" and e["name"] == "process_name"}
    instants = [e for e in doc["traceEvents"] if e["ph"] in ("i", "I")]

    def at(e, t):
        return abs(e["ts"] - seconds(t) * 1e6) < 0.5

    for f in report["faults"]:
        if not any(e.get("s") == "g" and at(e, f["at"]) and f["fault"] in e["name"] for e in instants):
            fail(f"fault {f['fault']} at {f['at']}: no global instant at ts {seconds(f['at']) * 1e6:.0f}")
    for f in report["failures"]:
        pid = pid_of.get(f["host"])
        if pid is None:
            fail(f"failure {f['oracle']} on {f['host']}: no process for that host")
        if not any(e["pid"] == pid and at(e, f["at"]) and f["oracle"] in e["name"] for e in instants):
            fail(f"failure {f['oracle']} at {f['at']}: no instant in {f['host']}'s process at that time")
    print(f"perfetto_check: {path}: {events} events in {processes} processes follow the Trace Event Format; "
          f"{len(report['faults'])} faults and {len(report['failures'])} failures at their virtual times")


if __name__ == "__main__":
    main()
