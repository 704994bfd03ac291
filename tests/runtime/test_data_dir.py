"""Issue 10 item 9: the venue's data dir is 0700 and every file it creates there is 0600
(journal, snapshots, the SQLite database and its WAL, the server key), a new dir or an
existing looser one alike."""

import os
import stat
from pathlib import Path

import pytest

from perpetua.core.commands import Deposit
from perpetua.runtime.config import VenueConfig
from perpetua.runtime.venue import open_venue


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


@pytest.mark.parametrize("existing", [False, True])
def test_data_files_are_private(tmp_path: Path, existing: bool) -> None:
    data_dir = tmp_path / "data"
    saved = os.umask(0o022)
    try:
        if existing:
            data_dir.mkdir(mode=0o755)
            os.chmod(data_dir, 0o755)
        venue = open_venue(VenueConfig(data_dir=data_dir, operator_key="k"))
        venue.start()
        try:
            venue.sequencer.execute(Deposit(0, 1001, "XBt", 10**8, "private-files"))
        finally:
            venue.stop()
    finally:
        os.umask(saved)
    modes = _modes(data_dir)
    assert any(name.endswith((".db", ".sqlite")) or "sqlite" in name for name in modes), modes
    assert len(modes) > 3, modes
    loose = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode & 0o077 or (name == "." and mode != 0o700)
    }
    assert loose == {}
