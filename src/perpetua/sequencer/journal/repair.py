"""Operator tools over a journal directory: ``repair_journal`` (quarantine damage, never delete)
and ``prune_before`` (drop segments a verified snapshot covers).
"""

from __future__ import annotations

import os
from pathlib import Path

from perpetua.sequencer.journal.format import (
    _NO_RECORD_YIELDED,
    QUARANTINE_DIR_NAME,
    QUARANTINE_REPAIRS_MAX,
    RepairReport,
    _list_segments,
    _log,
    _Segment,
    _segment_header,
    fsync_directory,
    sync_file,
    write_all,
)
from perpetua.sequencer.journal.walk import (
    _Damage,
    _DamageKind,
    _drain,
    _walk,
)
from perpetua.sequencer.journal.writer import (
    _lock,
)

__all__ = ["prune_before", "repair_journal"]

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
