"""End to end: the real `perpetua run` process on a free port with a temp data dir, driven by
ccxt's unchanged ``bitmex`` class (ccxt 4.5.83, the last release with bitmex)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real processes or long randomised runs; CI runs them all

ccxt = pytest.importorskip("ccxt")

OPERATOR_KEY = "e2e-operator"
STARTUP_S = 90  # generous: a loaded 2-core machine starts the venue in ~3 s, at worst in ~40 s
SRC = Path(__file__).resolve().parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url,
        json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "x-operator-key": OPERATOR_KEY},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    data_dir = tmp_path_factory.mktemp("data")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perpetua.cli",
            "run",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--operator-key",
            OPERATOR_KEY,
            "--log-level",
            "warning",
            # no index feeds: the prices below are fixed, so the mark must not move under them
            "--no-feeds",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            urllib.request.urlopen(base + "/api/v1/announcement", timeout=1).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"server did not start:\n{output}")
            time.sleep(0.2)
    try:
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()


def _client(base: str, user_id: int, funded: bool = True) -> "ccxt.bitmex":
    key = _post(base + "/api/v1/admin/apiKey", {"userId": user_id, "permissions": "order"})
    if funded:
        _post(
            base + "/api/v1/admin/faucet",
            {"account": user_id, "currency": "XBt", "amount": 10 * 10**8},
        )
    exchange = ccxt.bitmex({"apiKey": key["id"], "secret": key["secret"], "enableRateLimit": False})
    exchange.urls["api"] = {"public": base, "private": base}
    return exchange


def test_ccxt_bitmex_unchanged(server: str) -> None:
    alice = _client(server, 11)
    markets = alice.load_markets()
    assert "BTC/USD:BTC" in markets
    market = markets["BTC/USD:BTC"]
    assert market["id"] == "XBTUSD" and market["precision"]["price"] == 0.1
    balance = alice.fetch_balance()
    assert balance["BTC"]["total"] == 10
    order = alice.create_order("BTC/USD:BTC", "limit", "buy", 100, 50000.5)
    assert order["status"] == "open" and order["price"] == 50000.5
    book = alice.fetch_order_book("BTC/USD:BTC")
    assert book["bids"][0] == [50000.5, 100]
    assert [o["id"] for o in alice.fetch_open_orders("BTC/USD:BTC")] == [order["id"]]
    cancelled = alice.cancel_order(order["id"], "BTC/USD:BTC")
    assert cancelled["status"] == "canceled"
    carol = _client(server, 13, funded=False)
    carol.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        carol.create_order("BTC/USD:BTC", "limit", "buy", 100, 50000)
    bob = _client(server, 12)
    bob.load_markets()
    alice.create_order("BTC/USD:BTC", "limit", "buy", 200, 50000)
    bob.create_order("BTC/USD:BTC", "market", "sell", 200)
    positions = alice.fetch_positions()
    assert positions[0]["contracts"] == 200 and positions[0]["side"] == "long"
    trades = alice.fetch_my_trades("BTC/USD:BTC")
    assert trades[-1]["price"] == 50000 and trades[-1]["amount"] == 200
    assert alice.fetch_ticker("BTC/USD:BTC")["last"] == 50000
    assert alice.fetch_ohlcv("BTC/USD:BTC", "1m")[-1][4] == 50000


def test_websocket_raw_frames_against_the_real_server(server: str) -> None:
    """Under uvicorn the gateway writes frames straight to the transport: a standard client
    reads them (welcome, acks, partials, deltas of all three length classes), and the
    protocol's own ping/pong still works."""
    from websockets.sync.client import connect

    alice = _client(server, 21)
    alice.load_markets()
    url = server.replace("http", "ws") + "/realtime?subscribe=orderBookL2:XBTUSD,instrument"
    with connect(url, max_size=None) as ws:
        welcome = json.loads(ws.recv(timeout=10))
        assert welcome["info"] == "Welcome to the BitMEX Realtime API."
        messages = [json.loads(ws.recv(timeout=10)) for _ in range(4)]
        partials = {m["table"]: m for m in messages if m.get("action") == "partial"}
        assert set(partials) == {"orderBookL2", "instrument"}
        assert len(json.dumps(partials["instrument"])) > 126  # a 2-byte length frame
        ws.ping().wait(10)
        ws.send("ping")
        assert ws.recv(timeout=10) == "pong"
        alice.create_order("BTC/USD:BTC", "limit", "buy", 100, 40000.5)
        for _ in range(50):
            message = json.loads(ws.recv(timeout=10))
            if message.get("table") == "orderBookL2" and message["action"] == "insert":
                break
        assert message["data"][0]["price"] == 40000.5 and message["data"][0]["size"] == 100
