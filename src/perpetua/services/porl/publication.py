"""The published proofs: one write-once directory per snapshot under ``<data dir>/porl/``.

    porl/<height>/manifest.json                  what /porl/snapshots lists (written last)
    porl/<height>/liabilities-<height>-<CUR>.csv one proof file per currency owed anything
    porl/<height>/reserves-<height>.json         addresses, balances at the block, signatures
    porl/<height>/solvency-<height>.json         reserves against liabilities, per currency

1. Atomic: every file is written into ``porl/.staging-<random>/`` (each fsynced), the manifest
   last, the staging directory fsynced, then renamed to ``porl/<height>`` and ``porl/``
   fsynced. A crash before the rename leaves only a staging directory, which is never listed
   and is removed at the next open; after it, the whole snapshot is there.
2. Write-once: a height already published is refused (its sub-nonces are used), and nothing
   here ever rewrites or deletes a published directory.
3. Names are checked against fixed patterns before any file is opened for a reader.
4. Each proof's per-account balances (sealed by the caller with the server key) are kept in
   ``<data dir>/secrets/porl-balances/<height>`` (0600), written before the proof is
   published, so ``/porl/nonce`` answers without scanning the tree.

A cluster keeps the same things in the shared database instead (`shared.SqlPublication`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Final

__all__ = [
    "BALANCES_DIR",
    "MANIFEST_NAME",
    "PORL_DIR",
    "AlreadyPublished",
    "Publication",
    "file_name_ok",
    "height_name_ok",
    "liabilities_name",
    "reserves_name",
    "solvency_name",
]

PORL_DIR: Final = "porl"
BALANCES_DIR: Final = Path("secrets") / "porl-balances"
MANIFEST_NAME: Final = "manifest.json"
_STAGING_PREFIX: Final = ".staging-"
_FILE_NAME: Final = re.compile(
    r"(liabilities-[0-9]{1,20}-[A-Za-z]{2,8}\.csv|(reserves|solvency)-[0-9]{1,20}\.json"
    r"|manifest\.json)"
)
_HEIGHT_NAME: Final = re.compile(r"(0|[1-9][0-9]{0,19})")


def file_name_ok(name: str) -> bool:
    """A name a proof's file may have (rule 3)."""
    return _FILE_NAME.fullmatch(name) is not None


def height_name_ok(text: str) -> bool:
    return _HEIGHT_NAME.fullmatch(text) is not None


class AlreadyPublished(ValueError):
    """A snapshot at this height is published already (rule 2)."""


def liabilities_name(height: int, currency: str) -> str:
    return f"liabilities-{height}-{currency}.csv"


def reserves_name(height: int) -> str:
    return f"reserves-{height}.json"


def solvency_name(height: int) -> str:
    return f"solvency-{height}.json"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


class Publication:
    """The ``porl/`` directory of a data dir."""

    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir) / PORL_DIR
        self.balances_root = Path(data_dir) / BALANCES_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(_STAGING_PREFIX + "*"):
            shutil.rmtree(leftover, ignore_errors=True)  # rule 1: an interrupted snapshot

    def publish(
        self,
        height: int,
        files: dict[str, bytes],
        manifest: dict[str, Any],
        balances: bytes | None = None,
    ) -> Path:
        """Publish ``files`` and the manifest as snapshot ``height`` (rules 1-2), its sealed
        ``balances`` first (rule 4)."""
        final = self.root / str(height)
        if final.exists():
            raise AlreadyPublished(f"a snapshot at height {height} is published already")
        if balances is not None:
            self._keep_balances(height, balances)
        staging = self.root / f"{_STAGING_PREFIX}{secrets.token_hex(8)}"
        staging.mkdir()
        try:
            for name, data in files.items():
                if _FILE_NAME.fullmatch(name) is None or name == MANIFEST_NAME:
                    raise ValueError(f"not a publishable file name: {name!r}")
                _write_file(staging / name, data)
            body = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
            _write_file(staging / MANIFEST_NAME, body)
            _fsync_dir(staging)
            if final.exists():
                raise AlreadyPublished(f"a snapshot at height {height} is published already")
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_dir(self.root)
        return final

    def heights(self) -> list[int]:
        return sorted(
            int(entry.name)
            for entry in self.root.iterdir()
            if _HEIGHT_NAME.fullmatch(entry.name) and (entry / MANIFEST_NAME).is_file()
        )

    def manifest(self, height: int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / str(height) / MANIFEST_NAME).read_bytes())
        return data

    def manifests(self) -> list[dict[str, Any]]:
        return [self.manifest(height) for height in self.heights()]

    def file(self, height_text: str, name: str) -> Path | None:
        """The published file ``name`` of snapshot ``height_text``, or None (rule 3)."""
        if _HEIGHT_NAME.fullmatch(height_text) is None or _FILE_NAME.fullmatch(name) is None:
            return None
        path = self.root / height_text / name
        if not (self.root / height_text / MANIFEST_NAME).is_file() or not path.is_file():
            return None
        return path

    def _keep_balances(self, height: int, sealed: bytes) -> None:
        path = self.balances_root / str(height)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(sealed)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)

    def balances(self, height: int) -> bytes | None:
        """The sealed balances of the proof at ``height`` (rule 4), None for older proofs."""
        path = self.balances_root / str(height)
        return path.read_bytes() if path.exists() else None
