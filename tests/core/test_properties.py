"""Hypothesis properties of the trading core over random command streams.

Streams mix every order type (Limit, Market, Stop, StopLimit, MarketIfTouched, LimitIfTouched,
Pegged, trailing stops; Mark/Last/Index triggers; GTC/IOC/FOK/Day; ParticipateDoNotInitiate,
AllOrNone, ReduceOnly, Close; icebergs and hidden; OCO/OTO links), amends, cancels, cancelAll,
cancelAllAfter, index moves, deposits, withdrawals (request, cancel, complete), fee tier and
discount changes, leverage/risk-limit/isolated-margin changes and instrument state changes, on
XBTUSD (inverse), XBTUSDT and ETHUSDT (linear), ETHUSD (quanto) and XBT_USDT (spot), by five
accounts whose starting balances range from nothing to plenty, so rejections for money are
common.

Properties:

* after every command ``audit.audit`` passes (ledger sums, clearing, holds, margin sums, books
  well formed and uncrossed, no user balance negative);
* the event stream alone rebuilds every L2 book (``BookLevel`` deltas), and order rows are
  consistent (live: cum + leaves = qty; terminal: leaves 0 and no later row; cum = traded);
* conservation, from the event stream alone: per currency, DEPOSIT minus WITHDRAWAL_COMPLETE
  transfers equal ``audit.conservation_totals``, and replaying every ``Transfer`` rebuilds the
  ledger's balances exactly;
* price-time priority: at every fill the maker is the first order the taker may trade with
  among all resting orders on the other side within its limit, ranked by price, displayed before
  hidden, then arrival, found by a linear scan of ``state.orders`` (arrival is stamped by
  watching ``BookSide.add`` and ``BookSide.requeue``, the only ways into a queue);
* determinism: the same stream applied to a fresh engine gives identical events and hash;
* replay without events (``Engine.apply(command, publish=False)``, as recovery runs) reaches
  the same ``state_hash`` after every command;
* snapshot round trip: at random points a restored copy (sometimes through msgpack, as the
  journal edge would store it) has the same ``state_hash``, and the rest of the stream gives it
  identical events and hashes.

Streams are lists of ``(extra_ns, command)``; the runner stamps ``ts_ns`` (1 ms apart plus
``extra_ns``). In amends and cancels, an order id ``-k`` means the k-th newest live order and
``account == 0`` the order's owner, both resolved when the command is applied; the concrete
commands are printed (``note``) on failure.
"""

import contextlib
import hashlib
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import perpetua
from perpetua.core import audit, liquidation, matching
from perpetua.core.book import BookSide
from perpetua.core.calendar import utc_ns
from perpetua.core.catalogue import FEE_TIERS, by_symbol, default_catalogue
from perpetua.core.commands import (
    AmendOrder,
    Batch,
    CancelAll,
    CancelAllAfter,
    CancelOrders,
    Deposit,
    IndexPrice,
    PlaceOrder,
    SetFeeDiscount,
    SetFeeTier,
    SetInstrumentState,
    SetLeverage,
    SetRiskLimit,
    Tick,
    TransferMargin,
    WithdrawalCancel,
    WithdrawalComplete,
    WithdrawalRequest,
)
from perpetua.core.engine import Engine
from perpetua.core.enums import (
    TERMINAL_STATUSES,
    ContingencyType,
    ExecInst,
    ExecType,
    OrdType,
    PegPriceType,
    Side,
    TimeInForce,
)
from perpetua.core.events import (
    BookLevel,
    DeleverageRanked,
    OrderEvent,
    OrderMarginChanged,
    PositionChanged,
    Trade,
    Transfer,
)
from perpetua.core.fees import fee_rates_ppm
from perpetua.core.ledger import TransferCode
from perpetua.core.orders import Order
from perpetua.core.state import Market, State

