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


CRASHING_WRITER = """
import sys, time
from perpetua.services.porl import publication
real = publication._write_file
def slow(path, data):
    real(path, data)
    print(path.name, flush=True)
    time.sleep(30)  # killed here, after the first file is on disk
publication._write_file = slow
publication.Publication(sys.argv[1]).publish(
    5, {"liabilities-5-XBt.csv": b"x", "liabilities-5-USDt.csv": b"y"}, {"height": 5}
)
"""


@pytest.mark.slow
def test_kill_9_in_the_middle_leaves_nothing_published(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    staged = [p.name for p in (tmp_path / "porl").iterdir()]
    assert len(staged) == 1 and staged[0].startswith(".staging-")  # half a snapshot, unlisted
    shelf = Publication(tmp_path)
    assert shelf.heights() == [] and list(shelf.root.iterdir()) == []
    assert shelf.file("5", "liabilities-5-XBt.csv") is None
