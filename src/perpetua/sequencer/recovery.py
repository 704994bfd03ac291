"""Recovery: rebuild the engine from a data dir (newest valid snapshot, then the journal tail).

Data dir layout: ``<data_dir>/journal/`` (journal segments, see `journal`) and
``<data_dir>/snapshots/`` (snapshot files, see `snapshot`). A snapshot's payload is
``codec.encode_image(engine.snapshot())`` and its hash ``engine.state_hash()``.

Order of recovery (`recover`, and `open_data_dir` for the sequencer, which keeps the journal
open for appending):
    1. The newest snapshot that verifies (damaged ones are skipped with a log line by
       `load_latest_snapshot`) is restored into a fresh engine, and the restored engine's
       ``state_hash()`` must equal the one stored with it (else `RecoveryError`: a snapshot
       that does not restore to what was saved is a bug, and guessing would hide it). Without a
       snapshot, recovery starts from ``engine_factory()`` at seq 0.
    2. The journal is opened: a torn tail of its last segment (an unacknowledged, partly written
       batch) is cut and logged; damage anywhere else raises `JournalCorruptError`, naming file
       and offset (``perpetua repair-journal`` quarantines it).
    3. Every record after the snapshot's seq is decoded and applied, in seq order. The journal
       must reach back to the snapshot (else `RecoveryError`: records were lost or pruned).
       Without an ``on_record`` callback nobody reads the events, so the engine applies with
       ``publish=False`` and does not build its order, book, trade, transfer and position
       events (the same state and state hash; a third or more of the apply, decisions §18).
    4. ``audit(engine.state)`` checks the rebuilt state from first principles (optional).

Nothing here reads a clock or the scheduler: timers are journaled commands, so the same bytes
give the same ``state_hash()`` on every machine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple

from perpetua.core.audit import audit as audit_state
from perpetua.core.audit import conservation_totals
from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Command
from perpetua.core.engine import Engine
from perpetua.core.events import Event
from perpetua.sequencer.codec import CodecError, decode_command, decode_image, encode_image
from perpetua.sequencer.journal import (
    DEFAULT_JOURNAL_CONFIG,
    Journal,
    JournalConfig,
    TornTail,
    iter_records,
    open_journal,
)
from perpetua.sequencer.snapshot import (
    Snapshot,
    SnapshotCorruptError,
    load_latest_snapshot,
    read_snapshot,
    write_snapshot,
)

__all__ = [
    "JOURNAL_DIR_NAME",
    "SNAPSHOT_DIR_NAME",
    "DataPaths",
    "RecoveryError",
    "RecoveryInfo",
    "StateSummary",
    "data_paths",
    "default_engine",
    "open_data_dir",
    "recover",
    "restore_snapshot",
    "summarize",
    "verify_snapshot",
    "write_engine_snapshot",
]

_log = logging.getLogger(__name__)

JOURNAL_DIR_NAME: Final = "journal"
SNAPSHOT_DIR_NAME: Final = "snapshots"
PROGRESS_EVERY_RECORDS: Final = 100_000  # how often replay reports progress

EngineFactory = Callable[[], Engine]
RecordCallback = Callable[[int, Command, list[Event]], None]  # (seq, command, events)
ProgressCallback = Callable[[int, float], None]  # (records replayed so far, seconds so far)


class RecoveryError(Exception):
    """Stop: the data dir cannot be recovered as it is (see the message). Not retried."""


class DataPaths(NamedTuple):
    root: Path
    journal: Path
    snapshots: Path


class RecoveryInfo(NamedTuple):
    snapshot_seq: int | None  # the snapshot recovery started from; None: from scratch
    snapshot_path: Path | None
    last_seq: int  # the last command in the recovered state (0: none)
    commands_replayed: int  # journal records applied after the snapshot
    torn_tail: TornTail | None  # what was cut from the journal's end, if anything
    snapshot_seconds: float  # reading, decoding, restoring and checking the snapshot
    replay_seconds: float  # reading, decoding and applying the journal tail
    audit_seconds: float  # 0.0 when not audited

    @property
    def replay_commands_per_second(self) -> float:
        if self.replay_seconds <= 0:
            return 0.0
        return self.commands_replayed / self.replay_seconds


class StateSummary(NamedTuple):
    ts_ns: int  # the last command's time
    state_hash: str
    conservation_totals: dict[str, int]  # per currency: deposits - withdrawals, minor units


def data_paths(data_dir: Path | str) -> DataPaths:
    root = Path(data_dir)
    return DataPaths(root, root / JOURNAL_DIR_NAME, root / SNAPSHOT_DIR_NAME)


def default_engine() -> Engine:
    """A fresh engine over the default instrument catalogue."""
    return Engine(default_catalogue())


def summarize(engine: Engine) -> StateSummary:
    """What an operator compares across machines: time, state hash, per-currency totals."""
    return StateSummary(engine.state.ts_ns, engine.state_hash(), conservation_totals(engine.state))


def restore_snapshot(snapshot: Snapshot, engine_factory: EngineFactory) -> Engine:
    """A fresh engine holding the snapshot's state, checked against its stored hash."""
    engine = engine_factory()
    try:
        image = decode_image(snapshot.payload)
    except CodecError as error:
        raise RecoveryError(f"snapshot {snapshot.path}: {error}") from None
    engine.restore(image)
    restored_hash = engine.state_hash()
    if restored_hash != snapshot.state_hash:
        raise RecoveryError(
            f"snapshot {snapshot.path} restores to state hash {restored_hash}, but was saved"
            f" with {snapshot.state_hash}: snapshot/restore disagree (a bug; report it)"
        )
    return engine


