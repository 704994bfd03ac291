"""The trading-bot service: users' grid and DCA bots running in the venue.

1. A bot is a row in ``bots`` (what the user asked: kind, symbol, the plan in ticks and lots,
   exit rules, investment) and a sub-account made for it; the investment moves there by one
   core ``WalletTransfer`` (conserved, idempotent by ``bot-<id>``), the leverage by
   ``SetLeverage``. Every order the bot places goes through the sequencer on that account.
2. Its working state is not stored: at open it is folded from the sub-account's executions
   in the read models (caught up from the journal before the sequencer starts), then from the
   durable batches (``on_batch``, subscribed before the sequencer starts: nothing is missed).
   Deterministic clOrdIDs make a restart place exactly what is missing (``strategies`` 1-2).
3. The service runs on the server's event loop (``jobs.BackgroundService``): the committer
   thread only queues batches; the loop folds them into the bots and submits what they ask.
   A bot's commands are awaited one by one; results are folded at once, so nothing is asked
   twice. Every ``TICK_S`` the bots are also asked with the venue's latest time (end times,
   DCA intervals).
4. A bot stops for good (its orders cancelled, its position closed by a market order when
   asked or by an exit rule); a bot whose order was rejected or cancelled by someone else
   pauses with the reason (its orders stay; stopping it cancels them). Its owner resumes a
   paused bot (``resume``): the resume's number is stored in the row's params (``resumes``)
   before the bot acts, so its retries keep their clOrdIDs across a restart (``bot`` rule 2a).
   The row's state and reason follow the bot's; owners see changes on the private WebSocket
   table ``bot``.
5. Parameters are validated before anything changes (``BotError``, a 400): symbol and kind,
   prices on the tick grid, the range around the last price within ``RANGE_BAND_PPM``,
   2 <= grids <= ``GRIDS_MAX``, leverage within the instrument's risk limit (1 / initial
   margin), the investment within the owner's available balance (checked by the caller, and
   again by the core's transfer) and enough for one lot per order.
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

from perpetua.core.commands import Command, SetLeverage, WalletTransfer
from perpetua.core.enums import Side
from perpetua.core.events import Event, OrderEvent, Rejected, Trade
from perpetua.core.instruments import InstrumentKind, InstrumentSpec, contract_value
from perpetua.core.reasons import MESSAGES, Reason
from perpetua.core.units import currency
from perpetua.sequencer.delivery import Applied, Result, SequencerError
from perpetua.services.backtest import PRINTS_MAX, Print, equity_svg, parse_csv, run_backtest
from perpetua.services.bot import Bot, BotState, Exits
from perpetua.services.strategies import (
    GRIDS_MAX,
    SAFETY_ORDERS_MAX,
    DcaPlan,
    GridPlan,
    dca_safety,
    grid_initial_qty,
    grid_levels,
    grid_qty,
)
from perpetua.store.schema import bots as bots_table
from perpetua.store.schema import executions, trades

__all__ = [
    "BOT_KINDS",
    "BotError",
    "BotService",
    "BotSpec",
    "CommandPort",
    "SubAccountPort",
    "parse_bot",
]

log = logging.getLogger("perpetua.bots")

BOT_KINDS: Final = ("spotGrid", "futuresGrid", "dca")
RANGE_BAND_PPM: Final = 500_000  # a grid's range lies within +-50% of the last price
TICK_S: Final = 1.0  # the bots are asked at least this often (end times, DCA intervals)
BOTS_PER_OWNER_MAX: Final = 20  # as many as sub-accounts
LEVERAGE_E2_MIN: Final = 100
INTERVAL_S_MIN: Final = 1
FUNDING: Final = "funding"  # created, investment not yet moved
FAILED: Final = "failed"  # never started: the reason says why
PPM: Final = 1_000_000


class BotError(ValueError):
    """Bad parameters or a refused start: answered 400 with this message; nothing changed."""


class CommandPort(Protocol):
    async def submit_async(self, command: Command) -> Result: ...


class SubAccountPort(Protocol):
    def add_subaccount(self, owner_id: int, account_name: str, ip: str) -> Any: ...


class BotSpec:
    """A validated request: what ``create`` stores and starts (rule 5)."""

    __slots__ = ("kind", "spec", "plan", "exits", "investment", "currency", "leverage_e2")

    def __init__(
        self,
        kind: str,
        spec: InstrumentSpec,
        plan: GridPlan | DcaPlan,
        exits: Exits,
        investment: int,
        currency_code: str,
        leverage_e2: int,
    ) -> None:
        self.kind = kind
        self.spec = spec
        self.plan = plan
        self.exits = exits
        self.investment = investment
        self.currency = currency_code
        self.leverage_e2 = leverage_e2

    def to_json(self) -> dict[str, Any]:
        plan = self.plan._asdict()
        if isinstance(self.plan, GridPlan):
            plan["levels"] = list(self.plan.levels)
        return {
            "plan": plan,
            "exits": self.exits._asdict(),
            "investment": self.investment,
            "currency": self.currency,
            "leverageE2": self.leverage_e2,
        }


# --- parameters (rule 5) ---------------------------------------------------------------------


def _decimal(params: Mapping[str, Any], name: str, default: str | None = None) -> Decimal:
    raw = params.get(name, default)
    if raw is None:
        raise BotError(f"{name} is required")
    try:
        value = Decimal(str(raw))
    except InvalidOperation as error:
        raise BotError(f"{name}: not a number") from error
    if not value.is_finite():
        raise BotError(f"{name}: not a number")
    return value


def _ticks(spec: InstrumentSpec, params: Mapping[str, Any], name: str) -> int:
    value = _decimal(params, name) * spec.tick_den / spec.tick_num
    if value != value.to_integral_value():
        raise BotError(f"{name}: price must be a multiple of the tick size")
    ticks = int(value)
    if not 0 < ticks <= spec.max_price_ticks:
        raise BotError(f"{name}: price out of range")
    return ticks


def _optional_ticks(spec: InstrumentSpec, params: Mapping[str, Any], name: str) -> int | None:
    return None if params.get(name) in (None, "") else _ticks(spec, params, name)


def _integer(params: Mapping[str, Any], name: str, default: int | None = None) -> int:
    raw = params.get(name, default)
    if raw is None:
        raise BotError(f"{name} is required")
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise BotError(f"{name}: must be an integer")
    try:
        return int(raw)
    except ValueError as error:
        raise BotError(f"{name}: must be an integer") from error


def _ppm(params: Mapping[str, Any], name: str, default: str) -> int:
    """A percentage (``"1.5"`` = 1.5%) as parts per million."""
    value = _decimal(params, name, default) * 10_000
    if value < 0:
        raise BotError(f"{name}: must not be negative")
    return int(value)


def _minor(code: str, value: Decimal) -> int:
    return int(value * currency(code).minor_per_major)


def _leverage_e2(spec: InstrumentSpec, params: Mapping[str, Any]) -> int:
    leverage = _decimal(params, "leverage", "1")
    leverage_e2 = int(leverage * 100)
    leverage_max_e2 = 100 * PPM // max(1, spec.init_margin_ppm)
    if not LEVERAGE_E2_MIN <= leverage_e2 <= leverage_max_e2:
        raise BotError(
            f"leverage: must be between 1 and {leverage_max_e2 / 100:g} (the risk limit of"
            f" {spec.symbol})"
        )
    return leverage_e2


def _exits(spec: InstrumentSpec, params: Mapping[str, Any]) -> Exits:
    take_profit = params.get("takeProfitPnl")
    end = params.get("endTime")
    end_ns = None
    if end not in (None, ""):
        end_ns = _integer(params, "endTime")
    return Exits(
        _optional_ticks(spec, params, "stopLowPrice"),
        _optional_ticks(spec, params, "stopHighPrice"),
        None
        if take_profit in (None, "")
        else _minor(spec.settl_currency, _decimal(params, "takeProfitPnl")),
        end_ns,
    )


def parse_bot(
    params: Mapping[str, Any],
    instruments: Mapping[str, InstrumentSpec],
    last_px: int | None,
    now_ns: int,
) -> BotSpec:
    """Rule 5: a validated ``BotSpec`` from the route's parameters, or BotError."""
    kind = str(params.get("kind") or "")
    if kind not in BOT_KINDS:
        raise BotError(f"kind: one of {', '.join(BOT_KINDS)}")
    spec = instruments.get(str(params.get("symbol") or ""))
    if spec is None or spec.kind == InstrumentKind.INDEX:
        raise BotError("symbol: not a tradable instrument")
    if spec.state != "Open":
        raise BotError(f"symbol: {spec.symbol} is not open for trading")
    spot = spec.kind == InstrumentKind.SPOT
    if kind == "spotGrid" and not spot:
        raise BotError("kind spotGrid needs a spot pair (futuresGrid for derivatives)")
    if kind == "futuresGrid" and not spec.is_derivative:
        raise BotError("kind futuresGrid needs a perpetual or future (spotGrid for spot)")
    investment = _minor(spec.settl_currency, _decimal(params, "investment"))
    if investment <= 0:
        raise BotError("investment: must be positive")
    leverage_e2 = 0 if spot else _leverage_e2(spec, params)
    exits = _exits(spec, params)
    if last_px is None:
        raise BotError(f"symbol: {spec.symbol} has no last price yet")
    budget = investment if spot else investment * leverage_e2 // 100
    if kind == "dca":
        plan: GridPlan | DcaPlan = _dca_plan(spec, params, last_px, now_ns, budget)
    else:
        plan = _grid_plan(kind, spec, params, last_px, budget)
    return BotSpec(kind, spec, plan, exits, investment, spec.settl_currency, leverage_e2)


