"""Issue 10 items 4, 8 and the order parts of 9: ``DELETE /order/all`` honours its filter and
cancels nothing it was not asked to; a bulk cancel is capped, charged by size and costs one SQL
query for its misses, not one per id; a negative ``orderQty`` with a side and control
characters in ``clOrdID``/``text`` are 400s."""

import json
import time
from typing import Any

import pytest
from sqlalchemy import event

from perpetua.gateway.orders import CANCEL_IDS_MAX
from tests.gateway.harness import ALICE, BOB, harness


def _order(price: int, **extra: Any) -> dict[str, Any]:
    return {"symbol": "XBTUSD", "orderQty": 100, "price": price, **extra}


def _place_three(h: Any) -> dict[str, str]:
    """A Limit buy, a StopLimit sell and a Limit sell; their orderIDs by clOrdID."""
    placed = [
        h.signed("POST", "/order", body=_order(1000, clOrdID="limit-buy")),
        h.signed(
            "POST",
            "/order",
            body=_order(60000, side="Sell", clOrdID="stop-sell", ordType="StopLimit", stopPx=40000),
        ),
        h.signed("POST", "/order", body=_order(70000, side="Sell", clOrdID="limit-sell")),
    ]
    assert all(p.status_code == 200 for p in placed), [p.text for p in placed]
    return {p.json()["clOrdID"]: p.json()["orderID"] for p in placed}


def _open(h: Any) -> set[str]:
    rows = h.signed("GET", "/order", params={"filter": '{"open": true}'}).json()
    return {r["clOrdID"] for r in rows}


ALL = {"limit-buy", "stop-sell", "limit-sell"}
FILTERS: list[tuple[Any, set[str]]] = [
    ({"ordType": "StopLimit"}, {"stop-sell"}),
    ({"clOrdID": "limit-sell"}, {"limit-sell"}),
    ({"side": "Sell"}, {"stop-sell", "limit-sell"}),
    ({"side": "Buy"}, {"limit-buy"}),
    ({"side": ["Buy", "Sell"]}, ALL),
    ({"ordType": ["Limit"], "side": "Sell"}, {"limit-sell"}),
    ({"clOrdID": ["limit-buy", "stop-sell"]}, {"limit-buy", "stop-sell"}),
    ({"price": 1000}, {"limit-buy"}),
    ({"price": "70000"}, {"limit-sell"}),
    ({"stopPx": 40000}, {"stop-sell"}),
    ({"clOrdID": "nobody"}, set()),
    ({}, ALL),
]


@pytest.mark.parametrize(("filter_", "cancelled"), FILTERS)
def test_cancel_all_honours_its_filter(filter_: Any, cancelled: set[str]) -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        h.deposit(BOB, "XBt", 10**9)
        _place_three(h)
        bobs = h.signed("POST", "/order", key=h.bob, body=_order(1000, clOrdID="limit-buy"))
        assert bobs.status_code == 200
        response = h.signed("DELETE", "/order/all", body={"filter": json.dumps(filter_)})
        assert response.status_code == 200, response.text
        assert {r["clOrdID"] for r in response.json()} == cancelled
        assert _open(h) == ALL - cancelled
        # the other account's order with the same clOrdID is untouched
        assert [r["ordStatus"] for r in h.signed("GET", "/order", key=h.bob).json()] == ["New"]


@pytest.mark.parametrize(
    "filter_",
    [
        {"ordType": "Bogus"},
        {"side": "sell"},
        {"nope": 1},
        {"price": "1e300000"},
        {"side": []},
        {"side": {"$ne": "Buy"}},
        {"orderID": "not-a-uuid"},
        {"workingIndicator": "maybe"},
        "not an object",
        {"clOrdID": ["x"] * 501},
    ],
)
def test_cancel_all_refuses_bad_filters_and_cancels_nothing(filter_: Any) -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        _place_three(h)
        text = filter_ if isinstance(filter_, str) else json.dumps(filter_)
        response = h.signed("DELETE", "/order/all", body={"filter": text})
        assert response.status_code == 400, (filter_, response.text)
        assert _open(h) == ALL


def test_bulk_cancel_is_capped_and_charged_by_size() -> None:
    with harness(rate_limits=True) as h:
        h.deposit(ALICE, "XBt", 10**9)
        too_many = h.signed(
            "DELETE", "/order", body={"clOrdID": [f"c{i}" for i in range(CANCEL_IDS_MAX + 1)]}
        )
        assert too_many.status_code == 400
        time.sleep(1.1)  # the order layer's 10 per second refill
        before = int(h.signed("GET", "/position").headers["x-ratelimit-remaining"])
        response = h.signed("DELETE", "/order", body={"clOrdID": [f"c{i}" for i in range(100)]})
        assert response.status_code == 404
        after = int(response.headers["x-ratelimit-remaining"])
        assert before - after == 10  # ceil(100 / 10), as a bulk of 100 orders


def test_bulk_cancel_costs_one_sql_query_not_one_per_id() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        placed = [
            h.signed("POST", "/order", body=_order(1000 + i, clOrdID=f"old{i}")) for i in range(3)
        ]
        assert all(p.status_code == 200 for p in placed)
        assert h.signed("DELETE", "/order/all").status_code == 200
        h.gateway.private.ended_orders.clear()  # only the read models remember them now
        selects: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "orders" in statement:
                selects.append(statement)

        engine = h.gateway.history.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            ids = [f"old{i}" for i in range(3)] + [f"never{i}" for i in range(400)]
            response = h.signed("DELETE", "/order", body={"clOrdID": ids})
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert response.status_code == 200, response.text
        rows = response.json()
        assert len(rows) == 403
        known = [r for r in rows if r["clOrdID"].startswith("old")]
        assert {r["ordStatus"] for r in known} == {"Canceled"}
        assert all(r["error"].startswith("Unable to cancel") for r in known)
        assert len(selects) == 1, len(selects)


def test_negative_quantity_with_an_explicit_side_is_refused() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        for side in ("Buy", "Sell"):
            response = h.signed("POST", "/order", body=_order(1000, orderQty=-100, side=side))
            assert response.status_code == 400, response.text
            assert "orderQty is invalid" in response.json()["error"]["message"]
        assert _open(h) == set()
        # without a side, a negative quantity still means Sell (the market maker's form)
        sell = h.signed("POST", "/order", body=_order(70000, orderQty=-100))
        assert sell.status_code == 200 and sell.json()["side"] == "Sell"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clOrdID", "a\nb"),
        ("clOrdID", "a\x00"),
        ("text", "hi\r\nX-Injected: 1"),
        ("text", "\x1b[31mred"),
        ("clOrdLinkID", "l\t1"),
    ],
)
def test_control_characters_are_refused(field: str, value: str) -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        response = h.signed("POST", "/order", body=_order(1000, **{field: value}))
        assert response.status_code == 400, response.text
        assert _open(h) == set()
        placed = h.signed("POST", "/order", body=_order(1000, clOrdID="ok"))
        amend = h.signed("PUT", "/order", body={"origClOrdID": "ok", field: value})
        assert amend.status_code == 400 or field == "clOrdLinkID", amend.text
        assert placed.status_code == 200
