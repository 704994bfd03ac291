"""``GatewaySurface``: what routes, WebSocket sessions and the request pipeline may use of the
gateway, as a protocol.

Only ``state.Gateway`` implements it and only ``app`` builds one; everything else is written
against this surface, so no module below ``app`` imports ``state`` and the package's import
graph has no cycle (``tests/test_layering.py`` checks it).
"""

from typing import Protocol

from perpetua.core.catalogue import FutureSeries
from perpetua.core.commands import Command
from perpetua.core.events import AccountRestricted
from perpetua.core.instruments import InstrumentSpec
from perpetua.gateway.auth import KeyCache, Nonces
from perpetua.gateway.config import GatewayConfig
from perpetua.gateway.history import History
from perpetua.gateway.ports import (
    AccountsPort,
    BotsPort,
    CopyPort,
    CostPorts,
    IndexBoardPort,
    ProofsPort,
    Result,
)
from perpetua.gateway.private import PrivateViews
from perpetua.gateway.ratelimit import AuthFailures, RateLimits
from perpetua.gateway.symbols import SymbolIndex
from perpetua.gateway.ws.fanout import Fanout
from perpetua.marketdata.hub import MarketData
from perpetua.services.compliance import CompliancePort
from perpetua.services.identity import IdentityPort
from perpetua.services.notifications import Notifications
from perpetua.services.wallets import Wallets

__all__ = ["GatewaySurface"]


class GatewaySurface(Protocol):
    config: GatewayConfig
    accounts: AccountsPort | None
    identity: IdentityPort | None
    bots: BotsPort | None
    compliance: CompliancePort | None
    copy: CopyPort | None
    history: History
    market: MarketData
    private: PrivateViews
    symbols: SymbolIndex
    keys: KeyCache
    nonces: Nonces
    auth_failures: AuthFailures
    limits: RateLimits
    fanout: Fanout
    indices: IndexBoardPort
    proofs: ProofsPort | None
    notifications: Notifications
    costs: CostPorts
    wallets: Wallets | None
    series: dict[str, FutureSeries]  # futures series defined (the runtime's catalogue file)
    last_seq: int
    restrictions: dict[int, AccountRestricted]

    def connected(self) -> dict[str, int]: ...

    def add_instrument(self, spec: InstrumentSpec) -> None: ...

    def account_seq(self, account: int) -> int: ...

    async def submit(self, command: Command) -> Result: ...

    async def submit_unshed(self, command: Command, attempts_max: int = 50) -> Result: ...
