"""Replay determinism: a live run through the Sequencer, rebuilt from the journal alone and from
every snapshot it took, gives the same state_hash() and the same event stream."""

from enum import IntEnum
from pathlib import Path

import pytest

from perpetua.core.audit import audit
from perpetua.core.calendar import utc_ns
from perpetua.sequencer.clock import SimulatedClock
from perpetua.sequencer.journal import FsyncPolicy, JournalConfig
from perpetua.sequencer.recovery import recover
from perpetua.sequencer.runner import Applied, Sequencer, SequencerConfig
from perpetua.sequencer.snapshot import list_snapshots
from tests.sequencer.workload import drive, workload

pytestmark = pytest.mark.slow  # real processes or long randomised runs; CI runs them all

START_NS = utc_ns(2024, 3, 1, 22, 0)  # two hours before a Day boundary
FAST_JOURNAL = JournalConfig(segment_bytes_max=64 * 1024, fsync_policy=FsyncPolicy.NONE)
SEEDS = range(24)
STEPS = 500


def live_run(data_dir: Path, seed: int, steps: int) -> tuple[list[Applied], str]:
    """Drive a workload; (every applied command as published, final state hash)."""
    clock = SimulatedClock(START_NS)
    config = SequencerConfig(
        snapshot_interval_commands=53, snapshots_kept=1_000, journal=FAST_JOURNAL,
        batch_commands_max=7, journal_prune=False,
    )  # fmt: skip
    sequencer = Sequencer.open(data_dir, clock=clock, config=config)
    published: list[Applied] = []
    sequencer.subscribe_batches(published.extend)
    with sequencer:
        steps_all = workload(seed, steps)
        middle = len(steps_all) // 2
        drive(sequencer, clock, steps_all[:middle])
        sequencer.request_snapshot().result(30)
        drive(sequencer, clock, steps_all[middle:])
        sequencer.request_snapshot().result(30)
    audit(sequencer.engine.state)
    return published, sequencer.engine.state_hash()


def replayed(data_dir: Path, use_snapshot: bool | Path) -> tuple[list[Applied], str, int]:
    out: list[Applied] = []

    def record(seq: int, command: object, events: list[object]) -> None:
        out.append(Applied(seq, command.ts_ns, command, events))  # type: ignore[attr-defined]

    engine, info = recover(data_dir, use_snapshot=use_snapshot, on_record=record)
    start = 0 if info.snapshot_seq is None else info.snapshot_seq
    return out, engine.state_hash(), start


def plain(value: object) -> object:
    if isinstance(value, IntEnum):
        return int(value)
    if isinstance(value, tuple):
        return (type(value).__name__, *(plain(v) for v in value))
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def as_text(stream: list[Applied]) -> list[str]:
    """Compared by repr with each event's type name, IntEnum members as their ints.

    Event fields are declared ``int``; live, the core passes some command IntEnums through
    (an order's ord_type, time_in_force...), while an order restored from a snapshot holds
    ints. Equal values either way (IntEnum == int); the repr would differ.
    """
    return [repr(plain(item)) for item in stream]


@pytest.mark.parametrize("seed", SEEDS)
def test_replay_from_scratch_and_every_snapshot_matches_live(tmp_path: Path, seed: int) -> None:
    live, live_hash = live_run(tmp_path, seed, STEPS)
    assert [a.seq for a in live] == list(range(1, len(live) + 1))
    kinds = {type(a.command).__name__ for a in live}
    assert {"PlaceOrder", "AmendOrder", "CancelOrders", "IndexPrice", "Deposit", "Tick"} <= kinds
    assert any(type(e).__name__ == "Trade" for a in live for e in a.events), "no trades"

    stream, state_hash, _ = replayed(tmp_path, use_snapshot=False)
    assert state_hash == live_hash
    assert as_text(stream) == as_text(live)

    snapshots = list_snapshots(tmp_path / "snapshots")
    assert len(snapshots) >= 3  # two requested, and periodic ones (one at a time)
    for snapshot in snapshots:
        stream, state_hash, start = replayed(tmp_path, use_snapshot=snapshot.path)
        assert start == snapshot.seq
        assert state_hash == live_hash, f"from snapshot at seq {snapshot.seq}"
        assert as_text(stream) == as_text(live[start:])


def test_replay_detects_a_changed_command(tmp_path: Path) -> None:
    """The comparison above can fail: a journal with one command changed replays differently."""
    live, live_hash = live_run(tmp_path, 1, 200)
    from perpetua.sequencer.codec import decode_command, encode_command
    from perpetua.sequencer.journal import iter_records, open_journal

    records = list(iter_records(tmp_path / "journal", 1))
    other = tmp_path / "other"
    journal, _ = open_journal(other / "journal", FAST_JOURNAL)
    with journal:
        for seq, payload in records:
            command = decode_command(payload)
            if type(command).__name__ == "Deposit" and seq > 5:
                command = command._replace(amount=command.amount + 1)  # type: ignore[call-arg]
                payload = encode_command(command)
            journal.append(seq, payload)
            journal.commit()
    _, state_hash, _ = replayed(other, use_snapshot=False)
    assert state_hash != live_hash
