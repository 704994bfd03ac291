"""Snapshots: round trip, atomic replacement, falling back past damaged files, pruning."""

import logging
import os
import struct
import zlib
from pathlib import Path

import pytest

from perpetua.core.invariant import InvariantError
from perpetua.sequencer import snapshot as snapshot_module
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

HEADER = struct.Struct("<4sHHQQI")


def name(seq: int) -> str:
    return f"snapshot-{seq:020d}.snap"


def state(seq: int) -> tuple[str, bytes]:
    return f"hash-{seq:064x}", f"state as of {seq} ".encode() * 50


def write_series(directory: Path, seqs: list[int]) -> None:
    for seq in seqs:
        write_snapshot(directory, seq, *state(seq))


def test_round_trip_and_format(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "snaps", 1234, "abc123", b"\x00payload\xff")
    assert path == tmp_path / "snaps" / name(1234)
    data = path.read_bytes()
    magic, version, hash_bytes, seq, payload_bytes, crc = HEADER.unpack_from(data, 0)
    assert (magic, version, hash_bytes, seq, payload_bytes) == (b"PRPS", 1, 6, 1234, 9)
    assert data[HEADER.size :] == b"abc123\x00payload\xff"
    assert crc == zlib.crc32(data[: HEADER.size - 4] + data[HEADER.size :])
    assert load_latest_snapshot(tmp_path / "snaps") == Snapshot(
        1234, "abc123", b"\x00payload\xff", path
    )
    assert read_snapshot(path).payload == b"\x00payload\xff"


def test_empty_payload_and_missing_directory(tmp_path: Path) -> None:
    assert load_latest_snapshot(tmp_path / "absent") is None
    assert list_snapshots(tmp_path / "absent") == []
    write_snapshot(tmp_path, 0, "genesis", b"")
    latest = load_latest_snapshot(tmp_path)
    assert latest is not None and (latest.seq, latest.payload) == (0, b"")


def test_latest_is_the_highest_seq_and_listing_is_ordered(tmp_path: Path) -> None:
    write_series(tmp_path, [500, 20, 1000, 7])
    (tmp_path / "notes.txt").write_text("not a snapshot")
    (tmp_path / "snapshot-12.snap").write_bytes(b"wrong name width")
    assert list_snapshots(tmp_path) == [
        SnapshotFile(seq, tmp_path / name(seq)) for seq in (7, 20, 500, 1000)
    ]
    latest = load_latest_snapshot(tmp_path)
    assert latest is not None
    assert (latest.seq, (latest.state_hash, latest.payload)) == (1000, state(1000))


def test_rewriting_a_seq_replaces_it(tmp_path: Path) -> None:
    write_snapshot(tmp_path, 9, "first", b"one")
    write_snapshot(tmp_path, 9, "second", b"two")
    assert [p.name for p in tmp_path.iterdir()] == [name(9)]
    latest = load_latest_snapshot(tmp_path)
    assert latest is not None and (latest.state_hash, latest.payload) == ("second", b"two")


def test_leftover_temp_file_is_ignored(tmp_path: Path) -> None:
    write_series(tmp_path, [100, 200])
    # A crash mid-write leaves the temp file of a newer snapshot behind.
    (tmp_path / (name(300) + ".k2j3h4.tmp")).write_bytes(b"PRPS half of it")
    latest = load_latest_snapshot(tmp_path)
    assert latest is not None and latest.seq == 200
    assert [entry.seq for entry in list_snapshots(tmp_path)] == [100, 200]


def newest_size(directory: Path) -> int:
    return (directory / name(200)).stat().st_size


@pytest.mark.parametrize("kept_bytes", [0, 1, 10, HEADER.size - 1, HEADER.size, -1])
def test_truncated_newest_falls_back_to_the_previous(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kept_bytes: int
) -> None:
    write_series(tmp_path, [100, 200])
    newest = tmp_path / name(200)
    size = newest.stat().st_size
    with newest.open("r+b") as handle:
        handle.truncate(kept_bytes % size)
    with caplog.at_level(logging.WARNING, logger="perpetua.sequencer.snapshot"):
        latest = load_latest_snapshot(tmp_path)
    assert latest is not None and latest.seq == 100
    assert (latest.state_hash, latest.payload) == state(100)
    assert len(caplog.records) == 1 and str(newest) in caplog.records[0].getMessage()


