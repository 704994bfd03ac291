"""Scenarios for order features: AllOrNone, ReduceOnly and Close, displayQty icebergs and hidden
orders, linked orders (OneCancelsTheOther, OneTriggersTheOther), open-order and stop limits, and
the tick/lot/max and shape checks. See ``test_scenarios.py`` for how lines are checked.
"""

import pytest

from perpetua.core.commands import CancelOrders, SetInstrumentState
from perpetua.core.enums import ContingencyType, ExecInst, OrdType, TimeInForce
from perpetua.core.events import BookLevel, OrderEvent, Rejected, Trade
from perpetua.core.reasons import Reason
from tests.core.test_scenarios import (
    BUY,
    SELL,
    SKIP,
    Check,
    Line,
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
AON = ExecInst.ALL_OR_NONE
RO = ExecInst.REDUCE_ONLY
CLOSE = ExecInst.CLOSE
IOC = TimeInForce.IMMEDIATE_OR_CANCEL
OCO = ContingencyType.ONE_CANCELS_THE_OTHER
OTO = ContingencyType.ONE_TRIGGERS_THE_OTHER
RO_TEXT = "Canceled: ReduceOnly order would have increased position"


def nothing_to_reduce(side: str, held: int) -> str:
    """BitMEX's text for a ReduceOnly or Close order that has nothing to reduce."""
    return (
        f"Canceled: Order had execInst of Close or ReduceOnly and side of {side} but "
        f"current position is {held}"
    )


def long_300(account: int = 1, tag: str = "") -> list[Line]:
    """``account`` buys 300 XBTUSD at P from account 2 (``tag`` keeps clOrdIDs unique)."""
    return [
        (sell(2, f"open-s{account}{tag}", 300, P), SKIP),
        (
            buy(account, f"open-b{account}{tag}", 300, P),
            [Check("long 300", lambda r: r.position(account) == 300)],
        ),
    ]


def pos(account: int, qty: int) -> Check:
    return Check(f"account {account} position {qty}", lambda r: r.position(account) == qty)


SCENARIOS: dict[str, list[Line]] = {
    "AllOrNone rests hidden and is only taken by a taker big enough": [
        (
            sell(1, "aon", 500, P, exec_inst=AON, display_qty=0),
            [new("aon", exec_inst=AON, display_qty=0), none(BookLevel)],
        ),
        (sell(3, "vis", 100, P + 10), [book(SELL, P + 10, 100)]),
        (
            buy(2, "small", 200, P + 10, time_in_force=IOC),
            [  # skips the AON order
                new("small"),
                fill("vis", 100, P + 10, leaves=0),
                fill("small", 100, P + 10, leaves=100),
                cxl("small", "Canceled: ImmediateOrCancel", cum=100),
                prt(100, P + 10),
                book(SELL, P + 10, 0),
                Check("AON untouched", lambda r: r.order("aon").leaves_qty == 500),
            ],
        ),
        (
            buy(2, "big", 500, P),
            [
                new("big"),
                fill("aon", 500, P, leaves=0),
                fill("big", 500, P, leaves=0),
                prt(500, P, maker_account=1),
                none(BookLevel),
            ],
        ),
    ],
    "AllOrNone needs displayQty 0": [
        (
            sell(1, "a", 500, P, exec_inst=AON),
            [rej(Reason.ALL_OR_NONE_REQUIRES_HIDDEN, cl_ord_id="a"), none(OrderEvent)],
        ),
        (
            sell(1, "b", 500, P, exec_inst=AON, display_qty=100),
            [rej(Reason.ALL_OR_NONE_REQUIRES_HIDDEN)],
        ),
    ],
    "AllOrNone that crosses but cannot fill whole is killed; a passive one rests hidden": [
        (sell(1, "s", 100, P), SKIP),
        (
            buy(2, "aon", 300, P, exec_inst=AON, display_qty=0),
            [
                new("aon"),
                cxl("aon", "Canceled: AllOrNone order could not be filled"),
                none(Trade),
                none(BookLevel),
            ],
        ),
        (buy(2, "aon2", 300, P - 10, exec_inst=AON, display_qty=0), [new("aon2"), none(BookLevel)]),
        (sell(3, "s3", 100, P), [new("s3"), book(SELL, P, 200)]),  # does not cross it
        (
            sell(3, "s4", 100, P - 10),
            [  # too small to take it, and may not rest across it
                new("s4"),
                cxl("s4", "Canceled: would cross an AllOrNone order"),
                none(Trade),
                none(BookLevel),
            ],
        ),
        (
            sell(4, "s5", 300, P - 20),
            [
                new("s5"),
                fill("aon2", 300, P - 10, leaves=0),
                fill("s5", 300, P - 10, leaves=0),
                prt(300, P - 10, maker_account=2, taker_account=4),
            ],
        ),
    ],
    "a plain order that cannot take a resting AllOrNone does not rest across it": [
        (sell(1, "aon", 500, P, exec_inst=AON, display_qty=0), SKIP),
        (
            buy(2, "b", 200, P + 10),
            [
                new("b"),
                cxl("b", "Canceled: would cross an AllOrNone order"),
                none(Trade),
                none(BookLevel),
            ],
        ),
        (buy(2, "b2", 200, P - 10), [new("b2"), book(BUY, P - 10, 200)]),
    ],
    "ReduceOnly and Close with nothing to reduce are accepted and canceled, as BitMEX does": [
        (
            sell(1, "ro0", 100, P, exec_inst=RO),
            [
                new("ro0"),
                cxl("ro0", nothing_to_reduce("Sell", 0), cum_qty=0),
                none(Rejected),
                none(BookLevel),
            ],
        ),
        # without a side or a size there is no order to show: still a rejection
        (place(1, "c0", None, None, P, exec_inst=CLOSE), [rej(Reason.CLOSE_WITHOUT_POSITION)]),
        *long_300(),
        (
            buy(1, "ro1", 100, P - 100, exec_inst=RO),
            [new("ro1"), cxl("ro1", nothing_to_reduce("Buy", 300)), none(BookLevel)],
        ),
        (
            buy(1, "c1", 100, P - 100, exec_inst=CLOSE),
            [new("c1"), cxl("c1", nothing_to_reduce("Buy", 300))],
        ),
        (place(1, "c2", BUY, None, P - 100, exec_inst=CLOSE), [rej(Reason.CLOSE_WITHOUT_POSITION)]),
        (sell(1, "ro2", 100, P + 100, exec_inst=RO), [new("ro2"), book(SELL, P + 100, 100)]),
    ],
    "Close without side or qty closes the whole position": [
        *long_300(),
        (buy(3, "bid", 500, P - 100), SKIP),
        (
            place(1, "close", None, None, exec_inst=CLOSE),
            [
                new("close", side=SELL, order_qty=300, ord_type=OrdType.MARKET),
                fill("bid", 300, P - 100, leaves=200),
                fill("close", 300, P - 100, leaves=0),
                pos(1, 0),
            ],
        ),
    ],
    "Close limit with a side and no qty takes the position's size": [
        *long_300(),
        (
            place(1, "close", SELL, None, P + 1_000, exec_inst=CLOSE),
            [new("close", side=SELL, order_qty=300, leaves=300), book(SELL, P + 1_000, 300)],
        ),
    ],
    "resting ReduceOnly is amended down, least aggressive first, then cancelled": [
        *long_300(),
        (sell(1, "ro", 200, P + 1_000, exec_inst=RO), [new("ro")]),
        (sell(1, "ro2", 100, P + 2_000, exec_inst=RO), [new("ro2")]),
        (buy(3, "bid", 300, P - 100), SKIP),
        (
            sell(1, "x", 200, P - 100),
            [  # position 300 -> 100
                new("x"),
                fill("bid", 200, P - 100, leaves=100),
                fill("x", 200, P - 100, leaves=0),
                restated("ro", leaves=100, order_qty=100, cum=0),
                cxl("ro2", RO_TEXT),
                book(BUY, P - 100, 100),
                book(SELL, P + 1_000, 100),
                book(SELL, P + 2_000, 0),
                pos(1, 100),
            ],
        ),
        (
            sell(1, "y", 100, P - 100),
            [  # position 100 -> 0
                new("y"),
                fill("bid", 100, P - 100, leaves=0),
                fill("y", 100, P - 100, leaves=0),
                cxl("ro", RO_TEXT),
                pos(1, 0),
            ],
        ),
    ],
    "ReduceOnly never flips the position, as taker or as maker": [
        *long_300(),
        (sell(1, "ro1", 300, P + 1_000, exec_inst=RO), SKIP),
        (sell(1, "ro2", 300, P + 1_000, exec_inst=RO), SKIP),  # together 600 against 300
        (
            buy(3, "t", 600, P + 1_000, time_in_force=IOC),
            [
                new("t"),
                fill("ro1", 300, P + 1_000, leaves=0),
                fill("t", 300, P + 1_000, leaves=300),
                cxl("t", "Canceled: ImmediateOrCancel", cum=300),
                cxl("ro2", RO_TEXT),
                pos(1, 0),
            ],
        ),
        *long_300(tag="again"),
        (buy(3, "bid", 500, P - 100), SKIP),
        (
            sell(1, "ro3", 500, P - 100, exec_inst=RO),
            [
                new("ro3", order_qty=500),
                fill("bid", 300, P - 100, leaves=200),
                fill("ro3", 300, P - 100, leaves=200),
                cxl("ro3", RO_TEXT, cum=300),
                pos(1, 0),
            ],
        ),
    ],
    "a Close stop closes at most the position left when it triggers": [
        (index(20_000), SKIP),
        *long_300(),
        (
            place(1, "cs", SELL, None, ord_type=OrdType.STOP, stop_px=P - 1_000, exec_inst=CLOSE),
            [new("cs", order_qty=300, working=False)],
        ),
        (buy(3, "bid", 1_000, P - 1_100), SKIP),
        (sell(1, "x", 200, P - 1_100), [pos(1, 100)]),
        (
            index(19_900),
            [
                triggered("cs", order_qty=100, leaves=100),
                fill("bid", 100, P - 1_100, leaves=700),
                fill("cs", 100, P - 1_100, leaves=0),
                pos(1, 0),
            ],
        ),
    ],
    "displayQty iceberg shows only its tranche and refills at the back of the level": [
        (
            sell(1, "ice", 600, P, display_qty=200),
            [new("ice", display_qty=200, leaves=600), book(SELL, P, 200)],
        ),
        (sell(3, "vis", 100, P), [book(SELL, P, 300)]),
        (
            buy(2, "b1", 200, P),
            [
                new("b1"),
                fill("ice", 200, P, leaves=400),
                fill("b1", 200, P, leaves=0),
                book(SELL, P, 300),  # tranche refilled: still 200 shown
                Check("tranche refilled", lambda r: r.order("ice").visible_qty == 200),
            ],
        ),
        (
            buy(2, "b2", 100, P),
            [  # the refill went behind "vis"
                new("b2"),
                fill("vis", 100, P, leaves=0),
                fill("b2", 100, P, leaves=0),
                book(SELL, P, 200),
            ],
        ),
        (
            buy(2, "b3", 300, P),
            [
                new("b3"),
                fill("ice", 200, P, leaves=200),
                fill("b3", 200, P, leaves=100),
                fill("ice", 100, P, leaves=100),
                fill("b3", 100, P, leaves=0),
                prt(200, P),
                prt(100, P),
                book(SELL, P, 200),
                book(SELL, P, 100),
            ],
        ),
        (CancelOrders(0, 1, cl_ord_ids=("ice",)), [cxl("ice", cum=500), book(SELL, P, 0)]),
    ],
    "displayQty is checked against qty and lot": [
        (sell(1, "a", 500, P, display_qty=50), [rej(Reason.DISPLAY_QTY_INVALID)]),
        (sell(1, "b", 500, P, display_qty=600), [rej(Reason.DISPLAY_QTY_INVALID)]),
        (sell(1, "c", 500, P, display_qty=-100), [rej(Reason.DISPLAY_QTY_INVALID)]),
        (sell(1, "d", 500, P, display_qty=500), [new("d"), book(SELL, P, 500)]),
    ],
    "hidden orders never show and match after the displayed ones at their price": [
        (sell(1, "hid", 100, P, display_qty=0), [new("hid", display_qty=0), none(BookLevel)]),
        (sell(3, "vis", 100, P), [book(SELL, P, 100)]),
        (
            buy(2, "b1", 100, P),
            [
                new("b1"),
                fill("vis", 100, P, leaves=0),
                fill("b1", 100, P, leaves=0),
                book(SELL, P, 0),
            ],
        ),
        (
            buy(2, "b2", 100, P),
            [
                new("b2"),
                fill("hid", 100, P, leaves=0),
                fill("b2", 100, P, leaves=0),
                none(BookLevel),
            ],
        ),
    ],
    "a hidden order at a better price matches before displayed ones behind it": [
        (sell(1, "vis", 100, P + 10), SKIP),
        (sell(3, "hid", 100, P, display_qty=0), [none(BookLevel)]),
        (
            buy(2, "b", 200, P + 10),
            [
                new("b"),
                fill("hid", 100, P, leaves=0),
                fill("b", 100, P, leaves=100),
                fill("vis", 100, P + 10, leaves=0),
                fill("b", 100, P + 10, leaves=0),
                book(SELL, P + 10, 0),
            ],
        ),
    ],
    "OneCancelsTheOther: a partial fill of one cancels the others": [
        (index(20_000), SKIP),
        (
            sell(1, "tp", 200, P + 1_000, contingency_type=OCO, cl_ord_link_id="L"),
            [new("tp", contingency_type=OCO, cl_ord_link_id="L")],
        ),
        (
            sell(
                1,
                "sl",
                200,
                ord_type=OrdType.STOP,
                stop_px=P - 1_000,
                contingency_type=OCO,
                cl_ord_link_id="L",
            ),
            [new("sl")],
        ),
        (sell(1, "other", 100, P + 2_000, contingency_type=OCO, cl_ord_link_id="M"), SKIP),
        (
            buy(2, "b", 100, P + 1_000),
            [
                new("b"),
                fill("tp", 100, P + 1_000, leaves=100),
                fill("b", 100, P + 1_000, leaves=0),
                cxl("sl", "Canceled: OneCancelsTheOther sibling executed"),
                Check(
                    "tp and the other link live on",
                    lambda r: r.order("tp").leaves_qty == 100 and r.order("other") is not None,
                ),
            ],
        ),
    ],
    "OneCancelsTheOther: a stop triggering cancels the others": [
        (index(20_000), SKIP),
        (sell(1, "tp", 200, P + 1_000, contingency_type=OCO, cl_ord_link_id="L"), SKIP),
        (
            sell(
                1,
                "sl",
                200,
                ord_type=OrdType.STOP,
                stop_px=P - 1_000,
                contingency_type=OCO,
                cl_ord_link_id="L",
            ),
            SKIP,
        ),
        (buy(2, "bid", 200, P - 1_100), SKIP),
        (
            index(19_900),
            [
                triggered("sl"),
                cxl("tp", "Canceled: OneCancelsTheOther sibling executed"),
                fill("bid", 200, P - 1_100, leaves=0),
                fill("sl", 200, P - 1_100, leaves=0),
                book(SELL, P + 1_000, 0),
                book(BUY, P - 1_100, 0),
            ],
        ),
    ],
    "linked orders need a clOrdLinkID": [
        (
            sell(1, "a", 100, P, contingency_type=OCO),
            [rej(Reason.CONTINGENCY_TYPE_INVALID, cl_ord_id="a")],
        ),
    ],
    "OneTriggersTheOther: followers wait until the primary fully fills": [
        (
            buy(1, "p", 200, P, contingency_type=OTO, cl_ord_link_id="L"),
            [new("p", working=True), book(BUY, P, 200)],
        ),
        (
            sell(1, "f", 200, P + 1_000, contingency_type=OTO, cl_ord_link_id="L"),
            [new("f", working=False), none(BookLevel)],
        ),
        (
            sell(2, "x", 100, P),
            [
                new("x"),
                fill("p", 100, P, leaves=100),
                fill("x", 100, P, leaves=0),
                Check("follower still held", lambda r: not r.order("f").working),
            ],
        ),
        (
            sell(2, "y", 100, P),
            [
                new("y"),
                fill("p", 100, P, leaves=0),
                fill("y", 100, P, leaves=0),
                triggered("f", working=True, leaves=200),
                book(BUY, P, 0),
                book(SELL, P + 1_000, 200),
            ],
        ),
        (
            buy(3, "t", 200, P + 1_000),
            [new("t"), fill("f", 200, P + 1_000, leaves=0), fill("t", 200, P + 1_000, leaves=0)],
        ),
    ],
    "OneTriggersTheOther: cancelling the primary leaves the follower held": [
        (buy(1, "p", 200, P, contingency_type=OTO, cl_ord_link_id="L"), SKIP),
        (sell(1, "f", 200, P + 1_000, contingency_type=OTO, cl_ord_link_id="L"), SKIP),
        (CancelOrders(0, 1, cl_ord_ids=("p",)), [cxl("p")]),
        (
            sell(2, "x", 200, P),
            [
                new("x"),
                book(SELL, P, 200),
                none(Trade),
                Check("follower still held", lambda r: not r.order("f").working),
            ],
        ),
    ],
    "200 open orders per account and symbol": [
        *[(buy(1, f"o{i}", 100, P - 10 * i), SKIP) for i in range(200)],
        (
            buy(1, "o200", 100, P - 2_000),
            [rej(Reason.OPEN_ORDERS_MAX, cl_ord_id="o200"), none(OrderEvent)],
        ),
        (sell(1, "s", 100, ord_type=OrdType.STOP, stop_px=P - 100), [rej(Reason.OPEN_ORDERS_MAX)]),
        (buy(2, "other account", 100, P - 10), [new("other account")]),
        (buy(1, "other symbol", 1, 40_000, symbol="ETHUSD"), [new("other symbol")]),
        (CancelOrders(0, 1, cl_ord_ids=("o0",)), [cxl("o0")]),
        (buy(1, "o201", 100, P - 2_000), [new("o201")]),
    ],
    "10 untriggered stops per account and symbol": [
        *[
            (sell(1, f"st{i}", 100, ord_type=OrdType.STOP, stop_px=P - 100 * (i + 1)), SKIP)
            for i in range(10)
        ],
        (
            sell(1, "st10", 100, ord_type=OrdType.STOP, stop_px=P - 5_000),
            [rej(Reason.STOP_ORDERS_MAX, cl_ord_id="st10")],
        ),
        (
            sell(1, "mit", 100, ord_type=OrdType.MARKET_IF_TOUCHED, stop_px=P + 5_000),
            [rej(Reason.STOP_ORDERS_MAX)],
        ),
        (sell(1, "limit", 100, P + 5_000), [new("limit")]),
        (sell(2, "other", 100, ord_type=OrdType.STOP, stop_px=P - 5_000), [new("other")]),
        (index(19_990), [triggered("st0"), cxl("st0")]),  # a triggered stop frees its slot
        (sell(1, "st11", 100, ord_type=OrdType.STOP, stop_px=P - 5_000), [new("st11")]),
    ],
    "prices, quantities and shapes are checked": [
        (buy(1, "a", 100, 0), [rej(Reason.PRICE_MUST_BE_POSITIVE, cl_ord_id="a")]),
        (buy(1, "b", 100, -10), [rej(Reason.PRICE_MUST_BE_POSITIVE)]),
        (buy(1, "c", 100, 10_000_001), [rej(Reason.PRICE_ABOVE_MAX)]),
        (buy(1, "c2", 100, 10_000_000), [new("c2", price=10_000_000)]),  # $1,000,000: the max
        (buy(1, "d", 0, P), [rej(Reason.QTY_MUST_BE_POSITIVE)]),
        (buy(1, "e", 150, P), [rej(Reason.QTY_MUST_BE_MULTIPLE_OF_LOT)]),
        (buy(1, "f", 10_000_100, P), [rej(Reason.QTY_ABOVE_MAX)]),
        (buy(1, "g", 1, 40_000, symbol="ETHUSD"), [new("g")]),  # ETHUSD's lot is 1
        (sell(1, "h", 100, ord_type=OrdType.STOP, stop_px=0), [rej(Reason.PRICE_MUST_BE_POSITIVE)]),
        (
            buy(1, "i", 100, P, ord_type=OrdType.MARKET),
            [rej(Reason.PRICE_NOT_ALLOWED_FOR_ORD_TYPE)],
        ),
        (buy(1, "j", 100, None, ord_type=OrdType.LIMIT), [rej(Reason.PRICE_REQUIRED)]),
        (buy(1, "k", 100, ord_type=OrdType.STOP), [rej(Reason.STOP_PX_REQUIRED)]),
        (buy(1, "l", 100, P, stop_px=P), [rej(Reason.STOP_PX_INVALID_FOR_ORD_TYPE)]),
        (buy(1, "m", 100, P, symbol="NOPE"), [rej(Reason.INSTRUMENT_UNKNOWN)]),
        (buy(1, "n", 100, P, symbol=".BXBT"), [rej(Reason.INSTRUMENT_UNKNOWN)]),
        (place(1, "o", None, 100, P), [rej(Reason.SIDE_INVALID)]),
        (buy(1, "p" * 37, 100, P), [rej(Reason.CL_ORD_ID_TOO_LONG)]),
        (buy(1, "q", 100, P, exec_inst=1 << 20), [rej(Reason.EXEC_INST_INVALID)]),
        (SetInstrumentState(0, "XBTUSD", "Closed"), SKIP),
        (buy(1, "r", 100, P), [rej(Reason.INSTRUMENT_NOT_OPEN)]),
        (SetInstrumentState(0, "XBTUSD", "Open"), SKIP),
        (buy(1, "s", 100, P), [new("s"), none(Rejected)]),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    run(SCENARIOS[name])
