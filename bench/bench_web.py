"""The web terminal's trading page in Chromium against a real ``perpetua demo``, as JSON.

``bench_web.py`` (or ``load``): bundle size (gzipped, as served; budget 300 kB) and first load
(cold and warm cache; DOMContentLoaded, load, first book levels drawn), by
``web/e2e/measure.mjs``; ``PERPETUA_WEB_LOADS`` sets the number of page loads (default 5).

``bench_web.py frames``: frame times of the trading page while the order book updates (the
target is 60 fps at 100 updates a second), by ``web/e2e/frames.mjs``: the demo's own rate, then
100 extra book rows a second through the public API, 10 rows per socket message and 1;
``PERPETUA_WEB_FRAMES_S`` sets each phase's length (default 10 s).

Needs the build (``make web``), node and Chromium (``/usr/bin/chromium``, or
``PERPETUA_CHROMIUM``). Figures only: nothing here passes or fails on a timing.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300
SCRIPTS = {"load": "e2e/measure.mjs", "frames": "e2e/frames.mjs"}


def main(argv: list[str]) -> int:
    which = argv[0] if argv else "load"
    if which not in SCRIPTS:
        sys.stderr.write(f"usage: bench_web.py [{'|'.join(SCRIPTS)}]\n")
        return 2
    env = dict(os.environ, PERPETUA_PYTHON=os.environ.get("PERPETUA_PYTHON", sys.executable))
    result = subprocess.run(
        ["node", SCRIPTS[which]],
        cwd=REPO / "web",
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        return result.returncode
    sys.stdout.write(result.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
