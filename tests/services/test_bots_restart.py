"""Kill -9 a real ``perpetua run`` mid-grid, restart it, and check the bot resumes with no
duplicate order: every clOrdID the bot account ever used names one order, each grid interval has
exactly one open order, of the generation its fills call for, and the ledger is conserved."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from perpetua.core import audit
from perpetua.core.commands import Deposit, IndexPrice
from perpetua.gateway.auth import sign
from perpetua.runtime.config import FeedsConfig, VenueConfig
from perpetua.runtime.venue import open_venue
from perpetua.sequencer import Sequencer
from perpetua.store import default_url, open_engine
from perpetua.store.schema import orders

pytestmark = pytest.mark.slow  # real processes

SRC = Path(__file__).resolve().parents[2] / "src"
UP_TIMEOUT_S = 60.0
ALICE, MAKER = 1, 2
USDT, XBT = 1_000_000, 100_000_000
KILLS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Api:
    def __init__(self, port: int, key: tuple[str, str]) -> None:
        self.port = port
        self.key_id, self.secret = key

    def call(self, method: str, path: str, body: Any = None) -> Any:
        target = "/api/v1" + path
        data = json.dumps(body).encode() if body is not None else b""
        expires = str(int(time.time()) + 60)
        headers = {
            "api-key": self.key_id,
            "api-expires": expires,
            "api-signature": sign(self.secret, method, target, expires, data),
            "content-type": "application/json",
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{target}", data or None, headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from error


def _prepare(data_dir: Path) -> dict[int, tuple[str, str]]:
    saved = os.umask(0o022)
    try:
        venue = open_venue(
            VenueConfig(data_dir=data_dir, operator_key="op", feeds=FeedsConfig(default="none"))
        )
    finally:
        os.umask(saved)
    keys = {}
    for user in (ALICE, MAKER):
        venue.accounts.create_user(f"u{user}@example.com", "a long test password", user)
        keys[user] = venue.accounts.issue_api_key(user, ["order"], [], "k")
    venue.start()
    try:
        venue.sequencer.execute(Deposit(0, ALICE, "USDt", 5_000 * USDT, "a"))
        venue.sequencer.execute(Deposit(0, MAKER, "USDt", 1_000_000 * USDT, "m1"))
        venue.sequencer.execute(Deposit(0, MAKER, "XBt", 100 * XBT, "m2"))
        venue.sequencer.execute(IndexPrice(0, ".BXBTT", 20_000, 1))
    finally:
        venue.stop()
    return keys


def _start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "perpetua.cli", "run", "--config", str(config)],
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _wait(predicate: Any, timeout_s: float = UP_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, AssertionError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def _trade(maker: Api, side: str, qty: int, price: str) -> None:
    maker.call(
        "POST",
        "/order",
        {
            "symbol": "XBT_USDT",
            "side": side,
            "orderQty": qty,
            "price": price,
            "timeInForce": "ImmediateOrCancel",
        },
    )


def _grid_ok(status: dict[str, Any]) -> bool:
    return status["state"] == "running" and len(status["orders"]) == 4


def test_kill_9_mid_grid_resumes_without_duplicate_orders(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    keys = _prepare(data_dir)
    port = _free_port()
    config = tmp_path / "perpetua.toml"
    config.write_text(
        f'data_dir = "{data_dir}"\noperator_key = "op"\n[server]\nport = {port}\n'
        '[feeds]\ndefault = "none"\n[rate_limits]\nenabled = false\n'
    )
    alice, maker = Api(port, keys[ALICE]), Api(port, keys[MAKER])
    process = _start(config)
    try:
        _wait(lambda: maker.call("GET", "/instrument?symbol=XBT_USDT"))
        # a last price: the maker trades with itself through a resting order of alice's
        alice.call(
            "POST",
            "/order",
            {"symbol": "XBT_USDT", "side": "Buy", "orderQty": 100, "price": "20000"},
        )
        _trade(maker, "Sell", 100, "20000")
        bot = alice.call(
            "POST",
            "/bot",
            {
                "kind": "spotGrid",
                "symbol": "XBT_USDT",
                "lowerPrice": "19000",
                "upperPrice": "21000",
                "grids": 4,
                "investment": "1000",
            },
        )
        bot_id = bot["botId"]
        # the up-front buy rests at 20000: fill it, then wait for the four interval orders
        _trade(maker, "Sell", 25_000, "20000")
        _wait(lambda: _grid_ok(alice.call("GET", f"/bot/status?botId={bot_id}")))
        path = [("Sell", "19500"), ("Buy", "20000"), ("Sell", "19000")]
        for side, price in path[:KILLS]:
            _trade(maker, side, 12_500, price)  # fills one level ...
            process.send_signal(signal.SIGKILL)  # ... and the venue dies at once
            process.wait(30)
            process = _start(config)
            _wait(lambda: _grid_ok(alice.call("GET", f"/bot/status?botId={bot_id}")))
        status = alice.call("GET", f"/bot/status?botId={bot_id}")
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    account = status["account"]
    with open_engine(default_url(data_dir)).connect() as conn:
        ids = [
            r.cl_ord_id
            for r in conn.execute(select(orders.c.cl_ord_id).where(orders.c.account == account))
        ]
    assert ids and all(n == 1 for n in Counter(ids).values()), Counter(ids)
    sequencer = Sequencer.open(data_dir)
    engine = sequencer.engine
    open_ids = sorted(  # the engine keeps working orders only
        o.cl_ord_id for o in engine.state.orders.values() if o.account == account
    )
    assert len(open_ids) == 4
    assert sorted({i.split(".")[1] for i in open_ids}) == ["g0", "g1", "g2", "g3"]
    assert sorted(o["cl_ord_id"] for o in status["orders"]) == open_ids
    audit.audit(engine.state)
