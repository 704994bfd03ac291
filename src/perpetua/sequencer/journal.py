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

from __future__ import annotations

import bisect
import enum
import fcntl
import logging
import os
import re
import struct
import time
import zlib
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from perpetua.core.invariant import fail, invariant

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
    "TornTail",
    "fsync_directory",
    "iter_records",
    "open_journal",
    "prune_before",
    "repair_journal",
    "sync_file",
    "write_all",
]

_log = logging.getLogger(__name__)

BYTES_PER_MIB: Final = 1024 * 1024
FORMAT_VERSION: Final = 1
SEGMENT_MAGIC: Final = b"PRPJ"
SEQ_MAX: Final = 2**64 - 1
PAYLOAD_BYTES_LIMIT: Final = 2**32 - 1  # what the u32 length field can say
WRITE_CALLS_MAX: Final = 64  # per buffer; a regular file rarely takes more than one
QUARANTINE_REPAIRS_MAX: Final = 10_000
LOCK_FILE_NAME: Final = "journal.lock"
QUARANTINE_DIR_NAME: Final = "quarantine"

_SEGMENT_HEADER_BODY = struct.Struct("<4sHHQ")
_U32 = struct.Struct("<I")
SEGMENT_HEADER_BYTES: Final = _SEGMENT_HEADER_BODY.size + _U32.size
_RECORD_HEADER = struct.Struct("<IQI")
RECORD_HEADER_BYTES: Final = _RECORD_HEADER.size
_SEQ_FIELD_START: Final = 4  # within a record header
_SEQ_FIELD_STOP: Final = 12
_SEGMENT_NAME = re.compile(r"journal-(\d{20})\.log")
_NONZERO_BYTE = re.compile(rb"[^\x00]")
# crc32 is affine over GF(2) for a fixed length, so for a u64 seq with low byte b:
# crc32(seq) == crc32(seq with b zeroed) ^ crc32(b) ^ crc32(0). This table holds the last two
# terms, and replay computes one crc32 of seq bytes per 256 records instead of one per record.
_SEQ_LOW_BYTE_CRC: Final = tuple(
    zlib.crc32(low.to_bytes(8, "little")) ^ zlib.crc32(bytes(8)) for low in range(256)
)
_NO_RECORD_YIELDED: Final = SEQ_MAX + 1  # a from_seq above every seq: walk without yielding
_F_FULLFSYNC: int | None = getattr(fcntl, "F_FULLFSYNC", None)


class FsyncPolicy(enum.Enum):
    """When `Journal.commit` forces written bytes to stable storage."""

    ALWAYS = "always"  # sync every non-empty commit: the default and the only safe choice
    NONE = "none"  # never sync: UNSAFE, a machine crash may lose committed records; benchmarks


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """Limits of one journal writer (readers need none: the format carries its lengths).

    A segment is rotated before a batch would take it past ``segment_bytes_max``. At most
    ``pending_bytes_max`` bytes of records wait for ``commit``; ``record_payload_bytes_max``
    caps one payload, and a bigger one is a programmer error (the gateway caps commands).
    """

    segment_bytes_max: int = 64 * BYTES_PER_MIB
    pending_bytes_max: int = 8 * BYTES_PER_MIB  # buffered, uncommitted records (headers included)
    record_payload_bytes_max: int = 1 * BYTES_PER_MIB
    fsync_policy: FsyncPolicy = FsyncPolicy.ALWAYS

    def __post_init__(self) -> None:
        invariant(
            self.segment_bytes_max >= SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES,
            f"segment_bytes_max {self.segment_bytes_max} cannot hold a record",
        )
        invariant(
            0 <= self.record_payload_bytes_max <= PAYLOAD_BYTES_LIMIT,
            f"record_payload_bytes_max {self.record_payload_bytes_max} out of range",
        )
        invariant(
            self.pending_bytes_max >= RECORD_HEADER_BYTES + self.record_payload_bytes_max,
            "pending_bytes_max must hold one record of record_payload_bytes_max",
        )


DEFAULT_JOURNAL_CONFIG: Final = JournalConfig()


class JournalError(Exception):
    """Base of the journal's errors; each subclass says what the caller should do."""


