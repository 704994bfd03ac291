"""Test-side helpers for journal directories: an independent parser of the segment format,
writers of known record sets, and byte-level damage.

The parser restates the documented format on its own, so tests do not trust the module under
test to tell them where records are.
"""

import random
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

from perpetua.sequencer.journal import FsyncPolicy, JournalConfig, iter_records, open_journal

SEGMENT_HEADER = struct.Struct("<4sHHQI")
RECORD_HEADER = struct.Struct("<IQI")
SMALL_SEGMENTS = JournalConfig(
    segment_bytes_max=2048,
    pending_bytes_max=4096,
    record_payload_bytes_max=1024,
    fsync_policy=FsyncPolicy.NONE,  # recovery does not depend on the policy; keeps tests fast
)

Record = tuple[int, bytes]


class RecordSpan:
    """Where one record sits in a segment file."""

    def __init__(self, path: Path, offset: int, seq: int, size: int) -> None:
        self.path = path
        self.offset = offset
        self.seq = seq
        self.size = size  # header + payload bytes

    @property
    def end(self) -> int:
        return self.offset + self.size


def payload_for(seq: int, size: int) -> bytes:
    """Deterministic, seq-dependent bytes of the given size."""
    seed = f"payload-{seq}-".encode()
    return (seed * (size // len(seed) + 1))[:size]


def segment_paths(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.log"))


def parse_segment(path: Path) -> list[RecordSpan]:
    """Record positions in a clean segment (raises on anything unexpected)."""
    data = path.read_bytes()
    magic, version, _, first_seq, crc = SEGMENT_HEADER.unpack_from(data, 0)
    if magic != b"PRPJ" or version != 1 or zlib.crc32(data[:16]) != crc:
        raise ValueError(f"{path}: bad header")
    if path.name != f"journal-{first_seq:020d}.log":
        raise ValueError(f"{path}: name does not match first seq {first_seq}")
    spans = []
    offset = SEGMENT_HEADER.size
    while offset < len(data):
        length, seq, record_crc = RECORD_HEADER.unpack_from(data, offset)
        body = offset + RECORD_HEADER.size
        payload = data[body : body + length]
        if zlib.crc32(seq.to_bytes(8, "little") + payload) != record_crc:
            raise ValueError(f"{path}:{offset}: bad record crc")
        spans.append(RecordSpan(path, offset, seq, RECORD_HEADER.size + length))
        offset = body + length
    return spans


def all_spans(directory: Path) -> list[RecordSpan]:
    return [span for path in segment_paths(directory) for span in parse_segment(path)]


def write_journal(
    directory: Path,
    sizes: list[int],
    batch_sizes: list[int] | None = None,
    config: JournalConfig = SMALL_SEGMENTS,
    first_seq: int = 1,
) -> list[Record]:
    """Append one record per size (committing in batches), close, return what was written."""
    journal, _ = open_journal(directory, config, first_seq=first_seq)
    written: list[Record] = []
    batches = batch_sizes or [7]
    with journal:
        in_batch = 0
        batch_index = 0
        for position, size in enumerate(sizes):
            seq = first_seq + position
            payload = payload_for(seq, size)
            journal.append(seq, payload)
            written.append((seq, payload))
            in_batch += 1
            if in_batch >= batches[batch_index % len(batches)]:
                journal.commit()
                in_batch = 0
                batch_index += 1
        journal.commit()
    return written


def random_sizes(count: int, seed: int, size_max: int = 200) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(0, size_max + 1) for _ in range(count)]


def read_all(directory: Path, from_seq: int = 1) -> list[Record]:
    return list(iter_records(directory, from_seq))


def copy_journal(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def flip_bit(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def overwrite(path: Path, offset: int, replacement: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset : offset + len(replacement)] = replacement
    path.write_bytes(bytes(data))


def truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)


def encode_record(seq: int, payload: bytes) -> bytes:
    crc = zlib.crc32(seq.to_bytes(8, "little") + payload)
    return RECORD_HEADER.pack(len(payload), seq, crc) + payload


def encode_segment_header(first_seq: int) -> bytes:
    body = struct.pack("<4sHHQ", b"PRPJ", 1, 0, first_seq)
    return body + struct.pack("<I", zlib.crc32(body))


def patch_journal(monkeypatch: Any, name: str, value: Any) -> None:
    """Replace ``name`` in every journal module that uses it (format, walk, writer, repair)."""
    from perpetua.sequencer.journal import format, repair, walk, writer

    for module in (format, walk, writer, repair):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, value)
