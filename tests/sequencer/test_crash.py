"""Crash test with a real process: kill -9 the exchange at random moments, 20+ times, and check
that every acknowledged command survived whole (see tests/sim/crash.py for what is checked).

bench/bench_crash.py runs hundreds of cycles and prints the figures.
"""

from pathlib import Path

import pytest

from tests.sim.crash import run_cycles

pytestmark = pytest.mark.slow  # real processes or long randomised runs; CI runs them all

CYCLES = 20


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    report = run_cycles(tmp_path, CYCLES, seed=20240301, drive_s_max=0.4, snapshot_interval=300)
    assert report["cycles"] == CYCLES
    assert report["acknowledged"] > 20 * CYCLES  # the client got real work through
    assert report["last_seq"] >= report["acknowledged"]  # type: ignore[operator]
    snapshots = sorted((tmp_path / "snapshots").glob("snapshot-*.snap"))
    assert snapshots, "periodic snapshots ran during the cycles"
