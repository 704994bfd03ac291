"""Differential test: the engine's book and matcher against the naive ``ReferenceExchange``.

Hypothesis generates streams of places (Limit GTC/IOC/FOK, ParticipateDoNotInitiate, displayed,
iceberg and hidden; Market IOC/FOK), cancels, cancel-alls and amends of price and quantity, on
XBTUSD (inverse) and XBT_USDT (spot), by three well-funded accounts on a narrow price range so
orders cross, queue and self-trade often. After every command the two must agree on: whether it
was rejected, the fills in order (maker, taker, qty, price), every live order's leaves, displayed
part and price, and the L2 book of each symbol (which must also equal the L2 rebuilt from the
engine's ``BookLevel`` deltas). Engine order ids map to reference ids by creation order.
"""

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpetua.core import audit
from perpetua.core.catalogue import by_symbol, default_catalogue
from perpetua.core.commands import AmendOrder, CancelAll, CancelOrders, Deposit, PlaceOrder
from perpetua.core.engine import Engine
from perpetua.core.enums import ExecInst, ExecType, OrdType, Side, TimeInForce
from perpetua.core.events import BookLevel, OrderEvent, Rejected, Trade
from tests.core.reference_book import FOK, GTC, IOC, Fill, ReferenceExchange

pytestmark = pytest.mark.slow  # real processes or long randomised runs; CI runs them all

CATALOGUE = default_catalogue()
# Sized for the whole file to run in well under a minute. Hunt longer with, for example,
# PERPETUA_EXAMPLES_SCALE=20; a failure prints its shrunk stream and a reproduce_failure blob.
EXAMPLES_SCALE = int(os.environ.get("PERPETUA_EXAMPLES_SCALE", "1"))
PROFILE = settings(deadline=None, print_blob=True)
SPECS = by_symbol(CATALOGUE)
SYMBOLS = ("XBTUSD", "XBT_USDT")
MID_TICKS = {"XBTUSD": 500_000, "XBT_USDT": 100_000}
ACCOUNTS = (1, 2, 3)
T0_NS = 1_800_000_000_000_000_000
STEP_NS = 1_000_000
NO_SUCH_ORDER = 10**9
TIF_CODES = {
    GTC: TimeInForce.GOOD_TILL_CANCEL,
    IOC: TimeInForce.IMMEDIATE_OR_CANCEL,
    FOK: TimeInForce.FILL_OR_KILL,
}

# Commands as plain tuples (so Hypothesis prints a readable failing stream):
#   ("place", account, symbol, side, lots, offset | None, tif, pdni, display_lots | None)
#   ("cancel", target, wrong_account)
#   ("cancel_all", account, symbol)
#   ("amend", target, wrong_account, qty_lots | None, leaves_lots | None, offset | None)
# ``target`` picks, newest first, one of the live orders (3 times in 4) or of all orders created
# so far, or (1 time in 8) an id that never existed;
# ``offset`` is ticks from the symbol's mid; ``display_lots`` 0 is hidden.

_accounts = st.sampled_from(ACCOUNTS)
_symbols = st.sampled_from(SYMBOLS)
_sides = st.sampled_from((1, -1))
_offsets = st.integers(-3, 3)
_targets = st.integers(0, 255)


@st.composite
def _limit(draw: Any) -> tuple[object, ...]:
    tif = draw(st.sampled_from((GTC, GTC, GTC, IOC, FOK)))
    pdni = tif == GTC and draw(st.integers(0, 5)) == 0
    display = draw(st.sampled_from((None, None, None, 0, 0, 1, 1, 2)))
    return (
        "place",
        draw(_accounts),
        draw(_symbols),
        draw(_sides),
        draw(st.integers(1, 6)),
        draw(_offsets),
        tif,
        pdni,
        display,
    )


@st.composite
def _market(draw: Any) -> tuple[object, ...]:
    return (
        "place",
        draw(_accounts),
        draw(_symbols),
        draw(_sides),
        draw(st.integers(1, 12)),
        None,
        draw(st.sampled_from((IOC, IOC, FOK))),
        False,
        None,
    )


