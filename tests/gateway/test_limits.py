"""The gateway limits docs/security.md lists that no other test pins: each refused past its
bound (configured small where the default would take hundreds of requests); the WebSocket
connection budget also over the served uvicorn, on ``/realtimemd``."""

import asyncio
import json
import time

import pytest
import websockets

from perpetua.gateway.auth import sign
from perpetua.gateway.routes.order import BULK_ORDERS_MAX, CANCEL_ALL_AFTER_MS_MAX
from perpetua.store.limits import FILTER_KEYS_MAX, FILTER_VALUES_MAX
from tests.gateway.harness import ALICE, harness
from tests.gateway.live import live_gateway


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


def test_realtimemd_sockets_take_from_the_same_connection_budget() -> None:
    """Served by uvicorn, rate limits on: a ``/realtimemd`` socket takes one connection from
    the per-IP budget ``/realtime`` takes from, and each of its streams' welcomes reports what
    remained when the socket took it. Over the budget the socket is closed at once, 1008 "too
    many connections", before any frame (no stream exists to carry a 429), and ``/realtime``
    is refused as before."""

    async def main() -> None:
        async with live_gateway(rate_limits=True, ws_connections_per_hour=3) as live:
            realtime, multiplexed = live.ws_base + "/realtime", live.ws_base + "/realtimemd"
            async with websockets.connect(realtime) as ws:
                assert json.loads(await ws.recv())["limit"] == {"remaining": 2}
            for remaining, streams in ((1, ("a", "b")), (0, ("a",))):
                async with websockets.connect(multiplexed) as md:
                    for stream in streams:
                        await md.send(json.dumps([1, stream, "public"]))
                        welcome = json.loads(await asyncio.wait_for(md.recv(), 10))
                        assert welcome[:2] == [0, stream]
                        assert welcome[3]["limit"] == {"remaining": remaining}
            async with websockets.connect(multiplexed) as md:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(md.recv(), 10)
                close = closed.value.rcvd
                assert close is not None
                assert (close.code, close.reason) == (1008, "too many connections")
            async with websockets.connect(realtime) as ws:
                assert json.loads(await ws.recv())["limit"] == {"remaining": 0}
                assert json.loads(await ws.recv())["status"] == 429
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    asyncio.run(main())


def test_table_filter_bounds() -> None:
    with harness() as h:
        wide = {f"k{n}": 1 for n in range(FILTER_KEYS_MAX + 1)}
        long_in = {"clOrdID": [f"c{n}" for n in range(FILTER_VALUES_MAX + 1)]}
        within = {"clOrdID": [f"c{n}" for n in range(FILTER_VALUES_MAX)]}
        for filter_, status in ((wide, 400), (long_in, 400), (within, 200)):
            response = h.signed("GET", "/order", params={"filter": json.dumps(filter_)})
            assert response.status_code == status, (len(filter_), response.text)
