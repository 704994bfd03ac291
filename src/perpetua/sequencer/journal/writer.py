"""The journal's single writer: ``Journal`` (append, commit, rotate) and ``open_journal``, which
recovers a directory (cutting a torn tail) before handing out the writer.
"""

from __future__ import annotations

import fcntl
import os
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

from perpetua.core.invariant import fail, invariant
from perpetua.sequencer.journal.format import (
    _NO_RECORD_YIELDED,
    _RECORD_HEADER,
    _SEQ_LOW_BYTE_CRC,
    DEFAULT_JOURNAL_CONFIG,
    LOCK_FILE_NAME,
    RECORD_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
    SEQ_MAX,
    FsyncPolicy,
    FsyncStats,
    JournalBackpressureError,
    JournalConfig,
    JournalFailedError,
    JournalLockedError,
    RecoveryReport,
    TornTail,
    _create_segment,
    _ensure_directory,
    _list_segments,
    _log,
    _segment_header,
    sync_file,
    write_all,
)
from perpetua.sequencer.journal.walk import (
    _Damage,
    _DamageKind,
    _drain,
    _walk,
)

__all__ = ["Journal", "open_journal"]

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