@pytest.mark.parametrize("offset", [0, 5, 9, 13, HEADER.size - 1, HEADER.size + 3, -1])
def test_corrupt_newest_falls_back_to_the_previous(tmp_path: Path, offset: int) -> None:
    write_series(tmp_path, [100, 200])
    newest = tmp_path / name(200)
    data = bytearray(newest.read_bytes())
    data[offset] ^= 0x10
    newest.write_bytes(bytes(data))
    with pytest.raises(SnapshotCorruptError, match=str(newest)):
        read_snapshot(newest)
    latest = load_latest_snapshot(tmp_path)
    assert latest is not None and latest.seq == 100


def test_appended_bytes_and_renamed_files_are_damage(tmp_path: Path) -> None:
    write_series(tmp_path, [100, 200, 300])
    with (tmp_path / name(300)).open("ab") as handle:
        handle.write(b"extra")
    os.replace(tmp_path / name(100), tmp_path / name(250))  # valid bytes under the wrong seq
    with pytest.raises(SnapshotCorruptError, match="header says seq 100"):
        read_snapshot(tmp_path / name(250))
    latest = load_latest_snapshot(tmp_path)
    assert latest is not None and latest.seq == 200


def test_no_valid_snapshot_gives_none(tmp_path: Path) -> None:
    write_series(tmp_path, [1, 2])
    for entry in list_snapshots(tmp_path):
        entry.path.write_bytes(b"garbage")
    assert load_latest_snapshot(tmp_path) is None


@pytest.mark.parametrize("failing", ["sync_file", "replace"])
def test_interrupted_write_leaves_the_previous_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    write_series(tmp_path, [100])

    def fail(*_: object) -> None:
        raise OSError(28, "No space left on device")

    if failing == "sync_file":
        monkeypatch.setattr(snapshot_module, "sync_file", fail)
    else:
        monkeypatch.setattr(snapshot_module.os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_snapshot(tmp_path, 200, *state(200))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name(100)]  # no temp file left
    latest = load_latest_snapshot(tmp_path)
    assert latest is not None and latest.seq == 100


def test_write_syncs_file_before_rename_and_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_sync, real_replace, real_dir = (
        snapshot_module.sync_file,
        snapshot_module.os.replace,
        snapshot_module.fsync_directory,
    )
    monkeypatch.setattr(
        snapshot_module, "sync_file", lambda fd: (calls.append("sync"), real_sync(fd))
    )
    monkeypatch.setattr(
        snapshot_module.os, "replace", lambda a, b: (calls.append("rename"), real_replace(a, b))
    )
    monkeypatch.setattr(
        snapshot_module, "fsync_directory", lambda d: (calls.append("dirsync"), real_dir(d))
    )
    write_snapshot(tmp_path, 5, "h", b"p")
    assert calls == ["sync", "rename", "dirsync"]


def test_bad_arguments_are_programmer_errors(tmp_path: Path) -> None:
    with pytest.raises(InvariantError, match="state hash"):
        write_snapshot(tmp_path, 1, "", b"")
    with pytest.raises(InvariantError, match="state hash"):
        write_snapshot(tmp_path, 1, "x" * 257, b"")
    with pytest.raises(InvariantError, match="seq"):
        write_snapshot(tmp_path, -1, "h", b"")
    with pytest.raises(InvariantError, match="keep"):
        prune_snapshots(tmp_path, 0)


def test_prune_keeps_the_newest_valid_ones(tmp_path: Path) -> None:
    write_series(tmp_path, [10, 20, 30, 40, 50])
    (tmp_path / (name(60) + ".abc.tmp")).write_bytes(b"interrupted")
    deleted = prune_snapshots(tmp_path, keep=2)
    assert set(deleted) == {
        tmp_path / name(10),
        tmp_path / name(20),
        tmp_path / name(30),
        tmp_path / (name(60) + ".abc.tmp"),
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == [name(40), name(50)]
    assert prune_snapshots(tmp_path, keep=2) == ()


def test_prune_does_not_count_damaged_snapshots(tmp_path: Path) -> None:
    write_series(tmp_path, [10, 20, 30, 40])
    (tmp_path / name(40)).write_bytes(b"damaged")
    deleted = prune_snapshots(tmp_path, keep=2)
    assert deleted == (tmp_path / name(10),)
    assert [entry.seq for entry in list_snapshots(tmp_path)] == [20, 30, 40]
    latest = load_latest_snapshot(tmp_path)
    assert latest is not None and latest.seq == 30


def test_prune_deletes_nothing_without_enough_valid_snapshots(tmp_path: Path) -> None:
    write_series(tmp_path, [10, 20, 30])
    (tmp_path / name(30)).write_bytes(b"damaged")
    (tmp_path / name(20)).write_bytes(b"damaged")
    assert prune_snapshots(tmp_path, keep=2) == ()
    assert len(list_snapshots(tmp_path)) == 3
