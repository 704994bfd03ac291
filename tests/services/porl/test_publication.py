"""Publication is atomic and write-once: an interrupted snapshot leaves nothing published (and
its staging directory is gone at the next open), a published height is never rewritten."""

import os
from pathlib import Path

import pytest

from perpetua.services.porl import publication
from perpetua.services.porl.publication import AlreadyPublished, Publication


def test_a_crash_while_writing_publishes_nothing(tmp_path: Path, monkeypatch) -> None:
    shelf = Publication(tmp_path)
    real = publication._write_file
    written: list[str] = []

    def failing(path: Path, data: bytes) -> None:
        written.append(path.name)
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(publication, "_write_file", failing)
    files = {"liabilities-7-XBt.csv": b"a", "liabilities-7-USDt.csv": b"b"}
    with pytest.raises(OSError):
        shelf.publish(7, files, {"height": 7})
    assert shelf.heights() == [] and os.listdir(shelf.root) == []


def test_a_killed_snapshot_leaves_only_staging_which_the_next_open_removes(tmp_path: Path) -> None:
    shelf = Publication(tmp_path)
    staging = shelf.root / ".staging-deadbeef"
    staging.mkdir()
    (staging / "liabilities-9-XBt.csv").write_bytes(b"half a proof")
    assert shelf.heights() == []
    assert Publication(tmp_path).heights() == [] and not staging.exists()


def test_a_published_height_is_never_rewritten(tmp_path: Path) -> None:
    shelf = Publication(tmp_path)
    shelf.publish(3, {"solvency-3.json": b"{}\n"}, {"height": 3})
    before = (shelf.root / "3" / "solvency-3.json").read_bytes()
    with pytest.raises(AlreadyPublished):
        shelf.publish(3, {"solvency-3.json": b"[]\n"}, {"height": 3})
    assert (shelf.root / "3" / "solvency-3.json").read_bytes() == before
    assert shelf.manifests() == [{"height": 3}]
    with pytest.raises(ValueError):
        shelf.publish(4, {"../escape.json": b""}, {"height": 4})
    assert shelf.heights() == [3]
