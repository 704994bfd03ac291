"""Every REST route in-process: shapes, units, table queries, orders, errors, limits."""

import json

import pytest

from perpetua.marketdata.ids import order_uuid, parse_order_uuid
from tests.gateway.harness import ALICE, BOB, OPERATOR_KEY, harness

PUBLIC_GETS = [
    "/instrument",
    "/instrument/active",
    "/instrument/indices",
    "/instrument/activeAndIndices",
    "/instrument/activeIntervals",
    "/instrument/compositeIndex?symbol=.BXBT",
    "/instrument/usdVolume",
    "/orderBook/L2?symbol=XBTUSD",
    "/trade",
    "/trade/bucketed",
    "/quote",
    "/quote/bucketed?binSize=5m",
    "/funding",
    "/insurance",
    "/settlement",
    "/liquidation",
    "/stats",
    "/stats/history",
    "/stats/historyUSD",
    "/announcement",
    "/schema",
    "/schema?model=Order",
    "/schema/websocketHelp",
    "/wallet/assets",
    "/wallet/networks",
]
PRIVATE_GETS = [
    "/order",
    "/execution",
    "/execution/tradeHistory",
    "/position",
    "/user",
    "/user/wallet",
    "/user/margin?currency=all",
    "/user/walletHistory",
    "/user/walletSummary",
    "/user/commission",
    "/user/tradingVolume",
    "/apiKey",
    "/announcement/urgent",
]


def _limit(price: object, qty: int = 100, side: str = "Buy", **extra: object) -> dict:
    return {"symbol": "XBTUSD", "side": side, "orderQty": qty, "price": price, **extra}


