"""The engine: one entry point, ``Engine.apply(command) -> list[Event]``.

Pure and deterministic: the same commands in the same order give the same events and the same
``state_hash()`` on every machine. Time comes only from ``command.ts_ns``, which must never go
backwards. Before a command is applied, timers that have come due by its time run first, in a
fixed order: Day expiry at 00:00 UTC, then cancelAllAfter deadlines in account order.

After every order-affecting command the engine runs the follow-up of executions (linked orders,
ReduceOnly upkeep) and the trigger pass for the markets the command touched.
"""

from enum import IntEnum
from typing import TypeVar

from perpetua.core import (
    convert,
    image,
    indicators,
    lifecycle,
    liquidation,
    placement,
    positioning,
    restrictions,
    staking,
    timers,
    tradfi,
    treasury,
    triggers,
)
from perpetua.core.catalogue import (
    BUILTIN_SERIES,
    SERIES_PAYOUTS,
    FutureSeries,
    series_problem,
)
from perpetua.core.commands import (
    AmendOrder,
    Batch,
    CancelAll,
    CancelAllAfter,
    CancelOrders,
    Command,
    Convert,
    DefineFutureSeries,
    Deposit,
    DepositReverse,
    FundConvertDesk,
    FundStakingRewards,
    IndexPrice,
    LiquidateAccount,
    ListFuture,
    PlaceOrder,
    PublishAnnouncement,
    SetAccountRestriction,
    SetFeeDiscount,
    SetFeeTier,
    SetInstrumentState,
    SetInterestRate,
    SetLeverage,
    SetRiskLimit,
    SetTradingCalendar,
    Stake,
    Tick,
    TransferMargin,
    UnstakeCancel,
    UnstakeRequest,
    WalletTransfer,
    WithdrawalCancel,
    WithdrawalComplete,
    WithdrawalRequest,
    WithdrawAnnouncement,
)
from perpetua.core.enums import ContingencyType, OrdType, PegPriceType, Side, TimeInForce
from perpetua.core.events import (
    AnnouncementPublished,
    AnnouncementWithdrawn,
    CancelAllAfterSet,
    Event,
    FutureSeriesDefined,
    IndexUpdated,
    InstrumentStateChanged,
)
from perpetua.core.instruments import INSTRUMENT_STATES, InstrumentKind, InstrumentSpec, Payout
from perpetua.core.invariant import fail
from perpetua.core.limits import (
    ANNOUNCEMENT_CONTENT_LENGTH_MAX,
    ANNOUNCEMENT_LINK_LENGTH_MAX,
    ANNOUNCEMENT_TITLE_LENGTH_MAX,
    BATCH_COMMANDS_MAX,
    CANCEL_ALL_AFTER_TIMEOUT_MS_MAX,
    DAY_NS,
)
from perpetua.core.reasons import Reason
from perpetua.core.risk import fixed_funding_rate_ppb
from perpetua.core.state import Market, State
from perpetua.core.units import CURRENCIES

__all__ = ["Engine"]

_NS_PER_MS = 1_000_000

# The IntEnum fields of commands, by position: a decoder may hand over plain ints (equal values),
# and compiled code checks the annotated type when it reads a field, so they become members at
# the entry (an int not in the enum is a ValueError here, as it would be anywhere in the core).
_PLACE_ENUMS: tuple[tuple[int, type[IntEnum]], ...] = tuple(
    (PlaceOrder._fields.index(name), cls)
    for name, cls in (
        ("side", Side),
        ("ord_type", OrdType),
        ("time_in_force", TimeInForce),
        ("peg_price_type", PegPriceType),
        ("contingency_type", ContingencyType),
    )
)
_CANCEL_ALL_ENUMS: tuple[tuple[int, type[IntEnum]], ...] = (
    (CancelAll._fields.index("side"), Side),
)

_Cmd = TypeVar("_Cmd", PlaceOrder, CancelAll)


def _enum_members(cmd: _Cmd, fields: tuple[tuple[int, type[IntEnum]], ...]) -> _Cmd:
    raw: tuple[object, ...] = cmd  # read as objects: no type check on plain ints
    for index, _ in fields:
        if type(raw[index]) is int:
            break
    else:
        return cmd
    values = list(raw)
    for index, cls in fields:
        value = values[index]
        if type(value) is int:
            values[index] = cls(value)
    rebuilt: _Cmd = type(cmd)._make(values)
    return rebuilt