CATALOGUE = default_catalogue()
# Sized for the whole file to run in well under a minute. Hunt longer with, for example,
# PERPETUA_EXAMPLES_SCALE=20; a failure prints its shrunk stream and a reproduce_failure blob.
EXAMPLES_SCALE = int(os.environ.get("PERPETUA_EXAMPLES_SCALE", "1"))
PROFILE = settings(deadline=None, print_blob=True)
SPECS = by_symbol(CATALOGUE)
ACCOUNTS = (1, 2, 3, 4, 5)
T0_NS = utc_ns(2026, 3, 2) + 23 * 3_600 * 10**9  # an hour before a Day expiry
STEP_NS = 1_000_000
# symbol -> (mid in ticks, index symbol)
MARKETS: dict[str, tuple[int, str]] = {
    "XBTUSD": (500_000, ".BXBT"),
    "XBTUSDT": (100_000, ".BXBTT"),
    "ETHUSDT": (60_000, ".BETHT"),
    "ETHUSD": (60_000, ".BETH"),
    "XBT_USDT": (100_000, ".BXBTT"),
}
SYMBOLS = tuple(MARKETS)
# index symbol -> (symbol whose tick grid prices it, mid in that symbol's ticks)
INDICES = {".BXBT": "XBTUSD", ".BXBTT": "XBTUSDT", ".BETHT": "ETHUSDT", ".BETH": "ETHUSD"}
BALANCE_TIERS = {
    "XBt": (0, 20_000, 3_000_000, 10**8, 10**10),
    "USDt": (0, 2_000_000, 500 * 10**6, 10**10, 10**12),
}
WITHDRAWAL_IDS = ("w0", "w1", "w2", "w3")
CL_ORD_IDS = ("", "", "", "", "a", "b", "c")
LINK_IDS = ("L1", "L2")

# Strategies ------------------------------------------------------------------------------------
# Each stream trades on one to three of the symbols, so liquidity concentrates and orders meet.

_accounts = st.sampled_from(ACCOUNTS)
# An order reference: -k is the k-th newest live order when applied (modulo their number), a
# positive number is that order id as is (often ended or never created).
_order_ids = st.one_of(st.integers(-6, -1), st.integers(-6, -1), st.integers(1, 40))
_FLAG_POOL = (
    ExecInst.PARTICIPATE_DO_NOT_INITIATE,
    ExecInst.ALL_OR_NONE,
    ExecInst.MARK_PRICE,
    ExecInst.LAST_PRICE,
    ExecInst.LAST_PRICE,
    ExecInst.INDEX_PRICE,
    ExecInst.LAST_WITHIN_MARK,
    ExecInst.REDUCE_ONLY,
    ExecInst.REDUCE_ONLY,
    ExecInst.CLOSE,
    ExecInst.FIXED,
)
_STOP_TYPES = (
    OrdType.STOP,
    OrdType.STOP_LIMIT,
    OrdType.MARKET_IF_TOUCHED,
    OrdType.LIMIT_IF_TOUCHED,
)
_ORD_TYPES = (
    OrdType.LIMIT,
    OrdType.LIMIT,
    OrdType.LIMIT,
    OrdType.LIMIT,
    OrdType.LIMIT,
    OrdType.LIMIT,
    OrdType.MARKET,
    OrdType.MARKET,
    OrdType.STOP,
    OrdType.STOP_LIMIT,
    OrdType.MARKET_IF_TOUCHED,
    OrdType.LIMIT_IF_TOUCHED,
    OrdType.PEGGED,
)
_TIFS = (
    None,
    None,
    None,
    None,
    TimeInForce.GOOD_TILL_CANCEL,
    TimeInForce.IMMEDIATE_OR_CANCEL,
    TimeInForce.FILL_OR_KILL,
    TimeInForce.DAY,
)