def write_engine_snapshot(
    snapshot_dir: Path | str, seq: int, state_hash: str, image: dict[str, object]
) -> Path:
    """Write the snapshot of ``image`` (state after ``seq``) atomically; returns its path."""
    return write_snapshot(snapshot_dir, seq, state_hash, encode_image(image))


def verify_snapshot(path: Path, engine_factory: EngineFactory) -> Snapshot:
    """Read a snapshot back and restore it into a scratch engine; raises if either fails.

    Run before pruning anything older: a snapshot is trusted only once it has restored.
    """
    try:
        snapshot = read_snapshot(path)
    except SnapshotCorruptError as error:
        raise RecoveryError(str(error)) from None
    restore_snapshot(snapshot, engine_factory)
    return snapshot


def _start(
    paths: DataPaths, engine_factory: EngineFactory, use_snapshot: bool | Path
) -> tuple[Engine, Snapshot | None, float]:
    started = time.perf_counter()
    snapshot: Snapshot | None = None
    if use_snapshot is True:
        snapshot = load_latest_snapshot(paths.snapshots)
    elif isinstance(use_snapshot, Path):
        try:
            snapshot = read_snapshot(use_snapshot)
        except SnapshotCorruptError as error:
            raise RecoveryError(str(error)) from None
    engine = engine_factory() if snapshot is None else restore_snapshot(snapshot, engine_factory)
    return engine, snapshot, time.perf_counter() - started


def _replay(
    engine: Engine,
    journal_dir: Path,
    from_seq: int,
    on_record: RecordCallback | None,
    progress: ProgressCallback | None,
) -> tuple[int, float]:
    """Apply every journal record from from_seq on; (last seq applied, seconds)."""
    started = time.perf_counter()
    apply = engine.apply
    publish = on_record is not None  # events built only for a reader
    expected = from_seq
    if not journal_dir.is_dir():
        return from_seq - 1, 0.0
    for seq, payload in iter_records(journal_dir, from_seq):
        if seq != expected:
            raise RecoveryError(f"{journal_dir}: record seq {seq} where {expected} was due")
        try:
            command = decode_command(payload)
        except CodecError as error:
            raise RecoveryError(f"{journal_dir}: record seq {seq}: {error}") from None
        events = apply(command, publish)
        if on_record is not None:
            on_record(seq, command, events)
        expected = seq + 1
        if progress is not None and (expected - from_seq) % PROGRESS_EVERY_RECORDS == 0:
            progress(expected - from_seq, time.perf_counter() - started)
    return expected - 1, time.perf_counter() - started


