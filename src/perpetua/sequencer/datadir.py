"""Operator tools over a data dir (``journal/`` and ``snapshots/``), behind ``perpetua replay``,
``snapshot``, ``verify`` and ``repair-journal``. Each returns plain data the CLI prints as JSON.

- `replay_data_dir`: rebuild the state (newest valid snapshot + journal tail, or the whole
  journal); report seq, state hash, per-currency conservation totals and the replay rate.
- `snapshot_data_dir`: offline: recover (taking the writer lock, so never beside a live
  sequencer), then write and verify a snapshot at the recovered seq. Prunes nothing.
- `verify_data_dir`: restore every snapshot, replay the journal from the oldest point it
  reaches, and check each snapshot's hash against the replayed state at its seq; then audit.
- `repair_data_dir`: quarantine journal damage (`journal.repair_journal`); never deletes.
"""

from __future__ import annotations

import time
from pathlib import Path

from perpetua.core.commands import Command
from perpetua.core.engine import Engine
from perpetua.core.events import Event
from perpetua.sequencer.journal import repair_journal
from perpetua.sequencer.recovery import (
    EngineFactory,
    ProgressCallback,
    RecoveryError,
    data_paths,
    default_engine,
    recover,
    summarize,
    verify_snapshot,
    write_engine_snapshot,
)
from perpetua.sequencer.snapshot import list_snapshots

__all__ = ["repair_data_dir", "replay_data_dir", "snapshot_data_dir", "verify_data_dir"]


def replay_data_dir(
    data_dir: Path,
    *,
    from_scratch: bool = False,
    read_only: bool = False,
    audit: bool = True,
    progress: ProgressCallback | None = None,
    engine_factory: EngineFactory = default_engine,
) -> dict[str, object]:
    started = time.perf_counter()
    engine, info = recover(
        data_dir, engine_factory, use_snapshot=not from_scratch, read_only=read_only,
        audit=audit, progress=progress,
    )  # fmt: skip
    summary = summarize(engine)
    return {
        "data_dir": str(data_dir),
        "seq": info.last_seq,
        "ts_ns": summary.ts_ns,
        "state_hash": summary.state_hash,
        "conservation_totals": summary.conservation_totals,
        "snapshot_seq": info.snapshot_seq,
        "commands_replayed": info.commands_replayed,
        "replay_seconds": round(info.replay_seconds, 6),
        "replay_commands_per_second": round(info.replay_commands_per_second),
        "snapshot_seconds": round(info.snapshot_seconds, 6),
        "audited": audit,
        "torn_tail_cut": None
        if info.torn_tail is None
        else info.torn_tail._asdict() | {"path": str(info.torn_tail.path)},
        "seconds": round(time.perf_counter() - started, 6),
    }


def snapshot_data_dir(
    data_dir: Path, engine_factory: EngineFactory = default_engine
) -> dict[str, object]:
    engine, info = recover(data_dir, engine_factory)
    state_hash = engine.state_hash()
    path = write_engine_snapshot(
        data_paths(data_dir).snapshots, info.last_seq, state_hash, engine.snapshot()
    )
    verify_snapshot(path, engine_factory)
    return {"seq": info.last_seq, "state_hash": state_hash, "path": str(path)}


def verify_data_dir(
    data_dir: Path,
    *,
    progress: ProgressCallback | None = None,
    engine_factory: EngineFactory = default_engine,
) -> dict[str, object]:
    """Raises RecoveryError on the first disagreement; returns what was checked."""
    snapshots = list_snapshots(data_paths(data_dir).snapshots)
    expected: dict[int, str] = {}
    for entry in snapshots:
        expected[entry.seq] = verify_snapshot(entry.path, engine_factory).state_hash
    engines: list[Engine] = []

    def factory() -> Engine:
        engines.append(engine_factory())
        return engines[-1]

    checked: list[int] = []

    def check(seq: int, _command: Command, _events: list[Event]) -> None:
        want = expected.get(seq)
        if want is None:
            return
        actual = engines[-1].state_hash()
        if actual != want:
            raise RecoveryError(f"replay at seq {seq} has state hash {actual}, its snapshot {want}")
        checked.append(seq)

    start: bool | Path = False
    journal_first = _journal_first_seq(data_dir)
    if journal_first > 1:
        reachable = [s for s in snapshots if s.seq + 1 >= journal_first]
        if not reachable:
            raise RecoveryError(f"no snapshot reaches the journal, which starts at {journal_first}")
        start = reachable[0].path
    engine, info = recover(
        data_dir, factory, use_snapshot=start, read_only=True, on_record=check, progress=progress
    )
    return {
        "seq": info.last_seq,
        "state_hash": engine.state_hash(),
        "snapshots_restored": len(expected),
        "snapshots_matched_by_replay": checked,
        "replayed_from_seq": 1 if info.snapshot_seq is None else info.snapshot_seq + 1,
        "commands_replayed": info.commands_replayed,
        "audited": True,
    }


def _journal_first_seq(data_dir: Path) -> int:
    names = sorted(data_paths(data_dir).journal.glob("journal-*.log"))
    return int(names[0].name[len("journal-") : -len(".log")]) if names else 1


def repair_data_dir(data_dir: Path) -> dict[str, object]:
    report = repair_journal(data_paths(data_dir).journal)
    return {
        "damage": report.damage,
        "quarantine_dir": None if report.quarantine_dir is None else str(report.quarantine_dir),
        "actions": list(report.actions),
        "next_seq": report.next_seq,
    }
