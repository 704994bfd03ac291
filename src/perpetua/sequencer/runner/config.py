"""A sequencer's limits, its statistics, and the journal it writes through.

Invariants
    - Every limit is a positive bound with its unit in its name, checked when the config is
      built (`SequencerConfig.__post_init__`): ``queue_depth_max <= queue_depth_hard_max``, so
      orders and amends are refused before never-shed commands have to wait.
    - Only `SHEDDABLE_COMMAND_TYPES` (orders, amends, batches of them) are ever refused for
      load; cancels and internal commands are never shed.
    - A `JournalLike` numbers records consecutively from ``next_seq``; ``commit`` returns the
      last durable seq. `NullJournal` keeps those rules and nothing else (UNSAFE: nothing
      survives a restart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

from perpetua.core.commands import AmendOrder, Batch, PlaceOrder
from perpetua.core.invariant import invariant
from perpetua.sequencer.journal import DEFAULT_JOURNAL_CONFIG, FsyncStats, JournalConfig

__all__ = [
    "COMMIT_LATENCY_SAMPLES_MAX",
    "DEFAULT_SEQUENCER_CONFIG",
    "SHEDDABLE_COMMAND_TYPES",
    "THREAD_JOIN_TIMEOUT_S",
    "JournalLike",
    "NullJournal",
    "SequencerConfig",
    "SequencerStats",
]

# Refused with Overloaded when the queue is at queue_depth_max; every other type is never shed.
SHEDDABLE_COMMAND_TYPES: Final = frozenset({PlaceOrder, AmendOrder, Batch})
COMMIT_LATENCY_SAMPLES_MAX: Final = 65_536  # most recent commit latencies kept for percentiles
THREAD_JOIN_TIMEOUT_S: Final = 60.0


class SequencerStats(NamedTuple):
    applied_seq: int  # last seq applied to the engine
    durable_seq: int  # last seq committed and released
    queue_depth: int  # commands waiting now
    overloaded_count: int  # commands refused with Overloaded
    batch_count: int  # batches committed
    command_count: int  # commands committed (internal ones included)
    largest_batch_commands: int  # largest batch committed
    fsync: FsyncStats | None  # from the journal, when it has them
    snapshot_seq: int | None  # last snapshot written and verified


@dataclass(frozen=True, slots=True)
class SequencerConfig:
    """Limits of one sequencer (units in the names)."""

    queue_depth_max: int = 10_000  # waiting commands before orders and amends are refused
    queue_depth_hard_max: int = 20_000  # waiting commands before never-shed submitters wait
    batch_commands_max: int = 4_096  # commands in one journal batch (one fsync)
    pipeline_batches_max: int = 2  # batches applied but not yet durable; 1: no pipelining
    snapshot_interval_commands: int = 1_000_000  # periodic snapshots; 0: only on demand/stop
    snapshots_kept: int = 2  # verified snapshots kept; the journal is pruned below the oldest
    journal_prune: bool = True  # False keeps every journal segment (full history for replay)
    snapshot_on_stop: bool = True
    idle_wait_ms_max: int = 100  # the writer re-reads the clock at least this often when idle
    # Exact timers (Day boundaries, later funding) missed for longer than this are not caught
    # up one by one after a pause: the core catches up on its own at the next command.
    timer_catch_up_ns_max: int = 7 * 86_400 * 1_000_000_000
    journal: JournalConfig = DEFAULT_JOURNAL_CONFIG

    def __post_init__(self) -> None:
        invariant(self.queue_depth_max >= 1, "queue_depth_max must be >= 1")
        invariant(
            self.queue_depth_hard_max >= self.queue_depth_max,
            "queue_depth_hard_max must be >= queue_depth_max",
        )
        invariant(self.batch_commands_max >= 1, "batch_commands_max must be >= 1")
        invariant(self.pipeline_batches_max >= 1, "pipeline_batches_max must be >= 1")
        invariant(self.snapshot_interval_commands >= 0, "snapshot_interval_commands >= 0")
        invariant(self.snapshots_kept >= 1, "snapshots_kept must be >= 1")
        invariant(self.idle_wait_ms_max >= 1, "idle_wait_ms_max must be >= 1")
        invariant(self.timer_catch_up_ns_max >= 0, "timer_catch_up_ns_max must be >= 0")


DEFAULT_SEQUENCER_CONFIG: Final = SequencerConfig()


class JournalLike(Protocol):
    """What the sequencer needs of a journal (`journal.Journal`, `NullJournal`, test doubles)."""

    @property
    def next_seq(self) -> int: ...

    @property
    def fsync_stats(self) -> FsyncStats | None:
        """Counts and times of its fsyncs; None for a journal that does not fsync."""
        ...

    def append_batch(self, records: Sequence[tuple[int, bytes]], start: int = 0) -> int: ...

    def commit(self) -> int: ...

    def close(self) -> None: ...


class NullJournal:
    """A journal that keeps nothing: for benchmarks (the "journal off" reference) and tests.

    UNSAFE: nothing survives a restart.
    """

    __slots__ = ("_next_seq",)

    def __init__(self, first_seq: int = 1) -> None:
        self._next_seq = first_seq

    @property
    def fsync_stats(self) -> FsyncStats | None:
        return None

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def append_batch(self, records: Sequence[tuple[int, bytes]], start: int = 0) -> int:
        for seq, _ in records[start:]:
            invariant(seq == self._next_seq, f"append of seq {seq}, expected {self._next_seq}")
            self._next_seq = seq + 1
        return len(records)

    def commit(self) -> int:
        return self._next_seq - 1

    def close(self) -> None:
        pass
