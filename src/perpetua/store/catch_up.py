"""Catching the read models up from the journal, when the live stream cannot.

The journal holds commands, not events; events are re-derived by replaying the journal through
an engine restored from the newest snapshot at or before the projector's ``last_seq`` (or from
seq 1 when there is none), exactly as recovery does, read-only (no lock: the data dir may be
live). Every record after ``last_seq`` is projected; earlier ones only rebuild the engine.

Used at start (the projector may trail the sequencer after a crash: records it had queued were
never committed) and by ``ProjectorThread`` whenever the live stream skips a seq (its queue was
full, so it dropped records rather than block the sequencer).
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perpetua.core.events import Event
from perpetua.sequencer.recovery import RecoveryError, data_paths, default_engine, recover
from perpetua.sequencer.snapshot import list_snapshots
from perpetua.store.limits import PROJECT_COMMANDS_PER_TRANSACTION_MAX
from perpetua.store.projector import NO_SEQ, ProjectionError, Projector, Record

__all__ = ["catch_up"]

log = logging.getLogger(__name__)


def _starting_points(data_dir: Path, last_seq: int) -> list[Path | bool]:
    """Snapshots at or before ``last_seq``, newest first, then ``False`` (from seq 1)."""
    snapshots = [
        s.path
        for s in reversed(list_snapshots(data_paths(data_dir).snapshots))
        if last_seq != NO_SEQ and s.seq <= last_seq
    ]
    return [*snapshots, False]


def catch_up(
    projector: Projector, data_dir: str | Path, engine_factory: Callable[[], Any] = default_engine
) -> int:
    """Project every journaled command after ``projector.last_seq``; return how many."""
    last_seq = projector.last_seq
    pending: list[Record] = []
    projected = 0

    def on_record(seq: int, command: Any, events: list[Event]) -> None:
        nonlocal projected
        if seq <= last_seq:
            return
        pending.append((seq, command.ts_ns, command, events))
        if len(pending) >= PROJECT_COMMANDS_PER_TRANSACTION_MAX:
            projected += projector.project(pending)
            pending.clear()

    failures = []
    for start in _starting_points(Path(data_dir), last_seq):
        try:
            recover(
                data_dir,
                engine_factory,
                read_only=True,
                audit=False,
                use_snapshot=start,
                on_record=on_record,
            )
        except RecoveryError as error:  # a damaged snapshot, or a journal pruned past it
            if pending or projected:
                raise
            failures.append(f"{start or 'seq 1'}: {error}")
            continue
        projected += projector.project(pending)
        log.info(
            "projector caught up %d commands from the journal, now at seq %d",
            projected,
            projector.last_seq,
        )
        return projected
    raise ProjectionError(
        f"cannot re-derive events after seq {last_seq} from {data_dir}: "
        + "; ".join(failures)
        + " (the journal was pruned past the read models: rebuild them from an older backup)"
    )
