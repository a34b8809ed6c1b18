"""A sweep over shards, merged, against one sweep; its JUnit read by junitparser; its page opened in Chromium.

    python interop/sweep_report_check.py SCENARIO A..B SHARDS OUTDIR

1. `mcpsim sweep SCENARIO --seeds A..B --html --junit` once, and `--shard K/SHARDS --json` for each K;
   `mcpsim merge` of the shards' files (with --html and --junit). The two summaries must be the same, line for
   line, once the clause that says what the run cost (" — wall …" / " — merged from N files") is cut.
2. Both JUnit files are read by junitparser (pinned in interop/requirements-reports.txt): one test case per seed
   named "seed N" for every seed of the range, the failing cases and the failures per signature exactly the
   summary's counts.
3. Both pages are opened in headless Chromium; from the DOM: the summary's counts, a row per signature with its
   count, and for each drawn fault a histogram whose bins hold every seed that drew it. A screenshot of each is
   kept beside it.
Exit 1 with the reason on the first mismatch.
"""

import collections
import pathlib
import re
import subprocess
import sys

from junitparser import Error, Failure, JUnitXml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from html_check import Dom, browse  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
MCPSIM = str(ROOT / "target/release/mcpsim")


def fail(msg):
    sys.exit(f"sweep_report_check: {msg}")


def mcpsim(*args, stdout=None):
    r = subprocess.run([MCPSIM, *args], stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode not in (0, 1):
        fail(f"mcpsim {' '.join(args)} exited {r.returncode}: {r.stderr.strip()[-400:]}")
    return r


def without_cost(summary):
    return [line.split(" — ")[0] for line in summary.splitlines()]


def counts(summary):
    """(judged+errors, failed, {signature: count}) from a summary's text."""
    head = re.match(r"(\d+) seeds on \S+: (\d+) pass, (\d+) fail", summary)
    if not head:
        fail(f"not a summary: {summary[:200]!r}")
    sigs = {}
    for line in summary.splitlines()[1:]:
        m = re.match(r"\s+(\d+)  (.+)$", line)
        if m and not line.strip().startswith("first seeds"):
            sigs[m.group(2)] = int(m.group(1))
    return int(head.group(1)), int(head.group(3)), sigs


def check_junit(path, seeds, summary):
    n, failed, sigs = counts(summary)
    xml = JUnitXml.fromfile(str(path))
    cases = [c for suite in xml for c in suite]
    names = [c.name for c in cases]
    want = [f"seed {s}" for s in seeds]
    if sorted(names) != sorted(want) or len(names) != n:
        fail(f"{path}: {len(names)} test cases, want one per seed of {seeds.start}..{seeds.stop}")
    failing = [c for c in cases if any(isinstance(r, (Failure, Error)) for r in c.result)]
    if len(failing) != failed:
        fail(f"{path}: {len(failing)} failing test cases, the summary says {failed}")
    per_sig = collections.Counter(r.message for c in cases for r in c.result if isinstance(r, Failure))
    if dict(per_sig) != sigs:
        fail(f"{path}: failures per signature {dict(per_sig)} != the summary's {sigs}")
    return len(cases), len(failing)


def check_page(page, summary):
    n, failed, sigs = counts(summary)
    size = "--window-size=1200,1400"
    dom = browse([size, "--dump-dom", page.resolve().as_uri()], want="<body")
    if dom.returncode != 0 or "<body" not in dom.stdout:
        fail(f"chromium --dump-dom {page}: {dom.stderr.strip()[-300:]}")
    shot = page.with_suffix(".png")
    browse([size, f"--screenshot={shot}", page.resolve().as_uri()])
    if not shot.is_file() or shot.stat().st_size == 0:
        fail(f"no screenshot of {page}")
    p = Dom()
    p.feed(dom.stdout)
    summ = [a for _, a in p.elements if a.get("id") == "summary"]
    if not summ or int(summ[0]["data-judged"]) + int(summ[0]["data-errors"]) != n \
            or int(summ[0]["data-failed"]) != failed:
        fail(f"{page}: the page's summary {summ} is not the printed one ({n} seeds, {failed} fail)")
    rows = {a["data-signature"]: int(a["data-count"]) for t, a in p.elements if a.get("class") == "signature"}
    if rows != sigs:
        fail(f"{page}: signature rows {rows} != the summary's {sigs}")
    # Each drawn fault's bins together hold the seeds that drew it.
    drawn, bins = [], collections.defaultdict(int)
    current = None
    for t, a in p.elements:
        if t == "section" and a.get("class") == "drawn":
            current = a["data-fault"]
            drawn.append(current)
        if t == "g" and a.get("class") == "bin" and current:
            bins[current] += int(a["data-pass"]) + int(a["data-fail"])
    return drawn, dict(bins), shot


def main():
    scenario, rng, shards, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), pathlib.Path(sys.argv[4])
    a, b = (int(x) for x in rng.split(".."))
    seeds = range(a, b)
    out.mkdir(parents=True, exist_ok=True)
    whole = mcpsim("sweep", scenario, "--seeds", rng, "--html", str(out / "sweep.html"),
                   "--junit", str(out / "sweep.xml"))
    files = []
    for k in range(shards):
        f = out / f"shard-{k}.jsonl"
        with open(f, "w") as fh:
            mcpsim("sweep", scenario, "--seeds", rng, "--shard", f"{k}/{shards}", "--json", stdout=fh)
        files.append(str(f))
    merged = mcpsim("merge", *files, "--html", str(out / "merged.html"), "--junit", str(out / "merged.xml"))
    if merged.returncode != whole.returncode:
        fail(f"merge exited {merged.returncode}, the whole sweep {whole.returncode}")
    if without_cost(merged.stdout) != without_cost(whole.stdout):
        fail(f"summaries differ:\n--- one sweep\n{whole.stdout}--- merged\n{merged.stdout}")
    print(f"sweep_report_check: {shards} shards of {scenario} {rng} merged give one sweep's summary:")
    print("  " + whole.stdout.rstrip().replace("\n", "\n  "))
    for name, summary in (("sweep", whole.stdout), ("merged", merged.stdout)):
        cases, failing = check_junit(out / f"{name}.xml", seeds, summary)
        drawn, bins, shot = check_page(out / f"{name}.html", summary)
        print(f"  {name}: junitparser reads {cases} test cases ({failing} failing); page: "
              f"{len(counts(summary)[2])} signature rows, drawn faults {drawn} holding {bins} seeds; "
              f"screenshot {shot}")
        if not drawn:
            fail(f"{name}.html draws no fault time (the scenario draws one)")
        for d, held in bins.items():
            if held != len(seeds):
                fail(f"{name}.html: the bins of {d} hold {held} seeds, not {len(seeds)}")


if __name__ == "__main__":
    main()
