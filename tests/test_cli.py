"""The operator commands over a data dir: replay, snapshot, verify, repair-journal."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from perpetua.cli import main
from perpetua.sequencer.clock import SimulatedClock
from perpetua.sequencer.journal import FsyncPolicy, JournalConfig
from perpetua.sequencer.runner import Sequencer, SequencerConfig
from perpetua.sequencer.snapshot import list_snapshots
from tests.sequencer.journal_files import all_spans, flip_bit
from tests.sequencer.workload import drive, workload

START_NS = 1_709_330_400_000_000_000


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, int, str]:
    """(data dir, last seq, state hash) after a workload; one mid-run snapshot."""
    clock = SimulatedClock(START_NS)
    config = SequencerConfig(
        snapshot_on_stop=False, snapshot_interval_commands=0, journal_prune=False,
        journal=JournalConfig(segment_bytes_max=8 * 1024, fsync_policy=FsyncPolicy.NONE),
    )  # fmt: skip
    sequencer = Sequencer.open(tmp_path, clock=clock, config=config)
    steps = workload(8, 600)
    with sequencer:
        drive(sequencer, clock, steps[:300])
        sequencer.request_snapshot().result(10)
        drive(sequencer, clock, steps[300:])
    return tmp_path, sequencer.stats().durable_seq, sequencer.engine.state_hash()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def test_replay_prints_seq_hash_totals_and_rate(
    data_dir: tuple[Path, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, last_seq, state_hash = data_dir
    for extra in ([], ["--from-scratch"], ["--read-only", "--no-audit"]):
        code, report, _ = run(capsys, "replay", "--data-dir", str(path), *extra)
        assert code == 0
        assert report["seq"] == last_seq and report["state_hash"] == state_hash
        totals = report["conservation_totals"]
        assert isinstance(totals, dict) and totals["XBt"] > 0
        assert report["replay_commands_per_second"] > 0  # type: ignore[operator]
    assert report["snapshot_seq"] is not None


def test_snapshot_then_verify(
    data_dir: tuple[Path, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, last_seq, state_hash = data_dir
    code, report, _ = run(capsys, "snapshot", "--data-dir", str(path))
    assert code == 0 and report["seq"] == last_seq and report["state_hash"] == state_hash
    assert [s.seq for s in list_snapshots(path / "snapshots")][-1] == last_seq
    code, report, _ = run(capsys, "verify", "--data-dir", str(path))
    assert code == 0
    assert report["state_hash"] == state_hash
    seqs = [s.seq for s in list_snapshots(path / "snapshots")]
    assert report["snapshots_matched_by_replay"] == seqs


def test_corruption_is_reported_then_repaired(
    data_dir: tuple[Path, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, last_seq, _ = data_dir
    spans = all_spans(path / "journal")
    victim = spans[len(spans) // 3]
    flip_bit(victim.path, victim.offset + 18)
    code, _, err = run(capsys, "replay", "--data-dir", str(path))
    assert code == 1
    assert str(victim.path) in err and f"byte offset {victim.offset}" in err
    code, report, _ = run(capsys, "repair-journal", "--data-dir", str(path))
    assert code == 0 and report["next_seq"] == victim.seq and report["quarantine_dir"]
    code, report, _ = run(capsys, "replay", "--data-dir", str(path), "--from-scratch")
    assert code == 0 and report["seq"] == victim.seq - 1


def test_missing_data_dir_and_bad_demo_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "replay", "--data-dir", str(tmp_path / "nope"))[0] == 1
    demo = ("demo", "--data-dir", str(tmp_path / "demo"))
    code, _, err = run(capsys, *demo, "--markets", "XBTUSD,NOPE")
    assert code == 1 and "NOPE" in err
    assert run(capsys, *demo, "--speed", "0")[0] == 1
    assert run(capsys, *demo, "--start", "yesterday")[0] == 1
    assert not (tmp_path / "demo").exists()  # refused before touching anything


def test_the_console_script_runs(data_dir: tuple[Path, int, str]) -> None:
    path, last_seq, _ = data_dir
    completed = subprocess.run(
        [sys.executable, "-m", "perpetua.cli", "replay", "--data-dir", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(completed.stdout)["seq"] == last_seq
