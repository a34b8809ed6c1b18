"""Open `mcpsim run --html` in headless Chromium and check what a person would see.

    python3 interop/html_check.py SCENARIO SEED OUTDIR

Runs `mcpsim run SCENARIO --seed SEED --json --html OUTDIR/SCENARIO-SEED.html`, lets Chromium load the page
(its script runs), dumps the DOM and keeps a screenshot beside it. Then it checks, against the run's own JSON:
a lane for the server and for each client host, every fault drawn at its virtual time, and every failure
linked from the timeline at its time; for a missing-final-body failure, the server row's ✗ mark at that time.
Exit 1 with the reason on the first mismatch.
"""

import json
import pathlib
import shutil
import subprocess
import sys
from html.parser import HTMLParser

ROOT = pathlib.Path(__file__).resolve().parent.parent


class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []  # (tag, attrs)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("html_check: no chromium on PATH (apt-get install chromium)")


# --no-zygote: Chromium forks its renderer and GPU processes from a zygote, and a
# CI run once failed with "Zygote could not fork"; without it each is started
# directly (allowed with --no-sandbox).
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--no-zygote", "--disable-gpu", "--hide-scrollbars"]


def browse(args, timeout=120, want=None):
    """Run headless Chromium with `args`; one retry if it fails or its output lacks `want` (a flaky launch is
    not a verdict on the page)."""
    cmd = [chromium(), *BROWSER_FLAGS, *args]
    for attempt in (1, 2):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode == 0 and (want is None or want in r.stdout):
            return r
        if attempt == 1:
            print(f"chromium failed ({r.returncode}), once more: {r.stderr.strip()[-200:]}", file=sys.stderr)
    return r


def main():
    scenario, seed, out = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    page = out / f"{scenario}-{seed}.html"
    run = subprocess.run(
        [str(ROOT / "target/release/mcpsim"), "run", scenario, "--seed", seed, "--json", "--html", str(page)],
        capture_output=True, text=True)
    if run.returncode not in (0, 1):
        sys.exit(f"html_check: mcpsim run exited {run.returncode}: {run.stderr.strip()}")
    report = json.loads(run.stdout)
    size = "--window-size=1500,900"
    dom = browse([size, "--dump-dom", page.resolve().as_uri()], want="<body")
    if dom.returncode != 0 or "<body" not in dom.stdout:
        sys.exit(f"html_check: chromium --dump-dom failed: {dom.stderr.strip()[-300:]}")
    shot = out / f"{scenario}-{seed}.png"
    browse([size, f"--screenshot={shot}", page.resolve().as_uri()])
    if not shot.is_file() or shot.stat().st_size == 0:
        sys.exit("html_check: no screenshot")
    p = Dom()
    p.feed(dom.stdout)
    els = p.elements

    def having(**want):
        return [a for _, a in els if all(a.get(k.replace("_", "-")) == v for k, v in want.items())]

    lanes = {a.get("data-host") for _, a in els if a.get("class") == "lane"}
    if "server" not in lanes or len(lanes) < 2:
        sys.exit(f"html_check: lanes {sorted(lanes)}: want the server and each client host")
    for f in report["faults"]:
        if not having(data_kind="fault", data_at=f["at"]):
            sys.exit(f"html_check: fault {f['fault']} at {f['at']} is not drawn at its time")
    for f in report["failures"]:
        if not having(data_kind="failure", data_oracle=f["oracle"], data_at=f["at"]):
            sys.exit(f"html_check: failure {f['oracle']} at {f['at']} is not marked at its time")
        if f["oracle"] == "missing-final-body" and not having(data_kind="missing-final-body", data_at=f["at"]):
            sys.exit(f"html_check: no missing-final-body mark on the server lane at {f['at']}")
    print(f"html_check: {scenario} seed {seed}: lanes {sorted(lanes)}, {len(report['faults'])} faults and "
          f"{len(report['failures'])} failures at their virtual times; screenshot {shot}")


if __name__ == "__main__":
    main()
