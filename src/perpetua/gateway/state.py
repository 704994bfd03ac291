"""``Gateway``: everything the routes and sockets share, and the event-stream entry point.

``on_batch`` is the callback registered with the sequencer (``CommandPort``). It folds each
durable batch's events into the public views (``MarketData``) and the private views, then hands
the resulting deltas to the WebSocket fan-out. It always runs on the event loop's thread: a
call from another thread is forwarded with ``call_soon_threadsafe``, which keeps the stream's
order. Once the loop is
closed (the server stopped, the sequencer still commits its queue and an idle tick while it
stops), deliveries are dropped: they are durable in the journal, the read-model projector is
fed by its own subscription, and the views are seeded anew at the next start.

The gateway subscribes when it is built (``create_app``), before the sequencer starts, so no
command is missed; what arrives before the event loop runs is buffered and applied at
``start``, after the start-up seed (``bootstrap``), in seq order. ``history`` reads the read
models (``gateway.history``), always: there is one history path.

A future the engine lists at runtime (``ListFuture``, from the sequencer's scheduler) becomes
known to the views, the symbol index and so the routes when its listing is folded; one listed
before a restart comes with the recovered engine's seed.
"""

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from perpetua.core.catalogue import FutureSeries
from perpetua.core.commands import Command, DefineFutureSeries, ListFuture, SetAccountRestriction
from perpetua.core.enums import TradingMode
from perpetua.core.events import AccountRestricted, Event
from perpetua.core.instruments import InstrumentSpec
from perpetua.core.reasons import Reason
from perpetua.gateway.auth import KeyCache, Nonces
from perpetua.gateway.bootstrap import seed_views
from perpetua.gateway.config import GatewayConfig
from perpetua.gateway.errors import reason_message
from perpetua.gateway.history import History
from perpetua.gateway.notices import (
    MARGIN_CALL_INTERVAL_S,
    EventNotices,
    MarginCalls,
    connected_counts,
)
from perpetua.gateway.ports import (
    AccountsPort,
    BotsPort,
    CommandPort,
    CopyPort,
    CostPorts,
    IndexBoardPort,
    NoIndexBoard,
    Overloaded,
    ProofsPort,
    Result,
)
from perpetua.gateway.private import PrivateDelta, PrivateViews
from perpetua.gateway.ratelimit import AuthFailures, RateLimits
from perpetua.gateway.symbols import SymbolIndex
from perpetua.gateway.ws.fanout import Fanout
from perpetua.gateway.ws.revocation import watch_keys
from perpetua.marketdata.deltas import Delta
from perpetua.marketdata.hub import MarketData
from perpetua.sequencer import Applied
from perpetua.sequencer.seed import EngineSeed
from perpetua.services.compliance import CompliancePort
from perpetua.services.identity import IdentityPort
from perpetua.services.jobs import PeriodicJob
from perpetua.services.notifications import Notifications
from perpetua.services.wallets import Wallets
from perpetua.store.symbols import defined_series, listed_spec
from perpetua.wire.values import now_ns

__all__ = ["Gateway"]

_log = logging.getLogger(__name__)

