"""Give `mcpsim run --mermaid` output to the official Mermaid parser and renderer, in headless Chromium.

    python3 interop/mermaid_check.py SCENARIO SEED OUTDIR

Installs mermaid (pinned with its whole tree by interop/mermaid/package-lock.json) with `npm ci` into
target/interop/mermaid, writes `mcpsim run SCENARIO --seed SEED --mermaid OUTDIR/SCENARIO-SEED.mmd`, and opens a
page that loads mermaid's own bundle from that directory and calls `mermaid.parse` and then `mermaid.render` on
the diagram's text. The page writes the outcome into the DOM, which Chromium dumps; a screenshot of the rendered
diagram is kept beside the .mmd. Exit 1 if the parser rejects the diagram or nothing was rendered.
"""

import json
import pathlib
import shutil
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from html_check import browse  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "target/interop/mermaid"

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script src="{bundle}"></script></head><body>
<div id="result" data-state="pending">pending</div><div id="diagram"></div>
<script>
const text = {text};
mermaid.initialize({{ startOnLoad: false, securityLevel: "strict" }});
mermaid.parse(text)
  .then(() => mermaid.render("d", text))
  .then((r) => {{
    document.getElementById("diagram").innerHTML = r.svg;
    const n = document.querySelectorAll("#diagram svg text").length;
    const el = document.getElementById("result");
    el.dataset.state = "ok"; el.dataset.texts = String(n);
    el.textContent = "parsed and rendered, " + n + " text elements";
  }})
  .catch((e) => {{
    const el = document.getElementById("result");
    el.dataset.state = "error"; el.textContent = String(e && e.message || e);
  }});
</script></body></html>
"""


def install():
    lock = ROOT / "interop/mermaid/package-lock.json"
    stamp = PKG / "package-lock.json"
    bundle = PKG / "node_modules/mermaid/dist/mermaid.min.js"
    if bundle.is_file() and stamp.is_file() and stamp.read_bytes() == lock.read_bytes():
        return bundle
    PKG.mkdir(parents=True, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / "interop/mermaid" / f, PKG / f)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PKG, check=True)
    if not bundle.is_file():
        sys.exit(f"mermaid_check: npm ci gave no {bundle}")
    return bundle


def main():
    scenario, seed, out = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    bundle = install()
    mmd = out / f"{scenario}-{seed}.mmd"
    run = subprocess.run([str(ROOT / "target/release/mcpsim"), "run", scenario, "--seed", seed, "--mermaid",
                          str(mmd)], capture_output=True, text=True)
    if run.returncode not in (0, 1) or not mmd.is_file():
        sys.exit(f"mermaid_check: mcpsim run exited {run.returncode}: {run.stderr.strip()}")
    text = mmd.read_text()
    page = PKG / f"check-{scenario}-{seed}.html"
    page.write_text(PAGE.format(bundle=bundle.resolve().as_uri(), text=json.dumps(text)))
    flags = ["--allow-file-access-from-files", "--virtual-time-budget=15000", "--window-size=1400,1800"]
    dom = browse(flags + ["--dump-dom", page.resolve().as_uri()], timeout=180, want='id="result"')
    marker = 'id="result" data-state="'
    at = dom.stdout.find(marker)
    if at < 0:
        sys.exit(f"mermaid_check: the page did not load: {dom.stderr.strip()[-300:]}")
    state = dom.stdout[at + len(marker):].split('"', 1)[0]
    message = dom.stdout[at:].split(">", 1)[1].split("<", 1)[0]
    if state != "ok":
        sys.exit(f"mermaid_check: {mmd}: mermaid says {state}: {message}")
    shot = out / f"{scenario}-{seed}.mermaid.png"
    browse(flags + [f"--screenshot={shot}", page.resolve().as_uri()], timeout=180)
    lines = len(text.splitlines())
    print(f"mermaid_check: {mmd} ({lines} lines) accepted by mermaid "
          f"{json.loads((PKG / 'node_modules/mermaid/package.json').read_text())['version']}: {message}; "
          f"screenshot {shot}")


if __name__ == "__main__":
    main()