@st.composite
def _price(draw: Any, symbol: str) -> int:
    """Near the mid mostly (crosses, queues); sometimes several percent away (price band)."""
    mid = MARKETS[symbol][0]
    scale = draw(st.sampled_from((1, 1, 1, 1, 1, 1, 1, mid // 400)))
    return max(1, mid + draw(st.integers(-6, 6)) * scale)


@st.composite
def _exec_inst(draw: Any, ord_type: OrdType) -> int:
    flags = 0
    if draw(st.integers(0, 2)) == 0:
        for flag in draw(st.lists(st.sampled_from(_FLAG_POOL), min_size=1, max_size=2)):
            flags |= flag
    if ord_type in _STOP_TYPES and draw(st.booleans()):
        flags |= draw(
            st.sampled_from((ExecInst.MARK_PRICE, ExecInst.LAST_PRICE, ExecInst.INDEX_PRICE))
        )
    if draw(st.integers(0, 2)):  # keep most orders free of rarely valid flags
        flags &= ~(ExecInst.LAST_WITHIN_MARK | ExecInst.FIXED)
    if ord_type == OrdType.PEGGED:
        flags |= ExecInst.FIXED
    return flags


@st.composite
def _place(draw: Any, symbols: tuple[str, ...]) -> PlaceOrder:
    symbol = draw(st.sampled_from(symbols))
    spec = SPECS[symbol]
    ord_type = draw(st.sampled_from(_ORD_TYPES))
    exec_inst = draw(_exec_inst(ord_type))
    lots = draw(st.integers(1, 8))
    qty: int | None = lots * spec.lot_size + (1 if draw(st.integers(0, 40)) == 0 else 0)
    side: Side | None = draw(st.sampled_from((Side.BUY, Side.SELL)))
    if exec_inst & ExecInst.CLOSE and draw(st.booleans()):
        side, qty = draw(st.sampled_from(((None, None), (side, None), (None, qty))))
    priced = ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT, OrdType.LIMIT_IF_TOUCHED)
    price = draw(_price(symbol)) if priced else None
    stop_px = draw(_price(symbol)) if ord_type in _STOP_TYPES else None
    peg_type, peg_offset = PegPriceType.NONE, None
    if ord_type == OrdType.PEGGED:
        peg_type = draw(st.sampled_from((PegPriceType.PRIMARY_PEG, PegPriceType.MARKET_PEG)))
        peg_offset = draw(st.integers(-5, 5))
    elif ord_type in _STOP_TYPES and draw(st.integers(0, 4)) == 0:
        peg_type, stop_px = PegPriceType.TRAILING_STOP_PEG, None
        peg_offset = draw(st.sampled_from((-8, -3, 3, 8)))
    display = draw(st.sampled_from((None, None, None, None, 0, 1, 2)))
    display_qty = None if display is None else min(display, lots) * spec.lot_size
    if exec_inst & ExecInst.ALL_OR_NONE:
        display_qty = 0
    contingency, link = ContingencyType.NONE, ""
    if draw(st.integers(0, 6)) == 0:
        contingency = draw(
            st.sampled_from(
                (ContingencyType.ONE_CANCELS_THE_OTHER, ContingencyType.ONE_TRIGGERS_THE_OTHER)
            )
        )
        link = draw(st.sampled_from(LINK_IDS))
    return PlaceOrder(
        0,
        draw(_accounts),
        symbol,
        side,
        qty,
        ord_type,
        price,
        stop_px,
        draw(st.sampled_from(_TIFS)),
        exec_inst,
        display_qty,
        peg_type,
        peg_offset,
        draw(st.sampled_from(CL_ORD_IDS)),
        link,
        contingency,
    )


@st.composite
def _amend(draw: Any, symbols: tuple[str, ...]) -> AmendOrder:
    order_id: int | None = draw(_order_ids)
    account = 0 if draw(st.integers(0, 7)) else draw(_accounts)
    symbol = draw(st.sampled_from(symbols))  # scales the numbers; the order may be elsewhere
    lot = SPECS[symbol].lot_size
    kind = draw(
        st.sampled_from(("qty", "leaves", "price", "price", "price_qty", "stop", "rename", "peg"))
    )
    qty = draw(st.integers(0, 10)) * lot if kind in ("qty", "price_qty") else None
    leaves = draw(st.integers(0, 8)) * lot if kind == "leaves" else None
    price = draw(_price(symbol)) if kind in ("price", "price_qty") else None
    stop_px = draw(_price(symbol)) if kind == "stop" else None
    cl_ord_id = draw(st.sampled_from(("x", "y", "a"))) if kind == "rename" else ""
    peg_offset = draw(st.sampled_from((-8, -2, 2, 8))) if kind == "peg" else None
    orig_cl_ord_id = ""
    if draw(st.integers(0, 5)) == 0:  # by clOrdID instead of order id
        order_id, orig_cl_ord_id = None, draw(st.sampled_from(("a", "b", "x")))
        account = draw(_accounts)
    return AmendOrder(
        0, account, order_id, orig_cl_ord_id, cl_ord_id, qty, leaves, price, stop_px, peg_offset
    )


@st.composite
def _cancel(draw: Any) -> CancelOrders:
    order_ids = tuple(draw(st.lists(_order_ids, min_size=1, max_size=2)))
    cl_ord_ids = draw(st.sampled_from(((), (), (), ("a",), ("b", "zz"))))
    return CancelOrders(0, draw(st.sampled_from((0, 0, 0, 1, 2))), order_ids, cl_ord_ids, "")


@st.composite
def _index(draw: Any, symbols: tuple[str, ...]) -> IndexPrice:
    symbol = draw(st.sampled_from(symbols))
    index = MARKETS[symbol][1]
    priced_by = SPECS[INDICES[index]]
    ticks = draw(_price(INDICES[index]))
    return IndexPrice(0, index, ticks * priced_by.tick_num, priced_by.tick_den)


@st.composite
def _money(draw: Any) -> object:
    kind = draw(st.sampled_from(("deposit", "request", "request", "cancel", "complete")))
    currency = draw(st.sampled_from(tuple(BALANCE_TIERS)))
    account = draw(_accounts)
    if kind == "deposit":
        amount = draw(st.sampled_from(BALANCE_TIERS[currency][1:]))
        return Deposit(0, account, currency, amount, f"dep-{draw(st.integers(0, 10**6))}")
    wid = draw(st.sampled_from(WITHDRAWAL_IDS))
    if kind == "request":
        amount = draw(st.sampled_from((1, 1000, 10**6, 10**8, 10**11)))
        return WithdrawalRequest(0, account, currency, amount, draw(st.sampled_from((0, 7))), wid)
    return (WithdrawalCancel if kind == "cancel" else WithdrawalComplete)(0, wid)


@st.composite
def _admin(draw: Any, symbols: tuple[str, ...]) -> object:
    account = draw(_accounts)
    kind = draw(
        st.sampled_from(
            (
                "tier",
                "discount",
                "cancel_all",
                "cancel_all",
                "after",
                "state",
                "tick",
                "leverage",
                "leverage",
                "risk_limit",
                "margin",
                "margin",
            )
        )
    )
    if kind == "tier":
        return SetFeeTier(0, account, draw(st.integers(0, len(FEE_TIERS))))
    if kind == "discount":
        return SetFeeDiscount(0, account, draw(st.sampled_from((0, 250_000, 10**6, 10**6 + 1))))
    if kind == "cancel_all":
        return CancelAll(
            0,
            account,
            draw(st.sampled_from(("", "", *symbols, "NOPE"))),
            draw(st.sampled_from((None, None, Side.BUY, Side.SELL))),
            "",
        )
    if kind == "after":
        return CancelAllAfter(0, account, draw(st.sampled_from((0, 500, 3_000))))
    if kind == "state":
        state = draw(st.sampled_from(("Open", "Open", "Closed")))
        return SetInstrumentState(0, draw(st.sampled_from(symbols)), state)
    symbol = draw(st.sampled_from(symbols))
    spec = SPECS[symbol]
    if kind == "leverage":
        leverage_e2 = draw(st.sampled_from((0, 0, 100, 300, 1_000, 5_000, 10_000, 10_001)))
        return SetLeverage(0, account, symbol, leverage_e2)
    if kind == "risk_limit":
        steps = draw(st.integers(0, 3))
        off_grid = draw(st.sampled_from((0, 0, 0, 1)))
        return SetRiskLimit(0, account, symbol, spec.risk_limit + steps * spec.risk_step + off_grid)
    if kind == "margin":
        amount = draw(st.sampled_from((-(10**8), -(10**6), -1_000, 1_000, 10**6, 10**8)))
        return TransferMargin(0, account, symbol, amount)
    return Tick(0)


@st.composite
def _batch(draw: Any, symbols: tuple[str, ...]) -> Batch:
    subs = draw(st.lists(st.one_of(_place(symbols), _amend(symbols)), min_size=1, max_size=3))
    return Batch(0, tuple(subs))


_extra_ns = st.sampled_from((0, 0, 0, 0, 0, 0, 0, 0, 700 * STEP_NS, 4_000 * STEP_NS, 3_600 * 10**9))


_COMMAND_WEIGHTS = (
    ("place", 12),
    ("amend", 4),
    ("cancel", 2),
    ("index", 3),
    ("money", 2),
    ("admin", 3),
    ("batch", 1),
)
_COMMAND_KINDS = tuple(kind for kind, weight in _COMMAND_WEIGHTS for _ in range(weight))


@st.composite
def _command(draw: Any, symbols: tuple[str, ...]) -> object:
    kind = draw(st.sampled_from(_COMMAND_KINDS))
    strategy = {
        "place": _place(symbols),
        "amend": _amend(symbols),
        "cancel": _cancel(),
        "index": _index(symbols),
        "money": _money(),
        "admin": _admin(symbols),
        "batch": _batch(symbols),
    }[kind]
    return draw(strategy)


@st.composite
def streams(draw: Any, max_size: int = 80) -> list[tuple[int, object]]:
    symbols = tuple(draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3, unique=True)))
    funding: list[tuple[int, object]] = []
    for account in ACCOUNTS:
        for currency, tiers in BALANCE_TIERS.items():
            amount = draw(st.sampled_from((*tiers, tiers[-1], tiers[-1], tiers[-2])))
            if amount:
                funding.append(
                    (0, Deposit(0, account, currency, amount, f"seed-{account}-{currency}"))
                )
    body = draw(st.lists(st.tuples(_extra_ns, _command(symbols)), min_size=20, max_size=max_size))
    return funding + body


