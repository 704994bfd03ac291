"""Scenarios for changing and ending orders: amends (priority, leavesQty, amend to cumQty,
rename, errors), cancels (by id, by clOrdID, all by symbol and side), the cancelAllAfter dead
man's switch, and duplicate clOrdIDs. See ``test_scenarios.py`` for how lines are checked.
"""

import pytest

from perpetua.core.commands import (
    AmendOrder,
    CancelAll,
    CancelAllAfter,
    CancelOrders,
    Tick,
)
from perpetua.core.enums import OrdStatus, OrdType
from perpetua.core.events import BookLevel, CancelAllAfterSet, OrderEvent, Rejected, Trade
from perpetua.core.reasons import Reason
from tests.core.test_scenarios import (
    BUY,
    SELL,
    SKIP,
    T0,
    Check,
    Ev,
    Line,
    amended,
    at,
    book,
    buy,
    cxl,
    fill,
    new,
    none,
    rej,
    run,
    sell,
)

P = 200_000  # $20,000.0 in XBTUSD ticks
E = 40_000  # $2,000.00 in ETHUSD ticks of 0.05
S = 1_000_000_000  # one second in ns
API = "Canceled via API."
CAA = "Canceled: CancelAllAfter"


def amend(cid: str, account: int = 1, **fields: object) -> AmendOrder:
    return AmendOrder(0, account, orig_cl_ord_id=cid, **fields)  # type: ignore[arg-type]


