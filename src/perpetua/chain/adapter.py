"""What a chain module provides, as two small ports: the watching side and the signing side.

1. ``DepositWatcher`` holds no private key: it derives deposit addresses from an extended public
   key, reads blocks, and finds transfers to watched addresses (native coin and tokens).
2. ``WithdrawalSigner`` holds the hot wallet's key: it builds and signs one withdrawal, so the
   caller can record the signed bytes *before* ``broadcast`` (sending the same bytes again is
   harmless: a chain includes one transaction hash once), and reads a transaction's state.
3. Amounts cross these ports in the exchange's minor units (``Network.currencies`` says how many
   chain base units make one: 10**9 wei per Gwei, 1 token unit per USDt); a chain amount that
   is not a whole number of minor units is floored (the dust stays on the address).
4. Every network module has both sides and an ``is_valid_address`` that checks the network's
   checksum (EIP-55 for Ethereum, bech32 for Bitcoin), and says whether it needs a memo/tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

__all__ = [
    "Asset",
    "BlockRef",
    "ChainTransfer",
    "DepositWatcher",
    "SignedWithdrawal",
    "Sweeper",
    "TxState",
    "TxStatus",
    "WithdrawalSigner",
]


@dataclass(frozen=True, slots=True)
class Asset:
    """One currency on one network: ``token`` is the contract (None: the native coin);
    ``base_per_minor`` chain base units per exchange minor unit."""

    currency: str  # the exchange's minor-unit code: "Gwei", "USDt", "XBt"
    token: str | None
    base_per_minor: int


@dataclass(frozen=True, slots=True)
class BlockRef:
    number: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainTransfer:
    """Money that arrived at a watched address, as the chain shows it now."""

    currency: str
    tx: str
    log_index: int  # the token log's index in its block; -1 for a native-coin transfer
    block: BlockRef
    to_address: str
    amount: int  # exchange minor units (3)


class TxStatus(Enum):
    UNKNOWN = "unknown"  # the node has never heard of it (not yet sent, or dropped)
    PENDING = "pending"  # in the mempool
    MINED = "mined"  # in a block, succeeded
    FAILED = "failed"  # in a block, reverted


@dataclass(frozen=True, slots=True)
class TxState:
    status: TxStatus
    block_number: int = 0
    confirmations: int = 0  # head - block + 1 when mined


@dataclass(frozen=True, slots=True)
class SignedWithdrawal:
    tx_hash: str
    raw: str
    nonce: int
    sender: str


class DepositWatcher(Protocol):
    @property
    def network(self) -> str: ...

    def deposit_address(self, index: int) -> str:
        """The address for derivation index ``index`` (checksummed), from the public key."""
        ...

    def is_valid_address(self, address: str) -> bool: ...

    def head(self) -> int: ...

    def block_ref(self, number: int) -> BlockRef | None: ...

    def transfers(self, first: int, last: int, watched: frozenset[str]) -> list[ChainTransfer]:
        """Transfers of every configured asset to ``watched`` (lower-case) addresses in blocks
        ``first..last``, in (block, log index) order."""
        ...


class WithdrawalSigner(Protocol):
    @property
    def network(self) -> str: ...

    @property
    def hot_address(self) -> str: ...

    def next_nonce(self) -> int: ...

    def sign(self, currency: str, to: str, amount: int, nonce: int) -> SignedWithdrawal: ...

    def broadcast(self, raw: str) -> None:
        """Send signed bytes; "already known" is not an error (2)."""
        ...

    def state(self, tx_hash: str) -> TxState: ...

    def balance(self, currency: str, address: str) -> int:
        """On-chain balance of ``address`` in exchange minor units (floored)."""
        ...


class Sweeper(Protocol):
    """Holds the deposit addresses' keys: moves their coins to the hot wallet, and the hot
    wallet's excess to the cold address (whose key the server never holds)."""

    def sweep(self, index: int, address: str) -> list[str]: ...

    def to_cold(self) -> list[str]: ...
