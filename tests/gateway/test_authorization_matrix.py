"""Issue 10: the authorization matrix. Over the venue as ``perpetua run`` composes it (accounts
service, identity, read models), a second account's key (every user permission) calls every
private REST route and subscribes every private WebSocket table, aimed at the first account's
orders, clOrdIDs and account number; it sees none of the first account's data and changes none
of its state.

"Sees none": no answer or frame holds any of the victim's order, execution or transaction ids,
clOrdIDs, email, key id, or its account number as an account field. "Changes none": the
victim's own view of its orders, executions, positions, wallet, margin and wallet history is
identical before and after, and so are its ledger balances in the core.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from perpetua.core.commands import Deposit, IndexPrice, SetInterestRate
from perpetua.gateway.auth import sign
from perpetua.gateway.ws.topics import PRIVATE_TABLES
from perpetua.marketdata import ids
from tests.gateway.test_restart import ALICE, BOB, Client, running

MALLORY = 1003
VICTIM_EMAIL = "alice@example.com"


def _victim_activity(c: Client) -> None:
    for account, tag in ((ALICE, "a"), (BOB, "b"), (MALLORY, "m")):
        c.execute(Deposit(0, account, "XBt", 10 * 10**8, f"{tag}-xbt"))
        c.execute(Deposit(0, account, "USDt", 10_000 * 10**6, f"{tag}-usdt"))
    c.execute(SetInterestRate(0, "XBTUSD", 0))
    c.execute(IndexPrice(0, ".BXBT", 50_000, 1))
    c.signed(
        "POST",
        "/order",
        account=BOB,
        body={"symbol": "XBTUSD", "side": "Sell", "orderQty": 500, "price": 50_000},
    )
    c.signed(
        "POST",
        "/order",
        body={
            "symbol": "XBTUSD",
            "side": "Buy",
            "orderQty": 300,
            "price": 50_000,
            "clOrdID": "alice-fill",
        },
    )
    for n, (side, price) in enumerate((("Buy", 40_000), ("Sell", 60_000), ("Buy", 41_000))):
        c.signed(
            "POST",
            "/order",
            body={
                "symbol": "XBTUSD",
                "side": side,
                "orderQty": 100,
                "price": price,
                "clOrdID": f"alice-rest-{n}",
            },
        )
    c.signed(
        "POST",
        "/order",
        body={
            "symbol": "XBTUSD",
            "side": "Sell",
            "orderQty": 100,
            "price": 70_000,
            "stopPx": 45_000,
            "ordType": "StopLimit",
            "clOrdID": "alice-stop",
        },
    )


def _victim_view(c: Client) -> dict[str, Any]:
    def signed(path: str, **params: str) -> Any:
        return c.signed("GET", path, params=params or None)

    def no_time(value: Any) -> Any:
        if isinstance(value, list):
            return [no_time(v) for v in value]
        if isinstance(value, dict):
            return {k: no_time(v) for k, v in value.items() if k != "timestamp"}
        return value

    state = c.exchange.sequencer.engine.state
    return {
        "orders": signed("/order", count="500"),
        "executions": signed("/execution", count="500"),
        "trade_history": signed("/execution/tradeHistory", count="500"),
        "positions": no_time(signed("/position")),
        "wallet": no_time(signed("/user/wallet", currency="all")),
        "margin": no_time(signed("/user/margin", currency="all")),
        "wallet_history": signed("/user/walletHistory", currency="all"),
        "ledger": {cur: book.get(ALICE) for cur, book in sorted(state.ledger.balances.items())},
        "user": no_time(signed("/user")),
    }


def _secrets_of(view: dict[str, Any], key_id: str) -> set[str]:
    found = {VICTIM_EMAIL, key_id}
    for row in [*view["orders"], *view["executions"], *view["wallet_history"]]:
        for field in ("orderID", "clOrdID", "execID", "transactID"):
            value = row.get(field)
            if value and value != ids.ZERO_UUID:
                found.add(str(value))
    return found


def _attack_params(view: dict[str, Any]) -> dict[str, Any]:
    """One parameter set aimed at the victim, offered to every route (each takes its own)."""
    order = next(o for o in view["orders"] if o["ordStatus"] == "New")
    return {
        "symbol": "XBTUSD",
        "orderID": order["orderID"],
        "clOrdID": order["clOrdID"],
        "origClOrdID": order["clOrdID"],
        "orderQty": 100,
        "price": 30_000,
        "side": "Buy",
        "currency": "XBt",
        "amount": 1_000,
        "account": ALICE,
        "userId": ALICE,
        "fromAccountId": ALICE,
        "targetAccountId": MALLORY,
        "leverage": 3,
        "riskLimit": 20_000_000_000,
        "enabled": True,
        "timeout": 60_000,
        "filter": json.dumps({"account": ALICE}),
        "count": 100,
        "address": "x",
        "orders": [
            {"orderID": order["orderID"], "price": 30_001},
            {"symbol": "XBTUSD", "orderQty": 100, "price": 30_000},
        ],
        "text": "mallory",
        "transferID": "mallory-1",
        "name": "m",
    }


def _call(c: Client, key: tuple[str, str], method: str, path: str, params: dict[str, Any]) -> Any:
    target = path
    body = b""
    if method == "GET":
        query = {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in params.items()}
        target += "?" + urlencode(query, quote_via=quote, safe="")
    else:
        body = json.dumps(params).encode()
    expires = str(int(time.time()) + 60)
    headers = {
        "api-key": key[0],
        "api-expires": expires,
        "content-type": "application/json",
        "api-signature": sign(key[1], method, target, expires, body),
    }
    return c.client.request(method, target, content=body, headers=headers)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Client]:
    try:
        with running(tmp_path / "data") as c:
            c.exchange.accounts.create_user("mallory@example.com", "a long test password", MALLORY)
            c.keys[MALLORY] = c.exchange.accounts.create_api_key(
                MALLORY, "mallory", ["order", "withdraw"]
            )
            _victim_activity(c)
            yield c
    finally:
        ids.use_order_id_key(None)


def test_a_second_account_sees_and_changes_nothing_of_the_first(venue: Client) -> None:
    c = venue
    before = _victim_view(c)
    assert len([o for o in before["orders"] if o["ordStatus"] == "New"]) == 4
    assert before["positions"] and before["executions"]
    params = _attack_params(before)
    # the clOrdID the attacker sends is its own to echo; the victim's rows carry her orderIDs
    secrets = _secrets_of(before, c.keys[ALICE][0]) - {params["clOrdID"]}
    routes = sorted(
        (path, method)
        for path, methods in c.client.app.endpoints.items()
        for method, endpoint in methods.items()
        if endpoint.private
    )
    assert len(routes) >= 40
    leaks: list[str] = []
    answered: dict[int, int] = {}
    for path, method in routes:
        response = _call(c, c.keys[MALLORY], method, path, params)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        assert response.status_code < 500, (method, path, response.text)
        text = response.text
        for secret in secrets:
            if secret in text:
                leaks.append(f"{method} {path}: {secret}")
        if f'"account":{ALICE}' in text.replace(" ", "") or (
            f'"userId":{ALICE}' in text.replace(" ", "")
        ):
            leaks.append(f"{method} {path}: account {ALICE}")
    assert leaks == []
    assert answered.get(200, 0) >= 15, answered  # the attacker's own calls do work
    assert _victim_view(c) == before


def test_private_websocket_tables_carry_only_the_subscriber_s_data(venue: Client) -> None:
    c = venue
    before = _victim_view(c)
    secrets = _secrets_of(before, c.keys[ALICE][0])
    key, secret = c.keys[MALLORY]
    expires = str(int(time.time()) + 60)
    headers = {
        "api-key": key,
        "api-expires": expires,
        "api-signature": sign(secret, "GET", "/realtime", expires),
    }
    tables = sorted(PRIVATE_TABLES)
    with c.client.websocket_connect("/realtime", headers=headers) as ws:
        ws.receive_text()  # welcome
        ws.send_text(json.dumps({"op": "subscribe", "args": tables}))
        frames: list[str] = []

        def drain() -> None:
            ws.send_text("ping")
            while (text := ws.receive_text()) != "pong":
                frames.append(text)

        drain()
        acks = [json.loads(f) for f in frames if '"subscribe"' in f]
        assert {a["subscribe"] for a in acks if a.get("success")} == set(tables)
        # the victim trades, amends, cancels and moves money while the attacker listens
        c.signed(
            "POST",
            "/order",
            body={
                "symbol": "XBTUSD",
                "side": "Buy",
                "orderQty": 100,
                "price": 42_000,
                "clOrdID": "alice-live",
            },
        )
        c.signed("PUT", "/order", body={"origClOrdID": "alice-live", "price": 42_500})
        c.signed("DELETE", "/order", body={"clOrdID": "alice-live"})
        c.signed(
            "POST",
            "/order",
            account=BOB,
            body={"symbol": "XBTUSD", "side": "Sell", "orderQty": 100, "price": 41_000},
        )
        c.execute(Deposit(0, ALICE, "XBt", 10**8, "a-more"))
        drain()
    after = _victim_view(c)
    secrets |= _secrets_of(after, c.keys[ALICE][0])
    assert any('"table":"order"' in f.replace(" ", "") for f in frames)
    text = "\n".join(frames)
    assert [s for s in secrets if s in text] == []
    assert f'"account":{ALICE}' not in text.replace(" ", "")