SCENARIOS: dict[str, list[Line]] = {
    "amending orderQty down keeps the order's place in the queue": [
        (sell(1, "a", 300, P), SKIP),
        (sell(3, "c", 100, P), [book(SELL, P, 400)]),
        (
            amend("a", order_qty=200),
            [amended("a", OrdStatus.NEW, order_qty=200, leaves=200), book(SELL, P, 300)],
        ),
        (
            buy(2, "b", 100, P),
            [new("b"), fill("a", 100, P, leaves=100), fill("b", 100, P, leaves=0)],
        ),
    ],
    "amending an iceberg's hidden rest down changes no L2 level": [
        (sell(1, "ice", 500, P, display_qty=100), [book(SELL, P, 100)]),
        (amend("ice", order_qty=300), [amended("ice", leaves=300), none(BookLevel)]),
        (amend("ice", order_qty=100), [amended("ice", leaves=100), none(BookLevel)]),
        (amend("ice", text="note"), [amended("ice", text="note"), none(BookLevel)]),
    ],
    "amending orderQty up sends the order to the back of its level": [
        (sell(1, "a", 100, P), SKIP),
        (sell(3, "c", 100, P), SKIP),
        (
            amend("a", order_qty=200),
            [amended("a", order_qty=200, leaves=200), book(SELL, P, 100), book(SELL, P, 300)],
        ),
        (buy(2, "b", 100, P), [new("b"), fill("c", 100, P, leaves=0), fill("b", 100, P, leaves=0)]),
    ],
    "amending the price sends the order to the back and may execute": [
        (sell(1, "a", 100, P + 10), SKIP),
        (sell(3, "c", 100, P), SKIP),
        (
            amend("a", price=P),
            [amended("a", price=P), book(SELL, P + 10, 0), book(SELL, P, 200), none(Trade)],
        ),
        (buy(2, "b", 100, P), [new("b"), fill("c", 100, P, leaves=0), fill("b", 100, P, leaves=0)]),
        (buy(2, "bid", 100, P - 100), SKIP),
        (
            amend("a", price=P - 100),
            [  # now crosses the bid: executes as a taker
                amended("a", price=P - 100),
                fill("bid", 100, P - 100, leaves=0),
                fill("a", 100, P - 100, leaves=0),
                Ev(Trade, side=SELL, qty=100),
            ],
        ),
    ],
    "leavesQty amends set the open quantity; amending to cumQty or below ends the order": [
        (sell(1, "a", 300, P), SKIP),
        (
            buy(2, "b", 100, P),
            [new("b"), fill("a", 100, P, leaves=200, cum=100), fill("b", 100, P, leaves=0)],
        ),
        (amend("a", leaves_qty=50), [rej(Reason.QTY_MUST_BE_MULTIPLE_OF_LOT)]),
        (
            amend("a", leaves_qty=100),
            [
                amended("a", OrdStatus.PARTIALLY_FILLED, order_qty=200, leaves=100, cum=100),
                book(SELL, P, 100),
            ],
        ),
        (
            amend("a", order_qty=100),
            [
                amended("a", OrdStatus.FILLED, order_qty=100, leaves=0, cum=100),
                book(SELL, P, 0),
                Check("gone", lambda r: r.order("a") is None),
            ],
        ),
        (sell(1, "z", 100, P), SKIP),
        (amend("z", order_qty=0), [cxl("z", "Canceled: amended to zero"), book(SELL, P, 0)]),
        (amend("a", order_qty=300), [rej(Reason.ORDER_STATUS_INVALID, cl_ord_id="a")]),
    ],
    "rename with origClOrdID and clOrdID": [
        (sell(1, "a", 100, P), SKIP),
        (sell(1, "taken", 100, P + 10), SKIP),
        (amend("a", cl_ord_id="taken"), [rej(Reason.CL_ORD_ID_DUPLICATE), none(OrderEvent)]),
        (amend("a", cl_ord_id="a2"), [amended("a2", order_qty=100, price=P), none(BookLevel)]),
        (CancelOrders(0, 1, cl_ord_ids=("a",)), [rej(Reason.ORDER_NOT_FOUND, cl_ord_id="a")]),
        (amend("a2", price=P - 10), [amended("a2", price=P - 10)]),
        (CancelOrders(0, 1, cl_ord_ids=("a2",)), [cxl("a2", API)]),
    ],
    "amend errors: terminal, unknown, not owned, nothing to change, wrong field": [
        (sell(1, "a", 100, P), SKIP),
        (buy(2, "b", 100, P), SKIP),  # fills "a"
        (
            lambda r: AmendOrder(0, 1, order_id=r.id("a"), order_qty=200),
            [rej(Reason.ORDER_STATUS_INVALID), none(OrderEvent)],
        ),
        (amend("a", price=P + 10), [rej(Reason.ORDER_STATUS_INVALID)]),
        (
            AmendOrder(0, 1, order_id=999, order_qty=200),
            [rej(Reason.ORDER_NOT_FOUND, order_id=999)],
        ),
        (amend("nope", order_qty=200), [rej(Reason.ORDER_NOT_FOUND, cl_ord_id="nope")]),
        (sell(3, "c", 100, P + 10), SKIP),
        (
            lambda r: AmendOrder(0, 1, order_id=r.id("c"), order_qty=200),
            [rej(Reason.ORDER_NOT_OWNED)],
        ),
        (amend("c", account=3), [rej(Reason.AMEND_NOTHING_TO_CHANGE)]),
        (amend("c", account=3, stop_px=P), [rej(Reason.STOP_PX_INVALID_FOR_ORD_TYPE)]),
        (amend("c", account=3, order_qty=150), [rej(Reason.QTY_MUST_BE_MULTIPLE_OF_LOT)]),
        (amend("c", account=3, price=0), [rej(Reason.PRICE_MUST_BE_POSITIVE)]),
        (amend("c", account=3, order_qty=200, leaves_qty=100), [rej(Reason.QTY_MUST_BE_POSITIVE)]),
    ],
    "an untriggered stop's stopPx and qty are amended in place": [
        (sell(1, "st", 100, ord_type=OrdType.STOP, stop_px=P - 1_000), SKIP),
        (
            amend("st", stop_px=P - 2_000, order_qty=200),
            [
                amended("st", stop_px=P - 2_000, order_qty=200, leaves=200, working=False),
                none(BookLevel),
            ],
        ),
        (amend("st", price=P), [rej(Reason.PRICE_NOT_ALLOWED_FOR_ORD_TYPE)]),
    ],
    "cancel by order id and by clOrdID; a second cancel is refused": [
        (sell(1, "a", 100, P), SKIP),
        (sell(1, "b", 100, P + 10), SKIP),
        (
            lambda r: CancelOrders(0, 1, order_ids=(r.id("a"),)),
            [cxl("a", API, cum=0), book(SELL, P, 0)],
        ),
        (
            CancelOrders(0, 1, cl_ord_ids=("b",), text="bye"),
            [cxl("b", "bye"), book(SELL, P + 10, 0)],
        ),
        (
            CancelOrders(0, 1, cl_ord_ids=("b",)),
            [rej(Reason.ORDER_STATUS_INVALID), none(OrderEvent)],
        ),
        (
            CancelOrders(0, 1, order_ids=(999,), cl_ord_ids=("zz",)),
            [
                rej(Reason.ORDER_NOT_FOUND, order_id=999),
                rej(Reason.ORDER_NOT_FOUND, cl_ord_id="zz"),
            ],
        ),
        (sell(3, "c", 100, P), SKIP),
        (
            lambda r: CancelOrders(0, 1, order_ids=(r.id("c"),)),
            [rej(Reason.ORDER_NOT_OWNED), none(OrderEvent)],
        ),
    ],
    "cancel all by symbol and side, then by symbol, then everything": [
        (buy(1, "xb", 100, P - 10), SKIP),
        (buy(1, "xb-stop", 100, ord_type=OrdType.STOP, stop_px=P + 1_000), SKIP),
        (sell(1, "xs", 100, P + 10), SKIP),
        (buy(1, "eb", 1, E, symbol="ETHUSD"), SKIP),
        (buy(2, "other", 100, P - 20), SKIP),
        (
            CancelAll(0, 1, "XBTUSD", BUY),
            [cxl("xb", API), cxl("xb-stop", API), book(BUY, P - 10, 0)],
        ),
        (CancelAll(0, 1, "XBTUSD"), [cxl("xs"), book(SELL, P + 10, 0)]),
        (CancelAll(0, 1, "NOPE"), [rej(Reason.INSTRUMENT_UNKNOWN), none(OrderEvent)]),
        (
            CancelAll(0, 1),
            [cxl("eb"), Check("account 2 untouched", lambda r: r.order("other") is not None)],
        ),
        (CancelAll(0, 1), [none(OrderEvent), none(Rejected)]),
    ],
    "cancelAllAfter: arm, re-arm, fire when a command arrives after the deadline": [
        (at(T0 + 10 * S, buy(1, "a", 100, P - 10)), SKIP),
        (at(T0 + 10 * S, sell(1, "b", 100, P + 10)), SKIP),
        (at(T0 + 10 * S, buy(2, "other", 100, P - 20)), SKIP),
        (
            at(T0 + 10 * S, CancelAllAfter(0, 1, 60_000)),
            [Ev(CancelAllAfterSet, account=1, deadline_ns=T0 + 70 * S)],
        ),
        (at(T0 + 40 * S, Tick(0)), [none(OrderEvent)]),
        (
            at(T0 + 40 * S, CancelAllAfter(0, 1, 60_000)),  # re-armed: the deadline moves on
            [Ev(CancelAllAfterSet, account=1, deadline_ns=T0 + 100 * S)],
        ),
        (at(T0 + 80 * S, Tick(0)), [none(OrderEvent), none(CancelAllAfterSet)]),
        (at(T0 + 100 * S - 1, Tick(0)), [none(OrderEvent)]),
        (
            at(T0 + 101 * S, sell(2, "late", 100, P - 10)),
            [
                cxl("a", CAA),
                cxl("b", CAA),
                new("late"),
                Ev(CancelAllAfterSet, account=1, deadline_ns=0),
                book(BUY, P - 10, 0),
                book(SELL, P + 10, 0),
                book(SELL, P - 10, 100),
                none(Trade),  # "a" was cancelled before "late" could take it
                Check("account 2 untouched", lambda r: r.order("other") is not None),
            ],
        ),
        (at(T0 + 500 * S, Tick(0)), [none(OrderEvent), none(CancelAllAfterSet)]),
    ],
    "cancelAllAfter: disarmed with 0": [
        (at(T0 + 10 * S, buy(1, "a", 100, P - 10)), SKIP),
        (at(T0 + 10 * S, CancelAllAfter(0, 1, 1_000)), SKIP),
        (
            at(T0 + 10 * S + 999_999_999, CancelAllAfter(0, 1, 0)),
            [Ev(CancelAllAfterSet, account=1, deadline_ns=0)],
        ),
        (at(T0 + 60 * S, Tick(0)), [none(OrderEvent)]),
        (CancelAllAfter(0, 1, -1), [rej(Reason.AMOUNT_MUST_BE_POSITIVE)]),
    ],
    "duplicate clOrdID is refused while the first is live or remembered": [
        (sell(1, "a", 100, P), [new("a")]),
        (
            sell(1, "a", 100, P + 10),
            [rej(Reason.CL_ORD_ID_DUPLICATE, cl_ord_id="a"), none(OrderEvent), none(BookLevel)],
        ),
        (sell(2, "a", 100, P + 10), [new("a", account=2)]),  # per account
        (CancelOrders(0, 1, cl_ord_ids=("a",)), [cxl("a", account=1)]),
        (sell(1, "a", 100, P + 10), [rej(Reason.CL_ORD_ID_DUPLICATE)]),
        (sell(1, "", 100, P + 20), [new("")]),  # no clOrdID: never a duplicate
        (sell(1, "", 100, P + 30), [new("")]),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    run(SCENARIOS[name])
