"""WebSocket flows: welcome, partials after acks and before deltas, deltas, auth (headers,
query string, authKeyExpires in s and ms), private filtering, errors, ping, cancelAllAfter,
slow consumers, /realtimemd."""

import json
import time
from typing import Any

from perpetua.gateway.auth import sign
from tests.gateway.harness import ALICE, BOB, harness


def _recv(ws: Any) -> Any:
    text = ws.receive_text()
    return text if text == "pong" else json.loads(text)


def _until(ws: Any, predicate: Any, limit: int = 50) -> Any:
    for _ in range(limit):
        message = _recv(ws)
        if predicate(message):
            return message
    raise AssertionError("message not received")


def _auth_args(key: str, secret: str, expires: int) -> list[Any]:
    return [key, expires, sign(secret, "GET", "/realtime", str(expires))]


def test_welcome_subscribe_partial_then_deltas() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        with h.client.websocket_connect("/realtime") as ws:
            welcome = _recv(ws)
            assert welcome["info"] == "Welcome to the BitMEX Realtime API."
            assert "remaining" in welcome["limit"]
            ws.send_text(
                json.dumps(
                    {"op": "subscribe", "args": ["orderBookL2_25:XBTUSD", "quote:XBTUSD", "trade"]}
                )
            )
            ack = _recv(ws)
            assert ack["success"] is True and ack["subscribe"] == "orderBookL2_25:XBTUSD"
            partial = _recv(ws)
            assert partial["action"] == "partial" and partial["table"] == "orderBookL2_25"
            assert partial["keys"] == ["symbol", "id", "side"]
            assert partial["filter"] == {"symbol": "XBTUSD"}
            assert _recv(ws)["subscribe"] == "quote:XBTUSD"
            quote = _recv(ws)
            assert quote["action"] == "partial" and len(quote["data"]) == 1  # seeded
            assert _recv(ws)["subscribe"] == "trade"
            trades = _recv(ws)
            assert trades["action"] == "partial" and trades["data"]  # seeded, never empty
            h.signed(
                "POST",
                "/order",
                body={"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 1000},
            )
            insert = _until(ws, lambda m: m.get("table") == "orderBookL2_25")
            assert insert["action"] == "insert"
            assert insert["data"][0]["price"] == 1000 and insert["data"][0]["size"] == 100
            quote = _until(ws, lambda m: m.get("table") == "quote")
            assert quote["action"] == "insert" and quote["data"][0]["bidPrice"] == 1000
            ws.send_text("ping")
            assert _until(ws, lambda m: m == "pong") == "pong"


def test_url_subscribe_header_auth_and_private_tables() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**9)
        expires = int(time.time()) + 60
        headers = {
            "api-key": "alice-key",
            "api-expires": str(expires),
            "api-signature": sign("alice-secret", "GET", "/realtime", str(expires)),
        }
        url = "/realtime?subscribe=order,margin,position,instrument:XBTUSD,orderBookL2:XBTUSD"
        with h.client.websocket_connect(url, headers=headers) as ws:
            _recv(ws)
            seen: dict[str, Any] = {}
            for _ in range(10):
                message = _recv(ws)
                if message.get("action") == "partial":
                    seen[message["table"]] = message
            assert set(seen) == {"order", "margin", "position", "instrument", "orderBookL2"}
            assert seen["order"]["filter"] == {"account": ALICE}
            assert seen["margin"]["data"][0]["walletBalance"] == 10**9
            assert seen["instrument"]["data"][0]["tickSize"] == 0.1
            h.signed(
                "POST",
                "/order",
                key=h.bob,
                body={"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 999},
            )
            h.signed(
                "POST",
                "/order",
                body={"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 1000},
            )
            received: list[Any] = []
            _until(ws, lambda m: received.append(m) or m.get("table") == "order")
            order = received[-1]
            assert order["action"] == "insert" and order["data"][0]["account"] == ALICE
            updates = [m for m in received if m.get("table") == "instrument"]
            assert updates[-1]["action"] == "update"
            assert updates[-1]["data"][0]["bidPrice"] == 1000
            assert set(updates[-1]["data"][0]) >= {"symbol", "timestamp", "bidPrice"}


def test_query_string_auth_and_auth_key_expires_ms() -> None:
    with harness() as h:
        expires = int(time.time()) + 5
        signature = sign("alice-secret", "GET", "/realtime", str(expires))
        url = f"/realtime?api-expires={expires}&api-signature={signature}&api-key=alice-key"
        with h.client.websocket_connect(url) as ws:
            _recv(ws)
            ws.send_text(json.dumps({"op": "subscribe", "args": "wallet"}))
            assert _recv(ws)["success"] is True
            assert _recv(ws)["table"] == "wallet"
        with h.client.websocket_connect("/realtime") as ws:
            _recv(ws)
            millis = int(time.time() * 1000)
            request = {"op": "authKeyExpires", "args": _auth_args("bob-key", "bob-secret", millis)}
            ws.send_text(json.dumps(request))
            reply = _recv(ws)
            assert reply == {"success": True, "request": request}
            ws.send_text(json.dumps(request))
            assert _recv(ws)["status"] == 400  # already authenticated
            ws.send_text(json.dumps({"op": "subscribe", "args": ["execution"]}))
            assert _recv(ws)["success"] is True
            partial = _recv(ws)
            assert partial["filter"] == {"account": BOB}


def test_error_frames() -> None:
    with harness() as h, h.client.websocket_connect("/realtime") as ws:
        _recv(ws)
        ws.send_text(json.dumps({"op": "subscribe", "args": ["orderBookL10:XBTUSD"]}))
        error = _recv(ws)
        assert error["status"] == 400 and error["error"] == "Unknown table: orderBookL10"
        assert error["request"]["args"] == ["orderBookL10:XBTUSD"]
        ws.send_text(json.dumps({"op": "subscribe", "args": ["order"]}))
        assert _recv(ws)["status"] == 401
        ws.send_text("{nope")
        assert _recv(ws)["status"] == 400
        ws.send_text(json.dumps({"op": "dance"}))
        assert _recv(ws)["status"] == 400
        bad = {"op": "authKeyExpires", "args": _auth_args("alice-key", "wrong", 2**40)}
        ws.send_text(json.dumps(bad))
        assert _recv(ws)["status"] == 401
        ws.send_text(json.dumps({"op": "cancelAllAfter", "args": 1000}))
        assert _recv(ws)["status"] == 401


def test_unsubscribe_and_cancel_all_after_op() -> None:
    with harness() as h, h.client.websocket_connect("/realtime") as ws:
        _recv(ws)
        ws.send_text(
            json.dumps(
                {
                    "op": "authKeyExpires",
                    "args": _auth_args("alice-key", "alice-secret", int(time.time()) + 60),
                }
            )
        )
        _recv(ws)
        ws.send_text(json.dumps({"op": "subscribe", "args": ["trade:XBTUSD"]}))
        _recv(ws)
        _recv(ws)
        ws.send_text(json.dumps({"op": "unsubscribe", "args": ["trade:XBTUSD"]}))
        assert _recv(ws)["unsubscribe"] == "trade:XBTUSD"
        ws.send_text(json.dumps({"op": "cancelAllAfter", "args": 60000}))
        reply = _recv(ws)
        assert reply["cancelTime"] > reply["now"]
        ws.send_text(json.dumps({"op": "help"}))
        assert "subscriptionSubjects" in _recv(ws)


def test_slow_consumer_is_disconnected() -> None:
    with harness(ws_queue_messages_max=5) as h:
        h.deposit(ALICE, "XBt", 10**9)
        with h.client.websocket_connect("/realtime?subscribe=orderBookL2:XBTUSD") as ws:
            session = next(iter(h.gateway.fanout.sessions))
            for _ in range(20):
                session.push("x" * 10)  # stand-in for deltas the client does not read
            assert session.closed and "slow consumer" in session.close_reason[1]
            del ws


def test_realtimemd_multiplexing() -> None:
    with harness() as h, h.client.websocket_connect("/realtimemd") as ws:
        ws.send_text(json.dumps([1, "s1", "public"]))
        welcome = json.loads(ws.receive_text())
        assert welcome[:3] == [0, "s1", "public"] and welcome[3]["info"].startswith("Welcome")
        ws.send_text(json.dumps([0, "s1", "public", {"op": "subscribe", "args": "quote"}]))
        ack = json.loads(ws.receive_text())
        assert ack[3]["subscribe"] == "quote"
        partial = json.loads(ws.receive_text())
        assert partial[3]["action"] == "partial"
        ws.send_text(json.dumps([2, "s1", "public"]))


def test_market_tables_of_an_index_symbol_have_empty_partials() -> None:
    """An index has an instrument row but no book, quotes or trades: subscribing to those by
    an index symbol is acknowledged with an empty partial, never an error or a dropped socket."""
    tables = [
        "trade",
        "quote",
        "orderBookL2",
        "orderBookL2_25",
        "orderBook10",
        "tradeBin1m",
        "quoteBin1m",
    ]
    with harness() as h, h.client.websocket_connect("/realtime") as ws:
        h.index(".BXBT", 60_000)
        _recv(ws)  # welcome
        for symbol in (".BXBT", ".XBTUSDPI8H"):
            ws.send_text(json.dumps({"op": "subscribe", "args": [f"{t}:{symbol}" for t in tables]}))
            for table in tables:
                ack = _recv(ws)
                assert ack.get("success") is True, ack
                partial = _until(
                    ws, lambda m, t=table: m.get("table") == t and m.get("action") == "partial"
                )
                assert partial["data"] == [] and partial["filter"] == {"symbol": symbol}
        ws.send_text("ping")
        assert _recv(ws) == "pong"  # still connected
        ws.send_text(json.dumps({"op": "subscribe", "args": ["instrument:.BXBT"]}))
        _recv(ws)
        row = _until(ws, lambda m: m.get("table") == "instrument")["data"][0]
        assert row["symbol"] == ".BXBT" and row["lastPrice"] == 60_000