# Running a stream -------------------------------------------------------------------------------


def _owner(state: State, order_id: int | None) -> int:
    order = state.orders.get(order_id or 0)
    return order.account if order is not None else 1


def _order_id(state: State, reference: int) -> int:
    if reference > 0:
        return reference
    live = sorted(state.orders)
    return live[(reference + 1) % len(live) - 1] if live else 10**6


def resolve(state: State, ts_ns: int, command: Any) -> Any:
    """Stamp ``ts_ns``; replace order references and the "owner" placeholder (account 0)."""
    if isinstance(command, Batch):
        return Batch(ts_ns, tuple(resolve(state, ts_ns, sub) for sub in command.commands))
    command = command._replace(ts_ns=ts_ns)
    if isinstance(command, AmendOrder) and command.order_id is not None:
        command = command._replace(order_id=_order_id(state, command.order_id))
    if isinstance(command, AmendOrder) and command.account == 0:
        command = command._replace(account=_owner(state, command.order_id))
    if isinstance(command, CancelOrders):
        ids = tuple(_order_id(state, r) for r in command.order_ids)
        command = command._replace(order_ids=ids)
        if command.account == 0:
            command = command._replace(account=_owner(state, ids[0]))
    return command


class Conservation:
    """Money movements seen in the events, checked against the ledger after every command."""

    def __init__(self) -> None:
        self.external: dict[str, int] = {}  # deposits - completed withdrawals
        self.balances: dict[tuple[str, int], int] = {}

    def see(self, events: list[object]) -> None:
        for e in events:
            if not isinstance(e, Transfer):
                continue
            assert e.amount > 0 and e.debit_account != e.credit_account, e
            key_d, key_c = (e.currency, e.debit_account), (e.currency, e.credit_account)
            self.balances[key_d] = self.balances.get(key_d, 0) - e.amount
            self.balances[key_c] = self.balances.get(key_c, 0) + e.amount
            if e.code == TransferCode.DEPOSIT:
                self.external[e.currency] = self.external.get(e.currency, 0) + e.amount
            elif e.code == TransferCode.WITHDRAWAL_COMPLETE:
                self.external[e.currency] = self.external.get(e.currency, 0) - e.amount

    def check(self, state: State) -> None:
        totals = audit.conservation_totals(state)
        for currency, total in totals.items():
            assert total == self.external.get(currency, 0), f"{currency} not conserved"
        ledger = {
            (cur, a): v for cur, book in state.ledger.balances.items() for a, v in book.items() if v
        }
        assert ledger == {k: v for k, v in self.balances.items() if v}, "transfers != ledger"


