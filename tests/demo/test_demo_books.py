"""The demo's books are never empty while its makers run (issue 16): a WebSocket client
subscribes to ``orderBook10`` on every market the demo lists (``GET /instrument/active``: the
built-in catalogue and the futures of the catalogue file, such as the USDT-margined and ETH
quarterlies) of a real ``perpetua demo`` process and, once each market's maker has quoted,
watches for ``WATCH_S`` and never sees a message with an empty side. The makers amend in place
(``PUT /order/bulk``); cancelling everything and posting again left the books empty for tens of
milliseconds in every round."""

import json
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from perpetua.demo import demo_markets
from tests.demo.test_demo_process import Demo, _free_port

START = "2026-11-30T18:30:00Z"  # a Monday: the TradFi markets are open at real-time speed
QUOTED_TIMEOUT_S = 60.0
WATCH_S = 20.0  # every maker refreshes about every 1.5 s: a dozen rounds each


def _sides(message: dict[str, Any]) -> list[tuple[str, bool]]:
    """(symbol, both sides quoted) per row of an orderBook10 message."""
    return [
        (row["symbol"], bool(row["bids"]) and bool(row["asks"])) for row in message.get("data", [])
    ]


def test_order_books_never_empty_while_the_makers_run(tmp_path: Path) -> None:
    demo = Demo(tmp_path / "data", _free_port(), "--start", START, "--speed", "1")
    try:
        demo.banner()
        symbols = sorted(row["symbol"] for row in demo.get("/instrument/active"))
        built_in = {spec.symbol for spec in demo_markets(())}
        assert built_in < set(symbols)
        assert {"XBTUSDTH27", "ETHUSDTH27", "ETHUSDH27"} <= set(symbols)  # the catalogue file's
        with connect(f"ws://127.0.0.1:{demo.port}/realtime", open_timeout=10) as ws:
            ws.recv(timeout=10)  # welcome
            ws.send(json.dumps({"op": "subscribe", "args": [f"orderBook10:{s}" for s in symbols]}))
            quoted: set[str] = set()
            empty: list[tuple[float, str]] = []
            seen: dict[str, int] = {}
            deadline = time.monotonic() + QUOTED_TIMEOUT_S
            watch_until = None
            while True:
                now = time.monotonic()
                if watch_until is None and quoted == set(symbols):
                    watch_until = now + WATCH_S
                if (watch_until or deadline) < now:
                    break
                message = json.loads(ws.recv(timeout=10))
                if message.get("table") != "orderBook10":
                    continue
                for symbol, full in _sides(message):
                    if symbol in quoted:
                        seen[symbol] = seen.get(symbol, 0) + 1
                        if not full:
                            empty.append((now, symbol))
                    elif full:
                        quoted.add(symbol)
            assert quoted == set(symbols), f"never quoted: {set(symbols) - quoted}"
            assert not empty, f"{len(empty)} messages with an empty side: {empty[:10]}"
            assert all(seen.get(s, 0) > 0 for s in symbols), seen  # the books moved
    finally:
        demo.kill()
