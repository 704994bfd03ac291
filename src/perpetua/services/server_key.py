"""The server key: encrypts secrets at rest (API key secrets today) with Fernet.

The key file is ``<data dir>/secrets/server.key``, created on first start with mode 0600 in a
0700 directory. It holds one Fernet key per line; the first line encrypts, every line decrypts
(``MultiFernet``), which is how rotation works:

1. ``rotate_server_key(data_dir)`` puts a new key on the first line (the old ones stay);
2. ``AccountsService.reencrypt_secrets()`` re-encrypts every stored secret under the new key;
3. ``retire_server_keys(data_dir)`` drops every line but the first.

Run 1-3 with the exchange stopped, or restart it after step 1 so every process reads the new
file; back the file up with the database: without it the stored API secrets are lost.
"""

import logging
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

__all__ = [
    "SERVER_KEY_PATH",
    "load_server_key",
    "retire_server_keys",
    "rotate_server_key",
    "server_key_path",
]

log = logging.getLogger(__name__)

SERVER_KEY_PATH = Path("secrets") / "server.key"
_FILE_MODE = 0o600
_DIR_MODE = 0o700


def server_key_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / SERVER_KEY_PATH


def _write_new(path: Path, keys: list[bytes]) -> None:
    """Write ``keys`` to ``path`` atomically, 0600 from the first byte."""
    path.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    if temporary.exists():
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    with os.fdopen(fd, "wb") as file:
        file.write(b"".join(key + b"\n" for key in keys))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _read_keys(path: Path) -> list[bytes]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o): chmod 600 it", path, mode)
    keys = [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    if not keys:
        raise ValueError(f"{path} holds no key")
    return keys


def load_server_key(data_dir: str | Path) -> MultiFernet:
    """The data dir's server key, created (0600) when the file does not exist yet."""
    path = server_key_path(data_dir)
    if not path.exists():
        _write_new(path, [Fernet.generate_key()])
        log.info("created server key %s", path)
    return MultiFernet([Fernet(key) for key in _read_keys(path)])


def rotate_server_key(data_dir: str | Path) -> MultiFernet:
    """Make a new key the encrypting one; older keys keep decrypting."""
    path = server_key_path(data_dir)
    keys = [Fernet.generate_key(), *_read_keys(path)]
    _write_new(path, keys)
    return MultiFernet([Fernet(key) for key in keys])


def retire_server_keys(data_dir: str | Path) -> MultiFernet:
    """Keep only the encrypting key (after ``reencrypt_secrets``)."""
    path = server_key_path(data_dir)
    keys = _read_keys(path)[:1]
    _write_new(path, keys)
    return MultiFernet([Fernet(key) for key in keys])