class EventRows:
    """The event stream alone rebuilds the L2 books, order rows stay self-consistent, and a
    published position's bankruptcy price is the one the state after the command gives (the
    follow-up reuses the account views it built for the thresholds: they must not be stale)."""

    def __init__(self) -> None:
        self.l2: dict[tuple[str, int, int], int] = {}  # (symbol, side, price) -> size
        self.traded: dict[int, int] = {}  # order id -> sum of last_qty over its Trade rows
        self.ended: set[int] = set()
        self.positions: dict[tuple[str, int], PositionChanged] = {}  # this command's rows

    def see(self, events: list[object]) -> None:
        self.positions = {}
        for e in events:
            if isinstance(e, PositionChanged):
                self.positions[(e.symbol, e.account)] = e
            elif isinstance(e, BookLevel):
                assert e.size >= 0, e
                self.l2[(e.symbol, e.side, e.price)] = e.size
            elif isinstance(e, OrderEvent):
                self._row(e)

    def _row(self, e: OrderEvent) -> None:
        assert e.order_id not in self.ended, f"row after the end of order {e.order_id}"
        assert e.leaves_qty >= 0 and e.cum_qty >= 0, e
        if e.ord_status in TERMINAL_STATUSES:
            assert e.leaves_qty == 0, e
            self.ended.add(e.order_id)
        else:
            assert e.cum_qty + e.leaves_qty == e.order_qty, e
        if e.exec_type == ExecType.TRADE:
            assert e.last_qty > 0 and e.last_px is not None, e
            self.traded[e.order_id] = self.traded.get(e.order_id, 0) + e.last_qty
        else:
            assert e.last_qty == 0, e
        assert self.traded.get(e.order_id, 0) == e.cum_qty, f"cum_qty drift: {e}"

    def check(self, state: State) -> None:
        engine_l2 = {
            (symbol, side, price): level.visible_size
            for symbol, market in state.markets.items()
            for side in (1, -1)
            for price, level in market.book.side(side).levels.items()
            if level.visible_size
        }
        assert {k: v for k, v in self.l2.items() if v} == engine_l2, "BookLevel deltas != book"
        for (symbol, account), row in self.positions.items():
            market = state.markets[symbol]
            pos = market.positions.get(account)
            if pos is None or account <= 0 or pos.qty == 0 or pos.qty != row.current_qty:
                continue
            bankrupt, _ = liquidation.published_prices(state, market, pos)
            assert row.bankrupt_price == bankrupt, f"stale bankruptcy price: {row}"


