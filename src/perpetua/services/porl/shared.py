"""Proofs of reserves and liabilities in the shared database: what a cluster's leading
sequencer publishes and every gateway serves (decisions §28; the files of `publication`,
`nonces` and `reserves.SignatureBook` are per machine).

1. A proof is one row of ``porl_publications`` (its height the primary key: write-once; the
   manifest and the sealed per-account balances) and its files in ``porl_files``, inserted in
   one transaction: a reader sees a whole proof or none, and a second publication at a height
   (two leaders for a moment) is refused by the key (`AlreadyPublished`).
2. A gateway serves a file from a local cache (``<data dir>/porl-cache/<height>/<name>``,
   written once from the row: published files never change).
3. An account's nonce is made once cluster-wide: inserted if absent (``ON CONFLICT DO
   NOTHING``), then read back, so two processes making it at once both hand out the winner's.
4. An operator's snapshot asked on a gateway (``POST /admin/porl/snapshot``) is a
   ``porl_requests`` row; the leader's proof job claims it by compare-and-set (``pending`` to
   ``taking``), takes the snapshot and writes the answer, which the gateway waits for. A row a
   dead leader left ``taking`` is claimed again after ``RECLAIM_AFTER_S``; taking it again is
   harmless (another proof at a new height, or `AlreadyPublished` at an asked height).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final

from cryptography.fernet import MultiFernet
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from perpetua.services.jobs import PeriodicJob
from perpetua.services.porl.publication import (
    AlreadyPublished,
    file_name_ok,
    height_name_ok,
)
from perpetua.services.porl.reserves import check_signature
from perpetua.services.porl.service import (
    SNAPSHOT_TIMEOUT_S,
    ProofService,
    ProofStore,
    Reserves,
)
from perpetua.services.porl.tree import NONCE_BYTES
from perpetua.store.schema import (
    porl_files,
    porl_nonces,
    porl_publications,
    porl_requests,
    porl_signatures,
)

__all__ = [
    "CACHE_DIR",
    "RECLAIM_AFTER_S",
    "REQUEST_POLL_S",
    "ClusterProofs",
    "SnapshotRequests",
    "SqlNonces",
    "SqlPublication",
    "SqlSignatures",
    "requests_job",
    "sql_store",
]

log = logging.getLogger("perpetua.porl")

CACHE_DIR: Final = "porl-cache"
REQUEST_POLL_S: Final = 1.0  # the leader looks for operators' snapshot requests this often
ANSWER_POLL_S: Final = 0.2  # a gateway looks for the answer this often
ANSWER_WAIT_S: Final = SNAPSHOT_TIMEOUT_S + 10.0  # then 503: the leader may still take it
RECLAIM_AFTER_S: Final = 2 * SNAPSHOT_TIMEOUT_S  # a claim older than this: its leader died


class SqlPublication:
    """`publication.Publication` over the shared database (rules 1-2)."""

    def __init__(self, engine: Engine, cache_dir: Path, clock_ns: Callable[[], int]) -> None:
        self.engine = engine
        self.cache_dir = cache_dir
        self.clock_ns = clock_ns

    def publish(
        self, height: int, files: dict[str, bytes], manifest: dict[str, Any], balances: bytes
    ) -> None:
        for name in files:
            if not file_name_ok(name) or name == "manifest.json":
                raise ValueError(f"not a publishable file name: {name!r}")
        body = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(porl_publications).values(
                        height=height,
                        manifest=body,
                        balances=balances,
                        published_ns=self.clock_ns(),
                    )  # fmt: skip
                )
                conn.execute(
                    insert(porl_files),
                    [{"height": height, "name": n, "data": d} for n, d in files.items()],
                )
        except IntegrityError:
            raise AlreadyPublished(f"a snapshot at height {height} is published already") from None

    def heights(self) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(porl_publications.c.height).order_by("height")).all()
        return [int(r.height) for r in rows]

    def manifest(self, height: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            body = conn.execute(
                select(porl_publications.c.manifest).where(porl_publications.c.height == height)
            ).scalar()
        if body is None:
            raise LookupError(f"no proof at height {height}")
        data: dict[str, Any] = json.loads(body)
        return data

    def manifests(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(porl_publications.c.manifest).order_by(porl_publications.c.height)
            ).all()
        return [json.loads(r.manifest) for r in rows]

    def balances(self, height: int) -> bytes | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(porl_publications.c.balances).where(porl_publications.c.height == height)
            ).scalar()
        return None if value is None else bytes(value)

    def file(self, height_text: str, name: str) -> Path | None:
        if not height_name_ok(height_text) or not file_name_ok(name):
            return None
        path = self.cache_dir / height_text / name
        if path.is_file():
            return path
        height = int(height_text)
        with self.engine.connect() as conn:
            if name == "manifest.json":
                data = conn.execute(
                    select(porl_publications.c.manifest).where(porl_publications.c.height == height)
                ).scalar()
                data = None if data is None else str(data).encode()
            else:
                data = conn.execute(
                    select(porl_files.c.data).where(
                        porl_files.c.height == height, porl_files.c.name == name
                    )
                ).scalar()
        if data is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{name}.{secrets.token_hex(4)}")
        temporary.write_bytes(bytes(data))
        os.replace(temporary, path)  # two readers at once write the same bytes
        return path


def _insert_absent(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, skipping those whose key exists (rule 3)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    with engine.begin() as conn:
        conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


class SqlNonces:
    """`nonces.NonceStore` over the shared database (rule 3)."""

    def __init__(self, engine: Engine, key: MultiFernet) -> None:
        self.engine = engine
        self._key = key
        self._lock = threading.Lock()
        self._nonces: dict[int, bytes] = {}  # a nonce never changes: kept once read

    def _read(self, accounts: list[int]) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(porl_nonces).where(porl_nonces.c.account.in_(accounts))
            ).all()
        for row in rows:
            nonce = self._key.decrypt(row.sealed.encode("ascii"))
            if len(nonce) != NONCE_BYTES:
                raise ValueError(f"porl_nonces: account {row.account} has {len(nonce)} bytes")
            self._nonces[int(row.account)] = nonce

    def nonces_for(self, accounts: Iterable[int]) -> dict[int, bytes]:
        wanted = list(accounts)
        with self._lock:
            missing = [a for a in wanted if a not in self._nonces]
            if missing:
                if any(account < 0 for account in missing):
                    raise ValueError(f"accounts {missing} include a negative one")
                self._read(missing)
                missing = [a for a in missing if a not in self._nonces]
            if missing:
                made = [
                    {
                        "account": account,
                        "sealed": self._key.encrypt(secrets.token_bytes(NONCE_BYTES)).decode(),
                    }
                    for account in missing
                ]
                _insert_absent(self.engine, porl_nonces, made)
                self._read(missing)  # ours, or another process's made a moment before
            return {account: self._nonces[account] for account in wanted}

    def nonce_of(self, account: int) -> bytes:
        return self.nonces_for([account])[account]


class SqlSignatures:
    """`reserves.SignatureBook` over the shared database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def signatures(self, height: int) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(porl_signatures).where(porl_signatures.c.height == height)
            ).all()
        return {str(r.address): str(r.signature) for r in rows}

    def add(self, height: int, address: str, signature: str, message: str) -> None:
        check_signature(height, address, signature, message)
        with self.engine.begin() as conn:
            found = conn.execute(
                update(porl_signatures)
                .where(
                    porl_signatures.c.height == height,
                    porl_signatures.c.address == address.lower(),
                )
                .values(signature=signature)
            ).rowcount
            if not found:
                conn.execute(
                    insert(porl_signatures).values(
                        height=height, address=address.lower(), signature=signature
                    )
                )