class JournalCorruptError(JournalError):
    """Stop: the journal is damaged where recovery may not cut. An operator runs repair_journal."""

    def __init__(self, path: Path, offset: int, expected_seq: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.expected_seq = expected_seq
        self.reason = reason
        super().__init__(
            f"journal corrupt: {path} at byte offset {offset}, expected seq {expected_seq}: "
            f"{reason}; repair_journal quarantines the damage"
        )


class JournalBackpressureError(JournalError):
    """Retry after commit: the pending buffer is full. Commit, then append again."""


class JournalFailedError(JournalError):
    """Stop: an earlier write or sync failed, the file state is unknown. Restart and recover."""


class JournalLockedError(JournalError):
    """Stop: another Journal (this process or another) is writing this directory."""


class JournalRangeError(JournalError):
    """Reject: the asked-for records were pruned."""


class FsyncStats(NamedTuple):
    """Latency of commit syncs, for benchmarks and metrics."""

    fsync_count: int
    total_ns: int
    max_ns: int
    last_ns: int


class TornTail(NamedTuple):
    """What recovery cut from the end of the last segment (never acknowledged data)."""

    path: Path
    offset: int  # the segment now ends here (or holds only a rewritten header when 0)
    bytes_removed: int
    reason: str


class RecoveryReport(NamedTuple):
    segment_count: int
    first_seq: int  # seq of the oldest retained record (of the next one if there is none)
    next_seq: int  # seq the journal expects next; next_seq - 1 is the last durable one
    torn_tail: TornTail | None  # None when the journal ended cleanly

    @property
    def record_count(self) -> int:
        return self.next_seq - self.first_seq


class RepairReport(NamedTuple):
    damage: str | None  # the first damage found, as JournalCorruptError states it
    quarantine_dir: Path | None  # where the damaged bytes went; None when nothing was damaged
    actions: tuple[str, ...]  # what was done, one line each, in order
    next_seq: int | None  # seq the repaired journal expects next; None if it has no segments


# --- durable-file primitives (shared with snapshot) ---------------------------------------


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of data to fd, across short writes."""
    view = memoryview(data)
    for _ in range(WRITE_CALLS_MAX):
        if not view:
            return
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"write to fd {fd} made no progress")
        view = view[written:]
    if view:
        raise OSError(f"write to fd {fd} unfinished after {WRITE_CALLS_MAX} calls")


def sync_file(fd: int) -> None:
    """Force fd's data (and the metadata needed to read it back) to stable storage."""
    if _F_FULLFSYNC is not None:
        fcntl.fcntl(fd, _F_FULLFSYNC)  # macOS: fsync alone leaves data in the drive's cache
    else:
        os.fdatasync(fd)


def fsync_directory(directory: Path) -> None:
    """Make creations, renames and deletions of directory entries durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_directory(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.mkdir(parents=True, exist_ok=True)
    fsync_directory(directory.parent)


# --- segments ----------------------------------------------------------------------------


class _Segment(NamedTuple):
    first_seq: int  # from the file name
    path: Path


def _segment_name(first_seq: int) -> str:
    return f"journal-{first_seq:020d}.log"


def _list_segments(directory: Path) -> list[_Segment]:
    segments = []
    with os.scandir(directory) as entries:
        for entry in entries:
            match = _SEGMENT_NAME.fullmatch(entry.name)
            if match is not None and entry.is_file():
                segments.append(_Segment(int(match.group(1)), Path(entry.path)))
    segments.sort()
    return segments


def _segment_header(first_seq: int) -> bytes:
    body = _SEGMENT_HEADER_BODY.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0, first_seq)
    return body + _U32.pack(zlib.crc32(body))


def _header_problem(data: bytes, first_seq: int) -> str | None:
    """Why data does not start with a valid header for segment first_seq; None if it does."""
    if len(data) < SEGMENT_HEADER_BYTES:
        return f"segment header truncated at {len(data)} of {SEGMENT_HEADER_BYTES} bytes"
    magic, version, reserved, header_seq = _SEGMENT_HEADER_BODY.unpack_from(data, 0)
    (crc,) = _U32.unpack_from(data, _SEGMENT_HEADER_BODY.size)
    if magic != SEGMENT_MAGIC:
        return f"bad segment magic {magic!r}"
    if zlib.crc32(data[: _SEGMENT_HEADER_BODY.size]) != crc:
        return "segment header crc mismatch"
    if version != FORMAT_VERSION or reserved != 0:
        return f"unsupported segment format version {version}.{reserved}"
    if header_seq != first_seq:
        return f"segment header says first seq {header_seq}, its name says {first_seq}"
    return None


def _create_segment(directory: Path, first_seq: int, sync: bool) -> tuple[Path, int]:
    path = directory / _segment_name(first_seq)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    try:
        write_all(fd, _segment_header(first_seq))
        if sync:
            sync_file(fd)
            fsync_directory(directory)
    except BaseException:
        os.close(fd)
        raise
    return path, fd


# --- reading -----------------------------------------------------------------------------


class _DamageKind(enum.Enum):
    GAP = "gap"  # the segment does not start at the expected seq: a segment is missing
    HEADER = "header"  # the segment header is short or invalid
    RECORD = "record"  # a record is short, fails its crc, or carries the wrong seq


class _Damage(NamedTuple):
    segment_index: int  # in the walked list
    path: Path
    offset: int
    expected_seq: int
    kind: _DamageKind
    reason: str
    torn: bool  # a torn tail of the last segment, which recovery may cut

    def error(self) -> JournalCorruptError:
        return JournalCorruptError(self.path, self.offset, self.expected_seq, self.reason)


class _WalkEnd(NamedTuple):
    next_seq: int
    damage: _Damage | None


def _walk(
    segments: list[_Segment], from_seq: int, strict: bool
) -> Generator[tuple[int, bytes], None, _WalkEnd]:
    """Verify segments in order, yielding (seq, payload) for seq >= from_seq.

    Stops at the first damage. When strict, damage other than a torn tail raises
    JournalCorruptError (after the records before it were yielded). The record loop is the
    replay hot path: locals only, one unpack, two slices and one crc32 call a record.
    """
    expected = segments[0].first_seq
    last_index = len(segments) - 1
    unpack = _RECORD_HEADER.unpack_from
    crc32 = zlib.crc32
    low_byte_crc = _SEQ_LOW_BYTE_CRC
    for index, segment in enumerate(segments):
        data, damage = _read_segment(index, segment, expected, index == last_index)
        if damage is not None:
            return _end_walk(expected, damage, strict)
        end = len(data)
        offset = start = SEGMENT_HEADER_BYTES
        high_crc = crc32((expected & ~0xFF).to_bytes(8, "little"))
        clean = False
        try:
            while offset < end:  # bounded: offset grows by >= RECORD_HEADER_BYTES each pass
                start = offset
                length, seq, crc = unpack(data, start)  # struct.error if < 16 bytes remain
                body = start + 16
                offset = body + length
                payload = data[body:offset]
                low = seq & 0xFF
                if low == 0:
                    high_crc = crc32(data[start + 4 : body - 4])
                if (
                    offset > end
                    or seq != expected
                    or crc32(payload, high_crc ^ low_byte_crc[low]) != crc
                ):
                    break
                if seq >= from_seq:
                    yield seq, payload
                expected += 1
            else:
                clean = True
        except struct.error:
            pass
        if not clean:
            damage = _record_damage(index, segment.path, data, start, expected, index == last_index)
            return _end_walk(expected, damage, strict)
    return _WalkEnd(expected, None)


def _read_segment(
    index: int, segment: _Segment, expected_seq: int, is_last: bool
) -> tuple[bytes, _Damage | None]:
    """The segment's bytes, or what is wrong with its place in the chain or its header."""
    path = segment.path
    if segment.first_seq != expected_seq:
        reason = f"segment starts at seq {segment.first_seq}: a segment is missing"
        return b"", _Damage(index, path, 0, expected_seq, _DamageKind.GAP, reason, False)
    data = path.read_bytes()
    problem = _header_problem(data, segment.first_seq)
    if problem is None:
        return data, None
    torn = is_last and len(data) <= SEGMENT_HEADER_BYTES
    return data, _Damage(index, path, 0, expected_seq, _DamageKind.HEADER, problem, torn)


def _record_damage(
    index: int, path: Path, data: bytes, start: int, expected_seq: int, is_last: bool
) -> _Damage:
    """Name what is wrong with the record at start, and whether it is a cuttable torn tail."""
    end = len(data)
    tearable = True  # damage a torn write can cause; a valid record with a wrong seq is not
    if start + RECORD_HEADER_BYTES > end:
        reason = "record header truncated"
    else:
        length, seq, crc = _RECORD_HEADER.unpack_from(data, start)
        body = start + RECORD_HEADER_BYTES
        seq_bytes = data[start + _SEQ_FIELD_START : start + _SEQ_FIELD_STOP]
        if body + length > end:
            reason = f"record payload of {length} bytes runs past the end of the file"
        elif zlib.crc32(data[body : body + length], zlib.crc32(seq_bytes)) != crc:
            reason = "record crc mismatch"
        else:
            invariant(seq != expected_seq, f"record at {path}:{start} is valid")
            reason = f"record has seq {seq}"
            tearable = False
    torn = tearable and is_last and _find_valid_record(data, start + 1, expected_seq) is None
    return _Damage(index, path, start, expected_seq, _DamageKind.RECORD, reason, torn)


def _end_walk(next_seq: int, damage: _Damage, strict: bool) -> _WalkEnd:
    if strict and not damage.torn:
        raise damage.error()
    return _WalkEnd(next_seq, damage)


def _find_valid_record(data: bytes, start: int, seq_min: int) -> int | None:
    """Offset of the first record at or after start that passes its crc with a plausible seq.

    Used to tell a torn tail (nothing valid follows) from damage in the middle. A plausible seq
    lies in [seq_min, seq_min + records that could fit], which keeps random bytes that happen to
    match a crc (2**-32 a position) from counting.
    """
    end = len(data)
    seq_max = seq_min + (end - start) // RECORD_HEADER_BYTES + 1
    unpack = _RECORD_HEADER.unpack_from
    crc32 = zlib.crc32
    position = start
    while position + RECORD_HEADER_BYTES <= end:  # bounded: position grows each pass
        length, seq, crc = unpack(data, position)
        if seq == 0:
            # seq >= 1 has a nonzero byte in its field: jump across zero-filled runs.
            match = _NONZERO_BYTE.search(data, position + _SEQ_FIELD_STOP)
            if match is None:
                return None
            position = match.start() - (_SEQ_FIELD_STOP - 1)
            continue
        body = position + RECORD_HEADER_BYTES
        if seq_min <= seq <= seq_max and body + length <= end:
            seq_bytes = data[position + _SEQ_FIELD_START : position + _SEQ_FIELD_STOP]
            if crc32(data[body : body + length], crc32(seq_bytes)) == crc:
                return position
        position += 1
    return None


def _drain(walk: Generator[tuple[int, bytes], None, _WalkEnd]) -> _WalkEnd:
    """Run a walk started with from_seq=_NO_RECORD_YIELDED to its end."""
    try:
        next(walk)
    except StopIteration as stop:
        result: _WalkEnd = stop.value
        return result
    fail("a walk past SEQ_MAX yielded a record")


def iter_records(directory: Path | str, from_seq: int) -> Iterator[tuple[int, bytes]]:
    """Yield (seq, payload) for every verified record with seq >= from_seq, in order.

    Takes no lock and changes nothing: a torn tail (say, a commit being written right now) ends
    the iteration quietly; any other damage raises JournalCorruptError after the records before
    it. Raises JournalRangeError at once if records at or after from_seq were pruned.
    Segments wholly before from_seq are not read.
    """
    invariant(from_seq >= 1, f"from_seq {from_seq} must be >= 1")
    segments = _list_segments(Path(directory))
    if not segments:
        return iter(())
    if from_seq < segments[0].first_seq:
        raise JournalRangeError(
            f"{directory}: records before seq {segments[0].first_seq} were pruned;"
            f" asked for seq {from_seq}"
        )
    start = bisect.bisect_right([segment.first_seq for segment in segments], from_seq) - 1
    return _walk(segments[start:], from_seq, strict=True)


# --- writing -----------------------------------------------------------------------------


class Journal:
    """The single writer of a journal directory; obtain one from `open_journal`.

    ``append`` buffers, ``commit`` makes the buffer durable. A record is acknowledged only
    after the ``commit`` covering it returned. Records appended but not committed when the
    Journal is closed are dropped: they were never acknowledged.
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_config",
        "_directory",
        "_durable_seq",
        "_failed",
        "_fsync_count",
        "_fsync_last_ns",
        "_fsync_max_ns",
        "_fsync_total_ns",
        "_lock_fd",
        "_next_seq",
        "_segment_bytes",
        "_segment_fd",
        "_segment_path",
    )

    def __init__(
        self,
        directory: Path,
        config: JournalConfig,
        lock_fd: int,
        segment_path: Path,
        segment_fd: int,
        next_seq: int,
    ) -> None:
        self._directory = directory
        self._config = config
        self._lock_fd = lock_fd
        self._segment_path = segment_path
        self._segment_fd = segment_fd
        self._segment_bytes = os.fstat(segment_fd).st_size
        self._next_seq = next_seq
        self._durable_seq = next_seq - 1
        self._buffer = bytearray()
        self._closed = False
        self._failed = False
        self._fsync_count = 0
        self._fsync_total_ns = 0
        self._fsync_max_ns = 0
        self._fsync_last_ns = 0

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def config(self) -> JournalConfig:
        return self._config

    @property
    def next_seq(self) -> int:
        """The seq the next ``append`` must carry."""
        return self._next_seq

    @property
    def durable_seq(self) -> int:
        """The last committed seq (``first_seq - 1`` before any). Under NONE: last written."""
        return self._durable_seq

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

    @property
    def pending_count(self) -> int:
        return self._next_seq - 1 - self._durable_seq

    @property
    def segment_path(self) -> Path:
        return self._segment_path

    @property
    def fsync_stats(self) -> FsyncStats:
        return FsyncStats(
            self._fsync_count, self._fsync_total_ns, self._fsync_max_ns, self._fsync_last_ns
        )

    def append(self, seq: int, payload: bytes) -> None:
        """Buffer one record. Nothing reaches the file before ``commit``.

        seq must be ``next_seq`` (a programmer error otherwise). Raises JournalBackpressureError
        when the buffer would pass ``pending_bytes_max``: commit, then append again.
        """
        if self._closed or self._failed:
            self._raise_unusable()
        if seq != self._next_seq:
            fail(f"journal append of seq {seq}, expected {self._next_seq}")
        if seq > SEQ_MAX:
            fail(f"seq {seq} passes u64")
        length = len(payload)
        if length > self._config.record_payload_bytes_max:
            fail(f"record payload of {length} bytes passes record_payload_bytes_max")
        buffer = self._buffer
        if len(buffer) + RECORD_HEADER_BYTES + length > self._config.pending_bytes_max:
            raise JournalBackpressureError(
                f"journal buffer holds {len(buffer)} bytes, pending_bytes_max is "
                f"{self._config.pending_bytes_max}: commit before appending seq {seq}"
            )
        crc = zlib.crc32(payload, zlib.crc32(seq.to_bytes(8, "little")))
        buffer += _RECORD_HEADER.pack(length, seq, crc)
        buffer += payload
        self._next_seq = seq + 1

    def append_batch(self, records: Sequence[tuple[int, bytes]], start: int = 0) -> int:
        """Buffer records[start:] in order, like ``append`` each, as many as fit under
        ``pending_bytes_max``; returns the index after the last one buffered (len(records)
        when all were). The sequencer's committer path: one call per batch, not per record.
        """
        if self._closed or self._failed:
            self._raise_unusable()
        buffer = self._buffer
        pending_max = self._config.pending_bytes_max
        payload_max = self._config.record_payload_bytes_max
        pack = _RECORD_HEADER.pack
        crc32 = zlib.crc32
        low_byte_crc = _SEQ_LOW_BYTE_CRC
        expected = self._next_seq
        high_crc = crc32((expected & ~0xFF).to_bytes(8, "little"))
        count = len(records)
        index = start
        while index < count:  # bounded: index grows by one each pass
            seq, payload = records[index]
            if seq != expected:
                fail(f"journal append of seq {seq}, expected {expected}")
            length = len(payload)
            if length > payload_max:
                fail(f"record payload of {length} bytes passes record_payload_bytes_max")
            if len(buffer) + RECORD_HEADER_BYTES + length > pending_max:
                break
            low = seq & 0xFF
            if low == 0:
                high_crc = crc32(seq.to_bytes(8, "little"))
            buffer += pack(length, seq, crc32(payload, high_crc ^ low_byte_crc[low]))
            buffer += payload
            expected = seq + 1
            index += 1
        if expected - 1 > SEQ_MAX:
            fail(f"seq {expected - 1} passes u64")
        self._next_seq = expected
        return index

    def commit(self) -> int:
        """Write the buffered records with one write, sync per policy, return the durable seq.

        An empty buffer returns at once without syncing. If the write or sync raises, the
        Journal is unusable afterwards (JournalFailedError): restart and recover.
        """
        if self._closed or self._failed:
            self._raise_unusable()
        if not self._buffer:
            return self._durable_seq
        batch_bytes = len(self._buffer)
        sync = self._config.fsync_policy is FsyncPolicy.ALWAYS
        try:
            if (
                self._segment_bytes > SEGMENT_HEADER_BYTES
                and self._segment_bytes + batch_bytes > self._config.segment_bytes_max
            ):
                self._rotate(self._durable_seq + 1, sync)
            write_all(self._segment_fd, self._buffer)
            self._segment_bytes += batch_bytes
            if sync:
                self._sync_timed()
        except BaseException:
            self._failed = True
            raise
        self._buffer.clear()
        self._durable_seq = self._next_seq - 1
        return self._durable_seq

    def close(self) -> None:
        """Release the files and the lock; drops uncommitted records. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._next_seq = self._durable_seq + 1
        os.close(self._segment_fd)
        os.close(self._lock_fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _rotate(self, first_seq: int, sync: bool) -> None:
        # The current segment was synced by the commit that last wrote it.
        path, fd = _create_segment(self._directory, first_seq, sync)
        os.close(self._segment_fd)
        self._segment_fd = fd
        self._segment_path = path
        self._segment_bytes = SEGMENT_HEADER_BYTES

    def _sync_timed(self) -> None:
        start_ns = time.perf_counter_ns()
        sync_file(self._segment_fd)
        elapsed_ns = time.perf_counter_ns() - start_ns
        self._fsync_count += 1
        self._fsync_total_ns += elapsed_ns
        self._fsync_last_ns = elapsed_ns
        self._fsync_max_ns = max(self._fsync_max_ns, elapsed_ns)

    def _raise_unusable(self) -> None:
        if self._failed:
            raise JournalFailedError(
                f"journal {self._directory}: an earlier write or sync failed; restart and recover"
            )
        fail(f"journal {self._directory} used after close")


def _lock(directory: Path) -> int:
    fd = os.open(directory / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLockedError(f"journal {directory} is open for writing elsewhere") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_journal(
    directory: Path | str,
    config: JournalConfig = DEFAULT_JOURNAL_CONFIG,
    *,
    first_seq: int = 1,
) -> tuple[Journal, RecoveryReport]:
    """Recover the journal in directory and open it for appending.

    Verifies every segment. A torn tail of the last segment is cut away and reported; any other
    damage raises JournalCorruptError and changes nothing. first_seq is used only when the
    directory holds no segment yet (created, with its parents, if missing).
    """
    invariant(1 <= first_seq <= SEQ_MAX, f"first_seq {first_seq} out of range")
    directory = Path(directory)
    _ensure_directory(directory)
    lock_fd = _lock(directory)
    try:
        return _recover(directory, config, lock_fd, first_seq)
    except BaseException:
        os.close(lock_fd)
        raise


def _recover(
    directory: Path, config: JournalConfig, lock_fd: int, first_seq: int
) -> tuple[Journal, RecoveryReport]:
    segments = _list_segments(directory)
    if not segments:
        sync = config.fsync_policy is FsyncPolicy.ALWAYS
        path, fd = _create_segment(directory, first_seq, sync)
        journal = Journal(directory, config, lock_fd, path, fd, first_seq)
        return journal, RecoveryReport(1, first_seq, first_seq, None)
    end = _drain(_walk(segments, _NO_RECORD_YIELDED, strict=True))
    last = segments[-1]
    fd = os.open(last.path, os.O_WRONLY | os.O_APPEND)
    try:
        torn_tail = None if end.damage is None else _cut_torn_tail(fd, end.damage)
        if config.fsync_policy is FsyncPolicy.ALWAYS:
            # A process that died between write and sync left its batch in the page cache,
            # where recovery just read it: make it durable before the runner acts on it.
            sync_file(fd)
        journal = Journal(directory, config, lock_fd, last.path, fd, end.next_seq)
    except BaseException:
        os.close(fd)
        raise
    report = RecoveryReport(len(segments), segments[0].first_seq, end.next_seq, torn_tail)
    return journal, report


def _cut_torn_tail(fd: int, damage: _Damage) -> TornTail:
    invariant(damage.torn, "only a torn tail may be cut")
    size = os.fstat(fd).st_size
    if damage.kind is _DamageKind.HEADER:
        os.ftruncate(fd, 0)
        write_all(fd, _segment_header(damage.expected_seq))
        reason = f"{damage.reason}; header rewritten"
    else:
        os.ftruncate(fd, damage.offset)
        reason = damage.reason
    sync_file(fd)
    tail = TornTail(damage.path, damage.offset, size - damage.offset, reason)
    _log.warning(
        "journal torn tail cut: %s at byte offset %d, %d bytes removed, next seq %d: %s",
        tail.path, tail.offset, tail.bytes_removed, damage.expected_seq, reason,
    )  # fmt: skip
    return tail


# --- operator tools ----------------------------------------------------------------------


def repair_journal(directory: Path | str) -> RepairReport:
    """Cut the journal at its first damage, moving the damage to ``quarantine/`` (never deleting).

    Later segments are moved whole; the damaged segment's bytes from the damage on are copied
    there and the segment truncated (or, for a damaged header, rewritten as an empty segment; a
    segment after a seq gap is moved whole). Takes the writer lock. Afterwards open_journal
    recovers cleanly; the records cut are lost to the journal and kept in quarantine.
    """
    directory = Path(directory)
    lock_fd = _lock(directory)
    try:
        segments = _list_segments(directory)
        if not segments:
            return RepairReport(None, None, (), None)
        end = _drain(_walk(segments, _NO_RECORD_YIELDED, strict=False))
        if end.damage is None:
            return RepairReport(None, None, (), end.next_seq)
        return _quarantine(directory, segments, end.damage)
    finally:
        os.close(lock_fd)


def _quarantine(directory: Path, segments: list[_Segment], damage: _Damage) -> RepairReport:
    quarantine_dir = _new_quarantine_dir(directory)
    actions: list[str] = []
    # Newest first, so the journal stays a contiguous run of segments at every step.
    moved_whole = segments[damage.segment_index + 1 :]
    if damage.kind is _DamageKind.GAP:
        moved_whole = segments[damage.segment_index :]
    for segment in reversed(moved_whole):
        target = quarantine_dir / segment.path.name
        os.rename(segment.path, target)
        actions.append(f"moved {segment.path} to {target}")
    fsync_directory(quarantine_dir)
    if damage.kind is not _DamageKind.GAP:
        actions.extend(_quarantine_tail(quarantine_dir, damage))
    fsync_directory(directory)
    summary = f"{damage.error()}; " + "; ".join(actions)
    _log.warning("journal repaired: %s", summary)
    return RepairReport(str(damage.error()), quarantine_dir, tuple(actions), damage.expected_seq)


def _quarantine_tail(quarantine_dir: Path, damage: _Damage) -> list[str]:
    data = damage.path.read_bytes()
    target = quarantine_dir / f"{damage.path.name}.from-{damage.offset}"
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        write_all(out, memoryview(data)[damage.offset :])
        sync_file(out)
    finally:
        os.close(out)
    fsync_directory(quarantine_dir)
    actions = [f"copied bytes {damage.offset}..{len(data)} of {damage.path} to {target}"]
    fd = os.open(damage.path, os.O_WRONLY)
    try:
        if damage.kind is _DamageKind.HEADER:
            os.ftruncate(fd, 0)
            write_all(fd, _segment_header(damage.expected_seq))
            actions.append(f"rewrote {damage.path} as an empty segment")
        else:
            os.ftruncate(fd, damage.offset)
            actions.append(f"truncated {damage.path} to {damage.offset} bytes")
        sync_file(fd)
    finally:
        os.close(fd)
    return actions


def _new_quarantine_dir(directory: Path) -> Path:
    root = directory / QUARANTINE_DIR_NAME
    if not root.is_dir():
        root.mkdir()
        fsync_directory(directory)
    for number in range(1, QUARANTINE_REPAIRS_MAX + 1):
        candidate = root / f"repair-{number:04d}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        fsync_directory(root)
        return candidate
    raise OSError(f"{root} already holds {QUARANTINE_REPAIRS_MAX} repairs")


def prune_before(directory: Path | str, seq: int) -> tuple[Path, ...]:
    """Delete the oldest segments whose records all have seq < seq; return their paths.

    Call only after a verified snapshot covers everything before seq. The last segment is never
    deleted (it holds the journal's position and may be being written); deletion goes oldest
    first so the journal stays contiguous if interrupted.
    """
    directory = Path(directory)
    segments = _list_segments(directory)
    deleted: list[Path] = []
    for segment, following in zip(segments, segments[1:], strict=False):
        if following.first_seq > seq:
            break
        segment.path.unlink()
        deleted.append(segment.path)
    if deleted:
        fsync_directory(directory)
    return tuple(deleted)