class PriorityWatch:
    """Checks every fill against a linear scan of the resting orders (see the module doc)."""

    def __init__(self) -> None:
        self.arrival: dict[int, int] = {}  # id(order) -> arrival stamp
        self.clock = 0
        self.fills = 0
        self._add = BookSide.add
        self._requeue = BookSide.requeue
        self._settle = matching.settle_fill

    def _stamp(self, order: Order) -> None:
        self.clock += 1
        self.arrival[id(order)] = self.clock

    @contextlib.contextmanager
    def installed(self) -> Iterator["PriorityWatch"]:
        watch = self

        def add(side: BookSide, order: Order) -> Any:
            level = watch._add(side, order)
            watch._stamp(order)
            return level

        def requeue(side: BookSide, order: Order, level: Any) -> None:
            watch._requeue(side, order, level)
            watch._stamp(order)

        def settle(
            state: State, market: Market, taker: Order, maker: Order, qty: int, out: list[object]
        ) -> None:
            watch.check(state, market, taker, maker)
            watch._settle(state, market, taker, maker, qty, out)

        with (
            mock.patch.object(BookSide, "add", add),
            mock.patch.object(BookSide, "requeue", requeue),
            mock.patch.object(matching, "settle_fill", settle),
        ):
            yield self

    def check(self, state: State, market: Market, taker: Order, maker: Order) -> None:
        self.fills += 1
        limit = taker.limit_price
        assert limit is not None
        side = taker.side
        resting = [
            o
            for o in state.orders.values()
            if o.symbol == market.spec.symbol
            and o.in_book
            and o.side == -side
            and o.price is not None
            and (o.price <= limit if side > 0 else o.price >= limit)
        ]
        assert maker in resting, f"maker {maker.order_id} not a resting order within the limit"
        resting.sort(key=lambda o: (o.price * side, o.display_qty == 0, self.arrival[id(o)]))
        for order in resting:
            if order is maker:
                return
            assert order.account != taker.account, (
                f"taker {taker.order_id} traded past its own order {order.order_id}"
            )
            room = matching.reduce_only_room(market, taker)
            shown = order.leaves_qty if order.display_qty == 0 else order.visible_qty
            qty = min(room, shown, matching.reduce_only_room(market, order))
            all_or_none = bool(order.exec_inst & ExecInst.ALL_OR_NONE)
            assert qty == 0 or (all_or_none and qty < order.leaves_qty), (
                f"maker {maker.order_id} filled ahead of {order.order_id}"
            )


def run(
    stream: list[tuple[int, object]],
    engine: Engine,
    checkers: tuple[Conservation | EventRows, ...] = (),
    narrate: bool = True,
) -> tuple[list[Any], list[list[object]], list[str]]:
    """Apply ``stream``; return the concrete commands, each command's events, and hashes."""
    commands: list[Any] = []
    outputs: list[list[object]] = []
    hashes: list[str] = []
    ts_ns = T0_NS
    for extra_ns, symbolic in stream:
        ts_ns += STEP_NS + extra_ns
        command = resolve(engine.state, ts_ns, symbolic)
        if narrate:
            note(repr(command))
        events = engine.apply(command)
        commands.append(command)
        outputs.append(events)
        audit.audit(engine.state)
        for checker in checkers:
            checker.see(events)
            checker.check(engine.state)
        hashes.append(engine.state_hash())
    return commands, outputs, hashes


# Properties -------------------------------------------------------------------------------------


@pytest.mark.slow
@settings(PROFILE, max_examples=120 * EXAMPLES_SCALE)
@given(streams())
def test_invariants_conservation_and_priority_hold_after_every_command(
    stream: list[tuple[int, object]],
) -> None:
    # The watch patches core functions: compiled code calls them directly, so it watches the
    # pure-Python core only (`make test-pure`, and CI); the rest runs on both builds.
    watch = (
        PriorityWatch().installed() if perpetua.CORE_BUILD == "python" else contextlib.nullcontext()
    )
    with watch:
        run(stream, Engine(CATALOGUE), (Conservation(), EventRows()))


