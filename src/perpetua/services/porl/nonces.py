"""Account nonces: 32 random bytes per account, made once and kept for the account's lifetime.

1. A nonce comes from the operating system's cryptographic source (``secrets.token_bytes``) the
   first time an account needs one (its first proof, or its first ``GET /porl/nonce``), and
   never changes: users keep it to check every proof.
2. At rest it is encrypted with the server key (``services.server_key``: Fernet, rotated like
   the API secrets), in ``<data dir>/secrets/porl-nonces`` (0600), one ``account,token`` line
   per account. The file is rewritten atomically (temporary file, fsync, rename, fsync of the
   directory): a crash leaves the old file or the new one, never a mix, and a nonce once
   handed out is never lost by a later write.
3. Nothing else is stored: not which leaves a nonce opened in which proof.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from cryptography.fernet import InvalidToken, MultiFernet

from perpetua.services.porl.tree import NONCE_BYTES

__all__ = ["NONCE_FILE", "NonceStore"]

NONCE_FILE: Final = Path("secrets") / "porl-nonces"
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700


class NonceStore:
    """Each account's lifetime nonce, decrypted in memory, encrypted on disk (rules 1-2)."""

    def __init__(self, data_dir: Path | str, key: MultiFernet) -> None:
        self._path = Path(data_dir) / NONCE_FILE
        self._key = key
        self._lock = threading.Lock()
        self._nonces: dict[int, bytes] = {}
        if self._path.exists():
            self._nonces = self._read()

    def _read(self) -> dict[int, bytes]:
        nonces: dict[int, bytes] = {}
        for number, line in enumerate(self._path.read_text("ascii").splitlines(), start=1):
            if not line.strip():
                continue
            account_text, _, token = line.partition(",")
            try:
                nonce = self._key.decrypt(token.encode("ascii"))
            except InvalidToken:
                raise ValueError(
                    f"{self._path}:{number}: not decryptable with the server key"
                ) from None
            if len(nonce) != NONCE_BYTES:
                raise ValueError(f"{self._path}:{number}: a nonce of {len(nonce)} bytes")
            nonces[int(account_text)] = nonce
        return nonces

    def _write(self, nonces: dict[int, bytes]) -> None:
        directory = self._path.parent
        directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        temporary = self._path.with_name(self._path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            for account, nonce in sorted(nonces.items()):
                file.write(f"{account},{self._key.encrypt(nonce).decode('ascii')}\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self._path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def nonces_for(self, accounts: Iterable[int]) -> dict[int, bytes]:
        """The nonce of each of ``accounts``, making (and storing) the missing ones first."""
        wanted = list(accounts)
        with self._lock:
            missing = [a for a in wanted if a not in self._nonces]
            if missing:
                if any(account < 0 for account in missing):
                    raise ValueError(f"accounts {missing} include a negative one")
                grown = dict(self._nonces)
                grown.update((account, secrets.token_bytes(NONCE_BYTES)) for account in missing)
                self._write(grown)  # on disk before any of them is handed out
                self._nonces = grown
            return {account: self._nonces[account] for account in wanted}

    def nonce_of(self, account: int) -> bytes:
        return self.nonces_for([account])[account]
