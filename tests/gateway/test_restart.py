"""Restart: a gateway over a recovered data dir serves the same books, quotes, instruments,
open orders, positions, wallets and margins as before the restart, also when the read models
trailed the journal at the stop (the projector catches up before the gateway is seeded). The
ADL percentiles are the engine's ranking at the restart until the next mark update."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from perpetua.core.commands import Deposit, IndexPrice, SetInterestRate
from perpetua.gateway.auth import sign
from perpetua.runtime import FeedsConfig, Venue, VenueConfig, open_venue
from perpetua.wire.values import encode_json

ALICE, BOB = 1001, 1002
INSTRUMENT_FIELDS = (
    "state",
    "lastPrice",
    "lastTickDirection",
    "markPrice",
    "fairPrice",
    "indicativeSettlePrice",
    "fundingRate",
    "indicativeFundingRate",
    "fundingTimestamp",
    "fairBasisRate",
    "openInterest",
    "openValue",
    "bidPrice",
    "askPrice",
    "midPrice",
    "impactBidPrice",
    "impactAskPrice",
)


class Client:
    def __init__(
        self, client: TestClient, exchange: Venue, keys: dict[int, tuple[str, str]]
    ) -> None:
        self.client = client
        self.exchange = exchange
        self.keys = keys

    def signed(
        self,
        method: str,
        path: str,
        account: int = ALICE,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        key, secret = self.keys[account]
        target = "/api/v1" + path
        if params:
            from urllib.parse import urlencode

            target += "?" + urlencode(params)
        data = encode_json(body) if body is not None else b""
        expires = str(int(time.time()) + 60)
        headers = {
            "api-key": key,
            "api-expires": expires,
            "api-signature": sign(secret, method, target, expires, data),
            "content-type": "application/json",
        }
        response = self.client.request(method, target, content=data, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    def execute(self, command: Any) -> None:
        self.exchange.sequencer.execute(command)


def _keys(venue: Venue, data_dir: Path) -> dict[int, tuple[str, str]]:
    """Alice's and Bob's keys: made on the first start, read back from the data dir after."""
    saved = data_dir / "test-keys.json"
    if saved.exists():
        return {int(k): (v[0], v[1]) for k, v in json.loads(saved.read_text()).items()}
    keys = {}
    for account, name in ((ALICE, "alice"), (BOB, "bob")):
        venue.accounts.create_user(f"{name}@example.com", "a long test password", account)
        keys[account] = venue.accounts.create_api_key(account, name, ["order"])
    saved.write_text(json.dumps(keys))
    return keys


@contextmanager
def running(data_dir: Path) -> Iterator[Client]:
    config = VenueConfig(
        data_dir=data_dir,
        operator_key="op",
        rate_limits_enabled=False,
        feeds=FeedsConfig(default="none"),
    )
    exchange = open_venue(config)
    keys = _keys(exchange, data_dir)
    exchange.start()
    try:
        with TestClient(exchange.app, client=("127.0.0.1", 50000)) as client:
            yield Client(client, exchange, keys)
    finally:
        exchange.stop()


def _no_time(rows: Any) -> Any:
    if isinstance(rows, list):
        return [_no_time(r) for r in rows]
    return {k: v for k, v in rows.items() if k != "timestamp"}


def _partial(c: Client, table: str) -> Any:
    expires = int(time.time()) + 60
    key, secret = c.keys[ALICE]
    headers = {
        "api-key": key,
        "api-expires": str(expires),
        "api-signature": sign(secret, "GET", "/realtime", str(expires)),
    }
    with c.client.websocket_connect(f"/realtime?subscribe={table}", headers=headers) as ws:
        ws.receive_text()  # welcome
        json.loads(ws.receive_text())  # ack
        return json.loads(ws.receive_text())["data"]


def views(c: Client) -> dict[str, Any]:
    """Everything the in-memory views answer, as clients see it."""
    public = c.client
    instrument = public.get("/api/v1/instrument", params={"symbol": "XBTUSD"}).json()[0]
    return {
        "book": _no_time(
            public.get("/api/v1/orderBook/L2", params={"symbol": "XBTUSD", "depth": 0}).json()
        ),
        "book_eth": _no_time(
            public.get("/api/v1/orderBook/L2", params={"symbol": "ETHUSDT", "depth": 0}).json()
        ),
        "quote": _no_time(
            public.get(
                "/api/v1/quote", params={"symbol": "XBTUSD", "reverse": "true", "count": 1}
            ).json()
        ),
        "instrument": {k: instrument.get(k) for k in INSTRUMENT_FIELDS},
        "orders": c.signed("GET", "/order", params={"filter": '{"open": true}'}),
        "order_partial": sorted(_partial(c, "order"), key=lambda r: r["orderID"]),
        "positions": c.signed("GET", "/position"),
        "position_partial": _partial(c, "position"),
        "margin": _no_time(c.signed("GET", "/user/margin", params={"currency": "all"})),
        "wallet": c.signed("GET", "/user/wallet", params={"currency": "all"}),
        "bob_margin": _no_time(
            c.signed("GET", "/user/margin", account=BOB, params={"currency": "all"})
        ),
    }


def _trade(c: Client) -> None:
    c.execute(Deposit(0, ALICE, "XBt", 10 * 10**8, "a-xbt"))
    c.execute(Deposit(0, BOB, "XBt", 10 * 10**8, "b-xbt"))
    c.execute(Deposit(0, ALICE, "USDt", 10_000 * 10**6, "a-usdt"))
    c.execute(Deposit(0, BOB, "USDt", 10_000 * 10**6, "b-usdt"))
    # Zero interest: the mark (fair price) equals the index, whatever the clock reads. With the
    # default 0.01% the fair-price basis decays with the time to funding, so a timer applied
    # while the exchange stops (a minute sample) could move the mark between the two views.
    c.execute(SetInterestRate(0, "XBTUSD", 0))
    c.execute(SetInterestRate(0, "ETHUSDT", 0))
    c.execute(IndexPrice(0, ".BXBT", 50_000, 1))
    c.execute(IndexPrice(0, ".BETHT", 2_000, 1))
    c.signed("POST", "/position/leverage", body={"symbol": "XBTUSD", "leverage": 5})
    for price in (49_900, 49_950):
        c.signed(
            "POST",
            "/order",
            body={"symbol": "XBTUSD", "side": "Buy", "orderQty": 1000, "price": price},
        )
    # an iceberg whose shown tranche is partly taken: only the engine knows its visible size
    c.signed(
        "POST",
        "/order",
        account=BOB,
        body={
            "symbol": "XBTUSD",
            "side": "Sell",
            "orderQty": 2000,
            "price": 50_100,
            "displayQty": 300,
        },
    )
    c.signed(
        "POST", "/order", body={"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 50_100}
    )
    c.signed(
        "POST",
        "/order",
        account=BOB,
        body={"symbol": "ETHUSDT", "side": "Sell", "orderQty": 5000, "price": 2_010},
    )
    _rank(c, 50_001)


def _rank(c: Client, index: int) -> None:
    """Move XBTUSD's mark: the core publishes the ADL ranking (``deleveragePercentile``) with
    mark updates only, so the live view ranks the positions as they stand now, as a restarted
    one does from its seed."""
    c.execute(IndexPrice(0, ".BXBT", index, 1))


def test_views_equal_after_a_restart(tmp_path: Path) -> None:
    with running(tmp_path) as before_client:
        _trade(before_client)
        before = views(before_client)
    assert before["book"] and before["orders"] and before["positions"]
    iceberg = [r for r in before["book"] if r["price"] == 50_100]
    assert [r["size"] for r in iceberg] == [200]
    assert [p["deleveragePercentile"] for p in before["positions"]] == [1]
    with running(tmp_path) as after_client:
        after = views(after_client)  # no mark update since the restart: ranked from the seed
    assert after == before


def test_views_equal_when_the_read_models_trailed(tmp_path: Path) -> None:
    with running(tmp_path) as client:
        _trade(client)
        client.exchange.projector.close()  # the read models stop here; the journal goes on
        client.signed(
            "POST",
            "/order",
            account=BOB,
            body={"symbol": "XBTUSD", "side": "Sell", "orderQty": 500, "price": 49_950},
        )
        client.signed(
            "POST",
            "/order",
            body={"symbol": "ETHUSDT", "side": "Buy", "orderQty": 1000, "price": 1_990},
        )
        _rank(client, 50_002)
        before = {k: v for k, v in views(client).items() if k not in ("orders",)}
    with running(tmp_path) as after_client:
        after = views(after_client)
    assert {k: v for k, v in after.items() if k != "orders"} == before
    stored = sorted(after["orders"], key=lambda r: r["orderID"])
    assert [{k: v for k, v in r.items() if v is not None} for r in stored] == after[
        "order_partial"
    ]  # the read models caught up: history agrees with the live view
    assert len(stored) == len(before["order_partial"])
