"""The gateway limits docs/security.md lists that no other test pins: each refused past its
bound (configured small where the default would take hundreds of requests)."""

import json
import time

from perpetua.gateway.auth import sign
from perpetua.gateway.routes.order import BULK_ORDERS_MAX, CANCEL_ALL_AFTER_MS_MAX
from perpetua.store.limits import FILTER_KEYS_MAX, FILTER_VALUES_MAX
from tests.gateway.harness import ALICE, harness


def _order(price: int) -> dict[str, object]:
    return {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": price}


def test_bulk_and_cancel_all_after_bounds() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        too_many = [_order(1000 + n) for n in range(BULK_ORDERS_MAX + 1)]
        assert h.signed("POST", "/order/bulk", body={"orders": too_many}).status_code == 400
        at_most = [_order(1000 + n) for n in range(BULK_ORDERS_MAX)]
        assert h.signed("POST", "/order/bulk", body={"orders": at_most}).status_code == 200
        late = h.signed(
            "POST", "/order/cancelAllAfter", body={"timeout": CANCEL_ALL_AFTER_MS_MAX + 1}
        )
        assert late.status_code == 400
        assert (
            h.signed(
                "POST", "/order/cancelAllAfter", body={"timeout": CANCEL_ALL_AFTER_MS_MAX}
            ).status_code
            == 200
        )


def test_websocket_subscriptions_per_connection() -> None:
    with harness(ws_subscriptions_max=3) as h, h.client.websocket_connect("/realtime") as ws:
        ws.receive_text()
        topics = ["trade:XBTUSD", "quote:XBTUSD", "instrument:XBTUSD", "trade:ETHUSDT"]
        ws.send_text(json.dumps({"op": "subscribe", "args": topics}))
        replies = []
        ws.send_text("ping")
        while (text := ws.receive_text()) != "pong":
            replies.append(json.loads(text))
        acks = [r for r in replies if r.get("success")]
        errors = [r for r in replies if "error" in r]
        assert len(acks) == 3
        assert [e["error"] for e in errors] == ["Too many subscriptions."]


def test_websocket_connections_per_hour() -> None:
    with harness(rate_limits=True, ws_connections_per_hour=2) as h:
        for _ in range(2):
            with h.client.websocket_connect("/realtime") as ws:
                assert "info" in json.loads(ws.receive_text())
        with h.client.websocket_connect("/realtime") as ws:
            ws.receive_text()  # welcome
            refused = json.loads(ws.receive_text())
            assert refused["status"] == 429
        # signing in does not buy more connections
        expires = str(int(time.time()) + 60)
        headers = {
            "api-key": h.alice.key_id,
            "api-expires": expires,
            "api-signature": sign(h.alice.secret, "GET", "/realtime", expires),
        }
        with h.client.websocket_connect("/realtime", headers=headers) as ws:
            ws.receive_text()
            assert json.loads(ws.receive_text())["status"] == 429


def test_table_filter_bounds() -> None:
    with harness() as h:
        wide = {f"k{n}": 1 for n in range(FILTER_KEYS_MAX + 1)}
        long_in = {"clOrdID": [f"c{n}" for n in range(FILTER_VALUES_MAX + 1)]}
        within = {"clOrdID": [f"c{n}" for n in range(FILTER_VALUES_MAX)]}
        for filter_, status in ((wide, 400), (long_in, 400), (within, 200)):
            response = h.signed("GET", "/order", params={"filter": json.dumps(filter_)})
            assert response.status_code == status, (len(filter_), response.text)