@st.composite
def _amend(draw: Any) -> tuple[object, ...]:
    kind = draw(st.sampled_from(("qty", "leaves", "price", "price_qty")))
    qty = draw(st.integers(0, 7)) if kind in ("qty", "price_qty") else None
    leaves = draw(st.integers(0, 6)) if kind == "leaves" else None
    offset = draw(_offsets) if kind in ("price", "price_qty") else None
    return ("amend", draw(_targets), draw(st.integers(0, 9)) == 0, qty, leaves, offset)


_commands = st.one_of(
    _limit(),
    _limit(),
    _limit(),
    _market(),
    _amend(),
    _amend(),
    st.tuples(st.just("cancel"), _targets, st.integers(0, 9).map(lambda n: n == 0)),
    st.tuples(st.just("cancel_all"), _accounts, st.sampled_from(("", *SYMBOLS))),
)
streams = st.lists(_commands, min_size=20, max_size=80)


class Harness:
    """One engine and one reference fed the same stream, with the id mapping between them."""

    def __init__(self) -> None:
        self.engine = Engine(CATALOGUE)
        self.reference = ReferenceExchange(
            band_ppm={s: SPECS[s].price_band_ppm for s in SYMBOLS},
            max_price={s: SPECS[s].max_price_ticks for s in SYMBOLS},
        )
        self.created: list[tuple[int, int, int]] = []  # (engine id, reference id, account)
        self.engine_to_ref: dict[int, int] = {}
        self.l2_from_events: dict[str, dict[int, dict[int, int]]] = {
            s: {1: {}, -1: {}} for s in SYMBOLS
        }
        self.ts_ns = T0_NS
        for account in ACCOUNTS:
            for currency, amount in (("XBt", 10**13), ("USDt", 10**15)):
                self._engine_apply(
                    Deposit(self.ts_ns, account, currency, amount, f"{currency}-{account}")
                )

    def _engine_apply(self, cmd: object) -> list[object]:
        events = self.engine.apply(cmd)  # type: ignore[arg-type]
        for event in events:
            if isinstance(event, BookLevel):
                self.l2_from_events[event.symbol][event.side][event.price] = event.size
        return events

    def _target(self, index: int, wrong_account: bool) -> tuple[int, int, int]:
        """(engine id, reference id, account to act as) for a stream target."""
        live = [c for c in self.created if c[1] in self.reference.live()]
        pool = live if index % 4 and live else self.created
        index //= 4
        if not pool or index % 8 == 0:
            return NO_SUCH_ORDER, NO_SUCH_ORDER, ACCOUNTS[index % len(ACCOUNTS)]
        engine_id, ref_id, account = pool[-1 - index // 8 % len(pool)]
        if wrong_account:
            account = ACCOUNTS[(ACCOUNTS.index(account) + 1) % len(ACCOUNTS)]
        return engine_id, ref_id, account

    def step(self, command: tuple[Any, ...]) -> None:
        self.ts_ns += STEP_NS
        kind = command[0]
        if kind == "place":
            events, ref_rejected, ref_fills = self._place(*command[1:])
        elif kind == "cancel":
            engine_id, ref_id, account = self._target(command[1], command[2])
            events = self._engine_apply(CancelOrders(self.ts_ns, account, (engine_id,)))
            ref_rejected, ref_fills = not self.reference.cancel(account, ref_id), []
        elif kind == "cancel_all":
            _, account, symbol = command
            events = self._engine_apply(CancelAll(self.ts_ns, account, symbol))
            self.reference.cancel_all(account, symbol)
            ref_rejected, ref_fills = False, []
        else:
            events, ref_rejected, ref_fills = self._amend(*command[1:])
        self._compare(events, ref_rejected, ref_fills)

    def _place(
        self,
        account: int,
        symbol: str,
        side: int,
        lots: int,
        offset: int | None,
        tif: str,
        pdni: bool,
        display_lots: int | None,
    ) -> tuple[list[object], bool, list[Fill]]:
        lot = SPECS[symbol].lot_size
        price = None if offset is None else MID_TICKS[symbol] + offset
        display = None if display_lots is None else min(display_lots, lots) * lot
        cmd = PlaceOrder(
            self.ts_ns,
            account,
            symbol,
            Side(side),
            lots * lot,
            ord_type=OrdType.LIMIT if price is not None else OrdType.MARKET,
            price=price,
            time_in_force=TIF_CODES[tif],
            exec_inst=ExecInst.PARTICIPATE_DO_NOT_INITIATE if pdni else 0,
            display_qty=display,
        )
        events = self._engine_apply(cmd)
        new = [e for e in events if isinstance(e, OrderEvent) and e.exec_type == ExecType.NEW]
        assert len(new) == 1, f"engine did not accept {cmd}: {events}"
        ref_id, fills = self.reference.place(
            account, symbol, side, lots * lot, price, tif, pdni, display
        )
        engine_id = new[0].order_id
        self.created.append((engine_id, ref_id, account))
        self.engine_to_ref[engine_id] = ref_id
        return events, False, fills

    def _amend(
        self,
        target: int,
        wrong_account: bool,
        qty_lots: int | None,
        leaves_lots: int | None,
        offset: int | None,
    ) -> tuple[list[object], bool, list[Fill]]:
        engine_id, ref_id, account = self._target(target, wrong_account)
        order = self.engine.state.orders.get(engine_id)
        symbol = order.symbol if order is not None else SYMBOLS[target % len(SYMBOLS)]
        lot = SPECS[symbol].lot_size
        qty = None if qty_lots is None else qty_lots * lot
        leaves = None if leaves_lots is None else leaves_lots * lot
        price = None if offset is None else MID_TICKS[symbol] + offset
        events = self._engine_apply(
            AmendOrder(
                self.ts_ns, account, engine_id, order_qty=qty, leaves_qty=leaves, price=price
            )
        )
        accepted, fills = self.reference.amend(account, ref_id, qty, leaves, price)
        return events, not accepted, fills

    def _compare(self, events: list[object], ref_rejected: bool, ref_fills: list[Fill]) -> None:
        rejected = any(isinstance(e, Rejected) for e in events)
        assert rejected == ref_rejected, f"rejection differs: engine {events}"
        fills = [
            Fill(
                self.engine_to_ref[t.maker_order_id],
                self.engine_to_ref[t.taker_order_id],
                t.qty,
                t.price,
            )
            for t in events
            if isinstance(t, Trade)
        ]
        assert fills == ref_fills
        live = {
            self.engine_to_ref[o.order_id]: (o.leaves_qty, o.visible_qty, o.price)
            for o in self.engine.state.orders.values()
        }
        assert live == self.reference.live()
        for symbol in SYMBOLS:
            expected = self.reference.l2(symbol)
            assert engine_l2(self.engine, symbol) == expected, symbol
            from_events = {
                side: {p: s for p, s in levels.items() if s}
                for side, levels in self.l2_from_events[symbol].items()
            }
            assert from_events == expected, f"{symbol}: BookLevel deltas disagree"
        audit.audit(self.engine.state)


def engine_l2(engine: Engine, symbol: str) -> dict[int, dict[int, int]]:
    book = engine.state.markets[symbol].book
    return {
        side: {p: lvl.visible_size for p, lvl in book.side(side).levels.items() if lvl.visible_size}
        for side in (1, -1)
    }


@settings(PROFILE, max_examples=250 * EXAMPLES_SCALE)
@given(streams)
def test_engine_matches_naive_reference(stream: list[tuple[Any, ...]]) -> None:
    harness = Harness()
    for command in stream:
        harness.step(command)


def test_refilled_iceberg_tranche_trades_before_hidden_orders() -> None:
    """A refilled tranche is displayed, so it keeps precedence over hidden orders at its price."""
    harness = Harness()
    harness.step(("place", 1, "XBTUSD", -1, 5, 0, GTC, False, 1))  # iceberg: 100 of 500 shown
    harness.step(("place", 2, "XBTUSD", -1, 5, 0, GTC, False, 0))  # hidden 500
    harness.step(("place", 3, "XBTUSD", 1, 3, 0, IOC, False, None))


def test_fill_or_kill_never_partially_fills_before_a_self_trade() -> None:
    """An iceberg's refilled tranche goes behind the taker's own order: FOK must not start."""
    harness = Harness()
    harness.step(("place", 1, "XBTUSD", -1, 5, 0, GTC, False, 1))  # iceberg: 100 of 500 shown
    harness.step(("place", 2, "XBTUSD", -1, 1, 0, GTC, False, None))  # taker's own order
    harness.step(("place", 2, "XBTUSD", 1, 3, 0, FOK, False, None))
