"""Crash simulation: hundreds of kill -9 / restart cycles of a real exchange process, each
checked for lost acknowledgements, half-applied commands and conservation (tests/sim/crash.py).
Prints one JSON object.

    .venv/bin/python bench/bench_crash.py [--cycles 200] [--seed 1]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"  # on the repository's disk, like production
sys.path.insert(0, str(REPO_ROOT))

from tests.sim.crash import run_cycles  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="perpetua-crash-", dir=RESULTS_DIR) as d:
        report = run_cycles(Path(d), args.cycles, args.seed, progress_every=10)
    print(json.dumps({"bench": "crash_kill9", **report}))


if __name__ == "__main__":
    main()
