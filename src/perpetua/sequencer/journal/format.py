"""The journal's on-disk format: configuration, errors, report types, durable-file primitives
(shared with snapshots) and segment files. The format and its invariants are described in
``perpetua.sequencer.journal``.
"""

from __future__ import annotations

import enum
import fcntl
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from perpetua.core.invariant import invariant

__all__ = [
    "DEFAULT_JOURNAL_CONFIG",
    "FsyncPolicy",
    "FsyncStats",
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