@pytest.mark.slow
@settings(PROFILE, max_examples=40 * EXAMPLES_SCALE)
@given(streams())
def test_same_stream_gives_same_events_and_hash(stream: list[tuple[int, object]]) -> None:
    commands, outputs, hashes = run(stream, Engine(CATALOGUE))
    again = Engine(CATALOGUE)
    for command, events, state_hash in zip(commands, outputs, hashes, strict=True):
        assert again.apply(command) == events
        assert again.state_hash() == state_hash


# The events recovery does not build (Engine.apply with publish=False).
UNPUBLISHED = (
    OrderEvent,
    BookLevel,
    Trade,
    Transfer,
    PositionChanged,
    OrderMarginChanged,
    DeleverageRanked,
)


@settings(PROFILE, max_examples=25 * EXAMPLES_SCALE)
@given(streams())
def test_replay_without_events_reaches_the_same_state(stream: list[tuple[int, object]]) -> None:
    """Recovery applies with ``publish=False``: the same state hash after every command, and
    none of the unpublished event types built (the rest are as with events)."""
    commands, outputs, hashes = run(stream, Engine(CATALOGUE))
    quiet = Engine(CATALOGUE)
    for command, events, state_hash in zip(commands, outputs, hashes, strict=True):
        built = quiet.apply(command, publish=False)
        assert built == [e for e in events if not isinstance(e, UNPUBLISHED)]
        assert quiet.state_hash() == state_hash
    # publishing again afterwards is the default, per command
    assert quiet.apply(Tick(commands[-1].ts_ns)) == []
    assert quiet.state.publish and quiet.state.ledger.publish


def _restored(engine: Engine, through_msgpack: bool) -> Engine:
    image: Any = engine.snapshot()
    if through_msgpack:
        image = msgspec.msgpack.decode(msgspec.msgpack.encode(image))
    copy = Engine(CATALOGUE)
    copy.restore(image)
    return copy


@settings(PROFILE, max_examples=40 * EXAMPLES_SCALE)
@given(streams(), st.lists(st.tuples(st.integers(0, 80), st.booleans()), min_size=1, max_size=4))
@pytest.mark.slow
def test_snapshot_roundtrip_mid_stream(
    stream: list[tuple[int, object]], cuts: list[tuple[int, bool]]
) -> None:
    """Restore copies at random points; each must hash equal and then behave identically."""
    commands, outputs, hashes = run(stream, Engine(CATALOGUE))
    where = {position % len(commands): via for position, via in cuts}
    engine = Engine(CATALOGUE)
    for position, (command, events, state_hash) in enumerate(
        zip(commands, outputs, hashes, strict=True)
    ):
        if position in where:
            before = engine.state_hash()
            engine = _restored(engine, where[position])
            assert engine.state_hash() == before
            audit.audit(engine.state)
        assert engine.apply(command) == events
        assert engine.state_hash() == state_hash


_CHILD = """
import hashlib, pickle, sys
from tests.core.test_properties import CATALOGUE, Engine, run
stream = pickle.loads(sys.stdin.buffer.read())
_, outputs, hashes = run(stream, Engine(CATALOGUE), narrate=False)
print(hashes[-1], hashlib.sha256(repr(outputs).encode()).hexdigest())
"""


@settings(PROFILE, max_examples=1 * EXAMPLES_SCALE)
@given(streams())
def test_events_and_hash_do_not_depend_on_the_string_hash_seed(
    stream: list[tuple[int, object]],
) -> None:
    """Style rule 8: nothing ordered by string hashes reaches events or ``state_hash``; a child
    process with another PYTHONHASHSEED must produce the same events and hash."""
    _, outputs, hashes = run(stream, Engine(CATALOGUE))
    expected = f"{hashes[-1]} {hashlib.sha256(repr(outputs).encode()).hexdigest()}"
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=pickle.dumps(stream),
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        check=True,
    )
    assert child.stdout.decode().strip() == expected


def test_spot_hold_rate_covers_every_accounts_taker_rate() -> None:
    """Holds reserve the instrument's base taker rate, so it must bound every tier/discount."""
    for spec in CATALOGUE:
        for tier in range(len(FEE_TIERS)):
            for discount_ppm in (0, 250_000, 10**6):
                assert fee_rates_ppm(spec, tier, discount_ppm)[1] <= spec.taker_fee_ppm


