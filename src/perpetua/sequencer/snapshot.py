"""Snapshots: the engine's serialized state as of a journal seq, written atomically.

Restart loads the newest valid snapshot, then replays the journal from ``seq + 1``. This module
stores opaque payload bytes and the state hash the engine reported for them.

Format (integers little-endian), one file ``snapshot-<seq:020d>.snap`` per snapshot::

    "PRPS" | u16 version (1) | u16 state_hash_bytes | u64 seq | u64 payload_bytes
    | u32 crc32(the 24 bytes before it, then state_hash, then payload)
    | state_hash (UTF-8) | payload

Invariants
    - A file named ``snapshot-<seq>.snap`` is complete: its header, lengths and crc check out,
      its header seq equals its name's, and its size is exactly header + hash + payload.
    - Files that break this are damaged: skipped (and logged) by `load_latest_snapshot`, never
      counted as kept by `prune_snapshots`.

Crash safety
    `write_snapshot` writes a temporary file (``*.tmp``, a name no reader looks at), syncs it,
    renames it over the final name, and syncs the directory. A crash before the rename leaves
    only a temp file; after it, the final name holds complete, synced bytes; the directory sync
    makes the rename itself durable before the caller goes on (e.g. to prune the journal). The
    crc still guards against media damage and outside meddling: a damaged newest snapshot makes
    `load_latest_snapshot` fall back to the one before, whose journal tail must still exist --
    so prune the journal only up to the oldest snapshot kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Final, NamedTuple

from perpetua.core.invariant import invariant
from perpetua.sequencer.journal import SEQ_MAX, fsync_directory, sync_file, write_all

__all__ = [
    "Snapshot",
    "SnapshotCorruptError",
    "SnapshotFile",
    "decode_snapshot",
    "encode_snapshot",
    "list_snapshots",
    "load_latest_snapshot",
    "prune_snapshots",
    "read_snapshot",
    "write_snapshot",
]

_log = logging.getLogger(__name__)

SNAPSHOT_MAGIC: Final = b"PRPS"
SNAPSHOT_FORMAT_VERSION: Final = 1
STATE_HASH_BYTES_MAX: Final = 256
_HEADER_BODY = struct.Struct("<4sHHQQ")
_U32 = struct.Struct("<I")
SNAPSHOT_HEADER_BYTES: Final = _HEADER_BODY.size + _U32.size
_SNAPSHOT_NAME = re.compile(r"snapshot-(\d{20})\.snap")
_TEMP_SUFFIX: Final = ".tmp"


class SnapshotCorruptError(Exception):
    """A snapshot file is damaged or incomplete. Fall back to an older one."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"snapshot damaged: {path}: {reason}")


class Snapshot(NamedTuple):
    seq: int  # the last journal seq the state includes; replay resumes at seq + 1
    state_hash: str
    payload: bytes
    path: Path


class SnapshotFile(NamedTuple):
    seq: int  # from the file name; read_snapshot checks it against the header
    path: Path


def _snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:020d}.snap"


def encode_snapshot(seq: int, state_hash: str, payload: bytes) -> bytes:
    """One snapshot's bytes in the format above (a file here; an object in cluster mode)."""
    invariant(0 <= seq <= SEQ_MAX, f"snapshot seq {seq} out of range")
    hash_bytes = state_hash.encode()
    invariant(
        0 < len(hash_bytes) <= STATE_HASH_BYTES_MAX,
        f"state hash of {len(hash_bytes)} bytes; 1..{STATE_HASH_BYTES_MAX} allowed",
    )
    body = _HEADER_BODY.pack(
        SNAPSHOT_MAGIC, SNAPSHOT_FORMAT_VERSION, len(hash_bytes), seq, len(payload)
    )
    crc = zlib.crc32(payload, zlib.crc32(hash_bytes, zlib.crc32(body)))
    return body + _U32.pack(crc) + hash_bytes + payload