def _grid_plan(
    kind: str, spec: InstrumentSpec, params: Mapping[str, Any], last_px: int, budget: int
) -> GridPlan:
    lower = _ticks(spec, params, "lowerPrice")
    upper = _ticks(spec, params, "upperPrice")
    grids = _integer(params, "grids")
    if not 2 <= grids <= GRIDS_MAX:
        raise BotError(f"grids: between 2 and {GRIDS_MAX}")
    if lower >= upper:
        raise BotError("lowerPrice must be below upperPrice")
    band = last_px * RANGE_BAND_PPM // PPM
    if lower < last_px - band or upper > last_px + band:
        raise BotError(f"price range must lie within {RANGE_BAND_PPM // 10_000}% of the last price")
    if not lower <= last_px <= upper:
        raise BotError("the last price must lie inside the grid's range")
    spacing = str(params.get("spacing") or "arithmetic")
    if spacing not in ("arithmetic", "geometric"):
        raise BotError("spacing: arithmetic or geometric")
    levels = grid_levels(lower, upper, grids, spacing == "geometric")
    if not levels:
        raise BotError("grids: too many for this range (two levels on one tick)")
    direction = "long" if kind == "spotGrid" else str(params.get("direction") or "neutral")
    if direction not in ("long", "short", "neutral"):
        raise BotError("direction: long, short or neutral")
    qty = grid_qty(spec, direction, levels, last_px, budget)
    if qty <= 0:
        raise BotError("investment: too small for one lot per grid")
    if (
        qty > spec.max_order_qty
        or grid_initial_qty(GridPlan(spec.symbol, direction, levels, qty, last_px))
        > spec.max_order_qty
    ):
        raise BotError("investment: orders would exceed the maximum order size")
    return GridPlan(spec.symbol, direction, levels, qty, last_px)


