"""End to end: ``perpetua demo`` as a real process on a free port and a temp data dir, at
``--speed 720`` (a simulated hour every 5 s): trades on every market, funding rows and an
insurance fund fed by liquidations (read over REST; the counts also from the demo's durable
event stream), a clean Ctrl-C (SIGINT to the demo's whole process group, as a terminal sends
it: exit 0, no traceback, nothing left running), the ledger's
conservation totals from ``perpetua replay`` equal to what the faucet paid, and a restart that
resumes the same exchange (same keys, later time, later seq, still conserving)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perpetua.demo import demo_markets
from perpetua.services.signing import signature
from perpetua.wire.values import parse_iso_ns
from tests.runtime.sessions import session_members

pytestmark = pytest.mark.slow  # real processes or long randomised runs; CI runs them all

SRC = Path(__file__).resolve().parents[2] / "src"
START = "2026-11-30T18:30:00Z"  # a Monday: US equities open until 21:00, funding at 20:00
BANNER_TIMEOUT_S = 40.0
RUN_TIMEOUT_S = 45.0
STOP_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Demo:
    """One ``perpetua demo`` process, its output collected line by line on threads."""

    def __init__(self, data_dir: Path, port: int, *extra: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(SRC))
        self.port = port
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perpetua.cli",
                "demo",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                "--speed",
                "720",
                "--seed",
                "7",
                "--status-interval",
                "1",
                *extra,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _collect(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.out + ["--- stderr ---"] + self.err[-40:])

    def wait_for(self, predicate: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"demo: no {what}:\n{self.output()}")
            time.sleep(0.2)

    def banner(self) -> dict[str, str]:
        self.wait_for(
            lambda: any("Ctrl-C stops" in line for line in self.out), BANNER_TIMEOUT_S, "banner"
        )
        fields = {}
        for line in self.out:
            name, _, value = line.strip().partition("  ")
            fields[name.strip()] = value.strip()
        return fields

    def get(self, path: str, key: str = "", secret: str = "") -> Any:
        """GET ``/api/v1{path}``, signed BitMEX-style when a key is given."""
        target = f"/api/v1{path}"
        headers = {}
        if key:
            expires = str(int(time.time()) + 60)
            headers = {
                "api-key": key,
                "api-expires": expires,
                "api-signature": signature(secret, "GET", target, expires),
            }
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{target}", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def status(self) -> dict[str, int]:
        """The last status line's counters: seq, trades, funding, liquidations."""
        for line in reversed(self.err):
            if line.startswith("[demo] "):
                words = line.split()
                return {words[i]: int(words[i + 1]) for i in (2, 4, 6, 8)}
        return {}

    def stop(self) -> dict[str, Any]:
        """Ctrl-C: SIGINT to the demo's whole process group, as a terminal sends it."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"demo did not stop on SIGINT:\n{self.output()}")
        time.sleep(0.2)  # the reader threads drain the pipes
        assert code == 0, self.output()
        assert not [line for line in self.err if "Traceback" in line], self.output()
        assert session_members(self.process.pid) == []  # no anvil, no hash worker left
        last = [line for line in self.out if line.startswith("demo summary ")]
        assert last, self.output()
        return dict(json.loads(last[-1].removeprefix("demo summary ")))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _replay(data_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "perpetua.cli", "replay", "--data-dir", str(data_dir)],
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture
def demo_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def _traded(demo: Demo, symbols: list[str], seen: set[str], key: str, secret: str) -> set[str]:
    """The markets that have traded: asks only for those not yet ``seen``, signed, so the
    polling stays inside one key's request allowance (an unsigned poll of every market five
    times a second ran into the per-address limit on a slow machine)."""
    for symbol in symbols:
        if symbol in seen:
            continue
        try:
            if demo.get(f"/trade?symbol={symbol}&count=1", key, secret):
                seen.add(symbol)
        except urllib.error.HTTPError as error:
            if error.code != 429:  # over the allowance: ask again on the next poll
                raise
            return seen
    return seen


def test_demo_runs_trades_funds_liquidates_stops_and_resumes(demo_dir: Path) -> None:
    symbols = [spec.symbol for spec in demo_markets(())]
    port = _free_port()
    first = Demo(demo_dir, port, "--start", START, "--operator-key", "demo-test")
    try:
        banner = first.banner()
        assert banner["REST"] == f"http://127.0.0.1:{port}/api/v1"
        assert banner["WebSocket"] == f"ws://127.0.0.1:{port}/realtime"
        assert banner["Explorer"] == f"http://127.0.0.1:{port}/api/explorer"
        assert len(banner["API key"]) == 24 and len(banner["API secret"]) == 48
        # the built-in markets and the futures listed from the catalogue file, all quoted
        active = {row["symbol"] for row in first.get("/instrument/active")}
        seen: set[str] = set()
        key, secret = banner["API key"], banner["API secret"]
        first.wait_for(
            lambda: _traded(first, symbols, seen, key, secret) == set(symbols),
            RUN_TIMEOUT_S,
            "trade on every market",
        )
        first.wait_for(
            lambda: (
                first.status().get("funding", 0) > 0 and first.status().get("liquidations", 0) > 0
            ),
            RUN_TIMEOUT_S,
            "funding event and liquidation",
        )
        funding = first.get("/funding?count=20")
        assert funding and "2026-11-30T20:00:00.000Z" in {row["timestamp"] for row in funding}
        # the insurance fund gains only from liquidations (fees, closes above bankruptcy)
        assert any(row["walletBalance"] > 0 for row in first.get("/insurance?count=20"))
        composite = first.get("/instrument/compositeIndex?symbol=.BXBT")
        assert [row["reference"] for row in composite][-1] == "BMI" and len(composite) == 5
    finally:
        summary = first.stop() if first.process.poll() is None else {}
    assert set(symbols) <= set(summary["trades"]) <= active
    assert summary["funding_events"] > 0 and summary["liquidations"] > 0
    replayed = _replay(demo_dir)
    assert replayed["audited"] is True
    assert replayed["seq"] == summary["durable_seq"]
    assert replayed["conservation_totals"] == summary["deposits"]

    second = Demo(demo_dir, port)  # no --start: it resumes where the first stopped
    try:
        again = second.banner()
        assert again["API key"] == banner["API key"]  # same accounts, same keys
        wallet = second.get("/user/wallet?currency=XBt", again["API key"], again["API secret"])
        assert wallet["amount"] == 10 * 10**8  # your 10 XBT, read back after the restart
        resumed_ns = parse_iso_ns(again["time"].split()[0])
        assert resumed_ns is not None and resumed_ns >= parse_iso_ns(summary["sim_time"])
        second.wait_for(
            lambda: second.status().get("trades", 0) > 5, RUN_TIMEOUT_S, "trades after the restart"
        )
    finally:
        resumed = second.stop() if second.process.poll() is None else {}
    assert resumed["durable_seq"] > summary["durable_seq"]
    assert parse_iso_ns(resumed["sim_time"]) > parse_iso_ns(summary["sim_time"])
    final = _replay(demo_dir)
    assert final["seq"] == resumed["durable_seq"]
    assert final["conservation_totals"] == resumed["deposits"]
    for currency, amount in summary["deposits"].items():
        assert resumed["deposits"][currency] >= amount  # gamblers' stakes only add
