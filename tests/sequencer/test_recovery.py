"""Recovery of a data dir: snapshot + journal tail, torn tails cut, corruption refused with file
and offset, damaged snapshots skipped, and snapshot/journal mismatches named."""

import logging
import shutil
from pathlib import Path

import pytest

from perpetua.core.commands import Command
from perpetua.sequencer.clock import SimulatedClock
from perpetua.sequencer.codec import decode_command
from perpetua.sequencer.journal import (
    FsyncPolicy,
    JournalConfig,
    JournalCorruptError,
    JournalLockedError,
    iter_records,
    open_journal,
    repair_journal,
)
from perpetua.sequencer.recovery import RecoveryError, default_engine, recover
from perpetua.sequencer.runner import Sequencer, SequencerConfig
from perpetua.sequencer.snapshot import list_snapshots, write_snapshot
from tests.sequencer.journal_files import (
    all_spans,
    encode_record,
    flip_bit,
    overwrite,
    segment_paths,
    truncate,
)
from tests.sequencer.workload import drive, workload

START_NS = 1_709_330_400_000_000_000
SMALL = JournalConfig(segment_bytes_max=6 * 1024, fsync_policy=FsyncPolicy.NONE)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir of several journal segments and two snapshots, not covering the tail."""
    data_dir = tmp_path_factory.mktemp("pristine")
    clock = SimulatedClock(START_NS)
    config = SequencerConfig(
        journal=SMALL,
        batch_commands_max=8,
        snapshot_on_stop=False,
        snapshots_kept=10,
        snapshot_interval_commands=0,
        journal_prune=False,
    )
    sequencer = Sequencer.open(data_dir, clock=clock, config=config)
    steps = workload(21, 900)
    with sequencer:
        drive(sequencer, clock, steps[:300])
        sequencer.request_snapshot().result(10)
        drive(sequencer, clock, steps[300:600])
        sequencer.request_snapshot().result(10)
        drive(sequencer, clock, steps[600:])
    assert len(segment_paths(data_dir / "journal")) >= 4
    assert len(list_snapshots(data_dir / "snapshots")) == 2
    return data_dir


@pytest.fixture
def data_dir(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(pristine, target, ignore=shutil.ignore_patterns("journal.lock"))
    return target


def commands(data_dir: Path) -> list[Command]:
    return [decode_command(p) for _, p in iter_records(data_dir / "journal", 1)]


def hash_after(all_commands: list[Command], count: int) -> str:
    """The state hash after the first count commands, by a fresh engine."""
    engine = default_engine()
    for command in all_commands[:count]:
        engine.apply(command)
    return engine.state_hash()


def test_clean_recovery_uses_the_newest_snapshot_then_the_tail(data_dir: Path) -> None:
    everything = commands(data_dir)
    engine, info = recover(data_dir)
    newest = list_snapshots(data_dir / "snapshots")[-1]
    assert info.snapshot_seq == newest.seq
    assert info.last_seq == len(everything)
    assert info.commands_replayed == len(everything) - newest.seq
    assert info.torn_tail is None
    assert engine.state_hash() == hash_after(everything, len(everything))


def test_a_torn_tail_is_cut_with_a_log_line(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    everything = commands(data_dir)
    last = all_spans(data_dir / "journal")[-1]
    truncate(last.path, last.end - 3)
    with caplog.at_level(logging.WARNING):
        engine, info = recover(data_dir)
    assert info.torn_tail is not None and info.torn_tail.offset == last.offset
    assert info.last_seq == len(everything) - 1
    assert "torn tail" in caplog.text and str(last.path) in caplog.text
    assert engine.state_hash() == hash_after(everything, len(everything) - 1)
    assert last.path.stat().st_size == last.offset  # cut on disk
    engine, info = recover(data_dir)  # and now clean
    assert info.torn_tail is None and info.last_seq == len(everything) - 1


def test_a_zero_filled_tail_is_a_torn_tail(data_dir: Path) -> None:
    everything = commands(data_dir)
    spans = all_spans(data_dir / "journal")
    last_segment = spans[-1].path
    in_last = [s for s in spans if s.path == last_segment]
    victim = in_last[-2] if len(in_last) > 1 else in_last[-1]
    overwrite(last_segment, victim.offset, bytes(last_segment.stat().st_size - victim.offset))
    _, info = recover(data_dir)
    assert info.last_seq == victim.seq - 1
    assert info.last_seq < len(everything)


@pytest.mark.parametrize("damage", ["flipped bit", "zero-filled block"])
def test_damage_in_the_middle_stops_recovery_naming_file_and_offset(
    data_dir: Path, damage: str
) -> None:
    spans = all_spans(data_dir / "journal")
    victim = spans[len(spans) // 2]
    if damage == "flipped bit":
        flip_bit(victim.path, victim.offset + 20, 3)
    else:
        overwrite(victim.path, victim.offset, bytes(victim.size))
    with pytest.raises(JournalCorruptError) as caught:
        recover(data_dir)
    message = str(caught.value)
    assert str(victim.path) in message and f"byte offset {victim.offset}" in message
    report = repair_journal(data_dir / "journal")  # the operator's way out
    assert report.quarantine_dir is not None
    _, info = recover(data_dir, use_snapshot=False)
    assert info.last_seq == victim.seq - 1


def test_a_missing_segment_stops_recovery(data_dir: Path) -> None:
    segments = segment_paths(data_dir / "journal")
    segments[-2].unlink()
    with pytest.raises(JournalCorruptError, match="a segment is missing"):
        recover(data_dir)


def test_a_damaged_newest_snapshot_falls_back_to_the_older_one(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    everything = commands(data_dir)
    older, newest = list_snapshots(data_dir / "snapshots")
    flip_bit(newest.path, newest.path.stat().st_size - 10)
    with caplog.at_level(logging.WARNING):
        engine, info = recover(data_dir)
    assert info.snapshot_seq == older.seq
    assert "skipping" in caplog.text
    assert engine.state_hash() == hash_after(everything, len(everything))


def test_a_snapshot_that_restores_to_another_hash_is_refused(data_dir: Path) -> None:
    newest = list_snapshots(data_dir / "snapshots")[-1]
    from perpetua.sequencer.snapshot import read_snapshot

    snapshot = read_snapshot(newest.path)
    write_snapshot(data_dir / "snapshots", newest.seq, "0" * 64, snapshot.payload)
    with pytest.raises(RecoveryError, match="restores to state hash"):
        recover(data_dir)


def test_a_journal_that_no_longer_reaches_the_snapshot_is_refused(data_dir: Path) -> None:
    for snapshot in list_snapshots(data_dir / "snapshots"):
        snapshot.path.unlink()
    segment_paths(data_dir / "journal")[0].unlink()
    with pytest.raises(RecoveryError, match="are missing"):
        recover(data_dir)


def test_a_journal_behind_the_snapshot_is_refused(data_dir: Path) -> None:
    newest = list_snapshots(data_dir / "snapshots")[-1]
    cut = next(s for s in all_spans(data_dir / "journal") if s.seq == newest.seq - 5)
    for path in segment_paths(data_dir / "journal"):
        if path.name > cut.path.name:
            path.unlink()
    truncate(cut.path, cut.offset)
    with pytest.raises(RecoveryError, match="durable records were lost"):
        recover(data_dir)


def test_a_record_this_build_cannot_decode_is_named(tmp_path: Path) -> None:
    journal, _ = open_journal(tmp_path / "journal", SMALL)
    with journal:
        journal.append(1, b"\x07garbage")
        journal.commit()
    with pytest.raises(RecoveryError, match="record seq 1: codec version 7"):
        recover(tmp_path)
    assert encode_record(1, b"x")  # the helper the damage tests share


def test_read_only_recovery_changes_nothing(data_dir: Path) -> None:
    everything = commands(data_dir)
    last = all_spans(data_dir / "journal")[-1]
    truncate(last.path, last.end - 3)
    size = last.path.stat().st_size
    engine, info = recover(data_dir, read_only=True)
    assert info.last_seq == len(everything) - 1 and info.torn_tail is None
    assert last.path.stat().st_size == size
    assert engine.state_hash() == hash_after(everything, len(everything) - 1)


def test_read_only_recovery_works_beside_a_live_sequencer(data_dir: Path) -> None:
    with Sequencer.open(
        data_dir, clock=SimulatedClock(START_NS + 10**15), config=SequencerConfig(journal=SMALL)
    ) as live:
        with pytest.raises(JournalLockedError):
            recover(data_dir)
        _, info = recover(data_dir, read_only=True)
        assert info.last_seq == live.stats().durable_seq