def _dca_plan(
    spec: InstrumentSpec, params: Mapping[str, Any], last_px: int, now_ns: int, budget: int
) -> DcaPlan:
    side_name = str(params.get("side") or "Buy")
    if side_name not in ("Buy", "Sell"):
        raise BotError("side: Buy or Sell")
    side = Side.BUY if side_name == "Buy" else Side.SELL
    if side == Side.SELL and not spec.is_derivative:
        raise BotError("side Sell needs a derivative (a spot DCA accumulates)")
    trigger = str(params.get("trigger") or "price")
    if trigger not in ("price", "interval"):
        raise BotError("trigger: price or interval")
    lot = spec.lot_size
    base_qty = _integer(params, "baseQty")
    safety_qty = _integer(params, "safetyQty", base_qty)
    safety_max = _integer(params, "maxSafetyOrders", 0)
    for name, qty in (("baseQty", base_qty), ("safetyQty", safety_qty)):
        if qty <= 0 or qty % lot or qty > spec.max_order_qty:
            raise BotError(f"{name}: a positive multiple of the lot size {lot}")
    if not 0 <= safety_max <= SAFETY_ORDERS_MAX:
        raise BotError(f"maxSafetyOrders: between 0 and {SAFETY_ORDERS_MAX}")
    interval_s = _integer(params, "interval", 3600 if trigger == "interval" else 0)
    if trigger == "interval" and interval_s < INTERVAL_S_MIN:
        raise BotError(f"interval: at least {INTERVAL_S_MIN} s")
    plan = DcaPlan(
        spec.symbol,
        side,
        trigger,
        base_qty,
        safety_qty,
        safety_max,
        _ppm(params, "priceStep", "1"),
        _ppm(params, "stepScale", "100"),
        _ppm(params, "volumeScale", "100"),
        _ppm(params, "takeProfit", "1"),
        interval_s * 1_000_000_000,
        last_px,
        now_ns,
    )
    if plan.take_profit_ppm <= 0:
        raise BotError("takeProfit: must be positive")
    if trigger == "price" and safety_max and plan.step_ppm <= 0:
        raise BotError("priceStep: must be positive")
    worst = abs(contract_value(spec, base_qty, last_px))
    for i in range(1, safety_max + 1):
        price, qty = (
            dca_safety(plan, last_px, i, lot) if trigger == "price" else (last_px, base_qty)
        )
        if price <= 0:
            raise BotError(f"priceStep: safety order {i} would be at a price <= 0")
        worst += abs(contract_value(spec, qty, max(price, last_px)))
    if worst > budget:
        raise BotError(
            f"investment: the orders need up to {worst} {spec.settl_currency}, more than"
            f" {budget} allocated"
        )
    return plan


