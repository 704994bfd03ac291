"""The risk engine's tables through the gateway, REST (from the read models) and WebSocket:
liquidation (insert, delete), insurance, funding, settlement, and the Funding, Liquidation,
Deleverage and Settlement executions."""

import json
import time
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any

from perpetua.core.catalogue import quarterly_expiry_ns
from perpetua.core.commands import SetInterestRate, Tick
from perpetua.gateway.auth import sign
from tests.gateway.harness import ALICE, BOB, harness

ETH = "ETHUSDT"
USDT = 1_000_000
CAROL = 1003
HOUR_NS = 3_600 * 10**9


def _recv(ws: Any) -> Any:
    return json.loads(ws.receive_text())


class Inbox:
    """Messages of one socket; ``take`` finds the first one matching, reading as needed (a
    command's deltas arrive in event order, which tests should not depend on)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: list[Any] = []

    def take(self, predicate: Any, limit: int = 200) -> Any:
        for index, message in enumerate(self.seen):
            if predicate(message):
                return self.seen.pop(index)
        for _ in range(limit):
            message = _recv(self.ws)
            if predicate(message):
                return message
            self.seen.append(message)
        raise AssertionError("message not received")

    def table(self, table: str, action: str) -> Any:
        return self.take(lambda m: m.get("table") == table and m.get("action") == action)

    def execution(self, exec_type: str) -> Any:
        message = self.take(
            lambda m: (
                m.get("table") == "execution"
                and any(r.get("execType") == exec_type for r in m["data"])
            )
        )
        return next(r for r in message["data"] if r["execType"] == exec_type)


def _isolated_long(h: Any) -> dict[str, Any]:
    """Alice: 2000 ETHUSDT long at 2000, isolated 10x, with 100 USDT; Bob is short."""
    h.deposit(ALICE, "USDt", 100 * USDT)
    h.deposit(BOB, "USDt", 100_000 * USDT)
    h.deposit(CAROL, "USDt", 100_000 * USDT)
    h.sequencer.execute(SetInterestRate(0, ETH, 0))
    h.index(".BETHT", 2000)
    assert (
        h.signed("POST", "/position/leverage", body={"symbol": ETH, "leverage": 10}).status_code
        == 200
    )
    h.signed(
        "POST",
        "/order",
        key=h.bob,
        body={"symbol": ETH, "side": "Sell", "orderQty": 2000, "price": 2000},
    )
    h.signed("POST", "/order", body={"symbol": ETH, "side": "Buy", "orderQty": 2000, "price": 2000})
    (row,) = h.signed("GET", "/position").json()
    return row


def _subscribe(ws: Any, *topics: str) -> Inbox:
    _recv(ws)  # welcome
    expires = int(time.time()) + 60
    ws.send_text(
        json.dumps(
            {
                "op": "authKeyExpires",
                "args": [
                    "alice-key",
                    expires,
                    sign("alice-secret", "GET", "/realtime", str(expires)),
                ],
            }
        )
    )
    assert _recv(ws)["success"] is True
    ws.send_text(json.dumps({"op": "subscribe", "args": list(topics)}))
    for _ in topics:
        assert _recv(ws)["success"] is True
        assert _recv(ws)["action"] == "partial"
    return Inbox(ws)


def test_liquidation_table_insurance_and_liquidation_execution() -> None:
    with harness() as h:
        carol = h.accounts.create_api_key(
            CAROL, ["order"], key_id="carol-key", secret="carol-secret"
        )
        row = _isolated_long(h)
        bankrupt, liquidation = row["bankruptPrice"], row["liquidationPrice"]
        with h.client.websocket_connect("/realtime") as ws:
            inbox = _subscribe(ws, "liquidation", "insurance", "execution")
            h.index(".BETHT", (int(liquidation * 20) - 1), 20)  # just below: taken over
            insert = inbox.table("liquidation", "insert")
            (order,) = insert["data"]
            assert (order["symbol"], order["side"], order["price"], order["leavesQty"]) == (
                ETH,
                "Sell",
                bankrupt,
                2000,
            )
            fee = inbox.table("insurance", "insert")["data"][0]
            assert fee["currency"] == "USDt" and fee["walletBalance"] > 0
            execution = inbox.execution("Liquidation")
            assert (execution["side"], execution["lastQty"], execution["lastPx"]) == (
                "Sell",
                2000,
                bankrupt,
            )
            assert execution["orderID"] == "00000000-0000-0000-0000-000000000000"
            working = h.client.get("/api/v1/liquidation").json()
            assert [(r["orderID"], r["leavesQty"]) for r in working] == [(order["orderID"], 2000)]
            h.signed(
                "POST",
                "/order",
                key=carol,
                body={"symbol": ETH, "side": "Buy", "orderQty": 2000, "price": bankrupt},
            )
            gone = inbox.table("liquidation", "delete")
            assert gone["data"][0]["orderID"] == order["orderID"]
        assert h.client.get("/api/v1/liquidation").json() == []
        history = h.signed("GET", "/execution/tradeHistory").json()
        assert "Liquidation" in {r["execType"] for r in history}
        fund = h.client.get("/api/v1/insurance", params={"symbol": "USDt"}).json()
        assert fund and fund[-1]["walletBalance"] == fee["walletBalance"]
        position = h.signed("GET", "/position").json()[0]
        assert position["currentQty"] == 0


def test_deleverage_execution() -> None:
    with harness() as h:
        _isolated_long(h)
        h.index(".BETHT", 1000)  # far below bankruptcy, no bids: Bob is deleveraged
        rows = h.signed(
            "GET",
            "/execution/tradeHistory",
            key=h.bob,
            params={"filter": json.dumps({"execType": "Deleverage"})},
        ).json()
        assert [(r["side"], r["lastQty"], r["text"]) for r in rows] == [("Buy", 2000, "Deleverage")]
        assert h.signed("GET", "/position", key=h.bob).json()[0]["currentQty"] == 0


def test_funding_rows_and_executions() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        h.deposit(BOB, "XBt", 10**9)
        h.index(".BXBT", 50_000)
        h.signed(
            "POST",
            "/order",
            key=h.bob,
            body={"symbol": "XBTUSD", "side": "Sell", "orderQty": 1000, "price": 50_000},
        )
        h.signed(
            "POST",
            "/order",
            body={"symbol": "XBTUSD", "side": "Buy", "orderQty": 1000, "price": 50_000},
        )
        instrument = h.client.get("/api/v1/instrument", params={"symbol": "XBTUSD"}).json()[0]
        funding_ns = _ns(instrument["fundingTimestamp"])
        with h.client.websocket_connect("/realtime") as ws:
            inbox = _subscribe(ws, "funding:XBTUSD", "execution")
            h.sequencer.execute(Tick(funding_ns))
            row = inbox.table("funding", "insert")["data"][0]
            assert (row["symbol"], row["fundingRate"], row["fundingRateDaily"]) == (
                "XBTUSD",
                0.0001,
                0.0003,
            )
            assert row["fundingInterval"] == "2000-01-01T08:00:00.000Z"
            paid = inbox.execution("Funding")
        assert paid["ordType"] == "Funding" and paid["lastQty"] == 1000
        assert paid["execComm"] == 200 and paid["commission"] == 0.0001  # 0.01% of 0.02 XBT
        stored = h.client.get("/api/v1/funding", params={"symbol": "XBTUSD"}).json()
        assert [_bare(r) for r in stored] == [row]
        rest = h.signed(
            "GET", "/execution", params={"filter": json.dumps({"execType": "Funding"})}
        ).json()
        assert [r["execID"] for r in rest] == [paid["execID"]]
        wallet = h.signed("GET", "/user/walletHistory").json()
        assert any(r["transactType"] == "RealisedPNL" and r["amount"] == -200 for r in wallet)


def test_settlement_rows_and_executions() -> None:
    """The settled price is the TWAP to the nearest tick (60 000.37 -> 60 000.4 at tick 0.1),
    the same on the settlement row and each Settlement execution, whose fee follows from it."""
    expiry = quarterly_expiry_ns(2027, 1)
    with harness() as h:
        if time.time_ns() > expiry - 2 * HOUR_NS:  # pragma: no cover - after March 2027
            return
        h.deposit(ALICE, "XBt", 10**9)
        h.deposit(BOB, "XBt", 10**9)
        h.index(".BXBT", 6_000_037, 100)
        h.signed(
            "POST",
            "/order",
            key=h.bob,
            body={"symbol": "XBTH27", "side": "Sell", "orderQty": 6000, "price": 60_000},
        )
        h.signed(
            "POST",
            "/order",
            body={"symbol": "XBTH27", "side": "Buy", "orderQty": 6000, "price": 60_000},
        )
        with h.client.websocket_connect("/realtime") as ws:
            inbox = _subscribe(ws, "settlement")
            h.sequencer.execute(Tick(expiry))
            row = inbox.table("settlement", "insert")["data"][0]
        assert (row["symbol"], row["settlementType"], row["settledPrice"]) == (
            "XBTH27",
            "Settlement",
            60_000.4,
        )
        assert [_bare(r) for r in h.client.get("/api/v1/settlement").json()] == [row]
        instrument = json.loads(
            h.client.get("/api/v1/instrument", params={"symbol": "XBTH27"}).text,
            parse_float=Decimal,
        )[0]
        assert instrument["state"] == "Settled"
        for key in (h.alice, h.bob):
            settled = json.loads(
                h.signed(
                    "GET",
                    "/execution/tradeHistory",
                    key=key,
                    params={"symbol": "XBTH27", "filter": json.dumps({"execType": "Settlement"})},
                ).text,
                parse_float=Decimal,
            )
            (fill,) = settled
            assert (fill["lastQty"], fill["lastPx"]) == (6000, Decimal("60000.4"))
            value = (
                6000 * abs(Decimal(instrument["multiplier"])) / fill["lastPx"]
            ).to_integral_value(rounding=ROUND_DOWN)
            assert abs(fill["execCost"]) == value
            assert fill["commission"] == instrument["settlementFee"] == Decimal("0.0005")
            assert fill["execComm"] == (value * fill["commission"]).to_integral_value(
                rounding=ROUND_CEILING
            )
        assert [f["side"] for f in settled] == ["Buy"]  # Bob's short closes with a buy


def _bare(row: dict[str, Any]) -> dict[str, Any]:
    """A REST row without its nulls (the WebSocket leaves them out)."""
    return {k: v for k, v in row.items() if v is not None}


def _ns(stamp: str) -> int:
    from perpetua.wire.values import parse_iso_ns

    parsed = parse_iso_ns(stamp)
    assert parsed is not None
    return parsed