def _check_reach(journal_first_seq: int, journal_next_seq: int, start_seq: int) -> None:
    if journal_first_seq > start_seq:
        raise RecoveryError(
            f"the state is at seq {start_seq - 1} but the journal starts at seq"
            f" {journal_first_seq}: records {start_seq}..{journal_first_seq - 1} are missing"
            " (pruned past the snapshot used, or lost)"
        )
    if journal_next_seq < start_seq:
        raise RecoveryError(
            f"the snapshot is at seq {start_seq - 1} but the journal ends at seq"
            f" {journal_next_seq - 1}: durable records were lost (a journal run with"
            " FsyncPolicy.NONE through a machine crash?)"
        )


def open_data_dir(
    data_dir: Path | str,
    engine_factory: EngineFactory = default_engine,
    *,
    journal_config: JournalConfig = DEFAULT_JOURNAL_CONFIG,
    audit: bool = True,
    use_snapshot: bool | Path = True,
    on_record: RecordCallback | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Engine, RecoveryInfo, Journal]:
    """Recover the data dir and return the journal open for appending (the writer lock held).

    The caller owns the Journal and must close it. Raises JournalLockedError if another
    writer holds the data dir, JournalCorruptError on mid-journal damage, RecoveryError when
    snapshot and journal do not meet.
    """
    paths = data_paths(data_dir)
    engine, snapshot, snapshot_seconds = _start(paths, engine_factory, use_snapshot)
    start_seq = 1 if snapshot is None else snapshot.seq + 1
    journal, report = open_journal(paths.journal, journal_config, first_seq=start_seq)
    try:
        _check_reach(report.first_seq, report.next_seq, start_seq)
        last_seq, replay_seconds = _replay(engine, paths.journal, start_seq, on_record, progress)
        if last_seq != report.next_seq - 1:
            raise RecoveryError(
                f"replay ended at seq {last_seq}, the journal at {report.next_seq - 1}"
            )
        audit_seconds = _audit(engine) if audit else 0.0
    except BaseException:
        journal.close()
        raise
    info = RecoveryInfo(
        None if snapshot is None else snapshot.seq,
        None if snapshot is None else snapshot.path,
        last_seq,
        last_seq - start_seq + 1,
        report.torn_tail,
        snapshot_seconds,
        replay_seconds,
        audit_seconds,
    )
    _log.info(
        "recovered %s: snapshot seq %s, %d commands replayed in %.3f s, last seq %d",
        paths.root, info.snapshot_seq, info.commands_replayed, replay_seconds, last_seq,
        extra={"seq": last_seq},
    )  # fmt: skip
    return engine, info, journal


def recover(
    data_dir: Path | str,
    engine_factory: EngineFactory = default_engine,
    *,
    journal_config: JournalConfig = DEFAULT_JOURNAL_CONFIG,
    audit: bool = True,
    use_snapshot: bool | Path = True,
    read_only: bool = False,
    on_record: RecordCallback | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Engine, RecoveryInfo]:
    """Rebuild the engine from a data dir: (engine, what recovery did).

    use_snapshot: True for the newest valid snapshot, False to replay the journal from seq 1,
    or the path of one snapshot. read_only takes no lock and changes nothing (for a live data
    dir): a torn tail then simply ends the replay and is not cut. on_record sees every replayed
    (seq, command, events); progress sees the count every PROGRESS_EVERY_RECORDS records.
    """
    if not read_only:
        engine, info, journal = open_data_dir(
            data_dir, engine_factory, journal_config=journal_config, audit=audit,
            use_snapshot=use_snapshot, on_record=on_record, progress=progress,
        )  # fmt: skip
        journal.close()
        return engine, info
    paths = data_paths(data_dir)
    engine, snapshot, snapshot_seconds = _start(paths, engine_factory, use_snapshot)
    start_seq = 1 if snapshot is None else snapshot.seq + 1
    last_seq, replay_seconds = _replay(engine, paths.journal, start_seq, on_record, progress)
    audit_seconds = _audit(engine) if audit else 0.0
    info = RecoveryInfo(
        None if snapshot is None else snapshot.seq,
        None if snapshot is None else snapshot.path,
        last_seq,
        last_seq - start_seq + 1,
        None,
        snapshot_seconds,
        replay_seconds,
        audit_seconds,
    )
    return engine, info


def _audit(engine: Engine) -> float:
    started = time.perf_counter()
    audit_state(engine.state)
    return time.perf_counter() - started