def _plan_of(kind: str, stored: Mapping[str, Any]) -> GridPlan | DcaPlan:
    plan = dict(stored["plan"])
    if kind == "dca":
        return DcaPlan(**plan)
    plan["levels"] = tuple(plan["levels"])
    return GridPlan(**plan)


def _exits_of(stored: Mapping[str, Any]) -> Exits:
    return Exits(**stored["exits"])


def _reading(
    read_models: Engine, pinned: Connection | None
) -> contextlib.AbstractContextManager[Connection]:
    """``pinned`` (kept open by its owner), else a new connection to ``read_models``."""
    return contextlib.nullcontext(pinned) if pinned is not None else read_models.connect()


def execution_event(row: Any) -> OrderEvent:
    """An ``executions`` read-model row as the ``OrderEvent`` it was projected from."""
    values = {name: getattr(row, name) for name in OrderEvent._fields if name != "ts_ns"}
    return OrderEvent(ts_ns=row.timestamp_ns, **values)


# --- the service -----------------------------------------------------------------------------


class _Record:
    __slots__ = ("bot_id", "owner", "kind", "created_ns", "bot", "saved")

    def __init__(self, bot_id: int, owner: int, kind: str, created_ns: int, bot: Bot) -> None:
        self.bot_id = bot_id
        self.owner = owner
        self.kind = kind
        self.created_ns = created_ns
        self.bot = bot
        self.saved = (bot.state, bot.reason)


Listener = Callable[[int, dict[str, Any]], None]  # owner, bot row