def write_snapshot(directory: Path | str, seq: int, state_hash: str, payload: bytes) -> Path:
    """Atomically write the snapshot for seq and return its path.

    Writing the same seq again replaces the file (atomically): state at a seq is deterministic.
    """
    data = encode_snapshot(seq, state_hash, payload)
    directory = Path(directory)
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        fsync_directory(directory.parent)
    final = directory / _snapshot_name(seq)
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=final.name + ".", suffix=_TEMP_SUFFIX)
    try:
        try:
            write_all(fd, data)
            sync_file(fd)
        finally:
            os.close(fd)
        os.replace(temp_name, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    fsync_directory(directory)
    return final


def decode_snapshot(data: bytes, where: Path) -> Snapshot:
    """Verify one snapshot's bytes (header, lengths, crc, UTF-8 hash); ``where`` names it in
    errors and in the result. SnapshotCorruptError says what is wrong."""
    if len(data) < SNAPSHOT_HEADER_BYTES:
        raise SnapshotCorruptError(where, f"header truncated at {len(data)} bytes")
    magic, version, hash_length, seq, payload_length = _HEADER_BODY.unpack_from(data, 0)
    (crc,) = _U32.unpack_from(data, _HEADER_BODY.size)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotCorruptError(where, f"bad magic {magic!r}")
    if version != SNAPSHOT_FORMAT_VERSION:
        raise SnapshotCorruptError(where, f"unsupported format version {version}")
    expected_size = SNAPSHOT_HEADER_BYTES + hash_length + payload_length
    if len(data) != expected_size:
        raise SnapshotCorruptError(where, f"{len(data)} bytes, header says {expected_size}")
    view = memoryview(data)
    hash_stop = SNAPSHOT_HEADER_BYTES + hash_length
    actual_crc = zlib.crc32(
        view[hash_stop:],
        zlib.crc32(view[SNAPSHOT_HEADER_BYTES:hash_stop], zlib.crc32(view[: _HEADER_BODY.size])),
    )
    if actual_crc != crc:
        raise SnapshotCorruptError(where, "crc mismatch")
    try:
        state_hash = bytes(view[SNAPSHOT_HEADER_BYTES:hash_stop]).decode()
    except UnicodeDecodeError:
        raise SnapshotCorruptError(where, "state hash is not UTF-8") from None
    return Snapshot(seq, state_hash, data[hash_stop:], where)


def read_snapshot(path: Path | str) -> Snapshot:
    """Read and verify one snapshot file; SnapshotCorruptError says what is wrong with it."""
    path = Path(path)
    match = _SNAPSHOT_NAME.fullmatch(path.name)
    if match is None:
        raise SnapshotCorruptError(path, "not a snapshot file name")
    snapshot = decode_snapshot(path.read_bytes(), path)
    if snapshot.seq != int(match.group(1)):
        raise SnapshotCorruptError(path, f"header says seq {snapshot.seq}, the file name another")
    return snapshot


def list_snapshots(directory: Path | str) -> list[SnapshotFile]:
    """Snapshot files by name, oldest first; not verified. Empty if the directory is missing."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            match = _SNAPSHOT_NAME.fullmatch(entry.name)
            if match is not None and entry.is_file():
                found.append(SnapshotFile(int(match.group(1)), Path(entry.path)))
    found.sort()
    return found


def load_latest_snapshot(directory: Path | str) -> Snapshot | None:
    """The newest snapshot that verifies, skipping (and logging) damaged ones; None if none."""
    for entry in reversed(list_snapshots(directory)):
        try:
            return read_snapshot(entry.path)
        except SnapshotCorruptError as error:
            _log.warning("skipping %s", error)
    return None


def prune_snapshots(directory: Path | str, keep: int) -> tuple[Path, ...]:
    """Keep the newest ``keep`` valid snapshots, delete every snapshot older than them.

    Damaged snapshots newer than the oldest kept one stay for inspection (loading skips them).
    Also deletes leftover ``*.tmp`` files from interrupted writes, so call it only from the
    single snapshot writer, never while a write_snapshot is running. Returns deleted paths.
    Deletes nothing when fewer than ``keep`` snapshots verify.
    """
    invariant(keep >= 1, f"keep {keep} must be >= 1: pruning must leave a snapshot")
    directory = Path(directory)
    entries = list_snapshots(directory)
    valid_count = 0
    oldest_kept = len(entries)
    for position in range(len(entries) - 1, -1, -1):
        if valid_count == keep:
            break
        try:
            read_snapshot(entries[position].path)
        except SnapshotCorruptError as error:
            _log.warning("not keeping %s", error)
            continue
        valid_count += 1
        oldest_kept = position
    if valid_count < keep:
        return ()
    doomed = [entry.path for entry in entries[:oldest_kept]]
    doomed.extend(sorted(directory.glob("snapshot-*" + _TEMP_SUFFIX)))
    for path in doomed:
        path.unlink()
    if doomed:
        fsync_directory(directory)
    return tuple(doomed)
