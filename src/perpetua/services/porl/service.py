"""``ProofService``: takes, publishes and answers for the venue's proofs of reserves and
liabilities.

A snapshot, on demand (the operator) or daily (`daily_job`), in order:

1. The sequencer images the engine at a batch boundary (``request_snapshot``: the same
   verified snapshot file recovery uses) and the liabilities are read from that image
   (``sequencer.liabilities``): one seq for every account and currency, reproducible by
   replaying the journal to it. The proof's time (``created``) is the engine's time at that
   seq; an engine that has stamped nothing yet (a fresh venue: time 0, which would read as
   1970) takes the time the snapshot was taken.
2. The height: the reserve chain's current block when reserves are configured, else the seq
   (a height is used once: its sub-nonces are derived from it).
3. The nonces of every owing account (made on first use, ``nonces``), one tree per currency
   (``tree``), the reserves at the same height (``reserves``) and the solvency report.
4. Everything is published at once, write-once (``publication``). One snapshot at a time.

Reads: `snapshots` (the manifests), `nonce` (an account's own nonce and its figures in the
latest proof: BitMEX's ``/porl/nonce``), `file` (a published file, for download).
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

from cryptography.fernet import MultiFernet

from perpetua.sequencer.liabilities import (
    INSURANCE_PROOF_ACCOUNT,
    Liabilities,
    liabilities_of_snapshot,
)
from perpetua.sequencer.recovery import default_engine
from perpetua.services.jobs import PeriodicJob
from perpetua.services.porl.nonces import NonceStore
from perpetua.services.porl.proof import find_account, parse_proof
from perpetua.services.porl.publication import (
    AlreadyPublished,
    Publication,
    liabilities_name,
    reserves_name,
    solvency_name,
)
from perpetua.services.porl.reserves import (
    ReserveAddresses,
    ReserveChain,
    ReserveSigner,
    SignatureBook,
    block_date,
    build_reserves,
    reserve_message,
)
from perpetua.services.porl.tree import ProofTree, build_tree, render, sub_nonce

__all__ = [
    "DAILY_CHECK_S",
    "SNAPSHOT_TIMEOUT_S",
    "AlreadyPublished",
    "ProofService",
    "ProofStore",
    "Reserves",
    "SnapshotSource",
    "daily_job",
]

DAILY_CHECK_S: Final = 3_600.0  # how often the daily job looks whether today's proof exists
SNAPSHOT_TIMEOUT_S: Final = 120.0  # the sequencer's image, written and verified
log = logging.getLogger("perpetua.porl")

RATIO_DECIMALS: Final = Decimal("0.000001")
PARSED_PROOFS_MAX: Final = 4  # the latest proof of each currency, kept parsed for /porl/nonce


class SnapshotSource(Protocol):
    """The sequencer: a verified engine snapshot at the next batch boundary."""

    def request_snapshot(self) -> Future[Path]: ...


class PublicationLike(Protocol):
    """`publication.Publication` or `shared.SqlPublication`."""

    def publish(
        self, height: int, files: dict[str, bytes], manifest: dict[str, Any], balances: bytes
    ) -> object: ...

    def heights(self) -> list[int]: ...

    def manifest(self, height: int) -> dict[str, Any]: ...

    def manifests(self) -> list[dict[str, Any]]: ...

    def file(self, height_text: str, name: str) -> Path | None: ...

    def balances(self, height: int) -> bytes | None: ...


class NoncesLike(Protocol):
    def nonces_for(self, accounts: Iterable[int]) -> dict[int, bytes]: ...

    def nonce_of(self, account: int) -> bytes: ...


class SignaturesLike(Protocol):
    def signatures(self, height: int) -> dict[str, str]: ...

    def add(self, height: int, address: str, signature: str, message: str) -> None: ...


class ProofStore(NamedTuple):
    publication: PublicationLike
    nonces: NoncesLike
    signatures: SignaturesLike


class Reserves(NamedTuple):
    addresses: ReserveAddresses
    chain: ReserveChain
    signer: ReserveSigner | None


class ProofService:
    def __init__(
        self,
        data_dir: Path | str,
        key: MultiFernet,
        source: SnapshotSource,
        *,
        venue: str = "perpetua",
        reserves: Reserves | None = None,
        engine_factory: Callable[[], Any] = default_engine,
        clock_ns: Callable[[], int] = time.time_ns,
        store: ProofStore | None = None,
    ) -> None:
        """``store``: where proofs, nonces and signatures live; None: files under
        ``data_dir`` (a cluster passes the shared database's, `shared.sql_store`)."""
        self._data_dir = Path(data_dir)
        self._clock_ns = clock_ns
        self._key = key
        if store is None:
            store = ProofStore(
                Publication(data_dir), NonceStore(data_dir, key), SignatureBook(data_dir)
            )
        self.publication: PublicationLike = store.publication
        self.nonces: NoncesLike = store.nonces
        self.signatures: SignaturesLike = store.signatures
        self._source = source
        self._venue = venue
        self._reserves = reserves
        self._engine_factory = engine_factory
        self._lock = threading.RLock()  # one snapshot at a time

    # --- taking a snapshot ----------------------------------------------------------------

    def take_snapshot(self, height: int | None = None) -> dict[str, Any]:
        """Rules 1-4 of the module docstring; the published manifest. Blocking."""
        with self._lock:
            if height is not None and height in self.publication.heights():
                raise AlreadyPublished(f"a snapshot at height {height} is published already")
            if height is not None and self._reserves is not None:
                tip = self._reserves.chain.block_number()
                if height > tip:
                    raise ValueError(f"height {height} is above the chain's tip {tip}")
            path = self._source.request_snapshot().result(SNAPSHOT_TIMEOUT_S)
            liabilities = liabilities_of_snapshot(path, self._engine_factory)
            return self.publish(liabilities, height)

    def publish(self, liabilities: Liabilities, height: int | None = None) -> dict[str, Any]:
        """Publish the proofs of ``liabilities`` (rules 2-4). Blocking."""
        with self._lock:
            return self._publish(liabilities, height)

    def _publish(self, liabilities: Liabilities, height: int | None) -> dict[str, Any]:
        reserves = self._reserves
        if height is None:
            height = reserves.chain.block_number() if reserves is not None else liabilities.seq
        if height in self.publication.heights():
            raise AlreadyPublished(f"a snapshot at height {height} is published already")
        accounts = sorted({a for owed in liabilities.owed.values() for a in owed})
        nonces = self.nonces.nonces_for([*accounts, INSURANCE_PROOF_ACCOUNT])
        created = _created(liabilities.ts_ns or self._clock_ns())
        files: dict[str, bytes] = {}
        rows: list[dict[str, Any]] = []
        insurance_key = sub_nonce(nonces[INSURANCE_PROOF_ACCOUNT], height, INSURANCE_PROOF_ACCOUNT)
        document = None
        if reserves is not None:
            document = build_reserves(
                self._venue,
                height,
                reserves.addresses.reserve_addresses(),
                reserves.chain,
                reserves.signer,
                self.signatures.signatures(height),
            )
            files[reserves_name(height)] = _json(document)
        # a proof per currency owed anything or held in reserve (a proof of zero is valid)
        held = {row["currency"] for row in document["addresses"]} if document else set()
        for currency in sorted(set(liabilities.owed) | held):
            tree = build_tree(height, liabilities.owed.get(currency, {}), nonces)
            name = liabilities_name(height, currency)
            files[name] = render(tree)
            negative = liabilities.negative.get(currency, {})
            rows.append(
                {
                    "currency": currency,
                    "filename": name,
                    "rootDigest": tree.root.digest.hex(),
                    "total": tree.root.value,
                    "leafCount": len(tree.leaves),
                    "negativeEquity": sum(negative.values()),
                    "negativeAccounts": len(negative),
                }
            )
        solvency = solvency_report(height, liabilities, rows, document)
        files[solvency_name(height)] = _json(solvency)
        manifest = {
            "venue": self._venue,
            "height": height,
            "seq": liabilities.seq,
            "created": created,
            "liabilities": rows,
            "insuranceAccount": INSURANCE_PROOF_ACCOUNT,
            "insuranceNonce": insurance_key.hex(),
            "reserves": reserves_name(height) if document is not None else None,
            "solvency": solvency_name(height),
        }
        self.publication.publish(height, files, manifest, self._sealed_balances(liabilities))
        return manifest

    def _sealed_balances(self, liabilities: Liabilities) -> bytes:
        """Each account's liability in the proof, encrypted with the server key (amounts per
        account, nothing about leaves), so ``nonce`` answers without scanning the tree."""
        plain = json.dumps(
            {c: {str(a): v for a, v in owed.items()} for c, owed in liabilities.owed.items()}
        )
        return self._key.encrypt(plain.encode())

    def _balance(
        self, height: int, currency: str, account: int, tree_path: Path, key: bytes
    ) -> int:
        sealed = self.publication.balances(height)
        if sealed is not None:
            owed = _decrypted_balances(self._key, sealed)
            return int(owed.get(currency, {}).get(str(account), 0))
        return find_account(_parsed(str(tree_path)), account, key).total  # older proofs

    # --- cold signatures -------------------------------------------------------------------

    def reserve_message(self, height: int) -> dict[str, Any]:
        """The message every reserve address signs for a proof at ``height`` (for the operator
        to sign cold addresses offline), and the addresses waiting for an offline signature."""
        reserves = self._require_reserves()
        chain_id = reserves.chain.chain_id()
        _, timestamp_s = reserves.chain.block_header(height)
        date = block_date(timestamp_s)
        signed = self.signatures.signatures(height)
        unsigned = [
            entry.address
            for entry in reserves.addresses.reserve_addresses()
            if (entry.kind == "cold" or reserves.signer is None)
            and entry.address.lower() not in signed
        ]
        return {
            "height": height,
            "chainId": chain_id,
            "date": date,
            "message": reserve_message(self._venue, chain_id, height, date),
            "unsigned": unsigned,
        }

    def import_signature(self, height: int, address: str, signature: str) -> dict[str, Any]:
        """Keep an offline signature of ``address`` for the proof at ``height`` (checked)."""
        message = self.reserve_message(height)
        known = {e.address.lower() for e in self._require_reserves().addresses.reserve_addresses()}
        if address.lower() not in known:
            raise ValueError(f"{address} is not a reserve address of this venue")
        self.signatures.add(height, address, signature, message["message"])
        return {"height": height, "address": address, "imported": True}

    def _require_reserves(self) -> Reserves:
        if self._reserves is None:
            raise LookupError("this venue publishes no reserves (no [porl] rpc_url)")
        return self._reserves

    # --- reading ---------------------------------------------------------------------------

    def snapshots(self) -> list[dict[str, Any]]:
        return self.publication.manifests()

    def published_on(self) -> datetime.date | None:
        """The UTC day of the newest published proof (by its engine time), None before any."""
        heights = self.publication.heights()
        if not heights:
            return None
        latest = max(self.publication.manifest(h)["created"] for h in heights)
        return datetime.date.fromisoformat(str(latest)[:10])

    def file(self, height_text: str, name: str) -> Path | None:
        return self.publication.file(height_text, name)

    def nonce(self, account: int, currency: str) -> dict[str, Any]:
        """BitMEX's ``Porl`` for ``account``: its lifetime nonce, and in the latest proof of
        ``currency`` its sub-nonce and its liability there (the total its leaves open).
        Blocking (reads files)."""
        account_nonce = self.nonces.nonce_of(account)
        answer: dict[str, Any] = {
            "account": account,
            "accountNonce": account_nonce.hex(),
            "nonce": None,
            "currency": currency,
            "total": 0,
            "balance": 0,
            "filename": None,
            "height": None,
            "created": None,
        }
        for manifest in reversed(self.snapshots()):
            row = next((r for r in manifest["liabilities"] if r["currency"] == currency), None)
            if row is None:
                continue
            height = int(manifest["height"])
            key = sub_nonce(account_nonce, height, account)
            path = self.publication.file(str(height), row["filename"])
            if path is None:
                continue
            answer.update(
                nonce=key.hex(),
                total=row["total"],
                balance=self._balance(height, currency, account, path, key),
                filename=row["filename"],
                height=height,
                created=manifest["created"],
            )
            break
        return answer


@functools.lru_cache(maxsize=PARSED_PROOFS_MAX)
def _decrypted_balances(key: MultiFernet, sealed: bytes) -> dict[str, dict[str, int]]:
    owed: dict[str, dict[str, int]] = json.loads(key.decrypt(sealed))
    return owed


@functools.lru_cache(maxsize=PARSED_PROOFS_MAX)
def _parsed(path: str) -> ProofTree:
    """A published proof, parsed once (published files never change)."""
    return parse_proof(Path(path).read_text("ascii"))


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"


def solvency_report(
    height: int,
    liabilities: Liabilities,
    rows: list[dict[str, Any]],
    reserves: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Per currency at one height: reserves (signed addresses only), liabilities (the proof's
    root total), ratio (reserves / liabilities, 6 decimals rounded down; null when nothing is
    owed) and difference; negative equity and pending withdrawals beside them, not netted."""
    proven: Mapping[str, int] = reserves["totals"] if reserves is not None else {}
    owed = {row["currency"]: int(row["total"]) for row in rows}
    currencies = sorted(set(owed) | set(proven))
    report = []
    for currency in currencies:
        held, due = int(proven.get(currency, 0)), owed.get(currency, 0)
        ratio = (Decimal(held) / Decimal(due)).quantize(RATIO_DECIMALS, ROUND_DOWN) if due else None
        report.append(
            {
                "currency": currency,
                "reserves": held if reserves is not None else None,
                "liabilities": due,
                "ratio": None if ratio is None or reserves is None else str(ratio),
                "difference": held - due if reserves is not None else None,
                "negativeEquity": sum(liabilities.negative.get(currency, {}).values()),
                "pendingWithdrawals": liabilities.pending_withdrawals.get(currency, 0),
            }
        )
    return {"height": height, "seq": liabilities.seq, "currencies": report}


def _created(ts_ns: int) -> str:
    """A proof's time in BitMEX's timestamp form, to the microsecond (integer arithmetic: a
    float of nanoseconds since 1970 rounds away the last digits)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    moment = moment.replace(microsecond=nanos // 1_000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def daily_job(
    service: ProofService,
    check_interval_s: float = DAILY_CHECK_S,
    today: Callable[[], datetime.date] = lambda: datetime.datetime.now(datetime.UTC).date(),
) -> PeriodicJob:
    """The daily snapshot: every ``check_interval_s`` the job publishes one unless a proof of
    this UTC day is published already, so restarts neither skip a day nor add one. A failure
    is logged by the PeriodicJob and retried at the next check; a height published already
    (no new block on the reserve chain yet) waits for the next check."""

    async def step() -> None:
        if service.published_on() == today():
            return
        try:
            await asyncio.to_thread(service.take_snapshot)
        except AlreadyPublished as error:
            log.info("porl: daily snapshot waits: %s", error)

    return PeriodicJob("porl-snapshot", check_interval_s, step)