class BotService:
    """Rules 1-4; a ``jobs.BackgroundService`` named "bots"."""

    name = "bots"

    def __init__(
        self,
        database: Engine,
        instruments: Iterable[InstrumentSpec],
        commands: CommandPort,
        subaccounts: SubAccountPort | None = None,
    ) -> None:
        self.database = database
        self.instruments = {s.symbol: s for s in instruments}
        self.commands = commands
        self.subaccounts = subaccounts
        self.records: dict[int, _Record] = {}
        self.by_account: dict[int, _Record] = {}
        self.last_px: dict[str, int] = {}
        self.now_ns = 0
        self.listeners: list[Listener] = []
        self._inbox: collections.deque[list[Applied]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._acting = False
        self.read_models: Engine | None = None
        self.last_seq = 0  # the last durable seq folded

    # --- start-up (rule 2) --------------------------------------------------------------------

    def seed(
        self, read_models: Engine, last_seq: int = 0, pinned: Connection | None = None
    ) -> None:
        """Load the bots and fold their accounts' executions; call before the sequencer
        starts, with the read models caught up to the recovered journal. ``last_seq``: the seq
        the read models hold (batches at or below it are not folded again); ``pinned``: a
        connection reading them as of ``last_seq`` (a cluster's leader: `cluster_trading`)."""
        self.read_models = read_models
        self.last_seq = last_seq
        with _reading(read_models, pinned) as conn:
            for symbol in self.instruments:
                row = conn.execute(
                    select(trades.c.price)
                    .where(trades.c.symbol == symbol)
                    .order_by(trades.c.trd_match_id.desc())
                    .limit(1)
                ).first()
                if row is not None:
                    self.last_px[symbol] = int(row.price)
        with self.database.connect() as conn:
            rows = conn.execute(select(bots_table).order_by(bots_table.c.id)).all()
        for row in rows:
            state = row.state
            if state == FUNDING:
                self._save_state(row.id, FAILED, "the venue stopped while the bot was created")
                continue
            if state == FAILED:
                continue
            record = self._record(row)
            with _reading(read_models, pinned) as conn:
                for execution in conn.execute(
                    select(executions)
                    .where(executions.c.account == row.account)
                    .order_by(executions.c.exec_id)
                ):
                    record.bot.observe((execution_event(execution),))
            record.bot.last_px = self.last_px.get(row.symbol)
            record.bot.changed = True
            self._index(record)

    def _record(self, row: Any) -> _Record:
        spec = self.instruments[row.symbol]
        bot = Bot(
            row.id,
            row.account,
            spec,
            _plan_of(row.kind, row.params),
            _exits_of(row.params),
            row.state,
            row.reason,
            int(row.params.get("resumes", 0)),
        )
        return _Record(row.id, row.owner_id, row.kind, row.created_ns, bot)

    def _index(self, record: _Record) -> None:
        self.records[record.bot_id] = record
        self.by_account[record.bot.account] = record

    # --- the event stream (rule 3) ------------------------------------------------------------

    def on_batch(self, batch: list[Applied]) -> None:
        """Sequencer batch subscriber (committer thread): queue and wake the loop."""
        self._inbox.append(batch)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    def _drain(self) -> None:
        while self._inbox:
            batch = self._inbox.popleft()
            for applied in batch:
                if applied.seq <= self.last_seq:
                    continue  # already in the read models the bots were seeded from
                self.last_seq = applied.seq
                self.now_ns = max(self.now_ns, applied.ts_ns)
                self._fold(applied.events)

    def _fold(self, events: Sequence[Event]) -> None:
        touched: set[int] = set()
        for event in events:
            seen = _SEEN.get(type(event))
            if seen is not None:
                seen(self, event, touched)
        for bot_id in touched:
            self.records[bot_id].bot.observe(events)

    def _account_event(self, event: OrderEvent | Rejected, touched: set[int]) -> None:
        record = self.by_account.get(event.account)
        if record is not None:
            touched.add(record.bot_id)

    def _trade(self, event: Trade, touched: set[int]) -> None:
        self.last_px[event.symbol] = event.price
        for record in self.records.values():
            if record.bot.spec.symbol == event.symbol:
                touched.add(record.bot_id)

    async def run(self, stopping: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while not stopping.is_set():
                self._drain()
                await self.act()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), TICK_S)
                self._wake.clear()
        finally:
            self._loop = None
            self._wake = None

    async def act(self) -> None:
        """Ask every running bot for its commands and submit them (rule 3)."""
        if self._acting:
            return
        self._acting = True
        try:
            now_ns = max(self.now_ns, time.time_ns()) if self.now_ns == 0 else self.now_ns
            for record in list(self.records.values()):
                bot = record.bot
                if bot.state == BotState.RUNNING:
                    await self._submit(bot, bot.commands(now_ns))
                self._publish(record)
            await self._save_changed()
        finally:
            self._acting = False

    async def _submit(self, bot: Bot, commands: list[Command]) -> None:
        for command in commands:
            try:
                result = await self.commands.submit_async(command)
            except SequencerError as error:
                log.warning("bot %s: %s not submitted: %s", bot.bot_id, type(command), error)
                bot.in_flight.clear()  # asked again at the next round
                return
            self.now_ns = max(self.now_ns, result.ts_ns)
            bot.observe(result.events)

    def _publish(self, record: _Record) -> None:
        if not record.bot.changed:
            return
        record.bot.changed = False
        if not self.listeners:
            return
        row = self.row(record)
        for listener in self.listeners:
            listener(record.owner, row)

    async def _save_changed(self) -> None:
        for record in self.records.values():
            now = (record.bot.state, record.bot.reason)
            if now != record.saved:
                record.saved = now
                await asyncio.to_thread(self._save_state, record.bot_id, *now)

    def _save_state(self, bot_id: int, state: str, reason: str) -> None:
        with self.database.begin() as conn:
            conn.execute(
                update(bots_table)
                .where(bots_table.c.id == bot_id)
                .values(state=state, reason=reason, updated_ns=time.time_ns())
            )

    def idle(self) -> bool:
        """Nothing queued, nothing being submitted (for tests and tools, from any thread)."""
        wake = self._wake
        return not self._inbox and not self._acting and (wake is None or not wake.is_set())

    # --- users' acts (rules 1, 4, 5) ----------------------------------------------------------

    def validate(self, params: Mapping[str, Any]) -> BotSpec:
        symbol = str(params.get("symbol") or "")
        return parse_bot(params, self.instruments, self.last_px.get(symbol), self._now())

    def required(self, params: Mapping[str, Any]) -> tuple[str, int]:
        """(currency, minor units) the bot would take from its owner; BotError if invalid."""
        request = self.validate(params)
        return request.currency, request.investment

    def _now(self) -> int:
        return self.now_ns or time.time_ns()

    async def create(self, owner: int, params: Mapping[str, Any], ip: str = "") -> dict[str, Any]:
        """Validate, make the sub-account, move the investment, start. BotError on refusal."""
        request = self.validate(params)
        if sum(1 for r in self.records.values() if r.owner == owner) >= BOTS_PER_OWNER_MAX:
            raise BotError(f"At most {BOTS_PER_OWNER_MAX} bots")
        if self.subaccounts is None:
            raise BotError("bots need the accounts service (sub-accounts)")
        name = f"bot {request.kind} {request.spec.symbol}"
        try:
            family = await asyncio.to_thread(self.subaccounts.add_subaccount, owner, name, ip)
        except ValueError as error:
            raise BotError(str(error)) from error
        account = int(family.id)
        now = self._now()
        bot_id = await asyncio.to_thread(self._insert, owner, account, request, now)
        transfer = WalletTransfer(
            0, owner, account, request.currency, request.investment, f"bot-{bot_id}"
        )
        setup: list[Command] = [transfer]
        if request.leverage_e2:
            setup.append(SetLeverage(0, account, request.spec.symbol, request.leverage_e2))
        for command in setup:
            result = await self.commands.submit_async(command)
            refused = next((e for e in result.events if type(e) is Rejected), None)
            if refused is not None:
                reason = MESSAGES.get(Reason(refused.reason), "refused")
                await asyncio.to_thread(self._save_state, bot_id, FAILED, reason)
                raise BotError(f"{type(command).__name__}: {reason}")
        await asyncio.to_thread(self._save_state, bot_id, BotState.RUNNING, "")
        bot = Bot(bot_id, account, request.spec, request.plan, request.exits)
        bot.last_px = self.last_px.get(request.spec.symbol)
        record = _Record(bot_id, owner, request.kind, now, bot)
        self._index(record)
        if self._wake is not None:
            self._wake.set()
        await self.act()
        return self.row(record)

    def _insert(self, owner: int, account: int, request: BotSpec, now: int) -> int:
        with self.database.begin() as conn:
            result = conn.execute(
                insert(bots_table).values(
                    owner_id=owner,
                    account=account,
                    kind=request.kind,
                    symbol=request.spec.symbol,
                    params=request.to_json(),
                    state=FUNDING,
                    reason="",
                    created_ns=now,
                    updated_ns=now,
                )
            )
            key = result.inserted_primary_key
            return int(key[0]) if key is not None else 0

    def owned(self, owner: int, bot_id: int) -> _Record:
        record = self.records.get(bot_id)
        if record is None or record.owner != owner:
            raise BotError("botId: no such bot")
        return record

    async def stop(self, owner: int, bot_id: int, close: bool) -> dict[str, Any]:
        record = self.owned(owner, bot_id)
        bot = record.bot
        if bot.state == BotState.STOPPED:
            raise BotError("botId: the bot is already stopped")
        await self._submit(bot, bot.stop("stopped by its owner", close))
        self._publish(record)
        await self._save_changed()
        return self.row(record)

    async def resume(self, owner: int, bot_id: int) -> dict[str, Any]:
        """Run a paused bot again (rule 4; ``bot`` rule 2a); BotError unless it is paused."""
        record = self.owned(owner, bot_id)
        bot = record.bot
        if bot.state != BotState.PAUSED:
            raise BotError(f"botId: the bot is {bot.state}, not paused")
        resumes = bot.resumes + 1
        await asyncio.to_thread(self._save_resume, bot_id, resumes)
        bot.resume(resumes)
        record.saved = (bot.state, bot.reason)
        await self.act()
        return self.row(record)

    def _save_resume(self, bot_id: int, resumes: int) -> None:
        with self.database.begin() as conn:
            params = conn.execute(
                select(bots_table.c.params).where(bots_table.c.id == bot_id)
            ).scalar_one()
            conn.execute(
                update(bots_table)
                .where(bots_table.c.id == bot_id)
                .values(
                    params={**params, "resumes": resumes},
                    state=BotState.RUNNING,
                    reason="",
                    updated_ns=time.time_ns(),
                )
            )

    # --- reading ------------------------------------------------------------------------------

    def row(self, record: _Record) -> dict[str, Any]:
        bot = record.bot
        return {
            "botId": record.bot_id,
            "account": bot.account,
            "kind": record.kind,
            "symbol": bot.spec.symbol,
            "created": record.created_ns,
            **bot.status(),
        }

    def rows(self, owner: int) -> list[dict[str, Any]]:
        return [self.row(r) for r in self.records.values() if r.owner == owner]

    def detail(self, owner: int, bot_id: int) -> dict[str, Any]:
        record = self.owned(owner, bot_id)
        bot = record.bot
        row = self.row(record)
        plan = bot.plan._asdict()
        if isinstance(bot.plan, GridPlan):
            plan["levels"] = list(bot.plan.levels)
        row["plan"] = plan
        row["exits"] = bot.exits._asdict()
        row["orders"] = [o._asdict() for o in bot.open_orders()]
        row["fills"] = [f._asdict() for f in bot.fills[-100:]]
        return row

    # --- backtests ----------------------------------------------------------------------------

    async def backtest(self, params: Mapping[str, Any], csv_text: str | None) -> dict[str, Any]:
        """``backtest`` rule 1-5 over the venue's trades or ``csv_text``; BotError if bad."""
        spec = self.instruments.get(str(params.get("symbol") or ""))
        if spec is None:
            raise BotError("symbol: not a tradable instrument")
        if csv_text:
            prints = parse_csv(spec, csv_text)
        else:
            prints = await asyncio.to_thread(
                self._recorded, spec.symbol, params.get("startTime"), params.get("endTime")
            )
        if len(prints) < 2:
            raise BotError("backtest: needs at least two trades in the period")
        request = parse_bot(params, self.instruments, prints[0].price, prints[0].ts_ns)
        investment = {request.currency: request.investment}
        result = await asyncio.to_thread(
            run_backtest,
            tuple(self.instruments.values()),
            request.spec,
            request.plan,
            request.exits,
            investment,
            request.leverage_e2,
            prints,
        )
        answer: dict[str, Any] = {
            "symbol": spec.symbol,
            "kind": request.kind,
            "trades": len(prints),
            "investment": request.investment,
            "currency": request.currency,
            "status": result.status,
            "fills": result.fills,
            "equity": [{"timestamp": ts, "equity": value} for ts, value in result.equity],
        }
        if params.get("plot") not in (None, "", False, "false"):
            answer["svg"] = equity_svg(result.equity)
        return answer

    def _recorded(self, symbol: str, start_ns: Any, end_ns: Any) -> list[Print]:
        if self.read_models is None:
            raise BotError("backtest: no read models on this venue (give a csv)")
        query = select(trades.c.timestamp_ns, trades.c.price).where(trades.c.symbol == symbol)
        if start_ns is not None:
            query = query.where(trades.c.timestamp_ns >= int(start_ns))
        if end_ns is not None:
            query = query.where(trades.c.timestamp_ns <= int(end_ns))
        query = query.order_by(trades.c.trd_match_id).limit(PRINTS_MAX)
        with self.read_models.connect() as conn:
            return [Print(int(r.timestamp_ns), int(r.price)) for r in conn.execute(query)]


# What a bot reacts to: its account's orders and rejections, trades on its market.
_SEEN: dict[type, Callable[[BotService, Any, set[int]], None]] = {
    OrderEvent: BotService._account_event,
    Rejected: BotService._account_event,
    Trade: BotService._trade,
}