def _publish_announcement(state: State, cmd: PublishAnnouncement, out: list[Event]) -> None:
    """No state: the announcement is the event (its id is the command's seq)."""
    if (
        not 0 < len(cmd.title.strip()) <= ANNOUNCEMENT_TITLE_LENGTH_MAX
        or len(cmd.content) > ANNOUNCEMENT_CONTENT_LENGTH_MAX
        or len(cmd.link) > ANNOUNCEMENT_LINK_LENGTH_MAX
    ):
        placement.reject(state, out, "PublishAnnouncement", 0, Reason.ANNOUNCEMENT_INVALID)
        return
    out.append(AnnouncementPublished(cmd.ts_ns, cmd.title, cmd.content, cmd.link, cmd.urgent))


def _withdraw_announcement(state: State, cmd: WithdrawAnnouncement, out: list[Event]) -> None:
    if cmd.announcement_id <= 0:
        placement.reject(state, out, "WithdrawAnnouncement", 0, Reason.ANNOUNCEMENT_INVALID)
        return
    out.append(AnnouncementWithdrawn(cmd.ts_ns, cmd.announcement_id))


def _has_stops(market: Market) -> bool:
    """Whether any untriggered order waits on the market (a loop: any() over a generator
    builds one per call in compiled code, and this runs after every order)."""
    for waiting in market.stops.values():  # noqa: SIM110 (see the docstring)
        if waiting:
            return True
    return False