@pytest.mark.parametrize("path", PUBLIC_GETS)
def test_public_routes_answer(path: str) -> None:
    with harness() as h:
        response = h.client.get("/api/v1" + path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", PRIVATE_GETS)
def test_private_routes_need_auth_and_answer(path: str) -> None:
    with harness() as h:
        assert h.client.get("/api/v1" + path).status_code == 401
        bare, _, query = path.partition("?")
        params = dict(p.split("=") for p in query.split("&")) if query else None
        response = h.signed("GET", bare, params=params)
        assert response.status_code == 200, response.text


def test_instrument_rows_and_symbol_semantics() -> None:
    with harness() as h:
        rows = h.client.get("/api/v1/instrument", params={"symbol": "xbtusd"}).json()
        assert len(rows) == 1
        row = rows[0]
        assert row["symbol"] == "XBTUSD" and row["tickSize"] == 0.1 and row["lotSize"] == 100
        assert row["multiplier"] == -100000000 and row["isInverse"] is True
        assert row["settlCurrency"] == "XBt" and row["typ"] == "FFWCSX"
        assert row["fundingInterval"] == "2000-01-01T08:00:00.000Z"
        assert row["timestamp"].endswith("Z") and len(row["timestamp"]) == 24
        nearest = h.client.get("/api/v1/instrument", params={"symbol": "XBT"}).json()
        assert [r["symbol"] for r in nearest] == ["XBTH27"]
        perps = h.client.get("/api/v1/instrument", params={"symbol": "XBT:perpetual"}).json()
        assert {r["symbol"] for r in perps} == {"XBTUSD", "XBTUSDT"}
        indices = h.client.get("/api/v1/instrument/indices").json()
        assert all(r["symbol"].startswith(".") for r in indices)
        intervals = h.client.get("/api/v1/instrument/activeIntervals").json()
        assert "XBT:perpetual" in intervals["intervals"]
        cols = h.client.get(
            "/api/v1/instrument", params={"columns": json.dumps(["lastPrice"]), "count": 2}
        ).json()
        assert len(cols) == 2 and set(cols[0]) == {"symbol", "lastPrice", "timestamp"}


def test_order_lifecycle_and_book() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        h.deposit(BOB, "XBt", 10**9)
        placed = h.signed("POST", "/order", body=_limit("50000.5", clOrdID="a1"))
        assert placed.status_code == 200, placed.text
        order = placed.json()
        assert order["ordStatus"] == "New" and order["price"] == 50000.5
        assert order["text"] == "Submitted via API." and order["workingIndicator"] is True
        assert parse_order_uuid(order["orderID"]) is not None
        book = h.client.get("/api/v1/orderBook/L2", params={"symbol": "XBTUSD"}).json()
        assert [(r["side"], r["price"], r["size"]) for r in book] == [("Buy", 50000.5, 100)]
        # amend by origClOrdID, form-encoded body
        amended = h.signed(
            "PUT",
            "/order",
            raw_body=b"origClOrdID=a1&price=50001",
            content_type="application/x-www-form-urlencoded",
        )
        assert amended.status_code == 200, amended.text
        assert amended.json()["price"] == 50001
        # a taker from Bob trades against it
        taken = h.signed("POST", "/order", key=h.bob, body=_limit(50000, 100, "Sell"))
        assert taken.json()["ordStatus"] == "Filled" and taken.json()["avgPx"] == 50001
        trades = h.client.get("/api/v1/trade", params={"symbol": "XBTUSD"}).json()
        assert trades[-1]["price"] == 50001 and trades[-1]["size"] == 100
        assert trades[-1]["side"] == "Sell" and trades[-1]["grossValue"] > 0
        executions = h.signed("GET", "/execution/tradeHistory").json()
        assert executions[-1]["execType"] == "Trade" and executions[-1]["lastPx"] == 50001
        assert executions[-1]["lastLiquidityInd"] == "AddedLiquidity"
        positions = h.signed("GET", "/position").json()
        assert positions[0]["currentQty"] == 100 and positions[0]["symbol"] == "XBTUSD"
        bins = h.client.get(
            "/api/v1/trade/bucketed", params={"binSize": "1m", "partial": "true"}
        ).json()
        assert bins[-1]["close"] == 50001 and bins[-1]["volume"] == 100
        filled = h.signed("GET", "/order", params={"filter": '{"ordStatus": "Filled"}'}).json()
        assert len(filled) == 1
        assert h.signed("GET", "/order", params={"filter": '{"open": true}'}).json() == []
        # cancelling a filled order returns it with an error field
        gone = h.signed("DELETE", "/order", body={"orderID": order["orderID"]})
        assert gone.status_code == 200
        assert gone.json()[0]["error"].startswith("Unable to cancel order due to existing state")
        wallet = h.signed("GET", "/user/walletHistory").json()
        assert wallet[0]["transactType"] in ("Deposit", "RealisedPNL")


def test_order_errors() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        cases = [
            (_limit("50000.05"), 400, "Invalid price"),
            (_limit(-5), 400, "Invalid price"),
            (_limit(50000, qty=150), 400, "orderQty is invalid"),
            (_limit(50000, qty="1e400"), 400, "orderQty is invalid"),
            ({"symbol": "NOPE", "orderQty": 100, "price": 1}, 400, "Invalid symbol"),
            (_limit(50000, ordType="Nope"), 400, "Invalid ordType"),
            (_limit(50000, execInst="Bogus"), 400, "Invalid execInst"),
            ({"side": "Buy"}, 400, "'symbol' is a required arg."),
            (_limit(10**9), 400, "Invalid price"),
        ]
        for body, status, message in cases:
            response = h.signed("POST", "/order", body=body)
            assert response.status_code == status, (body, response.text)
            assert response.json()["error"]["message"] == message, body
        h.signed("POST", "/order", body=_limit(1000, clOrdID="dup"))
        dup = h.signed("POST", "/order", body=_limit(1000, clOrdID="dup"))
        assert dup.json()["error"]["message"] == "Duplicate clOrdID"
        poor = h.signed("POST", "/order", key=h.bob, body=_limit(1000))
        assert poor.json()["error"]["message"].startswith(
            "Account has insufficient Available Balance"
        )
        missing = h.signed("DELETE", "/order", body={"orderID": order_uuid(999_999)})
        assert missing.status_code == 404
        amend = h.signed("PUT", "/order", body={"orderID": order_uuid(999_999), "price": 1})
        assert amend.status_code in (400, 404)
        assert h.signed("POST", "/order", raw_body=b"{not json").status_code == 400
        assert h.signed("POST", "/order", raw_body=b"[1,2]").status_code == 400


def test_bulk_cancel_all_close_and_cancel_all_after() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        orders = [_limit(1000 + i, clOrdID=f"b{i}") for i in range(3)]
        bulk = h.signed("POST", "/order/bulk", body={"orders": orders})
        assert bulk.status_code == 200, bulk.text
        assert [o["clOrdID"] for o in bulk.json()] == ["b0", "b1", "b2"]
        amends = [{"origClOrdID": "b0", "price": 900}, {"origClOrdID": "b1", "orderQty": 200}]
        amended = h.signed("PUT", "/order/bulk", body={"orders": json.dumps(amends)})
        assert amended.status_code == 200, amended.text
        assert [(o["price"], o["orderQty"]) for o in amended.json()] == [(900, 100), (1001, 200)]
        after = h.signed("POST", "/order/cancelAllAfter", body={"timeout": 60000}).json()
        assert after["cancelTime"] > after["now"]
        cancelled = h.signed("DELETE", "/order/all", body={"symbol": "XBTUSD"})
        assert len(cancelled.json()) == 3 and cancelled.json()[0]["ordStatus"] == "Canceled"
        none = h.signed("POST", "/order/closePosition", body={"symbol": "XBTUSD"})
        assert none.status_code == 400
        terminal = h.signed(
            "PUT", "/order/bulk", body={"orders": [{"origClOrdID": "b0", "price": 1}]}
        )
        assert terminal.json()["error"]["message"] == "Invalid ordStatus"


def test_delete_accepts_json_body_lists_and_clordid() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        ids = [
            h.signed("POST", "/order", body=_limit(1000 + i)).json()["orderID"] for i in range(2)
        ]
        h.signed("POST", "/order", body=_limit(1500, clOrdID="c1"))
        response = h.signed("DELETE", "/order", body={"orderID": ids, "clOrdID": "c1"})
        assert response.status_code == 200
        assert sorted(r["ordStatus"] for r in response.json()) == ["Canceled"] * 3


def test_margin_all_wallet_and_faucet() -> None:
    with harness() as h:
        denied = h.client.post(
            "/api/v1/admin/faucet", json={"account": ALICE, "currency": "XBt", "amount": 5}
        )
        assert denied.status_code == 403
        credited = h.client.post(
            "/api/v1/admin/faucet",
            headers={"x-operator-key": OPERATOR_KEY},
            json={"account": ALICE, "currency": "USDt", "amount": 5_000_000},
        )
        assert credited.status_code == 200 and credited.json()["walletBalance"] == 5_000_000
        margins = h.signed("GET", "/user/margin", params={"currency": "all"}).json()
        assert isinstance(margins, list) and margins[0]["currency"] == "USDt"
        assert margins[0]["availableMargin"] == 5_000_000
        single = h.signed("GET", "/user/wallet", params={"currency": "USDt"}).json()
        assert single["amount"] == 5_000_000
        assets = h.client.get("/api/v1/wallet/assets").json()
        assert {a["currency"]: a["scale"] for a in assets}["XBt"] == 8


def test_unknown_route_wrong_verb_and_swagger() -> None:
    with harness() as h:
        assert h.client.get("/api/v1/nothing").json() == {
            "error": {"message": "Not Found", "name": "HTTPError"}
        }
        assert h.client.patch("/api/v1/order").status_code == 405
        spec = h.client.get("/api/explorer/swagger.json", headers={"host": "x.test:8000"}).json()
        assert spec["host"] == "x.test:8000" and "/order/bulk" in spec["paths"]
        assert h.client.get("/api/explorer").status_code == 200


def test_overload_sheds_orders_not_cancels() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        h.sequencer.overloaded = True
        shed = h.signed("POST", "/order", body=_limit(1000))
        assert shed.status_code == 503
        assert "overloaded" in shed.json()["error"]["message"]
        assert h.signed("DELETE", "/order/all").status_code == 200


def test_rate_limits_headers_and_429() -> None:
    with harness(rate_limits=True) as h:
        first = h.client.get("/api/v1/announcement")
        assert first.headers["x-ratelimit-limit"] == "30"
        assert int(first.headers["x-ratelimit-remaining"]) == 29
        for _ in range(40):
            last = h.client.get("/api/v1/announcement")
        assert last.status_code == 429 and "retry-after" in last.headers
        assert last.json()["error"]["message"].startswith("Rate limit exceeded, retry in")
        h.deposit(ALICE, "XBt", 10**9)
        statuses = [
            h.signed("POST", "/order", body=_limit(1000 + i)).status_code for i in range(30)
        ]
        assert statuses.count(429) >= 1 and statuses[0] == 200
