"""Scenarios for conditional orders: Stop, StopLimit, MarketIfTouched and LimitIfTouched on each
trigger source (MarkPrice, LastPrice, IndexPrice) in both directions, LastWithinMark, trailing
stops (TrailingStopPeg) and Pegged orders (PrimaryPeg, MarketPeg).

Here the mark equals the index (``IndexPrice`` sets both); the last price moves by trades between
accounts 3 and 4 (``last_at``). See ``test_scenarios.py`` for how lines are checked.
"""

from typing import Any

import pytest

from perpetua.core.commands import AmendOrder
from perpetua.core.enums import ExecInst, OrdType, PegPriceType, Side, TriggerSource
from perpetua.core.events import BookLevel, IndexUpdated, OrderEvent, Rejected, Trade
from perpetua.core.reasons import Reason
from tests.core.test_scenarios import (
    BUY,
    SELL,
    SKIP,
    Check,
    Ev,
    Line,
    amended,
    book,
    buy,
    cxl,
    fill,
    index,
    new,
    none,
    place,
    prt,
    rej,
    restated,
    run,
    sell,
    triggered,
)

P = 200_000  # $20,000.0 in XBTUSD ticks
STOP, STOP_LIMIT = OrdType.STOP, OrdType.STOP_LIMIT
MIT, LIT = OrdType.MARKET_IF_TOUCHED, OrdType.LIMIT_IF_TOUCHED
SOURCE_INST = {
    TriggerSource.MARK: ExecInst.MARK_PRICE,
    TriggerSource.LAST: ExecInst.LAST_PRICE,
    TriggerSource.INDEX: ExecInst.INDEX_PRICE,
}


def usd(ticks: int) -> int:
    """XBTUSD ticks (0.1) to whole dollars, for ``index``; ``ticks`` must be a whole dollar."""
    assert ticks % 10 == 0
    return ticks // 10


def last_at(price: int, expected: Any, qty: int = 100) -> list[Line]:
    """Two lines that print a trade of ``qty`` at ``price`` between accounts 3 and 4; the
    second line (the taker) carries ``expected``."""
    return [
        (sell(3, f"l3@{price}", qty, price), SKIP),
        (buy(4, f"l4@{price}", qty, price), expected),
    ]


def printed(price: int, qty: int = 100) -> list[Ev]:
    """The three order events of ``last_at(price)``'s trade."""
    return [
        new(f"l4@{price}"),
        fill(f"l3@{price}", qty, price, leaves=0),
        fill(f"l4@{price}", qty, price, leaves=0),
    ]


def move(source: TriggerSource, price: int, expected: Any) -> list[Line]:
    """Move ``source`` to ``price`` ticks."""
    if source == TriggerSource.LAST:
        return last_at(price, expected)
    return [(index(usd(price)), expected)]


def other_source(source: TriggerSource) -> TriggerSource:
    return TriggerSource.MARK if source == TriggerSource.LAST else TriggerSource.LAST


def rises(ord_type: OrdType, side: Side) -> bool:
    return (ord_type in (STOP, STOP_LIMIT)) == (side == BUY)


