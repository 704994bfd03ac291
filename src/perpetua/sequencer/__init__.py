"""The single writer: numbers commands, journals them durably, applies them, snapshots state.

So far the durable file layer: `journal` (append-only, group-committed command records) and
`snapshot` (atomic state snapshots). Both store opaque bytes; the engine and runner come later.
"""

from perpetua.sequencer.journal import (
    FsyncPolicy,
    FsyncStats,
    Journal,
    JournalBackpressureError,
    JournalConfig,
    JournalCorruptError,
    JournalError,
    JournalFailedError,
    JournalLockedError,
    JournalRangeError,
    RecoveryReport,
    RepairReport,
    TornTail,
    iter_records,
    open_journal,
    prune_before,
    repair_journal,
)
from perpetua.sequencer.snapshot import (
    Snapshot,
    SnapshotCorruptError,
    SnapshotFile,
    list_snapshots,
    load_latest_snapshot,
    prune_snapshots,
    read_snapshot,
    write_snapshot,
)

__all__ = [
    "FsyncPolicy",
    "FsyncStats",
    "Journal",
    "JournalBackpressureError",
    "JournalConfig",
    "JournalCorruptError",
    "JournalError",
    "JournalFailedError",
    "JournalLockedError",
    "JournalRangeError",
    "RecoveryReport",
    "RepairReport",
    "Snapshot",
    "SnapshotCorruptError",
    "SnapshotFile",
    "TornTail",
    "iter_records",
    "list_snapshots",
    "load_latest_snapshot",
    "open_journal",
    "prune_before",
    "prune_snapshots",
    "read_snapshot",
    "repair_journal",
    "write_snapshot",
]