def sql_store(engine: Engine, key: MultiFernet, data_dir: Path) -> ProofStore:
    """The proofs, nonces and signatures of a cluster (rules 1-3)."""
    return ProofStore(
        SqlPublication(engine, data_dir / CACHE_DIR, time.time_ns),
        SqlNonces(engine, key),
        SqlSignatures(engine),
    )


class SnapshotRequests:
    """Operators' snapshot requests (rule 4)."""

    def __init__(self, engine: Engine, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.engine = engine
        self.clock_ns = clock_ns

    # a gateway ---------------------------------------------------------------------------

    def ask(self, height: int | None) -> int:
        with self.engine.begin() as conn:
            row_id = conn.execute(
                insert(porl_requests)
                .values(height=height, state="pending", requested_ns=self.clock_ns())
                .returning(porl_requests.c.id)
            ).scalar_one()
        return int(row_id)

    def wait(self, request_id: int, timeout_s: float = ANSWER_WAIT_S) -> dict[str, Any]:
        """The manifest the leader published for ``request_id``; ``ValueError`` with its
        refusal; ``TimeoutError`` when no answer came in ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:  # bounded by the deadline
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(porl_requests.c.state, porl_requests.c.answer).where(
                        porl_requests.c.id == request_id
                    )
                ).first()
            if row is not None and row.state == "done":
                answer: dict[str, Any] = json.loads(row.answer)
                return answer
            if row is not None and row.state == "failed":
                raise ValueError(str(row.answer))
            time.sleep(ANSWER_POLL_S)
        raise TimeoutError(
            f"no sequencer took snapshot request {request_id} within {timeout_s:.0f} s"
            " (it may still be taken: see /porl/snapshots)"
        )

    # the leader --------------------------------------------------------------------------

    def claim(self) -> tuple[int, int | None] | None:
        """The oldest request waiting (or left ``taking`` by a dead leader), now ours."""
        now = self.clock_ns()
        stale = now - int(RECLAIM_AFTER_S * 1e9)
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(porl_requests)
                .where(
                    (porl_requests.c.state == "pending")
                    | ((porl_requests.c.state == "taking") & (porl_requests.c.claimed_ns < stale))
                )
                .order_by(porl_requests.c.id)
                .limit(4)
            ).all()
            for row in rows:
                taken = conn.execute(
                    update(porl_requests)
                    .where(
                        porl_requests.c.id == row.id,
                        porl_requests.c.state == row.state,
                        porl_requests.c.claimed_ns == row.claimed_ns,
                    )
                    .values(state="taking", claimed_ns=now)
                ).rowcount
                if taken:
                    return int(row.id), None if row.height is None else int(row.height)
        return None

    def answer(self, request_id: int, state: str, answer: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(porl_requests)
                .where(porl_requests.c.id == request_id)
                .values(state=state, answer=answer)
            )


class _NoSnapshots:
    """A gateway images no engine: `ClusterProofs` asks the leader instead."""

    def request_snapshot(self) -> Future[Path]:
        future: Future[Path] = Future()
        future.set_exception(RuntimeError("a gateway takes no snapshot"))
        return future


class ClusterProofs(ProofService):
    """A cluster gateway's proofs: reads from the shared database, and a snapshot asked here is
    taken by the leading sequencer (rule 4)."""

    def __init__(
        self,
        requests: SnapshotRequests,
        data_dir: Path,
        key: MultiFernet,
        *,
        venue: str,
        reserves: Reserves | None,
    ) -> None:
        super().__init__(
            data_dir, key, _NoSnapshots(), venue=venue, reserves=reserves,
            store=sql_store(requests.engine, key, data_dir),
        )  # fmt: skip
        self.requests = requests

    def take_snapshot(self, height: int | None = None) -> dict[str, Any]:
        return self.requests.wait(self.requests.ask(height))


def requests_job(service: ProofService, requests: SnapshotRequests) -> PeriodicJob:
    """The leader's side of rule 4: every ``REQUEST_POLL_S``, take each waiting request."""

    async def step() -> None:
        while (claimed := await asyncio.to_thread(requests.claim)) is not None:
            request_id, height = claimed
            try:
                manifest = await asyncio.to_thread(service.take_snapshot, height)
            except (ValueError, LookupError) as error:  # refused: the operator's to fix
                await asyncio.to_thread(requests.answer, request_id, "failed", str(error))
                continue
            except Exception:  # the sequencer or the node: waits for the next step
                await asyncio.to_thread(requests.answer, request_id, "pending", "")
                raise
            await asyncio.to_thread(requests.answer, request_id, "done", json.dumps(manifest))
            log.warning("porl: snapshot at height %s published on request", manifest["height"])

    return PeriodicJob("porl-requests", REQUEST_POLL_S, step)