def test_fee_setting_changes_leave_resting_spot_holds_exact() -> None:
    """Found by the stream property: a discount given or taken away while a spot buy rests left
    its hold at the old rate ("hold drift"); recomputing it at a higher rate after a partial fill
    could exceed the balance and crash the engine."""
    spec = SPECS["XBT_USDT"]
    quote = 200 * 100_000 * spec.multiplier * spec.tick_num * 10**6 // (spec.tick_den * 10**6)
    need = quote + -(-quote * spec.taker_fee_ppm // 10**6)
    stream: list[tuple[int, object]] = [
        (0, Deposit(0, 1, "USDt", need, "d1")),
        (0, Deposit(0, 2, "XBt", 10**8, "d2")),
        (0, SetFeeDiscount(0, 1, 250_000)),
        (0, PlaceOrder(0, 1, "XBT_USDT", Side.BUY, 200, price=100_000)),
        (0, SetFeeDiscount(0, 1, 0)),
        (0, PlaceOrder(0, 2, "XBT_USDT", Side.SELL, 100, price=100_000)),
        (0, SetFeeTier(0, 1, 3)),
        (0, PlaceOrder(0, 2, "XBT_USDT", Side.SELL, 100, price=100_000)),
    ]
    _, outputs, _ = run(stream, Engine(CATALOGUE), (Conservation(), EventRows()), narrate=False)
    assert sum(isinstance(e, Trade) for events in outputs for e in events) == 2


def test_position_filled_by_the_insurance_funds_order_gets_a_fresh_threshold() -> None:
    """Found by the stream property (shrunk): account 1's position closes (threshold dropped),
    then the fund's liquidation order of account 5 fills account 1's resting sell in a later
    follow-up round. The follow-up skipped positions it had refreshed in an earlier round, so
    account 1's new short had no liquidation threshold ("stale liquidation threshold")."""
    buy, sell, day, fok = Side.BUY, Side.SELL, TimeInForce.DAY, TimeInForce.FILL_OR_KILL
    oco, oto = ContingencyType.ONE_CANCELS_THE_OTHER, ContingencyType.ONE_TRIGGERS_THE_OTHER
    stream: list[tuple[int, object]] = [
        (0, Deposit(0, 1, "USDt", 500_000_000, "seed-1-USDt")),
        (1_000_000, Deposit(0, 3, "USDt", 500_000_000, "seed-3-USDt")),
        (0, Deposit(0, 5, "USDt", 2_000_000, "seed-5-USDt")),
        (0, PlaceOrder(0, 5, "ETHUSDT", sell, 3000, price=60001, exec_inst=1)),
        (
            1_000_000,
            PlaceOrder(0, 3, "ETHUSDT", buy, 2000, price=59999, exec_inst=1, cl_ord_id="a"),
        ),
        (
            0,
            PlaceOrder(
                0,
                3,
                "ETHUSDT",
                buy,
                1000,
                OrdType.MARKET,
                cl_ord_link_id="L1",
                contingency_type=oco,
            ),
        ),
        (2_000_000, PlaceOrder(0, 1, "ETHUSDT", sell, 1000, price=60000, exec_inst=1)),
        (
            4_000_000,
            PlaceOrder(
                0, 1, "ETHUSDT", sell, 6000, price=60003, cl_ord_link_id="L2", contingency_type=oto
            ),
        ),
        (0, PlaceOrder(0, 3, "ETHUSDT", buy, 7000, price=59998, time_in_force=fok, exec_inst=260)),
        (
            702_000_000,
            PlaceOrder(
                0, 5, "ETHUSDT", buy, 7000, OrdType.LIMIT_IF_TOUCHED, price=60000, stop_px=59999
            ),
        ),
        (
            3_605_405_000_000,
            Batch(
                0,
                (
                    PlaceOrder(
                        0, 1, "ETHUSDT", sell, 5000, price=59994, time_in_force=day, cl_ord_id="c"
                    ),
                    PlaceOrder(
                        0,
                        3,
                        "ETHUSDT",
                        sell,
                        1000,
                        price=59997,
                        time_in_force=fok,
                        display_qty=0,
                        cl_ord_id="b",
                    ),
                    PlaceOrder(0, 4, "ETHUSDT", buy, 7000, price=59250, time_in_force=fok),
                ),
            ),
        ),
        (4_001_000_000, SetFeeTier(0, 1, 3)),
        (4_714_000_000, CancelOrders(0, 1, (8, 5))),
        (10_820_030_000_000, IndexPrice(0, ".BETHT", 60750, 20)),
        (2_000_000, AmendOrder(0, 5, 1, order_qty=3000, price=59995)),
        (
            4_002_000_000,
            PlaceOrder(
                0,
                1,
                "ETHUSDT",
                buy,
                7000,
                OrdType.STOP_LIMIT,
                price=60003,
                stop_px=60001,
                time_in_force=day,
            ),
        ),
    ]
    run(stream, Engine(CATALOGUE), (Conservation(), EventRows()), narrate=False)