def trigger_scenario(source: TriggerSource, ord_type: OrdType, side: Side) -> list[Line]:
    """Reference at P; the order waits while the reference moves away, stops one tick short,
    and while the *other* source crosses the stop; then it triggers exactly at the stop and
    executes against account 2's liquidity one step beyond."""
    up = rises(ord_type, side)
    stop = P + 1_000 if up else P - 1_000
    away = P - 2_000 if up else P + 2_000
    short = stop - 10 if up else stop + 10
    liquidity_px = stop + 100 if side == BUY else stop - 100
    limit = liquidity_px if ord_type in (STOP_LIMIT, LIT) else None
    stp = place(
        1, "stp", side, 100, limit, ord_type=ord_type, stop_px=stop, exec_inst=SOURCE_INST[source]
    )
    by_trade = source == TriggerSource.LAST
    quiet = [] if by_trade else [none(OrderEvent)]
    waits = Check("still waiting", lambda r: not r.order("stp").triggered)
    fired: list[Any] = [
        *(printed(stop) if by_trade else []),
        triggered("stp", triggered=True, working=True, stop_px=stop, leaves=100, cum=0),
        fill("liq", 100, liquidity_px, leaves=0),
        fill("stp", 100, liquidity_px, leaves=0, cum=100, triggered=True),
        Check("nothing left", lambda r: not r.state.orders),
    ]
    if by_trade:
        fired.append(Ev(Trade, price=stop))
    fired.append(prt(100, liquidity_px, side=side, taker_account=1, maker_account=2))
    return [
        *move(source, P, SKIP),
        (
            stp,
            [
                new("stp", triggered=False, working=False, stop_px=stop, price=limit),
                none(BookLevel),
            ],
        ),
        *move(source, away, [*quiet, none(Rejected), waits]),
        *move(source, short, [*quiet, waits]),
        *move(
            other_source(source),
            stop,
            [Check("the other source does not trigger it", lambda r: not r.order("stp").triggered)],
        ),
        (place(2, "liq", Side(-side), 100, liquidity_px), [new("liq")]),
        *move(source, stop, fired),
    ]


MATRIX = {
    f"{OrdType(t).name} {Side(s).name} triggers on {src.name}": (src, t, s)
    for src in TriggerSource
    for t in (STOP, STOP_LIMIT, MIT, LIT)
    for s in (BUY, SELL)
}


@pytest.mark.parametrize("name", list(MATRIX))
def test_trigger_matrix(name: str) -> None:
    run(trigger_scenario(*MATRIX[name]))


LWM = ExecInst.LAST_PRICE | ExecInst.LAST_WITHIN_MARK
TRAIL = PegPriceType.TRAILING_STOP_PEG
FIXED = ExecInst.FIXED
PEGGED = OrdType.PEGGED

