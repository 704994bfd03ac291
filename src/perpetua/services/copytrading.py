"""Copy trading: lead traders' public profiles and track records, followers' copy relationships,
the mirroring of leader fills, stops on the whole allocation, and profit share.

1. A leader opts in one of its accounts with a profile (``copy_leaders``): name, the markets it
   lets be copied, a leverage cap, a profit share. Its history is computed from the read models
   (``track_record``): PnL, ROI, max drawdown, win rate, average holding time; plus followers and
   the assets under copy.
2. A follower copies one leader from a sub-account made for that relationship (risk isolated),
   funded by one core ``WalletTransfer`` of the allocation (``copy-<id>``).
3. Mirroring, in the batch after the leader's: each leader fill in a copied market becomes one
   follower limit order, sized by the mode (``ratio``: the leader's fill x ratio; ``fixed``: a
   fixed size), capped per trade, rounded down to the lot, priced at the leader's fill price
   moved by the slippage allowance (a buy no higher, a sell no lower). Its clOrdID is
   ``c<follow>.<leader exec id>`` (once per leader fill, even after a restart) and its
   clOrdLinkID ``c<follow>.o<leader order id>``. It rests (GTC) while the leader's order still
   works; when the leader's order ends (filled, cancelled, expired) the follower's unfilled
   remainders are cancelled, and when the leader amends the price they are re-priced. A fill
   that leaves the leader flat closes the follower's whole position in that market. Leverage
   changes are mirrored (capped by both the leader's and the follower's caps).
4. A follower order that fails (margin, limits, restrictions) is reported to the follower
   (``privateNotifications`` and the relationship's ``lastError``); the leader never waits for
   followers: mirroring runs after the leader's batch is durable.
5. Take-profit and stop-loss on the whole allocation: when the follower's equity (wallet +
   unrealised at the mark prices, as BitMEX values positions; at the last price of a market
   whose mark was not seen since start) reaches allocation x (1 + takeProfit) or falls to
   allocation x (1 - stopLoss), copying stops: orders cancelled, positions closed by market
   orders. The owner can stop a relationship the same way.
6. Profit share on a high-water mark, settled periodically (``settle``): when equity exceeds
   the mark (at first the allocation), the leader's share of the excess moves from the follower's
   account to the leader's by a core ``WalletTransfer`` (``ps<id>-<mark>``: conserved, once per
   mark), and the mark becomes the equity after the payment. Losses pay nothing; gains pay only
   above the mark.
"""

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Protocol

from sqlalchemy import Connection, Engine, insert, select, update

from perpetua.core.commands import (
    AmendOrder,
    CancelAll,
    CancelOrders,
    Command,
    PlaceOrder,
    SetLeverage,
    WalletTransfer,
)
from perpetua.core.enums import ExecType, OrdStatus, OrdType, Side, TimeInForce
from perpetua.core.events import (
    Event,
    FundingPaid,
    MarkUpdated,
    OrderEvent,
    PositionChanged,
    Rejected,
    Trade,
    Transfer,
)
from perpetua.core.instruments import InstrumentSpec
from perpetua.core.reasons import MESSAGES, Reason
from perpetua.core.units import PRICE_FINE_PER_TICK, currency
from perpetua.sequencer.delivery import Applied, Result, SequencerError
from perpetua.services.track_record import Positions, TrackRecord
from perpetua.store.schema import copy_follows, copy_leaders, executions, wallets

__all__ = ["PROFIT_SHARE_INTERVAL_S", "CopyError", "CopyService", "Notifier"]

log = logging.getLogger("perpetua.copytrading")

PPM: Final = 1_000_000
NAME_LENGTH_MAX: Final = 64
PROFIT_SHARE_PPM_MAX: Final = 500_000  # 50%
SLIPPAGE_PPM_MAX: Final = 100_000  # 10%
RATIO_PPM_MAX: Final = 100 * PPM
LEVERAGE_E2_MIN: Final = 100
FOLLOWS_PER_OWNER_MAX: Final = 20
LEADER_EXECUTIONS_MAX: Final = 100_000  # fills read for one track record
PROFIT_SHARE_INTERVAL_S: Final = 3600.0  # how often leaders' shares are settled
MIRROR_LATE_NS_MAX: Final = 60 * 1_000_000_000  # missed leader fills mirrored after a restart
CLOSE_PREFIX: Final = "x"
CLOSE_ATTEMPTS_MAX: Final = 20  # market orders sent to close one market of a stopped copy
ACTIVE: Final = "active"
STOPPED: Final = "stopped"
FUNDING: Final = "funding"
FAILED: Final = "failed"


class CopyError(ValueError):
    """Bad parameters or a refused act: a 400 with this message; nothing changed."""


class CommandPort(Protocol):
    async def submit_async(self, command: Command) -> Result: ...


class SubAccountPort(Protocol):
    def add_subaccount(self, owner_id: int, account_name: str, ip: str) -> Any: ...


