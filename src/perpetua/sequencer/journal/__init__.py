"""Append-only command journal: numbered, checksummed records in rotating segment files.

The sequencer numbers each command and appends its bytes here before applying it; nothing that
depends on a command leaves the process until the batch holding it is durable. This module
stores opaque payloads and knows nothing of the engine.

Format (integers little-endian)
    A journal is a directory of segments named ``journal-<first_seq:020d>.log``.
    segment header, 20 bytes: ``"PRPJ" | u16 version (1) | u16 reserved (0) | u64 first_seq |
    u32 crc32 of the 16 bytes before it``; then records back to back up to the end of the file.
    record, 16 + n bytes: ``u32 n | u64 seq | u32 crc32(the 8 seq bytes, then the payload) |
    payload (n bytes)``.

Invariants
    - Every seq is >= 1 and is its predecessor's plus 1, across segments too: a segment's name
      and header give the seq of its first record, one past the last seq of the segment before.
    - A segment holds whole records; one commit is one ``write`` into one segment. A new segment
      is begun when the next batch would take the current one past ``segment_bytes_max``, so a
      segment is larger only when it holds a single batch that is.
    - One writer: `open_journal` holds an exclusive ``flock`` on ``journal.lock``. Readers
      (`iter_records`) and `prune_before` take no lock; pruning never touches the last segment.

Crash safety, with FsyncPolicy.ALWAYS
    1. ``append`` only buffers. ``commit`` writes the buffer with one ``write`` and syncs it
       (``fdatasync``, which also flushes the file size; ``F_FULLFSYNC`` on macOS) before it
       returns the durable seq, and the caller acknowledges nothing before that: every
       acknowledged record is on stable storage.
    2. A segment is created (``O_EXCL``), its header written and synced, and the directory
       synced, before any record enters it: a segment holding records has a durable name and
       header.
    3. A commit starts only after the previous one was synced, so a crash can damage only the
       bytes of the last, unacknowledged commit: the tail of the last segment, or the header of
       a last segment being created. Recovery cuts such a torn tail away (and logs it) when no
       valid record follows it. Nothing it cuts was ever acknowledged. Recovery then syncs the
       last segment, so records it accepted from the page cache (a process crash between write
       and sync) are durable before anything is derived from them.
    4. Any other damage -- a bad record followed by a valid one, damage in an earlier segment, a
       gap in seqs, a missing segment -- may be lost acknowledged data, and recovery cannot tell
       it from a torn write whose later pages reached the disk before earlier ones. It stops with
       JournalCorruptError; the operator runs `repair_journal`, which moves the damage into
       ``quarantine/`` and never deletes it.
    5. If a write or sync fails, the file's state is unknown (Linux may drop the dirty pages and
       report success to a retried fsync), so the Journal refuses further use: restart, recover.
    FsyncPolicy.NONE skips every sync. A crash of the machine may then lose or damage any recent
    data, acknowledged or not: it exists for benchmarks only.

Checksum: ``zlib.crc32`` (standard library, about 2.4 GB/s here). CRC-32C has a somewhat
better Hamming distance at some lengths but needs a third-party wheel; both catch every burst
error up to 32 bits and all but 2**-32 of random damage, and the check guards against torn
writes and media errors, not adversaries.
"""

from perpetua.sequencer.journal.format import (
    DEFAULT_JOURNAL_CONFIG,
    SEQ_MAX,
    FsyncPolicy,
    FsyncStats,
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
    fsync_directory,
    sync_file,
    write_all,
)
from perpetua.sequencer.journal.repair import (
    prune_before,
    repair_journal,
)
from perpetua.sequencer.journal.walk import (
    iter_records,
)
from perpetua.sequencer.journal.writer import (
    Journal,
    open_journal,
)

__all__ = [
    "DEFAULT_JOURNAL_CONFIG",
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
    "SEQ_MAX",
    "TornTail",
    "fsync_directory",
    "iter_records",
    "open_journal",
    "prune_before",
    "repair_journal",
    "sync_file",
    "write_all",
]