class Engine:
    def __init__(self, instruments: tuple[InstrumentSpec, ...]) -> None:
        self.instruments = instruments
        self._base = instruments
        self._index_symbols = frozenset(
            spec.symbol for spec in instruments if spec.kind == InstrumentKind.INDEX
        )
        self.state = State()
        state = self.state
        for code in CURRENCIES:
            state.ledger.open_currency(code)
        for spec in instruments:
            if spec.kind == InstrumentKind.INDEX:
                continue
            state.markets[spec.symbol] = Market(spec, state.account_positions)
            if spec.reference_symbol:
                state.index_subscribers.setdefault(spec.reference_symbol, []).append(spec.symbol)
        self._handlers = {
            PlaceOrder: self._place,
            AmendOrder: self._amend,
            CancelOrders: self._cancel,
            CancelAll: self._cancel_all,
            CancelAllAfter: self._cancel_all_after,
            Batch: self._batch,
            Tick: self._tick,
            IndexPrice: self._index_price,
            SetInstrumentState: self._set_instrument_state,
            SetFeeTier: treasury.set_fee_tier,
            SetFeeDiscount: treasury.set_fee_discount,
            Deposit: self._deposit,
            WithdrawalRequest: self._withdrawal_request,
            WithdrawalCancel: treasury.withdrawal_cancel,
            WithdrawalComplete: treasury.withdrawal_complete,
            WalletTransfer: self._wallet_transfer,
            DepositReverse: treasury.deposit_reverse,
            SetLeverage: positioning.set_leverage,
            SetRiskLimit: positioning.set_risk_limit,
            TransferMargin: positioning.transfer_margin,
            ListFuture: self._list_future,
            SetInterestRate: self._set_interest_rate,
            PublishAnnouncement: _publish_announcement,
            WithdrawAnnouncement: _withdraw_announcement,
            SetAccountRestriction: restrictions.set_restriction,
            LiquidateAccount: self._liquidate_account,
            Stake: staking.stake,
            UnstakeRequest: self._unstake_request,
            UnstakeCancel: staking.unstake_cancel,
            FundStakingRewards: staking.fund_rewards,
            Convert: treasury.convert,
            FundConvertDesk: convert.fund_desk,
            SetTradingCalendar: tradfi.set_trading_calendar,
            DefineFutureSeries: self._define_series,
        }

    def apply(self, command: Command, publish: bool = True) -> list[Event]:
        """Apply ``command``; its events. With ``publish`` off (recovery, where nobody reads
        them) the order, book, trade, transfer and position events and the indicators (order
        margins, ADL quintiles) are not built: the state, and so the state hash, is the same;
        the rarer events still are."""
        state = self.state
        ts_ns = command.ts_ns
        if ts_ns < state.ts_ns:
            fail(f"time went backwards: {ts_ns} < {state.ts_ns}")
        state.ts_ns = ts_ns
        state.publish = publish
        state.ledger.publish = publish
        out: list[Event] = []
        if ts_ns >= state.next_timer_ns:
            self._run_timers(out)
        handler = self._handlers.get(type(command))
        if handler is None:
            fail(f"unknown command {type(command).__name__}")
        handler(state, command, out)  # type: ignore[operator]
        marks = state.touched_marks  # follow_up replaces it: the indicators read this one
        if (
            state.touched_positions
            or marks
            or state.ledger.holds_changed
            or state.ledger.balances_changed
        ):
            liquidation.follow_up(state, out)
        if publish:
            if marks:
                indicators.publish_deleverage_ranks(state, marks, out)
            if state.order_margins_changed:
                indicators.publish_order_margins(state, out)
        return out

    # Orders ---------------------------------------------------------------------------------

    def _after_orders(self, state: State, symbols: tuple[str, ...], out: list[Event]) -> None:
        if state.executed:
            triggers.follow_up(state, out)
        for symbol in symbols:
            market = state.markets.get(symbol)
            if market is not None and (market.trailing or _has_stops(market)):
                triggers.run_triggers(state, market, out)

    def _place(self, state: State, cmd: PlaceOrder, out: list[Event]) -> None:
        if state.restrictions and not restrictions.check_place(state, cmd, out):
            return
        placement.place(state, _enum_members(cmd, _PLACE_ENUMS), out)
        self._after_orders(state, (cmd.symbol,), out)

    def _amend(self, state: State, cmd: AmendOrder, out: list[Event]) -> None:
        if state.restrictions and not restrictions.check_amend(state, cmd, out):
            return
        lifecycle.amend(state, cmd, out)
        order_id = cmd.order_id
        order = state.orders.get(order_id) if order_id is not None else None
        symbols = (order.symbol,) if order is not None else tuple(state.markets)
        if state.executed or order is None:
            self._after_orders(state, symbols, out)

    def _cancel(self, state: State, cmd: CancelOrders, out: list[Event]) -> None:
        lifecycle.cancel(state, cmd, out)

    def _cancel_all(self, state: State, cmd: CancelAll, out: list[Event]) -> None:
        lifecycle.cancel_all(state, _enum_members(cmd, _CANCEL_ALL_ENUMS), out)

    def _batch(self, state: State, cmd: Batch, out: list[Event]) -> None:
        if len(cmd.commands) > BATCH_COMMANDS_MAX:
            placement.reject(state, out, "Batch", 0, Reason.BATCH_TOO_LARGE)
            return
        for sub in cmd.commands:
            if sub.ts_ns != cmd.ts_ns:
                sub = sub._replace(ts_ns=cmd.ts_ns)
            if isinstance(sub, PlaceOrder):
                self._place(state, sub, out)
            elif isinstance(sub, AmendOrder):
                self._amend(state, sub, out)
            else:
                fail("a batch holds only PlaceOrder and AmendOrder")

    def _cancel_all_after(self, state: State, cmd: CancelAllAfter, out: list[Event]) -> None:
        if not 0 <= cmd.timeout_ms <= CANCEL_ALL_AFTER_TIMEOUT_MS_MAX or cmd.account <= 0:
            placement.reject(
                state, out, "CancelAllAfter", cmd.account, Reason.AMOUNT_MUST_BE_POSITIVE
            )
            return
        acct = state.account(cmd.account)
        if cmd.timeout_ms == 0:
            acct.cancel_deadline_ns = 0
            state.deadlines.pop(cmd.account, None)
        else:
            acct.cancel_deadline_ns = cmd.ts_ns + cmd.timeout_ms * _NS_PER_MS
            state.deadlines[cmd.account] = acct.cancel_deadline_ns
        self._schedule(state)
        out.append(CancelAllAfterSet(cmd.ts_ns, cmd.account, acct.cancel_deadline_ns))

    def _liquidate_account(self, state: State, cmd: LiquidateAccount, out: list[Event]) -> None:
        symbols = restrictions.liquidate_account(state, cmd, out)
        if symbols:
            self._after_orders(state, tuple(symbols), out)

    # Money (the account's restriction first, then the treasury) -------------------------------

    def _deposit(self, state: State, cmd: Deposit, out: list[Event]) -> None:
        if not state.restrictions or restrictions.check_deposit(state, cmd, out):
            treasury.deposit(state, cmd, out)

    def _withdrawal_request(self, state: State, cmd: WithdrawalRequest, out: list[Event]) -> None:
        if not state.restrictions or restrictions.check_withdrawal(state, cmd, out):
            treasury.withdrawal_request(state, cmd, out)

    def _wallet_transfer(self, state: State, cmd: WalletTransfer, out: list[Event]) -> None:
        if not state.restrictions or restrictions.check_transfer(state, cmd, out):
            treasury.wallet_transfer(state, cmd, out)

    # Time -----------------------------------------------------------------------------------

    def _schedule(self, state: State) -> None:
        if state.next_day_ns == 0:
            state.next_day_ns = (state.ts_ns // DAY_NS + 1) * DAY_NS
        deadline = min(state.deadlines.values(), default=state.next_day_ns)
        release = staking.next_release_ns(state)
        if release:
            deadline = min(deadline, release)
        markets = min(
            (timers.next_due_ns(m) for m in state.markets.values()), default=state.next_day_ns
        )
        state.next_timer_ns = min(state.next_day_ns, deadline, markets)

    def _run_timers(self, out: list[Event]) -> None:
        state = self.state
        if state.next_day_ns and state.ts_ns >= state.next_day_ns:
            lifecycle.expire_day_orders(state, out)
            staking.on_day_boundary(state, out)
            state.next_day_ns = (state.ts_ns // DAY_NS + 1) * DAY_NS
        due = sorted(a for a, deadline in state.deadlines.items() if deadline <= state.ts_ns)
        for account in due:
            del state.deadlines[account]
            acct = state.account(account)
            acct.cancel_deadline_ns = 0
            lifecycle.cancel_account_orders(state, acct, out, "Canceled: CancelAllAfter")
            out.append(CancelAllAfterSet(state.ts_ns, account, 0))
        for market in state.markets.values():
            if state.ts_ns >= timers.next_due_ns(market):
                timers.run_due(state, market, out)
        staking.release_due(state, out)
        self._schedule(state)

    def _unstake_request(self, state: State, cmd: UnstakeRequest, out: list[Event]) -> None:
        staking.unstake_request(state, cmd, out)
        self._schedule(state)  # its release is a timer

    def _tick(self, state: State, cmd: Tick, out: list[Event]) -> None:
        """Timers already ran; nothing else moves with time alone in the trading core."""

    # Prices and instruments -----------------------------------------------------------------

    def _index_price(self, state: State, cmd: IndexPrice, out: list[Event]) -> None:
        if cmd.price_den <= 0 or cmd.price_num <= 0:
            placement.reject(state, out, "IndexPrice", 0, Reason.PRICE_MUST_BE_POSITIVE)
            return
        symbols = state.index_subscribers.get(cmd.symbol)
        if symbols is None:
            if cmd.symbol not in self._index_symbols:
                placement.reject(state, out, "IndexPrice", 0, Reason.INSTRUMENT_UNKNOWN)
                return
            symbols = []  # an index no market marks on (.BXBT30M): published, nothing else
        out.append(IndexUpdated(cmd.ts_ns, cmd.symbol, cmd.price_num, cmd.price_den))
        started = False
        for symbol in symbols:
            market = state.markets[symbol]
            if market.state == "Settled":
                continue
            started = started or market.funding.next_sample_ns == 0
            timers.apply_index(state, market, cmd.price_num, cmd.price_den)
            timers.publish_mark(state, market, out)
        if started:
            self._schedule(state)
        self._after_orders(state, tuple(symbols), out)

    def _set_interest_rate(self, state: State, cmd: SetInterestRate, out: list[Event]) -> None:
        market = state.markets.get(cmd.symbol)
        bound = 10_000_000  # 1% per interval: far beyond any real interest component
        if market is None or not -bound <= cmd.interest_ppb <= bound:
            placement.reject(state, out, "SetInterestRate", 0, Reason.INSTRUMENT_UNKNOWN)
            return
        market.funding.interest_ppb = cmd.interest_ppb
        if market.funding.next_sample_ns == 0:
            market.funding.rate_ppb = fixed_funding_rate_ppb(cmd.interest_ppb)
            market.funding.indicative_rate_ppb = market.funding.rate_ppb
            timers.touch_all(state, market)  # the rate is in payers' maintenance margin

    def _define_series(self, state: State, cmd: DefineFutureSeries, out: list[Event]) -> None:
        series = FutureSeries._make(cmd[1:])
        if series.payout not in SERIES_PAYOUTS:
            placement.reject(state, out, "DefineFutureSeries", 0, Reason.SERIES_INVALID)
            return
        series = series._replace(payout=Payout(series.payout))  # a decoder may give an int
        if series.key in state.series:
            placement.reject(state, out, "DefineFutureSeries", 0, Reason.INSTRUMENT_EXISTS)
            return
        if series_problem(series, self._index_symbols):
            placement.reject(state, out, "DefineFutureSeries", 0, Reason.SERIES_INVALID)
            return
        state.series[series.key] = series
        out.append(FutureSeriesDefined(cmd.ts_ns, series.key))

    def _list_future(self, state: State, cmd: ListFuture, out: list[Event]) -> None:
        if cmd.root not in BUILTIN_SERIES and cmd.root not in state.series:
            placement.reject(state, out, "ListFuture", 0, Reason.INSTRUMENT_UNKNOWN)
            return
        key = (cmd.root, cmd.year, cmd.quarter)
        if any(entry[:3] == key for entry in state.listed):
            placement.reject(state, out, "ListFuture", 0, Reason.INSTRUMENT_EXISTS)
            return
        spec = self._add_future(cmd.root, cmd.year, cmd.quarter, None)
        if spec is None:
            placement.reject(state, out, "ListFuture", 0, Reason.INSTRUMENT_EXISTS)
            return
        state.listed.append((*key, spec.listing_ns))
        out.append(InstrumentStateChanged(cmd.ts_ns, spec.symbol, spec.state))

    def _add_future(
        self, root: str, year: int, quarter: int, listing_ns: int | None
    ) -> InstrumentSpec | None:
        state = self.state
        spec = timers.list_future(state, root, year, quarter, len(self.instruments), listing_ns)
        if spec.symbol in state.markets:
            return None
        self.instruments = (*self.instruments, spec)
        state.markets[spec.symbol] = Market(spec, state.account_positions)
        state.index_subscribers.setdefault(spec.reference_symbol, []).append(spec.symbol)
        return spec

    def _set_instrument_state(
        self, state: State, cmd: SetInstrumentState, out: list[Event]
    ) -> None:
        market = state.markets.get(cmd.symbol)
        if market is None or cmd.state not in INSTRUMENT_STATES:
            placement.reject(state, out, "SetInstrumentState", 0, Reason.INSTRUMENT_UNKNOWN)
            return
        market.state = cmd.state
        out.append(InstrumentStateChanged(cmd.ts_ns, cmd.symbol, cmd.state))

    # Persistence ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        return image.snapshot(self.state)

    def restore(self, data: dict[str, object]) -> None:
        base = tuple(s for s in self.instruments if s.symbol not in self._listed_symbols())
        fresh = Engine(base)
        fresh.state.ts_ns = int(data["ts_ns"])  # type: ignore[call-overload]
        for row in data.get("series", []):  # type: ignore[attr-defined]
            series = FutureSeries(row[0], Payout(row[1]), *row[2:])
            fresh.state.series[series.key] = series
        for entry in data.get("listed", []):  # type: ignore[attr-defined]
            root, year, quarter = entry[:3]
            # Images before the listing time was kept: listed no later than the image's time.
            spec = fresh._add_future(root, year, quarter, entry[3] if len(entry) > 3 else None)
            if spec is None:
                fail(f"snapshot lists the future {root} {year} Q{quarter} twice")
            fresh.state.listed.append((root, year, quarter, spec.listing_ns))
        image.restore(fresh.state, data)
        self.instruments = fresh.instruments
        self.state = fresh.state

    def _listed_symbols(self) -> set[str]:
        return {s.symbol for s in self.instruments[len(self._base) :]}

    def state_hash(self) -> str:
        return image.image_hash(image.snapshot(self.state))

    def snapshot_and_hash(self) -> tuple[dict[str, object], str]:
        """The image and its hash, building the image once."""
        data = image.snapshot(self.state)
        return data, image.image_hash(data)