SCENARIOS: dict[str, list[Line]] = {
    "a triggered StopLimit that does not cross rests in the book as working": [
        (index(20_000), SKIP),
        (sell(1, "sl", 100, P - 900, ord_type=STOP_LIMIT, stop_px=P - 1_000), [new("sl")]),
        (
            index(19_900),
            [
                Ev(IndexUpdated, price_num=19_900),
                triggered("sl", triggered=True, working=True),
                book(SELL, P - 900, 100),
                none(Trade),
            ],
        ),
        (
            buy(2, "b", 100, P - 900),
            [new("b"), fill("sl", 100, P - 900, leaves=0), fill("b", 100, P - 900, leaves=0)],
        ),
    ],
    "a triggered Stop with no liquidity is cancelled": [
        (index(20_000), SKIP),
        (buy(1, "st", 100, ord_type=STOP, stop_px=P + 1_000), SKIP),
        (
            index(20_100),
            [
                triggered("st"),
                cxl("st", "Canceled: no liquidity within the price band", triggered=True),
            ],
        ),
    ],
    "a stop placed beyond its trigger triggers at once": [
        (index(20_000), SKIP),
        (sell(2, "ask", 100, P + 100), SKIP),
        (
            buy(1, "st", 100, ord_type=STOP, stop_px=P - 1_000),
            [
                new("st"),
                triggered("st"),
                fill("ask", 100, P + 100, leaves=0),
                fill("st", 100, P + 100, leaves=0),
            ],
        ),
    ],
    "stops that trigger together execute in placement order": [
        (index(20_000), SKIP),
        (buy(2, "bid", 200, P - 1_100), SKIP),
        (sell(1, "st1", 100, ord_type=STOP, stop_px=P - 1_000), SKIP),
        (sell(3, "st3", 100, ord_type=STOP, stop_px=P - 500), SKIP),
        (
            index(19_900),
            [
                triggered("st1"),
                fill("bid", 100, P - 1_100, leaves=100),
                fill("st1", 100, P - 1_100, leaves=0),
                triggered("st3"),
                fill("bid", 100, P - 1_100, leaves=0),
                fill("st3", 100, P - 1_100, leaves=0),
            ],
        ),
    ],
    "LastWithinMark sell waits while last is more than 5% under mark": [
        (index(20_000), SKIP),
        (
            sell(1, "lwm", 100, ord_type=STOP, stop_px=P - 5_000, exec_inst=LWM),
            [new("lwm", exec_inst=LWM)],
        ),
        *last_at(
            P - 11_000,
            [Check("last 5.5% under mark: waits", lambda r: not r.order("lwm").triggered)],
        ),
        (buy(2, "bid", 100, P - 7_000), SKIP),
        *last_at(
            P - 6_000,
            [
                *printed(P - 6_000),
                triggered("lwm"),
                fill("bid", 100, P - 7_000, leaves=0),
                fill("lwm", 100, P - 7_000, leaves=0),
            ],
        ),
    ],
    "LastWithinMark triggers when the mark comes back within 5% of last": [
        (index(20_000), SKIP),
        (sell(1, "lwm", 100, ord_type=STOP, stop_px=P - 5_000, exec_inst=LWM), SKIP),
        *last_at(P - 11_000, [Check("waits", lambda r: not r.order("lwm").triggered)]),
        (
            index(19_500),
            [
                triggered("lwm", triggered=True),
                cxl("lwm", "Canceled: no liquidity within the price band"),
            ],
        ),
    ],
    "LastWithinMark buy waits while last is more than 5% over mark": [
        (index(20_000), SKIP),
        (buy(1, "lwm", 100, ord_type=STOP, stop_px=P + 5_000, exec_inst=LWM), SKIP),
        *last_at(P + 11_000, [Check("waits", lambda r: not r.order("lwm").triggered)]),
        # exactly 5% over mark: within
        *last_at(P + 10_000, [*printed(P + 10_000), triggered("lwm"), cxl("lwm")]),
    ],
    "LastWithinMark needs LastPrice and a Stop or StopLimit": [
        (index(20_000), SKIP),
        (
            sell(
                1, "a", 100, ord_type=STOP, stop_px=P - 5_000, exec_inst=ExecInst.LAST_WITHIN_MARK
            ),
            [rej(Reason.LAST_WITHIN_MARK_REQUIRES_LAST_PRICE, cl_ord_id="a"), none(OrderEvent)],
        ),
        (
            buy(1, "b", 100, ord_type=MIT, stop_px=P - 5_000, exec_inst=LWM),
            [rej(Reason.LAST_WITHIN_MARK_REQUIRES_LAST_PRICE)],
        ),
        (
            sell(
                1,
                "c",
                100,
                ord_type=STOP,
                stop_px=P - 5_000,
                exec_inst=ExecInst.MARK_PRICE | ExecInst.LAST_PRICE,
            ),
            [rej(Reason.EXEC_INST_CONFLICT)],
        ),
    ],
    "trailing stop sell follows the price up, never down, then triggers": [
        (index(20_000), SKIP),
        (
            sell(1, "tr", 100, ord_type=STOP, peg_price_type=TRAIL, peg_offset=-1_000),
            [new("tr", stop_px=P - 1_000, peg_offset=-1_000, working=False)],
        ),
        (index(20_100), [restated("tr", stop_px=P, triggered=False)]),
        (index(20_050), [none(OrderEvent)]),
        (index(20_010), [none(OrderEvent)]),
        (index(20_250), [restated("tr", stop_px=P + 1_500)]),
        (buy(2, "bid", 100, P + 1_400), SKIP),
        (index(20_160), [none(OrderEvent)]),  # 201600 > stopPx 201500: waits
        (
            index(20_150),
            [
                triggered("tr", stop_px=P + 1_500),
                fill("bid", 100, P + 1_400, leaves=0),
                fill("tr", 100, P + 1_400, leaves=0),
            ],
        ),
    ],
    "trailing stop buy follows the price down, never up, then triggers": [
        (index(20_000), SKIP),
        (
            buy(1, "tr", 100, ord_type=STOP, peg_price_type=TRAIL, peg_offset=500),
            [new("tr", stop_px=P + 500)],
        ),
        (index(19_900), [restated("tr", stop_px=P - 500)]),
        (index(19_940), [none(OrderEvent)]),
        (index(19_950), [triggered("tr", stop_px=P - 500), cxl("tr")]),
    ],
    "trailing stop on LastPrice follows trades, not the mark": [
        (index(20_000), SKIP),
        *last_at(P, SKIP),
        (
            sell(
                1,
                "tr",
                100,
                ord_type=STOP,
                peg_price_type=TRAIL,
                peg_offset=-1_000,
                exec_inst=ExecInst.LAST_PRICE,
            ),
            [new("tr", stop_px=P - 1_000)],
        ),
        (index(20_500), [none(OrderEvent)]),
        *last_at(P + 2_000, [*printed(P + 2_000), restated("tr", stop_px=P + 1_000)]),
    ],
    "trailing stop needs a non-zero offset and a triggered ordType": [
        (index(20_000), SKIP),
        (
            sell(1, "a", 100, ord_type=STOP, peg_price_type=TRAIL),
            [rej(Reason.PEG_PRICE_TYPE_INVALID, cl_ord_id="a")],
        ),
        (
            sell(1, "b", 100, ord_type=STOP, peg_price_type=TRAIL, peg_offset=0),
            [rej(Reason.PEG_PRICE_TYPE_INVALID)],
        ),
        (
            sell(1, "c", 100, P, peg_price_type=TRAIL, peg_offset=-10),
            [rej(Reason.PEG_PRICE_TYPE_INVALID)],
        ),
    ],
    "amending a trailing stop's pegOffsetValue re-pegs its stopPx, wider and tighter": [
        (index(20_000), SKIP),
        (
            sell(1, "tr", 100, ord_type=STOP, peg_price_type=TRAIL, peg_offset=-5_000),
            [new("tr", stop_px=P - 5_000)],
        ),
        (
            AmendOrder(0, 1, orig_cl_ord_id="tr", peg_offset=-8_000),
            [amended("tr", stop_px=P - 8_000, peg_offset=-8_000)],
        ),
        (
            AmendOrder(0, 1, orig_cl_ord_id="tr", peg_offset=-2_000),
            [amended("tr", stop_px=P - 2_000, peg_offset=-2_000)],
        ),
        (index(20_100), [restated("tr", stop_px=P - 1_000)]),  # then it trails as before
        (
            buy(2, "b", 100, ord_type=STOP, peg_price_type=TRAIL, peg_offset=500),
            [new("b", stop_px=P + 1_500)],
        ),
        (
            AmendOrder(0, 2, orig_cl_ord_id="b", peg_offset=900),
            [amended("b", stop_px=P + 1_900, peg_offset=900)],
        ),
    ],
    "a trailing offset on the wrong side of the price is rejected, placed or amended": [
        (index(20_000), SKIP),
        (
            sell(1, "s", 100, ord_type=STOP, peg_price_type=TRAIL, peg_offset=500),
            [rej(Reason.PEG_OFFSET_SIGN_INVALID, cl_ord_id="s"), none(OrderEvent)],
        ),
        (
            buy(1, "b", 100, ord_type=STOP, peg_price_type=TRAIL, peg_offset=-500),
            [rej(Reason.PEG_OFFSET_SIGN_INVALID)],
        ),
        (
            buy(1, "bt", 100, ord_type=MIT, peg_price_type=TRAIL, peg_offset=500),
            [rej(Reason.PEG_OFFSET_SIGN_INVALID)],
        ),
        (
            sell(1, "st", 100, ord_type=MIT, peg_price_type=TRAIL, peg_offset=500),
            [new("st", stop_px=P + 500)],
        ),  # a take-profit sell trails above
        (
            AmendOrder(0, 1, orig_cl_ord_id="st", peg_offset=-500),
            [rej(Reason.PEG_OFFSET_SIGN_INVALID), none(OrderEvent)],
        ),
    ],
    "PrimaryPeg and MarketPeg with Fixed are priced once from the touch": [
        (buy(3, "bid", 100, P - 100), SKIP),
        (sell(4, "ask", 100, P + 100), SKIP),
        (
            buy(
                1,
                "pp",
                100,
                ord_type=PEGGED,
                peg_price_type=PegPriceType.PRIMARY_PEG,
                peg_offset=-10,
                exec_inst=FIXED,
            ),
            [new("pp", price=P - 110, ord_type=PEGGED), book(BUY, P - 110, 100)],
        ),
        (
            sell(
                1,
                "ps",
                100,
                ord_type=PEGGED,
                peg_price_type=PegPriceType.PRIMARY_PEG,
                peg_offset=10,
                exec_inst=FIXED,
            ),
            [new("ps", price=P + 110), book(SELL, P + 110, 100)],
        ),
        (
            buy(
                1,
                "mp",
                100,
                ord_type=PEGGED,
                peg_price_type=PegPriceType.MARKET_PEG,
                peg_offset=-10,
                exec_inst=FIXED,
            ),
            [new("mp", price=P + 90), book(BUY, P + 90, 100), none(Trade)],
        ),
        (buy(3, "bid2", 100, P + 95), SKIP),  # the touch moves; Fixed prices stay
        (
            sell(
                2,
                "mps",
                100,
                ord_type=PEGGED,
                peg_price_type=PegPriceType.MARKET_PEG,
                peg_offset=0,
                exec_inst=FIXED,
            ),
            [
                new("mps", price=P + 95),
                fill("bid2", 100, P + 95, leaves=0),
                fill("mps", 100, P + 95, leaves=0),
                Check(
                    "pegged prices fixed",
                    lambda r: (r.order("pp").price, r.order("mp").price) == (P - 110, P + 90),
                ),
            ],
        ),
    ],
    "Pegged is rejected without Fixed, with a price, or with nothing to peg to": [
        (
            buy(
                1,
                "nf",
                100,
                ord_type=PEGGED,
                peg_price_type=PegPriceType.PRIMARY_PEG,
                peg_offset=-10,
            ),
            [rej(Reason.PEG_REQUIRES_FIXED, cl_ord_id="nf"), none(OrderEvent)],
        ),
        (
            buy(
                1,
                "np",
                100,
                ord_type=PEGGED,
                peg_price_type=PegPriceType.MARKET_PEG,
                peg_offset=-10,
                exec_inst=FIXED,
            ),
            [rej(Reason.PEG_NO_REFERENCE_PRICE)],
        ),
        (buy(3, "bid", 100, P - 100), SKIP),
        (
            buy(
                1,
                "px",
                100,
                P,
                ord_type=PEGGED,
                peg_price_type=PegPriceType.PRIMARY_PEG,
                peg_offset=-10,
                exec_inst=FIXED,
            ),
            [rej(Reason.PRICE_NOT_ALLOWED_FOR_ORD_TYPE)],
        ),
        (
            buy(
                1, "tp", 100, ord_type=PEGGED, peg_price_type=TRAIL, peg_offset=-10, exec_inst=FIXED
            ),
            [rej(Reason.PEG_PRICE_TYPE_INVALID)],
        ),
        (
            buy(
                1,
                "ok",
                100,
                ord_type=PEGGED,
                peg_price_type=PegPriceType.PRIMARY_PEG,
                peg_offset=-10,
                exec_inst=FIXED,
            ),
            [new("ok", price=P - 110)],
        ),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    run(SCENARIOS[name])
