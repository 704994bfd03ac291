"""The web terminal's trading page: bundle size (gzipped, as served; budget 300 kB) and first
load in Chromium against a real ``perpetua demo`` (cold and warm cache; DOMContentLoaded, load,
first book levels drawn), measured by ``web/e2e/measure.mjs`` and printed here as JSON.

Needs the build (``make web``), node and Chromium (``/usr/bin/chromium``, or
``PERPETUA_CHROMIUM``); ``PERPETUA_WEB_LOADS`` sets the number of page loads (default 5).
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


def main() -> int:
    env = dict(os.environ, PERPETUA_PYTHON=os.environ.get("PERPETUA_PYTHON", sys.executable))
    result = subprocess.run(
        ["node", "e2e/measure.mjs"],
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
    raise SystemExit(main())
