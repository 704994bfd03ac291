"""No served route answers a constant (issue 16: "a test lists the routes that answer constants
and expects none"). Every GET route the gateway serves is read on a fresh venue and again after
trading, an amend, an announcement, a halt and resume and a listing; a route whose answer did
not change is constant, and must be one of ``STATIC_BY_DESIGN`` (configuration or the API's own
description) or ``MOVES_WITH_TIME`` (a funding time, an expiry, a closed bin: checked live by
the test named), each with the reason it cannot move here. Routes that answer an error both times
(a capability this in-process venue does not wire: wallets, bots, convert, proofs, sessions)
are not judged here; their own tests cover them."""

import time
from typing import Any

from tests.gateway.harness import ALICE, BOB, OPERATOR_KEY, Harness, harness
from tests.gateway.test_risk_tables import _isolated_long

API = "/api/v1"
OP = {"x-operator-key": OPERATOR_KEY}
XBT = 100_000_000
USDT = 1_000_000

# Answers that cannot move with trading; each says what moves it instead.
STATIC_BY_DESIGN = {
    "/schema": "the tables' own description",
    "/schema/websocketHelp": "the WebSocket's own description",
    "/wallet/assets": "currency configuration",
    "/wallet/networks": "network configuration",
    "/apiKey": "changes with the caller's keys (tests/gateway/test_accounts_e2e.py)",
    "/user": "changes with the profile and preferences (tests/gateway/test_accounts_e2e.py)",
    "/user/staking": "changes with stakes (the costs tests)",
    "/user/staking/instruments": "staking configuration",
    "/user/staking/tiers": "staking configuration",
    "/user/unstakingRequests": "changes with unstaking requests (the costs tests)",
    "/user/restrictions": "changes with the operator's restrictions (the compliance tests)",
}

# Answers that move with time or a service this in-process venue does not run, each checked
# live by the test named.
MOVES_WITH_TIME = {
    "/funding": "at a funding time: test_risk_tables.py::test_funding_rows_and_executions",
    "/settlement": "at expiry: test_risk_tables.py::test_settlement_rows_and_executions",
    "/trade/bucketed": "when a bin closes (1 m at least): tests/store/test_queries.py",
    "/quote/bucketed": "when a bin closes (1 m at least): tests/gateway/test_rest.py",
    "/instrument/activeIntervals": "when a future expires or a nearer one lists",
    "/user/tradingVolume": "measured daily at 00:00 UTC by services.volume (its tests)",
}

PARAMS: dict[str, dict[str, Any]] = {
    "/orderBook/L2": {"symbol": "XBTUSD"},
    "/instrument/compositeIndex": {"symbol": ".BXBT"},
    "/user/staking/tiers": {"currency": "BMEx"},
    "/user/unstakingRequests": {"status": "Pending"},
}


def _answers(h: Harness, paths: list[str]) -> dict[str, tuple[int, str]]:
    today = time.strftime("%Y-%m-%dT00:00:00.000Z", time.gmtime())
    params = {**PARAMS, "/user/executionHistory": {"symbol": "XBTUSD", "timestamp": today}}
    out = {}
    for path in paths:
        response = h.signed("GET", path, params=params.get(path))
        out[path] = (response.status_code, response.text)
    return out


def _activity(h: Harness) -> None:
    liquidated = _isolated_long(h)  # alice: 2000 ETHUSDT isolated 10x, bob short
    for account in (ALICE, BOB):
        h.deposit(account, "XBt", 10 * XBT)
        h.deposit(account, "USDt", 1_000_000 * USDT)
    h.index(".BXBT", 50_000)
    h.index(".BXBTT", 50_000)
    for symbol, qty in (("XBTUSD", 1_000), ("XBTUSDT", 2_000)):
        for key, side in ((h.bob, "Sell"), (h.alice, "Buy")):
            body = {"symbol": symbol, "side": side, "orderQty": qty, "price": 50_000}
            assert h.signed("POST", "/order", key=key, body=body).status_code == 200
    resting = h.signed(
        "POST", "/order", body={"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 40_000}
    ).json()
    h.signed("PUT", "/order", body={"orderID": resting["orderID"], "price": 41_000})
    post = h.client.post
    post(f"{API}/admin/announcement", json={"title": "Listing", "urgent": True}, headers=OP)
    for state in ("Closed", "Open"):
        post(f"{API}/admin/instrument/state", json={"symbol": "ETHUSD", "state": state}, headers=OP)
    post(f"{API}/admin/listFuture", json={"root": "XBT", "year": 2027, "quarter": 3}, headers=OP)
    h.index(".BXBT", 51_000)
    h.index(".BETHT", int(liquidated["liquidationPrice"] * 20) - 1, 20)  # taken over
    time.sleep(0.2)  # the bins roll (bin_roll_interval_s 0.05)


def test_no_served_route_answers_a_constant() -> None:
    with harness() as h:
        paths = sorted(
            path[len(API) :]
            for path, verbs in h.client.app.endpoints.items()  # type: ignore[attr-defined]
            if "GET" in verbs and path.startswith(API) and not path.startswith(f"{API}/admin/")
        )
        before = _answers(h, paths)
        _activity(h)
        with h.client.websocket_connect("/realtime") as viewer:
            viewer.receive_text()  # a connected user
            after = _answers(h, paths)
    judged = [p for p in paths if before[p][0] == 200 or after[p][0] == 200]
    constant = {p for p in judged if before[p] == after[p]}
    allowed = set(STATIC_BY_DESIGN) | set(MOVES_WITH_TIME)
    assert constant <= allowed, sorted(constant - allowed)
    assert len(judged) >= 40  # the venue's GET routes, not a handful