class Notifier(Protocol):
    def notify(self, account: int, title: str, body: str, kind: Any = "info") -> None: ...


def _decimal(params: Mapping[str, Any], name: str, default: str | None = None) -> Decimal:
    raw = params.get(name, default)
    if raw is None or raw == "":
        raise CopyError(f"{name} is required")
    try:
        value = Decimal(str(raw))
    except InvalidOperation as error:
        raise CopyError(f"{name}: not a number") from error
    if not value.is_finite():
        raise CopyError(f"{name}: not a number")
    return value


def _percent_ppm(params: Mapping[str, Any], name: str, default: str, high: int) -> int:
    value = int(_decimal(params, name, default) * 10_000)
    if not 0 <= value <= high:
        raise CopyError(f"{name}: between 0 and {high / 10_000:g}%")
    return value


class Leader:
    __slots__ = ("account", "owner", "name", "symbols", "leverage_cap_e2", "share_ppm", "active")

    def __init__(
        self,
        account: int,
        owner: int,
        name: str,
        symbols: tuple[str, ...],
        leverage_cap_e2: int,
        share_ppm: int,
        active: bool,
    ) -> None:
        self.account = account
        self.owner = owner
        self.name = name
        self.symbols = symbols
        self.leverage_cap_e2 = leverage_cap_e2
        self.share_ppm = share_ppm
        self.active = active


class Follow:
    """One copy relationship's working state (rules 2-6)."""

    def __init__(
        self, follow_id: int, owner: int, account: int, leader: int, params: dict[str, Any]
    ) -> None:
        self.follow_id = follow_id
        self.owner = owner
        self.account = account
        self.leader = leader
        self.params = params
        self.state = ACTIVE
        self.reason = ""
        self.high_water = 0
        self.balance = 0
        self.balance_seq = 0  # the seq ``balance`` is as of
        self.positions: Positions | None = None
        self.used: set[str] = set()
        self.open: dict[str, OrderEvent] = {}  # clOrdID -> latest event, working orders
        self.seen_exec: set[int] = set()
        self.last_error = ""
        self.mirrored = 0
        self.closing = False  # stopped with close: positions still to close
        self.close_tries: dict[str, tuple[int, int]] = {}  # symbol -> (prints seen, attempts)
        self.last_command_seq = 0  # the seq of the last command submitted for it
        self.failed = 0
        self.changed = True

    @property
    def prefix(self) -> str:
        return f"c{self.follow_id}."

    def equity(self, marks: Mapping[str, int]) -> int:
        """Wallet + unrealised PnL at ``marks`` (ticks), else at the last prices (rule 5)."""
        unrealised = self.positions.unrealised(marks) if self.positions is not None else 0
        return self.balance + unrealised


Listener = Callable[[int, dict[str, Any]], None]


