"""Issue 10 items 1 and 5: numeric text and JSON nesting are bounded before conversion.

Every request shape in the tables below is refused with 400 (REST) or an error frame
(WebSocket), and none keeps the event loop busy longer than ``LOOP_BUSY_MAX_S``, measured by a
probe task in the server's own loop (the best of ``ATTEMPTS`` tries, so a stray scheduling
hiccup of this shared machine cannot fail it; before the bounds each of these took seconds).
"""

import asyncio
import json
from typing import Any
from urllib.parse import quote

import pytest
import websockets

from perpetua.gateway.auth import sign
from perpetua.gateway.params import BODY_BYTES_MAX, Params, decode_json_text, parse_number
from tests.gateway.live import Live, live_gateway

LOOP_BUSY_MAX_S = 0.050
ATTEMPTS = 3
HUGE = "1e300000"
DIGITS = "9" * 100_000
DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000

# (method, target after /api/v1, body or None, signed)
REST_CASES: list[tuple[str, str, Any, bool]] = [
    ("GET", f"/trade?symbol=XBTUSD&count={HUGE}", None, False),
    ("GET", f"/trade?symbol=XBTUSD&start={HUGE}", None, False),
    ("GET", f"/trade?symbol=XBTUSD&count={DIGITS[:20_000]}", None, False),
    ("GET", f"/orderBook/L2?symbol=XBTUSD&depth={HUGE}", None, False),
    ("GET", "/trade?symbol=XBTUSD&filter=" + quote(json.dumps({"price": HUGE})), None, False),
    ("GET", "/order?symbol=XBTUSD&filter=" + quote(json.dumps({"price": HUGE})), None, True),
    (
        "GET",
        "/order?symbol=XBTUSD&filter=" + quote(json.dumps({"orderQty": DIGITS[:5000]})),
        None,
        True,
    ),
    ("GET", "/trade?symbol=XBTUSD&filter=" + quote(DEEP[:8000]), None, False),
    ("POST", "/order", {"symbol": "XBTUSD", "orderQty": "1e150000"}, True),
    ("POST", "/order", {"symbol": "XBTUSD", "orderQty": 1, "price": HUGE}, True),
    ("POST", "/order", {"symbol": "XBTUSD", "orderQty": 1, "price": DIGITS}, True),
    ("POST", "/order", {"symbol": "XBTUSD", "orderQty": 1, "stopPx": HUGE}, True),
    ("POST", "/order", {"symbol": "XBTUSD", "orderQty": 1, "price": 1, "displayQty": HUGE}, True),
    (
        "POST",
        "/order",
        {"symbol": "XBTUSD", "orderQty": 1, "pegPriceType": "PrimaryPeg", "pegOffsetValue": HUGE},
        True,
    ),
    ("POST", "/order/bulk", {"orders": [{"symbol": "XBTUSD", "orderQty": HUGE}]}, True),
    ("POST", "/order/cancelAllAfter", {"timeout": HUGE}, True),
    ("POST", "/position/leverage", {"symbol": "XBTUSD", "leverage": HUGE}, True),
    ("POST", "/position/riskLimit", {"symbol": "XBTUSD", "riskLimit": HUGE}, True),
    ("POST", "/position/transferMargin", {"symbol": "XBTUSD", "amount": HUGE}, True),
    ("POST", "/user/requestWithdrawal", {"currency": "XBt", "amount": HUGE, "address": "x"}, True),
    ("POST", "/order", DEEP, True),
    ("POST", "/order", DEEP_OBJECT, True),
    ("POST", "/order", DEEP, False),
    # the largest bodies of the costliest shapes to decode and walk
    ("POST", "/order/bulk", '{"orders": [' + '"ab",' * (BODY_BYTES_MAX // 5 - 10) + "1]}", True),
    ("POST", "/order/bulk", '{"orders": [' + "[]," * (BODY_BYTES_MAX // 3 - 10) + "1]}", True),
    ("POST", "/order/bulk", '{"orders": [' + "1.5," * (BODY_BYTES_MAX // 4 - 10) + "1]}", True),
    (
        "POST",
        "/order/bulk",
        '{"orders": [' + '{"a":{}},' * (BODY_BYTES_MAX // 9 - 10) + "1]}",
        True,
    ),
    ("POST", "/order", '{"text": "' + "x" * 4 * BODY_BYTES_MAX + '"}', True),
]

WS_CASES: list[str] = [
    DEEP[:60_000],
    "[" + "[]," * 20_000 + "1]",
    "[" + '"ab",' * 12_000 + "1]",
    DEEP_OBJECT[:30_000] + "}" * 10,
    json.dumps({"op": "cancelAllAfter", "args": [HUGE]}),
    '{"op": "cancelAllAfter", "args": [1e300000]}',
    json.dumps({"op": "subscribe", "args": [[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]}),
    json.dumps({"op": "authKeyExpires", "args": ["k", DIGITS[:60_000], "s"]}),
]


async def _rest_lag(live: Live, method: str, target: str, body: Any, signed: bool) -> float:
    raw = (
        body.encode()
        if isinstance(body, str)
        else (json.dumps(body).encode() if body is not None else b"")
    )
    worst = float("inf")
    for _ in range(ATTEMPTS):
        await asyncio.sleep(0.01)
        live.probe.reset()
        if signed:
            response = await live.signed(method, target, live.accounts.keys["alice"], raw)
        else:
            response = await live.http.request(
                method,
                "/api/v1" + target,
                content=raw,
                headers={"content-type": "application/json"} if raw else {},
            )
        await asyncio.sleep(0.01)
        assert 400 <= response.status_code < 500, (
            target[:80],
            response.status_code,
            response.text[:200],
        )
        assert "error" in response.json()
        worst = min(worst, live.probe.worst_s)
    return worst


def test_no_rest_request_shape_keeps_the_loop_busy() -> None:
    async def main() -> list[str]:
        slow: list[str] = []
        async with live_gateway() as live:
            live.accounts.create_api_key(
                1001, ["order", "withdraw"], key_id="alice", secret="alice-secret"
            )
            for method, target, body, signed in REST_CASES:
                lag = await _rest_lag(live, method, target, body, signed)
                if lag > LOOP_BUSY_MAX_S:
                    slow.append(f"{method} {target[:60]} {str(body)[:60]}: {lag * 1e3:.0f} ms")
        return slow

    assert asyncio.run(main()) == []


def test_no_websocket_message_keeps_the_loop_busy_and_each_gets_an_error_frame() -> None:
    async def main() -> list[str]:
        slow: list[str] = []
        async with live_gateway() as live:
            live.accounts.create_api_key(1001, ["order"], key_id="alice", secret="alice-secret")
            async with websockets.connect(live.ws_base + "/realtime", max_size=2**24) as ws:
                json.loads(await ws.recv())  # welcome
                for text in WS_CASES:
                    worst = float("inf")
                    for _ in range(ATTEMPTS):
                        live.probe.reset()
                        await ws.send(text)
                        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        assert reply.get("status") == 400 or "error" in reply, reply
                        worst = min(worst, live.probe.worst_s)
                    if worst > LOOP_BUSY_MAX_S:
                        slow.append(f"{text[:60]}: {worst * 1e3:.0f} ms")
                # still served after all of it
                await ws.send("ping")
                assert await ws.recv() == "pong"
        return slow

    assert asyncio.run(main()) == []


def test_deep_json_is_a_400_not_a_500() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            live.accounts.create_api_key(1001, ["order"], key_id="alice", secret="alice-secret")
            for body in (
                "[" * 30_000 + "]" * 30_000,
                '{"a":' * 10_000 + "1" + "}" * 10_000,
                "[" * 17 + "]" * 17,
            ):
                response = await live.signed(
                    "POST", "/order", live.accounts.keys["alice"], body.encode()
                )
                assert response.status_code == 400, response.text
                assert response.json()["error"]["name"] == "ValidationError"
            # the WebSocket answers with an error frame and stays open
            async with websockets.connect(live.ws_base + "/realtime") as ws:
                await ws.recv()
                await ws.send("[" * 500 + "]" * 500)
                reply = json.loads(await ws.recv())
                assert reply["status"] == 400 and "nested" in reply["error"]
                await ws.send("ping")
                assert await ws.recv() == "pong"

    asyncio.run(main())


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("12", True),
        ("-3.5", True),
        ("  7 ", True),
        (1, True),
        (2.5, True),
        ("1e30", True),
        ("0e99999", True),
        ("1e31", False),
        ("1e-31", False),
        (HUGE, False),
        ("1" * 41, False),
        ("1_000", False),
        ("NaN", False),
        ("Infinity", False),
        ("\uff11", False),
        ("0x10", False),
        (1e300, False),
        (2**200, False),
        (True, False),
        ([], False),
        ("", False),
    ],
)
def test_parse_number_bounds(value: Any, ok: bool) -> None:
    if ok:
        parse_number(value, "x")
    else:
        with pytest.raises(Exception, match="Invalid x"):
            parse_number(value, "x")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("[1,2,3]", True),
        ("[" * 16 + "]" * 16, True),
        ("[" * 17 + "]" * 17, False),
        ('{"a": "' + "[" * 100 + '"}', True),  # brackets inside strings do not nest
        ("[" + "[]," * 1_001 + "[]]", False),  # too many containers
        ('{"a": [' + "{}," * 100 + "{}]}", True),
    ],
)
def test_json_depth_bounds(text: str, ok: bool) -> None:
    if ok:
        decode_json_text(text)
        Params({"f": text}).json_value("f")
    else:
        with pytest.raises(Exception, match="JSON"):
            decode_json_text(text)
        with pytest.raises(Exception, match="JSON"):
            Params({"f": text}).json_value("f")


def test_signing_helper_matches_the_gateway() -> None:
    assert len(sign("s", "GET", "/realtime", "1")) == 64
