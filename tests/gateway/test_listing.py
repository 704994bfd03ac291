"""A quarterly future listed at runtime (``ListFuture``, as the sequencer's scheduler submits it)
is known to the gateway from its listing on: the instrument routes, orders and the books, the
private tables, trades and history; after a restart it is still listed (the recovered engine's
seed), and the read-model projector settles it."""

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, ListFuture
from perpetua.core.events import InstrumentStateChanged
from perpetua.gateway.auth import sign
from tests.gateway.harness import ALICE, BOB, harness
from tests.gateway.test_restart import running

ROOT = "XBT"


def _future() -> tuple[ListFuture, str]:
    """The next year's Q4 future on XBT: always ahead of the clock, never in the catalogue."""
    year = datetime.now(UTC).year + 1
    symbol = f"{ROOT}Z{year % 100:02d}"
    assert symbol not in {s.symbol for s in default_catalogue()}
    return ListFuture(0, ROOT, year, 4), symbol


def _recv_until(ws: Any, predicate: Any, limit: int = 50) -> Any:
    for _ in range(limit):
        message = json.loads(ws.receive_text())
        if predicate(message):
            return message
    raise AssertionError("message not received")


def test_a_future_listed_at_runtime_is_served_traded_and_in_history() -> None:
    command, symbol = _future()
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        h.deposit(BOB, "XBt", 10**9)
        assert h.client.get("/api/v1/instrument", params={"symbol": symbol}).json() == []
        expires = int(time.time()) + 60
        headers = {
            "api-key": "alice-key",
            "api-expires": str(expires),
            "api-signature": sign("alice-secret", "GET", "/realtime", str(expires)),
        }
        with h.client.websocket_connect(
            "/realtime?subscribe=order,instrument", headers=headers
        ) as ws:
            _recv_until(
                ws, lambda m: m.get("table") == "instrument" and m.get("action") == "partial"
            )
            listed = h.sequencer.execute(command)
            assert [e for e in listed.events if isinstance(e, InstrumentStateChanged)]
            (row,) = h.client.get("/api/v1/instrument", params={"symbol": symbol}).json()
            assert (row["state"], row["typ"], row["rootSymbol"]) == ("Open", "FFCCSX", ROOT)
            engine_spec = next(s for s in h.sequencer.engine.instruments if s.symbol == symbol)
            assert h.gateway.market.specs[symbol] == engine_spec  # index, listing time and all
            insert = _recv_until(
                ws, lambda m: m.get("table") == "instrument" and m.get("action") == "insert"
            )
            assert insert["data"][0]["symbol"] == symbol
            active = h.client.get("/api/v1/instrument/active").json()
            assert symbol in {r["symbol"] for r in active}
            placed = h.signed(
                "POST",
                "/order",
                body={"symbol": symbol, "side": "Buy", "orderQty": 100, "price": 50_000},
            )
            assert placed.status_code == 200, placed.text
            assert placed.json()["ordStatus"] == "New"
            order = _recv_until(
                ws, lambda m: m.get("table") == "order" and m.get("action") == "insert"
            )
            assert order["data"][0]["symbol"] == symbol
        book = h.client.get("/api/v1/orderBook/L2", params={"symbol": symbol}).json()
        assert [(r["side"], r["price"], r["size"]) for r in book] == [("Buy", 50_000, 100)]
        open_orders = h.signed("GET", "/order", params={"filter": '{"open": true}'}).json()
        assert [o["symbol"] for o in open_orders] == [symbol]
        taken = h.signed(
            "POST",
            "/order",
            key=h.bob,
            body={"symbol": symbol, "side": "Sell", "orderQty": 100, "price": 50_000},
        )
        assert taken.status_code == 200, taken.text
        assert taken.json()["ordStatus"] == "Filled"
        trades = h.client.get("/api/v1/trade", params={"symbol": symbol}).json()
        assert [(t["symbol"], t["price"], t["size"]) for t in trades] == [(symbol, 50_000, 100)]
        priced = h.client.get(
            "/api/v1/trade", params={"symbol": symbol, "filter": json.dumps({"price": 50_000})}
        ).json()
        assert len(priced) == 1
        positions = h.signed("GET", "/position").json()
        assert [(p["symbol"], p["currentQty"]) for p in positions] == [(symbol, 100)]
        fills = h.signed("GET", "/execution/tradeHistory").json()
        assert [f["symbol"] for f in fills] == [symbol]


def test_a_future_listed_before_a_restart_is_still_listed(tmp_path: Path) -> None:
    command, symbol = _future()
    with running(tmp_path) as client:
        client.execute(Deposit(0, ALICE, "XBt", 10**9, "a-xbt"))
        client.execute(command)
        client.signed(
            "POST",
            "/order",
            body={"symbol": symbol, "side": "Buy", "orderQty": 100, "price": 50_000},
        )
        before = client.client.get("/api/v1/instrument", params={"symbol": symbol}).json()
        book_before = client.client.get("/api/v1/orderBook/L2", params={"symbol": symbol})
    assert [r["state"] for r in before] == ["Open"]
    with running(tmp_path) as client:
        after = client.client.get("/api/v1/instrument", params={"symbol": symbol}).json()
        assert [r["state"] for r in after] == ["Open"]
        book = client.client.get("/api/v1/orderBook/L2", params={"symbol": symbol}).json()
        assert [(r["side"], r["price"], r["size"]) for r in book] == [("Buy", 50_000, 100)]
        assert [r["id"] for r in book] == [r["id"] for r in book_before.json()]
        open_orders = client.signed("GET", "/order", params={"filter": '{"open": true}'})
        assert [o["symbol"] for o in open_orders] == [symbol]
        assert symbol in client.exchange.projector.projector.specs
