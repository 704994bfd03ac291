"""Reading a journal: walking segments record by record, classifying damage (torn tail or
corruption), and ``iter_records`` for replay.
"""

from __future__ import annotations

import bisect
import enum
import struct
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import NamedTuple

from perpetua.core.invariant import fail, invariant
from perpetua.sequencer.journal.format import (
    _NONZERO_BYTE,
    _RECORD_HEADER,
    _SEQ_FIELD_START,
    _SEQ_FIELD_STOP,
    _SEQ_LOW_BYTE_CRC,
    RECORD_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
    JournalCorruptError,
    JournalRangeError,
    _header_problem,
    _list_segments,
    _Segment,
)

__all__ = ["iter_records"]

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