CONNECTED_INTERVAL_S = 5.0  # how often the connected table's counts are looked at


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        sequencer: CommandPort,
        history: History,
        accounts: AccountsPort | None,
        indices: IndexBoardPort | None = None,
        identity: IdentityPort | None = None,
        proofs: ProofsPort | None = None,
        notifications: Notifications | None = None,
        costs: CostPorts | None = None,
        bots: BotsPort | None = None,
        compliance: CompliancePort | None = None,
        wallets: Wallets | None = None,
        copy: CopyPort | None = None,
    ) -> None:
        self.config = config
        self.wallets = wallets  # deposits and withdrawals on chain, when the venue has a chain
        self.proofs = proofs  # proof of reserves and liabilities, when the venue publishes
        self.costs = costs if costs is not None else CostPorts()
        # KYC, jurisdictions and sanctions (services.compliance), when the venue runs them
        self.compliance = compliance
        self.indices: IndexBoardPort = indices if indices is not None else NoIndexBoard()
        self.sequencer = sequencer
        self.accounts = accounts
        # sign-in, sessions, 2FA (services.identity), when the accounts service offers them
        self.identity = identity
        self.history = history
        self.market = MarketData(config.instruments)
        self.private = PrivateViews(self.market)
        self.symbols = SymbolIndex(self.market.specs)
        self.series: dict[str, FutureSeries] = {}  # futures series defined (catalogue file)
        self.keys = KeyCache(accounts)
        self.nonces = Nonces()
        self.limits = RateLimits(config.rate_limits)
        self.auth_failures = AuthFailures(config.rate_limits)
        self.fanout = Fanout(self.market, self.private)
        # privateNotifications / publicNotifications (services.notifications, gateway.notices)
        self.notifications = notifications if notifications is not None else Notifications()
        self.notifications.subscribe(self._on_notification)
        self.notices = EventNotices(self.market, self.notifications)
        self.margin_calls = MarginCalls(self.private, self.notifications)
        self._connected: dict[str, int] = {}
        # users' trading bots (services.bots): their changes go to the owner's ``bot`` table
        self.bots = bots
        if bots is not None:
            bots.listeners.append(self._bot_changed)
        # copy trading (services.copytrading): relationship changes to the ``copyTrade`` table
        self.copy = copy
        if copy is not None:
            copy.listeners.append(self._copy_changed)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = threading.get_ident()
        self._roller: asyncio.Task[None] | None = None
        self._key_watch: asyncio.Task[None] | None = None
        self.last_seq = 0
        # account -> its current restriction (core.restrictions), from the seed and the stream
        self.restrictions: dict[int, AccountRestricted] = {}
        self._early: list[Sequence[Applied]] | None = []  # batches delivered before the loop
        self._early_lock = threading.Lock()
        sequencer.subscribe_batches(self.on_batch)  # one loop wake-up per durable batch

    def _copy_changed(self, owner: int, row: dict[str, Any]) -> None:
        self.fanout.publish([], [PrivateDelta("copyTrade", owner, "", "update", [row])])

    def _bot_changed(self, owner: int, row: dict[str, Any]) -> None:
        self.fanout.publish([], [PrivateDelta("bot", owner, row["symbol"], "update", [row])])

    def bootstrap(self, seed: EngineSeed) -> None:
        """Load the views from the recovered engine and the read models (before serving)."""
        seed_views(self, seed)
        self.restrictions = {r.account: r for r in seed.restrictions}

    def account_seq(self, account: int) -> int:
        """The last seq that touched ``account`` (history reads wait for it)."""
        return self.private.account_seq.get(account, 0)

    def _buffered(self, item: Sequence[Applied]) -> bool:
        """Keep ``item`` for ``start`` if the loop is not running yet."""
        if self._early is None:
            return False
        with self._early_lock:
            if self._early is None:
                return False
            self._early.append(item)
            return True

    # Event stream -------------------------------------------------------------------------------

    def _fold(
        self,
        seq: int,
        ts_ns: int,
        command: Command,
        events: Sequence[Event],
        public: list[Delta],
        private: list[PrivateDelta],
    ) -> None:
        """Fold one command into the views, adding its deltas to ``public`` and ``private``."""
        if seq and seq <= self.last_seq:
            return  # already seen (a replayed backlog overlapping the live stream)
        self.last_seq = max(self.last_seq, seq)
        if type(command) is ListFuture:
            self._listed(ts_ns, command, events, public)
        elif type(command) is DefineFutureSeries:
            found = defined_series(command, events)
            if found is not None:
                self.series[found.key] = found
        elif type(command) is SetAccountRestriction:
            for event in events:
                if type(event) is AccountRestricted:
                    self._restricted(event)
        self.notices.fold(command, events)  # before the views move: previous states known
        market = self.market
        public.extend(market.apply(seq, ts_ns, command, events))
        private.extend(self.private.apply(seq, ts_ns, events))
        if market.marks_moved and self.private.wanted_accounts:
            for symbol in market.marks_moved:
                private.extend(self.private.on_mark(symbol))

    def _listed(
        self, ts_ns: int, command: Command, events: Sequence[Event], public: list[Delta]
    ) -> None:
        """A future listed at runtime: the views, symbols and routes know it from now on, and
        ``instrument`` subscribers get its row as an insert."""
        market = self.market
        spec = listed_spec(ts_ns, command, events, len(market.specs), self.series)
        if spec is None or spec.symbol in market.specs:
            return
        self.add_instrument(spec)
        if "instrument" in market.wanted:
            market.published[spec.symbol] = market.live(spec.symbol)
            public.append(
                Delta("instrument", spec.symbol, "insert", [market.instrument_row(spec.symbol)])
            )

    def _restricted(self, event: AccountRestricted) -> None:
        """Keep the account's restriction and tell it (``privateNotifications``) what it may
        do now, and why."""
        if event.trading or event.products_denied or not (event.deposits and event.withdrawals):
            self.restrictions[event.account] = event
            frozen = event.trading == TradingMode.FROZEN
            reason = Reason.ACCOUNT_FROZEN if frozen else Reason.ACCOUNT_CLOSE_ONLY
            if event.trading == TradingMode.ALLOWED:
                reason = (
                    Reason.PRODUCT_NOT_PERMITTED
                    if event.products_denied
                    else Reason.WITHDRAWALS_NOT_PERMITTED
                    if not event.withdrawals
                    else Reason.DEPOSITS_NOT_PERMITTED
                )
            body = reason_message(reason, cause=event.cause)
            self.notifications.notify(event.account, "Account restricted", body, "error")
        elif self.restrictions.pop(event.account, None) is not None:
            self.notifications.notify(
                event.account,
                "Account restriction lifted",
                "Your account may trade again",
                "success",
            )

    def add_instrument(self, spec: InstrumentSpec) -> None:
        """Know ``spec`` (listed at runtime, or before a restart); a known symbol is kept."""
        if self.market.add(spec):
            self.symbols.add(spec)

    def on_batch(self, batch: Sequence[Applied]) -> None:
        """The real sequencer's subscriber: ``list[Applied]`` per durable batch, in seq order,
        on its committer thread; forwarded whole to the loop (one wake-up per batch)."""
        if self.loop is None and self._buffered(batch):
            return
        loop = self.loop
        if loop is not None and threading.get_ident() != self._thread_id:
            _forward(loop, self._apply_batch, batch)
            return
        self._apply_batch(batch)

    def _apply_batch(self, batch: Sequence[Applied]) -> None:
        """A durable batch in seq order; its deltas go out in one publish (one write per
        WebSocket session per batch, not per command)."""
        public: list[Delta] = []
        private: list[PrivateDelta] = []
        for applied in batch:
            self._fold(applied.seq, applied.ts_ns, applied.command, applied.events, public, private)
        if public or private:
            self.fanout.publish(public, private)

    # Notifications and connected counts -------------------------------------------------------

    def _on_notification(self, account: int | None, row: dict[str, Any]) -> None:
        """A notification (``account`` None: public) to its WebSocket subscribers, on the
        loop's thread (a service may notify from its own)."""
        loop = self.loop
        if loop is not None and threading.get_ident() != self._thread_id:
            _forward(loop, self._on_notification, account, row)
            return
        if account is None:
            self.fanout.publish([Delta("publicNotifications", "", "insert", [row])], [])
        else:
            delta = PrivateDelta("privateNotifications", account, "", "insert", [row])
            self.fanout.publish([], [delta])

    def connected(self) -> dict[str, int]:
        return connected_counts(self.fanout.sessions)

    async def publish_connected(self) -> None:
        """The ``connected`` table's row, to its subscribers when the counts changed."""
        counts = self.connected()
        if counts != self._connected:
            self._connected = counts
            self.fanout.publish([Delta("connected", "", "update", [dict(counts)])], [])

    def jobs(self) -> list[PeriodicJob]:
        """The gateway's own periodic work (``services.jobs``), run beside the venue's."""
        return [
            PeriodicJob("margin-calls", MARGIN_CALL_INTERVAL_S, self.margin_calls.check),
            PeriodicJob("connected", CONNECTED_INTERVAL_S, self.publish_connected),
        ]

    async def submit(self, command: Command) -> Result:
        """Submit to the sequencer; ``Overloaded`` propagates (503 for orders and amends)."""
        return await self.sequencer.submit_async(command)

    async def submit_unshed(self, command: Command, attempts_max: int = 50) -> Result:
        """Cancels and closes are never shed: retry briefly if the queue is momentarily full."""
        for _attempt in range(attempts_max):
            try:
                return await self.submit(command)
            except Overloaded:
                await asyncio.sleep(0.01)
        return await self.submit(command)

    # Lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._thread_id = threading.get_ident()
        with self._early_lock:
            early, self._early = self._early or [], None
            self.loop = asyncio.get_running_loop()
        for batch in early:  # in arrival order
            self._apply_batch(batch)
        self._roller = asyncio.create_task(self._roll_bins())
        self._key_watch = asyncio.create_task(watch_keys(self))

    async def stop(self) -> None:
        if self._roller is not None:
            self._roller.cancel()
        if self._key_watch is not None:
            self._key_watch.cancel()
        await self.fanout.close_all()

    async def _roll_bins(self) -> None:
        interval = self.config.bin_roll_interval_s
        while True:
            await asyncio.sleep(interval)
            deltas = self.market.roll(now_ns())
            if deltas:
                self.fanout.publish(deltas, [])


def _forward(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object
) -> None:
    """Hand ``callback(*args)`` to ``loop`` from the committer thread; drop it if the loop is
    closed. Raising here would fail the sequencer (a subscriber must not raise) and keep the
    batch from the subscribers after this one, the read-model projector among them."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        if not loop.is_closed():
            raise
        _log.debug("event loop closed: a durable batch is not folded into the views")