class CopyService:
    """Rules 1-6; a ``jobs.BackgroundService`` named "copytrading"."""

    name = "copytrading"

    def __init__(
        self,
        database: Engine,
        instruments: Iterable[InstrumentSpec],
        commands: CommandPort,
        subaccounts: SubAccountPort | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.database = database
        self.specs = {s.symbol: s for s in instruments}
        self.commands = commands
        self.subaccounts = subaccounts
        self.notifier = notifier
        self.read_models: Engine | None = None
        self.leaders: dict[int, Leader] = {}
        self.follows: dict[int, Follow] = {}
        self.by_account: dict[int, Follow] = {}
        self.leader_qty: dict[tuple[int, str], int] = {}
        self.leader_leverage: dict[tuple[int, str], int] = {}
        self.last_px: dict[str, int] = {}
        self.marks: dict[str, int] = {}  # ticks, from MarkUpdated (rule 5)
        self.trades_seen: dict[str, int] = {}  # prints per market (close retries wait for one)
        self.listeners: list[Listener] = []
        self.last_seq = 0
        self.now_ns = 0
        self._inbox: collections.deque[list[Applied]] = collections.deque()
        self._queue: collections.deque[tuple[Follow, Command]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._busy = False
        self._ready = False  # run() has mirrored what was missed while down

    # --- start-up -----------------------------------------------------------------------------

    def seed(self, read_models: Engine, last_seq: int, pinned: Connection | None = None) -> None:
        """Load profiles and relationships; fold each follower account's executions and wallet
        from the read models (caught up to ``last_seq``); before the sequencer starts.
        ``pinned``: a connection reading them as of exactly ``last_seq`` (a cluster's leader,
        whose read models move on while it seeds: `runtime.cluster_trading`); batches at or
        below ``last_seq`` are not folded again."""
        self.read_models = read_models
        self.last_seq = last_seq
        with self.database.connect() as conn:
            for row in conn.execute(select(copy_leaders)):
                self.leaders[row.account] = Leader(
                    row.account,
                    row.owner_id,
                    row.name,
                    tuple(row.symbols),
                    row.leverage_cap_e2,
                    row.profit_share_ppm,
                    row.active,
                )
            rows = conn.execute(select(copy_follows).order_by(copy_follows.c.id)).all()
        for row in rows:
            if row.state == FUNDING:
                self._save(row.id, FAILED, "the venue stopped while copying was set up", 0)
                continue
            if row.state == FAILED:
                continue
            follow = Follow(row.id, row.owner_id, row.account, row.leader, dict(row.params))
            follow.state = row.state
            follow.reason = row.reason
            follow.high_water = row.high_water
            follow.positions = Positions(self.specs)
            self._seed_follow(read_models, follow, pinned)
            self._index(follow)

    def _seed_follow(
        self, read_models: Engine, follow: Follow, pinned: Connection | None = None
    ) -> None:
        code = follow.params["currency"]
        reading = read_models.connect() if pinned is None else contextlib.nullcontext(pinned)
        with reading as conn:
            wallet = conn.execute(
                select(wallets.c.amount).where(
                    wallets.c.account == follow.account, wallets.c.currency == code
                )
            ).first()
            follow.balance = int(wallet.amount) if wallet is not None else 0
            follow.balance_seq = self.last_seq
            for row in conn.execute(
                select(executions)
                .where(executions.c.account == follow.account)
                .order_by(executions.c.exec_id)
            ):
                self._follower_order(follow, _event(row), count_money=False)

    def _index(self, follow: Follow) -> None:
        self.follows[follow.follow_id] = follow
        self.by_account[follow.account] = follow

    def missed(self) -> list[tuple[Follow, Command]]:
        """Leader fills made durable before a restart whose mirrors were never placed (rule 3),
        if recent; call after ``seed``."""
        out: list[tuple[Follow, Command]] = []
        if self.read_models is None:
            return out
        now = time.time_ns()
        for follow in self.follows.values():
            if follow.state != ACTIVE:
                continue
            since = int(follow.params.get("startSeq", 0))
            with self.read_models.connect() as conn:
                rows = conn.execute(
                    select(executions)
                    .where(
                        executions.c.account == follow.leader,
                        executions.c.exec_type == int(ExecType.TRADE),
                        executions.c.seq > since,
                        executions.c.timestamp_ns >= now - MIRROR_LATE_NS_MAX,
                    )
                    .order_by(executions.c.exec_id)
                ).all()
            for row in rows:
                event = _event(row)
                command = self._mirror(follow, event, None)
                if command is not None:
                    out.append((follow, command))
        return out

    # --- profiles and relationships (rules 1, 2) ----------------------------------------------

    async def set_leader(
        self, owner: int, account: int, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        name = str(params.get("name") or "").strip()
        if not 1 <= len(name) <= NAME_LENGTH_MAX or not name.isprintable():
            raise CopyError(f"name: 1 to {NAME_LENGTH_MAX} printable characters")
        raw = params.get("symbols") or []
        symbols = tuple(raw.split(",") if isinstance(raw, str) else [str(s) for s in raw])
        symbols = tuple(s.strip() for s in symbols if s.strip())
        if not symbols:
            raise CopyError("symbols: at least one market to copy")
        for symbol in symbols:
            spec = self.specs.get(symbol)
            if spec is None or not spec.is_derivative:
                raise CopyError(f"symbols: {symbol} is not a perpetual or future")
        codes = {self.specs[s].settl_currency for s in symbols}
        if len(codes) != 1:
            raise CopyError("symbols: all in one settlement currency")
        leverage_e2 = int(_decimal(params, "leverageCap", "10") * 100)
        if not LEVERAGE_E2_MIN <= leverage_e2 <= 10_000:
            raise CopyError("leverageCap: between 1 and 100")
        share = _percent_ppm(params, "profitShare", "10", PROFIT_SHARE_PPM_MAX)
        if any(a.account == account for a in self.follows.values()):
            raise CopyError("a copy-trading sub-account cannot lead")
        leader = Leader(account, owner, name, symbols, leverage_e2, share, True)
        await asyncio.to_thread(self._save_leader, leader)
        self.leaders[account] = leader
        return self.leader_row(leader)

    def _save_leader(self, leader: Leader) -> None:
        values = {
            "owner_id": leader.owner,
            "name": leader.name,
            "symbols": list(leader.symbols),
            "leverage_cap_e2": leader.leverage_cap_e2,
            "profit_share_ppm": leader.share_ppm,
            "active": leader.active,
        }
        with self.database.begin() as conn:
            changed = conn.execute(
                update(copy_leaders)
                .where(copy_leaders.c.account == leader.account)
                .values(**values)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(copy_leaders).values(
                        account=leader.account, created_ns=time.time_ns(), **values
                    )
                )

    def validate_follow(self, owner: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """The relationship's stored parameters (rule 2), or CopyError."""
        try:
            leader_account = int(str(params.get("leader") or ""))
        except ValueError as error:
            raise CopyError("leader: an account id") from error
        leader = self.leaders.get(leader_account)
        if leader is None or not leader.active:
            raise CopyError("leader: not a lead trader")
        if leader.owner == owner:
            raise CopyError("leader: you cannot copy yourself")
        code = self.specs[leader.symbols[0]].settl_currency
        allocation = int(_decimal(params, "allocation") * currency(code).minor_per_major)
        if allocation <= 0:
            raise CopyError("allocation: must be positive")
        mode = str(params.get("mode") or "ratio")
        if mode not in ("ratio", "fixed"):
            raise CopyError("mode: ratio or fixed")
        ratio_ppm = int(_decimal(params, "ratio", "1") * PPM)
        if mode == "ratio" and not 0 < ratio_ppm <= RATIO_PPM_MAX:
            raise CopyError("ratio: above 0 and at most 100")
        fixed_qty = int(_decimal(params, "fixedQty", "0"))
        if mode == "fixed" and fixed_qty <= 0:
            raise CopyError("fixedQty: a positive size")
        max_trade = int(_decimal(params, "maxTradeQty", "0"))
        if max_trade < 0:
            raise CopyError("maxTradeQty: not negative (0: no cap)")
        leverage_e2 = int(_decimal(params, "leverageCap", str(leader.leverage_cap_e2 / 100)) * 100)
        if not LEVERAGE_E2_MIN <= leverage_e2 <= 10_000:
            raise CopyError("leverageCap: between 1 and 100")
        return {
            "currency": code,
            "allocation": allocation,
            "mode": mode,
            "ratioPpm": ratio_ppm,
            "fixedQty": fixed_qty,
            "maxTradeQty": max_trade,
            "leverageCapE2": min(leverage_e2, leader.leverage_cap_e2),
            "takeProfitPpm": _percent_ppm(params, "takeProfit", "0", 100 * PPM),
            "stopLossPpm": _percent_ppm(params, "stopLoss", "0", PPM),
            "slippagePpm": _percent_ppm(params, "slippage", "0.5", SLIPPAGE_PPM_MAX),
        }

    async def follow(self, owner: int, params: Mapping[str, Any], ip: str = "") -> dict[str, Any]:
        stored = self.validate_follow(owner, params)
        if sum(1 for f in self.follows.values() if f.owner == owner) >= FOLLOWS_PER_OWNER_MAX:
            raise CopyError(f"At most {FOLLOWS_PER_OWNER_MAX} copy relationships")
        if self.subaccounts is None:
            raise CopyError("copy trading needs the accounts service (sub-accounts)")
        leader = self.leaders[int(str(params.get("leader")))]
        try:
            family = await asyncio.to_thread(
                self.subaccounts.add_subaccount, owner, f"copy {leader.name}"[:64], ip
            )
        except ValueError as error:
            raise CopyError(str(error)) from error
        account = int(family.id)
        stored["startSeq"] = self.last_seq
        follow_id = await asyncio.to_thread(self._insert, owner, account, leader.account, stored)
        result = await self.commands.submit_async(
            WalletTransfer(
                0, owner, account, stored["currency"], stored["allocation"], f"copy-{follow_id}"
            )
        )
        refused = next((e for e in result.events if type(e) is Rejected), None)
        if refused is not None:
            reason = MESSAGES.get(Reason(refused.reason), "refused")
            await asyncio.to_thread(self._save, follow_id, FAILED, reason, 0)
            raise CopyError(f"allocation: {reason}")
        follow = Follow(follow_id, owner, account, leader.account, stored)
        follow.positions = Positions(self.specs)
        follow.balance = stored["allocation"]
        follow.balance_seq = result.seq
        follow.high_water = stored["allocation"]
        self._index(follow)
        await asyncio.to_thread(self._save, follow_id, ACTIVE, "", follow.high_water)
        for symbol in leader.symbols:
            leverage = self.leader_leverage.get((leader.account, symbol), 0)
            if leverage and self.specs[symbol].is_derivative:
                self._queue.append((follow, self._leverage(follow, symbol, leverage)))
        await self._flush()
        return self.follow_row(follow)

    def _insert(self, owner: int, account: int, leader: int, stored: dict[str, Any]) -> int:
        now = time.time_ns()
        with self.database.begin() as conn:
            result = conn.execute(
                insert(copy_follows).values(
                    owner_id=owner,
                    account=account,
                    leader=leader,
                    params=stored,
                    state=FUNDING,
                    reason="",
                    high_water=0,
                    created_ns=now,
                    updated_ns=now,
                )
            )
            key = result.inserted_primary_key
            return int(key[0]) if key is not None else 0

    def _save(self, follow_id: int, state: str, reason: str, high_water: int) -> None:
        with self.database.begin() as conn:
            conn.execute(
                update(copy_follows)
                .where(copy_follows.c.id == follow_id)
                .values(
                    state=state, reason=reason, high_water=high_water, updated_ns=time.time_ns()
                )
            )

    def owned(self, owner: int, follow_id: int) -> Follow:
        follow = self.follows.get(follow_id)
        if follow is None or follow.owner != owner:
            raise CopyError("followId: no such copy relationship")
        return follow

    async def unfollow(self, owner: int, follow_id: int, close: bool) -> dict[str, Any]:
        follow = self.owned(owner, follow_id)
        if follow.state != ACTIVE:
            raise CopyError("followId: already stopped")
        self._stop(follow, "stopped by its owner", close)
        await self._flush()
        await asyncio.to_thread(
            self._save, follow.follow_id, follow.state, follow.reason, follow.high_water
        )
        return self.follow_row(follow)

    # --- the event stream (rules 3-5) ---------------------------------------------------------

    def on_batch(self, batch: list[Applied]) -> None:
        """Sequencer batch subscriber (committer thread): queue and wake the loop."""
        self._inbox.append(batch)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    def _drain(self) -> None:
        while self._inbox:
            for applied in self._inbox.popleft():
                if applied.seq <= self.last_seq:
                    continue  # already in the read models the service was seeded from
                self.last_seq = applied.seq
                self.now_ns = max(self.now_ns, applied.ts_ns)
                self._fold(applied.events, applied.seq)

    def _fold(self, events: Sequence[Event], seq: int) -> None:
        leader_fills: list[OrderEvent] = []
        fold = _Fold(seq, leader_fills)
        for event in events:
            seen = _SEEN.get(type(event))
            if seen is not None:
                seen(self, event, fold)
        for fill in leader_fills:
            leader_flat = self.leader_qty.get((fill.account, fill.symbol), 0) == 0
            for follow in list(self.follows.values()):
                if follow.leader == fill.account and follow.state == ACTIVE:
                    command = self._mirror(follow, fill, leader_flat)
                    if command is not None:
                        self._queue.append((follow, command))

    def _on_order(self, event: OrderEvent, fold: "_Fold") -> None:
        self._order_event(event, fold.leader_fills)

    def _on_position(self, event: PositionChanged, fold: "_Fold") -> None:
        if event.account in self.leaders:
            self._leader_position(event)

    def _on_trade(self, event: Trade, fold: "_Fold") -> None:
        self.last_px[event.symbol] = event.price
        self.trades_seen[event.symbol] = self.trades_seen.get(event.symbol, 0) + 1
        for follow in self.follows.values():
            if follow.positions is not None and event.symbol in follow.positions.open:
                follow.positions.last_px[event.symbol] = event.price

    def _on_mark(self, event: MarkUpdated, fold: "_Fold") -> None:
        self.marks[event.symbol] = event.mark_fine // PRICE_FINE_PER_TICK

    def _on_transfer(self, event: Transfer, fold: "_Fold") -> None:
        self._transfer(event, fold.seq)

    def _on_funding_paid(self, event: FundingPaid, fold: "_Fold") -> None:
        paying = self.by_account.get(event.account)
        if paying is not None:
            paying.changed = True

    def _order_event(self, event: OrderEvent, leader_fills: list[OrderEvent]) -> None:
        follow = self.by_account.get(event.account)
        if follow is not None:
            self._follower_order(follow, event, count_money=True)
            return
        leader = self.leaders.get(event.account)
        if leader is None or not leader.active or event.symbol not in leader.symbols:
            return
        if event.exec_type == ExecType.TRADE:
            leader_fills.append(event)
        if event.ord_status in (
            OrdStatus.FILLED,
            OrdStatus.CANCELED,
            OrdStatus.EXPIRED,
            OrdStatus.REJECTED,
        ):
            self._leader_order_ended(event)
        elif event.exec_type == ExecType.REPLACED and event.price is not None:
            self._leader_order_amended(event)

    def _follower_order(self, follow: Follow, event: OrderEvent, count_money: bool) -> None:
        if event.exec_id in follow.seen_exec:
            return
        follow.seen_exec.add(event.exec_id)
        follow.changed = True
        if event.cl_ord_id:
            follow.used.add(event.cl_ord_id)
        if event.ord_status in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED):
            follow.open[event.cl_ord_id] = event
        else:
            follow.open.pop(event.cl_ord_id, None)
        if event.exec_type == ExecType.TRADE and follow.positions is not None:
            follow.positions.fill(
                event.symbol,
                event.side,
                event.last_qty,
                event.last_px or 0,
                event.exec_comm,
                event.ts_ns,
            )
        if (
            count_money
            and event.exec_type == ExecType.CANCELED
            and event.cl_ord_id.startswith(follow.prefix)
            and event.cum_qty < event.order_qty
            and not event.text.startswith(("leader order ended", "copy stopped"))
        ):
            self._failed(follow, f"{event.cl_ord_id} not filled within the slippage: {event.text}")

    def _transfer(self, event: Transfer, seq: int) -> None:
        """The follower's wallet, from the durable batches only (each seq once): the balance
        was set at ``balance_seq``."""
        for account, sign in ((event.credit_account, 1), (event.debit_account, -1)):
            follow = self.by_account.get(account)
            if (
                follow is not None
                and seq > follow.balance_seq
                and event.currency == follow.params["currency"]
            ):
                follow.balance += sign * event.amount
                follow.changed = True

    def _leader_position(self, event: PositionChanged) -> None:
        key = (event.account, event.symbol)
        self.leader_qty[key] = event.current_qty
        before = self.leader_leverage.get(key)
        self.leader_leverage[key] = event.leverage_e2
        if before is None or before == event.leverage_e2 or event.leverage_e2 == 0:
            return
        if not self.specs[event.symbol].is_derivative:
            return
        for follow in self.follows.values():
            if follow.leader == event.account and follow.state == ACTIVE:
                self._queue.append(
                    (follow, self._leverage(follow, event.symbol, event.leverage_e2))
                )

    def _leverage(self, follow: Follow, symbol: str, leverage_e2: int) -> Command:
        capped = min(leverage_e2, int(follow.params["leverageCapE2"]))
        return SetLeverage(0, follow.account, symbol, capped)

    def _mirror(self, follow: Follow, fill: OrderEvent, leader_flat: bool | None) -> Command | None:
        """Rule 3: the follower's order for one leader fill, or None (already placed, or
        nothing to copy at the follower's size)."""
        cl_ord_id = f"{follow.prefix}{fill.exec_id}"
        if cl_ord_id in follow.used or fill.last_px is None:
            return None
        follow.used.add(cl_ord_id)
        spec = self.specs[fill.symbol]
        params = follow.params
        held = follow.positions.qty(fill.symbol) if follow.positions is not None else 0
        side = Side(fill.side)
        if leader_flat and held and (held > 0) == (side == Side.SELL):
            qty = abs(held)  # the leader closed: so does the follower
        else:
            if params["mode"] == "fixed":
                qty = int(params["fixedQty"])
            else:
                qty = fill.last_qty * int(params["ratioPpm"]) // PPM
            cap = int(params["maxTradeQty"])
            if cap:
                qty = min(qty, cap)
        qty = qty // spec.lot_size * spec.lot_size
        if qty <= 0:
            return None
        slippage = int(params["slippagePpm"])
        if side == Side.BUY:
            price = fill.last_px + fill.last_px * slippage // PPM
        else:
            price = fill.last_px - fill.last_px * slippage // PPM
        working = fill.ord_status == OrdStatus.PARTIALLY_FILLED
        tif = TimeInForce.GOOD_TILL_CANCEL if working else TimeInForce.IMMEDIATE_OR_CANCEL
        follow.mirrored += 1
        return PlaceOrder(
            0,
            follow.account,
            fill.symbol,
            side,
            qty,
            OrdType.LIMIT,
            max(1, price),
            None,
            tif,
            cl_ord_id=cl_ord_id,
            cl_ord_link_id=f"{follow.prefix}o{fill.order_id}",
            text=f"copy of leader order {fill.order_id}",
        )

    def _linked(self, follow: Follow, order_id: int) -> list[OrderEvent]:
        link = f"{follow.prefix}o{order_id}"
        return [e for e in follow.open.values() if e.cl_ord_link_id == link]

    def _leader_order_ended(self, event: OrderEvent) -> None:
        for follow in self.follows.values():
            if follow.leader != event.account or follow.state != ACTIVE:
                continue
            linked = tuple(e.cl_ord_id for e in self._linked(follow, event.order_id))
            if linked:
                self._queue.append(
                    (
                        follow,
                        CancelOrders(
                            0, follow.account, cl_ord_ids=linked, text="leader order ended"
                        ),
                    )
                )

    def _leader_order_amended(self, event: OrderEvent) -> None:
        for follow in self.follows.values():
            if follow.leader != event.account or follow.state != ACTIVE:
                continue
            slippage = int(follow.params["slippagePpm"])
            price = event.price or 0
            for mirror in self._linked(follow, event.order_id):
                moved = (
                    price + price * slippage // PPM
                    if mirror.side == Side.BUY
                    else price - price * slippage // PPM
                )
                self._queue.append(
                    (
                        follow,
                        AmendOrder(
                            0, follow.account, orig_cl_ord_id=mirror.cl_ord_id, price=max(1, moved)
                        ),
                    )
                )

    def _report(self, follow: Follow, event: Rejected) -> None:
        try:
            message = MESSAGES.get(Reason(event.reason), str(event.reason))
        except ValueError:
            message = str(event.reason)
        self._failed(follow, f"{event.command} {event.cl_ord_id}: {message}")

    def _failed(self, follow: Follow, error: str) -> None:
        follow.failed += 1
        follow.last_error = error
        follow.changed = True
        if self.notifier is not None:
            self.notifier.notify(
                follow.owner,
                "Copy trading: an order was not copied",
                f"Copying leader {follow.leader}: {follow.last_error}",
                "warning",
            )

    def _check_limits(self) -> None:
        """Rule 5 for every active relationship."""
        for follow in self.follows.values():
            if follow.state != ACTIVE:
                continue
            allocation = int(follow.params["allocation"])
            equity = follow.equity(self.marks)
            take = int(follow.params["takeProfitPpm"])
            stop = int(follow.params["stopLossPpm"])
            if take and equity >= allocation + allocation * take // PPM:
                self._stop(
                    follow, f"take-profit: equity {equity} >= {allocation} + {take} ppm", True
                )
            elif stop and equity <= allocation - allocation * stop // PPM:
                self._stop(follow, f"stop-loss: equity {equity} <= {allocation} - {stop} ppm", True)

    def _stop(self, follow: Follow, reason: str, close: bool) -> None:
        follow.state = STOPPED
        follow.reason = reason
        follow.changed = True
        symbols = sorted(
            {e.symbol for e in follow.open.values()}
            | set(follow.positions.open if follow.positions else ())
        )
        for symbol in symbols:
            self._queue.append((follow, CancelAll(0, follow.account, symbol, text="copy stopped")))
        follow.closing = close
        self._close(follow)

    def _close(self, follow: Follow) -> None:
        """Market orders closing a stopped relationship's positions; one more per market (with
        the next number) after the market traded since the last one, at most
        ``CLOSE_ATTEMPTS_MAX``, while a position is left."""
        if not follow.closing or follow.positions is None:
            return
        for symbol in sorted(follow.positions.open):
            qty = follow.positions.qty(symbol)
            tried_at, attempts = follow.close_tries.get(symbol, (-1, 0))
            traded = self.trades_seen.get(symbol, 0)
            working = any(e.symbol == symbol for e in follow.open.values())
            if not qty or working or tried_at == traded or attempts >= CLOSE_ATTEMPTS_MAX:
                continue
            follow.close_tries[symbol] = (traded, attempts + 1)
            self._queue.append(
                (
                    follow,
                    PlaceOrder(
                        0,
                        follow.account,
                        symbol,
                        Side.SELL if qty > 0 else Side.BUY,
                        abs(qty),
                        OrdType.MARKET,
                        cl_ord_id=f"{follow.prefix}{CLOSE_PREFIX}.{symbol}.{attempts}",
                        text="copy stopped: close",
                    ),
                )
            )

    async def _flush(self) -> None:
        """Submit the queued follower commands, one by one; each result is folded at once."""
        while self._queue:
            follow, command = self._queue.popleft()
            try:
                result = await self.commands.submit_async(command)
            except SequencerError as error:
                follow.last_error = f"not submitted: {error}"
                follow.failed += 1
                continue
            self.now_ns = max(self.now_ns, result.ts_ns)
            follow.last_command_seq = result.seq
            for event in result.events:
                if type(event) is Rejected:
                    self._report(follow, event)
                elif type(event) is OrderEvent and event.account == follow.account:
                    self._follower_order(follow, event, count_money=True)

    async def run(self, stopping: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        for follow, command in self.missed():
            self._queue.append((follow, command))
        await self.step()  # the missed mirrors go out even if the venue stops at once
        self._ready = True
        try:
            while not stopping.is_set():
                await self.step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                self._wake.clear()
        finally:
            self._loop = None
            self._wake = None

    async def step(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            self._drain()
            await self._flush()
            self._check_limits()
            for follow in self.follows.values():
                self._close(follow)
            await self._flush()
            for follow in self.follows.values():
                if follow.changed:
                    follow.changed = False
                    row = self.follow_row(follow)
                    for listener in self.listeners:
                        listener(follow.owner, row)
            for follow in self.follows.values():
                if (
                    follow.state == STOPPED
                    and follow.reason
                    and not follow.params.get("_saved_stop")
                ):
                    follow.params["_saved_stop"] = True
                    await asyncio.to_thread(
                        self._save, follow.follow_id, follow.state, follow.reason, follow.high_water
                    )
        finally:
            self._busy = False

    def idle(self) -> bool:
        wake = self._wake
        return (
            self._ready
            and not self._inbox
            and not self._queue
            and not self._busy
            and (wake is None or not wake.is_set())
        )

    # --- profit share (rule 6) ----------------------------------------------------------------

    async def settle(self) -> list[dict[str, Any]]:
        """Pay each leader its share of every follower's gain above the high-water mark."""
        paid: list[dict[str, Any]] = []
        await self.step()
        for follow in list(self.follows.values()):
            leader = self.leaders.get(follow.leader)
            if leader is None or leader.share_ppm == 0:
                continue
            mark = max(follow.high_water, int(follow.params["allocation"]))
            equity = follow.equity(self.marks)
            if equity <= mark:
                continue
            fee = (equity - mark) * leader.share_ppm // PPM
            if fee <= 0:
                continue
            code = follow.params["currency"]
            transfer = WalletTransfer(
                0, follow.account, leader.account, code, fee, f"ps{follow.follow_id}-{mark}"
            )
            result = await self.commands.submit_async(transfer)
            refused = next((e for e in result.events if type(e) is Rejected), None)
            if refused is not None and refused.reason != Reason.TRANSFER_ID_DUPLICATE:
                self._report(follow, refused)
                continue
            follow.high_water = equity - fee if refused is None else equity
            await asyncio.to_thread(
                self._save, follow.follow_id, follow.state, follow.reason, follow.high_water
            )
            paid.append(
                {
                    "followId": follow.follow_id,
                    "leader": leader.account,
                    "amount": fee,
                    "highWater": follow.high_water,
                }
            )
        return paid

    async def settle_job(self) -> None:
        """``settle`` as a ``jobs.PeriodicJob`` step."""
        await self.settle()

    # --- reading ------------------------------------------------------------------------------

    def follow_row(self, follow: Follow) -> dict[str, Any]:
        params = follow.params
        return {
            "followId": follow.follow_id,
            "account": follow.account,
            "leader": follow.leader,
            "state": follow.state,
            "reason": follow.reason,
            "currency": params["currency"],
            "allocation": params["allocation"],
            "mode": params["mode"],
            "equity": follow.equity(self.marks),
            "highWater": follow.high_water,
            "mirrored": follow.mirrored,
            "failed": follow.failed,
            "lastError": follow.last_error,
            "positions": {
                s: p.qty
                for s, p in (follow.positions.open.items() if follow.positions else ())
                if p.qty
            },
        }

    def follow_rows(self, owner: int) -> list[dict[str, Any]]:
        return [self.follow_row(f) for f in self.follows.values() if f.owner == owner]

    def leader_row(
        self,
        leader: Leader,
        record: TrackRecord | None = None,
        equities: Sequence[int] | None = None,
    ) -> dict[str, Any]:
        """``equities``: of the leader's active followers (default: this service's)."""
        if equities is None:
            equities = [
                f.equity(self.marks)
                for f in self.follows.values()
                if f.leader == leader.account and f.state == ACTIVE
            ]
        row = {
            "account": leader.account,
            "name": leader.name,
            "currency": self.specs[leader.symbols[0]].settl_currency,
            "symbols": list(leader.symbols),
            "leverageCap": leader.leverage_cap_e2 / 100,
            "profitSharePpm": leader.share_ppm,
            "followers": len(equities),
            "assetsUnderCopy": sum(max(0, equity) for equity in equities),
        }
        if record is not None:
            row.update(record.row())
        return row

    def track_record(self, leader: Leader) -> TrackRecord:
        """Rule 1: the leader's history from the read models (blocking: call in a thread)."""
        code = self.specs[leader.symbols[0]].settl_currency
        specs = {s: spec for s, spec in self.specs.items() if spec.settl_currency == code}
        capital = 0
        rows: Sequence[Any] = []
        if self.read_models is not None:
            with self.read_models.connect() as conn:
                wallet = conn.execute(
                    select(wallets).where(
                        wallets.c.account == leader.account, wallets.c.currency == code
                    )
                ).first()
                if wallet is not None:
                    capital = int(
                        wallet.deposited
                        + wallet.transfer_in
                        - wallet.withdrawn
                        - wallet.transfer_out
                    )
                rows = conn.execute(
                    select(executions)
                    .where(
                        executions.c.account == leader.account,
                        executions.c.exec_type.in_((int(ExecType.TRADE), int(ExecType.FUNDING))),
                    )
                    .order_by(executions.c.exec_id)
                    .limit(LEADER_EXECUTIONS_MAX)
                ).all()
        record = TrackRecord(specs, capital)
        for row in rows:
            if row.symbol not in specs:
                continue
            if row.exec_type == ExecType.FUNDING:
                record.funding_paid(int(row.exec_comm))
            else:
                record.fill(
                    row.symbol,
                    row.side,
                    int(row.last_qty),
                    int(row.last_px or 0),
                    int(row.exec_comm),
                    int(row.timestamp_ns),
                )
        return record

    def leader_name(self, account: int) -> str:
        leader = self.leaders.get(account)
        return leader.name if leader is not None else ""

    def leader_rows(self) -> list[dict[str, Any]]:
        """Every active leader with its track record (blocking: call in a thread)."""
        return [
            self.leader_row(leader, self.track_record(leader))
            for leader in self.leaders.values()
            if leader.active
        ]


class _Fold:
    """What folding one command gathers: the leaders' fills, copied once it has folded."""

    __slots__ = ("leader_fills", "seq")

    def __init__(self, seq: int, leader_fills: list[OrderEvent]) -> None:
        self.seq = seq
        self.leader_fills = leader_fills


# One entry per event kind that moves a leader, a follower or the prices copies are sized at.
_SEEN: dict[type, Callable[[CopyService, Any, _Fold], None]] = {
    OrderEvent: CopyService._on_order,
    PositionChanged: CopyService._on_position,
    Trade: CopyService._on_trade,
    MarkUpdated: CopyService._on_mark,
    Transfer: CopyService._on_transfer,
    FundingPaid: CopyService._on_funding_paid,
}


def _event(row: Any) -> OrderEvent:
    values = {name: getattr(row, name) for name in OrderEvent._fields if name != "ts_ns"}
    return OrderEvent(ts_ns=row.timestamp_ns, **values)
