"""Proof of reserves on an EVM chain: addresses, balances at the proof's block, signatures.

The claim: at block ``height`` of chain ``chainId``, these addresses held these balances, and
whoever signed for each address controls it. Checked by anyone with a node
(``perpetua verify-reserves``, `verify_reserves`):

1. The message is fixed by the venue, the chain, the height and the block's UTC date
   (`reserve_message`); each address signs it with EIP-191 ``personal_sign`` (eth-account's
   ``encode_defunct``), by the server for keys it holds (hot and deposit addresses,
   `ReserveSigner`), offline by the operator for cold ones (imported with `SignatureBook`,
   checked on import).
2. Balances are read from the node *at the block* (``eth_getBalance`` / ``balanceOf`` with the
   block number), in the currency's minor unit: native ether in Gwei (wei // 10**9, rounded
   down: reserves never round up), the USDT token in its 6-decimal unit (USDt).
3. An address without a valid signature is published with its balance and ``signature: null``
   and is not counted in ``totals`` (it shows in ``unsigned``): only proven control counts.
4. The check recomputes everything from the node: chain id, block hash, date, message, the
   signer recovered from each signature, each balance, and the totals. Any difference fails.

Ports (so the exchange's address list and key custody can change without touching this):
`ReserveAddresses` (the exchange-controlled addresses), `ReserveChain` (the node),
`ReserveSigner` (the keys the server holds).
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

from perpetua.chain.evm import address_of, personal_sign, personal_signer
from perpetua.chain.rpc import JsonRpc

__all__ = [
    "RESERVE_KINDS",
    "EvmReserveChain",
    "LocalKeySigner",
    "ReserveAddress",
    "ReserveAddresses",
    "ReserveChain",
    "ReserveEntry",
    "ReserveSigner",
    "SignatureBook",
    "StaticReserveAddresses",
    "build_reserves",
    "recover_signer",
    "reserve_message",
    "verify_reserves",
]

RESERVE_KINDS: Final = ("hot", "cold", "deposit")
WEI_PER_GWEI: Final = 10**9
_BALANCE_OF: Final = "0x70a08231"  # ERC-20 balanceOf(address)
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE: Final = re.compile(r"0x[0-9a-fA-F]{130}")


class ReserveAddress(NamedTuple):
    address: str  # 0x..., EIP-55 or lower case
    kind: str  # one of RESERVE_KINDS
    currency: str  # Gwei (ether) or USDt (the token), as the ledger names it


class ReserveAddresses(Protocol):
    def reserve_addresses(self) -> Sequence[ReserveAddress]: ...


class ReserveChain(Protocol):
    def chain_id(self) -> int: ...

    def block_number(self) -> int: ...

    def block_header(self, height: int) -> tuple[str, int]:
        """(block hash, timestamp in unix seconds) of block ``height``."""
        ...

    def balance_at(self, entry: ReserveAddress, height: int) -> int: ...


class ReserveSigner(Protocol):
    def sign(self, address: str, message: str) -> str | None:
        """The EIP-191 signature of ``message`` by ``address``'s key (0x hex), or None when
        the server does not hold that key."""
        ...


class ReserveEntry(NamedTuple):
    address: str
    kind: str
    currency: str
    balance: int
    signature: str | None


def reserve_message(venue: str, chain_id: int, height: int, date: str) -> str:
    """Rule 1: the text every reserve address signs for the proof at ``height``."""
    return f"Proof of reserves\nvenue: {venue}\nchain: {chain_id}\nheight: {height}\ndate: {date}"


def block_date(timestamp_s: int) -> str:
    return datetime.datetime.fromtimestamp(timestamp_s, datetime.UTC).date().isoformat()


def recover_signer(message: str, signature: str) -> str | None:
    """The address that signed ``message`` (EIP-191), or None if ``signature`` is malformed."""
    if _SIGNATURE.fullmatch(signature) is None:
        return None
    try:
        signer = personal_signer(message, signature)
    except (ValueError, TypeError):
        return None
    return signer


def _same_address(a: str, b: str) -> bool:
    return a.lower() == b.lower()


class EvmReserveChain:
    """`ReserveChain` over a JSON-RPC node (rule 2); ``tokens``: currency -> ERC-20 address
    for token currencies (USDt), native ether is ``Gwei``."""

    def __init__(self, rpc: JsonRpc, tokens: Mapping[str, str] | None = None) -> None:
        self._rpc = rpc
        self._tokens = dict(tokens or {})

    def chain_id(self) -> int:
        return self._rpc.chain_id()

    def block_number(self) -> int:
        return self._rpc.block_number()

    def block_header(self, height: int) -> tuple[str, int]:
        block = self._rpc.block(height, full=False)
        if block is None:
            raise LookupError(f"the node has no block {height}")
        return str(block["hash"]), int(str(block["timestamp"]), 16)

    def balance_at(self, entry: ReserveAddress, height: int) -> int:
        tag = hex(height)
        if entry.currency == "Gwei":
            wei = int(str(self._rpc.call("eth_getBalance", entry.address, tag)), 16)
            return wei // WEI_PER_GWEI
        token = self._tokens.get(entry.currency)
        if token is None:
            raise LookupError(f"no token configured for {entry.currency}")
        data = _BALANCE_OF + entry.address[2:].lower().rjust(64, "0")
        raw = self._rpc.call("eth_call", {"to": token, "data": data}, tag)
        return int(str(raw), 16) if raw not in ("0x", "") else 0


class StaticReserveAddresses:
    """`ReserveAddresses` from a fixed list (the venue's ``[[porl.reserve]]`` configuration)."""

    def __init__(self, entries: Sequence[ReserveAddress]) -> None:
        self._entries = tuple(entries)

    def reserve_addresses(self) -> Sequence[ReserveAddress]:
        return self._entries


class LocalKeySigner:
    """`ReserveSigner` over private keys held in memory (the server's hot and deposit keys)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = {address_of(key).lower(): key for key in keys}

    def sign(self, address: str, message: str) -> str | None:
        key = self._keys.get(address.lower())
        if key is None:
            return None
        return personal_sign(message, key)


def check_signature(height: int, address: str, signature: str, message: str) -> None:
    """``ValueError`` unless ``signature`` is ``address``'s over ``message`` (for ``height``)."""
    if _ADDRESS.fullmatch(address) is None:
        raise ValueError(f"not an address: {address!r}")
    signer = recover_signer(message, signature)
    if signer is None or not _same_address(signer, address):
        raise ValueError(f"the signature is not by {address} over the message for {height}")


class SignatureBook:
    """Offline signatures for cold addresses, per height, in
    ``<data dir>/porl-signatures/<height>.json`` (checked before they are stored)."""

    def __init__(self, data_dir: Path | str) -> None:
        self._root = Path(data_dir) / "porl-signatures"

    def _path(self, height: int) -> Path:
        return self._root / f"{height}.json"

    def signatures(self, height: int) -> dict[str, str]:
        path = self._path(height)
        if not path.exists():
            return {}
        data: dict[str, str] = json.loads(path.read_bytes())
        return data

    def add(self, height: int, address: str, signature: str, message: str) -> None:
        check_signature(height, address, signature, message)
        found = self.signatures(height)
        found[address.lower()] = signature
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self._path(height).with_suffix(".tmp")
        with open(temporary, "w", encoding="ascii") as file:
            json.dump(found, file, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self._path(height))


def build_reserves(
    venue: str,
    height: int,
    addresses: Sequence[ReserveAddress],
    chain: ReserveChain,
    signer: ReserveSigner | None,
    imported: Mapping[str, str],
) -> dict[str, Any]:
    """The reserves document at ``height`` (rules 1-3)."""
    chain_id = chain.chain_id()
    block_hash, timestamp_s = chain.block_header(height)
    date = block_date(timestamp_s)
    message = reserve_message(venue, chain_id, height, date)
    entries: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    unsigned: dict[str, int] = {}
    for entry in addresses:
        if entry.kind not in RESERVE_KINDS:
            raise ValueError(f"{entry.address}: kind {entry.kind!r} is not one of {RESERVE_KINDS}")
        balance = chain.balance_at(entry, height)
        signature = imported.get(entry.address.lower())
        if signature is None and signer is not None:
            signature = signer.sign(entry.address, message)
        signer_found = None if signature is None else recover_signer(message, signature)
        valid = signer_found is not None and _same_address(signer_found, entry.address)
        book = totals if valid else unsigned
        book[entry.currency] = book.get(entry.currency, 0) + balance
        entries.append(
            {
                "address": entry.address,
                "kind": entry.kind,
                "currency": entry.currency,
                "balance": balance,
                "signature": signature if valid else None,
            }
        )
    return {
        "venue": venue,
        "chainId": chain_id,
        "height": height,
        "blockHash": block_hash,
        "date": date,
        "message": message,
        "addresses": entries,
        "totals": totals,
        "unsigned": unsigned,
    }


def verify_reserves(document: Mapping[str, Any], chain: ReserveChain) -> list[str]:
    """Rule 4: every problem found, empty when the document holds."""
    problems: list[str] = []
    height = int(document["height"])
    if chain.chain_id() != document["chainId"]:
        problems.append(f"chain id {document['chainId']} is not the node's {chain.chain_id()}")
    try:
        block_hash, timestamp_s = chain.block_header(height)
    except LookupError as error:
        return [*problems, str(error)]
    if block_hash != document["blockHash"]:
        problems.append(f"block {height} is {block_hash} on the node, not {document['blockHash']}")
    date = block_date(timestamp_s)
    message = reserve_message(str(document["venue"]), int(document["chainId"]), height, date)
    if document["message"] != message:
        problems.append(f"the message does not name this venue, height {height} and date {date}")
    totals: dict[str, int] = {}
    for row in document["addresses"]:
        address, currency = str(row["address"]), str(row["currency"])
        entry = ReserveAddress(address, str(row["kind"]), currency)
        balance = chain.balance_at(entry, height)
        if balance != row["balance"]:
            problems.append(f"{address}: {row['balance']} claimed, {balance} at block {height}")
        signature = row.get("signature")
        if signature is None:
            continue
        signer_found = recover_signer(message, str(signature))
        if signer_found is None or not _same_address(signer_found, address):
            problems.append(f"{address}: the signature is not by this address over the message")
            continue
        totals[currency] = totals.get(currency, 0) + int(row["balance"])
    if totals != dict(document["totals"]):
        problems.append(f"totals {dict(document['totals'])} do not add up to {totals}")
    return problems
