"""What the gateway needs from its neighbours, as small protocols the runtime satisfies.

- ``CommandPort``: ``await submit_async(cmd)`` returns the sequencer's ``Result`` once the
  command is durable, or raises ``Overloaded`` when its bounded queue is full (orders and amends
  only); ``subscribe_batches`` registers a callback that receives each durable batch
  (``list[Applied]``, in seq order) on the sequencer's committer thread.
- ``AccountsPort``: ``lookup_api_key(key_id)`` returns an ``ApiKeyRecord`` or ``None``.
- ``IndexBoardPort``: the index feeds' constituents for ``instrument/compositeIndex``.
- ``ProofsPort``: the published proofs of reserves and liabilities (``/porl/*``), blocking
  calls the routes run in a thread (``services.porl.service.ProofService``).
- ``CostPorts``: the trading-cost services (``services.volume``, ``services.convert``,
  ``services.onramp``), each optional: a route whose service is absent answers as documented.
- ``BotsPort``: users' trading bots and their backtests (``services.bots``).
- ``CopyPort``: copy trading: leaders, followers, the leaderboard (``services.copytrading``).

The real implementations are ``perpetua.sequencer.Sequencer``, ``perpetua.services.accounts``
and ``perpetua.feeds.IndexBoard``; the runtime wires them.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from perpetua.core.commands import Command
from perpetua.sequencer import Applied, Overloaded, Result
from perpetua.services.accounts import ApiKeyRecord
from perpetua.services.convert import ConvertDesk
from perpetua.services.onramp import OnRamp
from perpetua.services.volume import TradingVolume

__all__ = [
    "AccountsPort",
    "ApiKeyRecord",
    "BotsPort",
    "CopyPort",
    "BatchCallback",
    "CommandPort",
    "CostPorts",
    "TradingVolumePort",
    "IndexBoardPort",
    "NoIndexBoard",
    "Overloaded",
    "ProofsPort",
    "Result",
]

BatchCallback = Callable[[Sequence[Applied]], None]


class TradingVolumePort(Protocol):
    def volume_of(self, account: int) -> TradingVolume:
        """The family's 30-day ADV as last measured (``services.volume``)."""
        ...


@dataclass(frozen=True, slots=True)
class CostPorts:
    volume: TradingVolumePort | None = None
    convert: ConvertDesk | None = None
    onramp: OnRamp | None = None


class CommandPort(Protocol):
    async def submit_async(self, command: Command) -> Result: ...

    def subscribe_batches(self, callback: BatchCallback) -> None: ...


class IndexBoardPort(Protocol):
    """The index feeds' board: the constituent rows of a composite index (BitMEX's
    ``instrument/compositeIndex`` model), empty when nothing feeds that index."""

    def composite_rows(self, symbol: str) -> list[dict[str, Any]]: ...


class ProofsPort(Protocol):
    """Proof of reserves and liabilities (``services.porl``); every call may block."""

    def snapshots(self) -> list[dict[str, Any]]: ...

    def nonce(self, account: int, currency: str) -> dict[str, Any]: ...

    def file(self, height_text: str, name: str) -> Path | None: ...

    def take_snapshot(self, height: int | None = None) -> dict[str, Any]: ...

    def reserve_message(self, height: int) -> dict[str, Any]: ...

    def import_signature(self, height: int, address: str, signature: str) -> dict[str, Any]: ...


class NoIndexBoard:
    """A venue without index feeds (tests): no constituents anywhere."""

    def composite_rows(self, symbol: str) -> list[dict[str, Any]]:
        return []


class AccountsPort(Protocol):
    @property
    def in_memory(self) -> bool:
        """True when lookups never block (the gateway calls them on the event loop); else
        they run in a worker thread."""
        ...

    def lookup_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    def issue_api_key(
        self, user_id: int, permissions: Sequence[str], cidr: Sequence[str], name: str
    ) -> tuple[str, str]:
        """The operator's key for ``user_id`` (the user made first if the service keeps users
        and has none by that id): ``(key_id, secret)``; ``ValueError`` with a message for the
        client when a rule refuses it."""
        ...


class BotsPort(Protocol):
    """The trading-bot service (``services.bots.BotService``) as the routes use it. Refusals
    raise ``ValueError`` (``BotError``) with a message for a 400."""

    listeners: list[Callable[[int, dict[str, Any]], None]]  # (owner, bot row) on each change

    def rows(self, owner: int) -> list[dict[str, Any]]: ...

    def detail(self, owner: int, bot_id: int) -> dict[str, Any]: ...

    def required(self, params: Mapping[str, Any]) -> tuple[str, int]: ...

    async def create(
        self, owner: int, params: Mapping[str, Any], ip: str = ""
    ) -> dict[str, Any]: ...

    async def stop(self, owner: int, bot_id: int, close: bool) -> dict[str, Any]: ...

    async def resume(self, owner: int, bot_id: int) -> dict[str, Any]: ...

    async def backtest(self, params: Mapping[str, Any], csv_text: str | None) -> dict[str, Any]: ...


class CopyPort(Protocol):
    """The copy-trading service (``services.copytrading.CopyService``) as the routes use it.
    Refusals raise ``ValueError`` (``CopyError``) with a message for a 400."""

    listeners: list[Callable[[int, dict[str, Any]], None]]  # (owner, relationship row)

    def leader_name(self, account: int) -> str: ...

    def leader_rows(self) -> list[dict[str, Any]]: ...

    def follow_rows(self, owner: int) -> list[dict[str, Any]]: ...

    def validate_follow(self, owner: int, params: Mapping[str, Any]) -> dict[str, Any]: ...

    async def set_leader(
        self, owner: int, account: int, params: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def follow(
        self, owner: int, params: Mapping[str, Any], ip: str = ""
    ) -> dict[str, Any]: ...

    async def unfollow(self, owner: int, follow_id: int, close: bool) -> dict[str, Any]: ...
