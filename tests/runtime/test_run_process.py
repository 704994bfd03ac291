"""End to end: ``perpetua run --config`` as a real process. The index feeds start with the
venue (marks move without any demo), ``/instrument/compositeIndex`` has the feeds'
constituents, ``/metrics`` answers in Prometheus's format, the logs are JSON lines, and SIGINT
stops it cleanly (exit 0). ``perpetua operator`` halts a market of the running venue.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # real processes or long randomised runs; CI runs them all

SRC = Path(__file__).resolve().parents[2] / "src"
UP_TIMEOUT_S = 40.0
FEED_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        body = response.read()
        if response.headers.get_content_type() == "application/json":
            return json.loads(body)
        return body.decode()


def _wait(predicate: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("timed out")


def test_run_with_a_config_file_serves_a_live_venue(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "perpetua.toml"
    config.write_text(
        f'data_dir = "data"\noperator_key = "op"\n[server]\nport = {port}\n[feeds]\nseed = 3\n'
    )
    env = dict(os.environ, PYTHONPATH=str(SRC))
    process = subprocess.Popen(
        [sys.executable, "-m", "perpetua.cli", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[str] = []
    assert process.stderr is not None
    threading.Thread(target=lambda: errors.extend(process.stderr or ()), daemon=True).start()
    try:
        _wait(lambda: _get(port, "/api/v1/instrument?symbol=XBTUSD"), UP_TIMEOUT_S)
        # the simulator publishes every 5 s of wall time: the index and so the mark get values
        row = _wait(
            lambda: [r for r in _get(port, "/api/v1/instrument?symbol=.BXBT") if r["lastPrice"]],
            FEED_TIMEOUT_S,
        )
        assert row[0]["lastPrice"] > 0
        xbtusd = _get(port, "/api/v1/instrument?symbol=XBTUSD")[0]
        assert xbtusd["markPrice"] and xbtusd["markPrice"] > 0
        constituents = _get(port, "/api/v1/instrument/compositeIndex?symbol=.BXBT")
        assert any(r["reference"] != "BMI" for r in constituents)  # fed by the board
        metrics = _get(port, "/metrics")
        for series in (
            'perpetua_commands_total{type="IndexPrice"}',
            "perpetua_sequencer_queue_depth",
            "perpetua_journal_commit_seconds_bucket",
            "perpetua_journal_fsync_seconds_total",
            "perpetua_projector_lag_commands",
            "perpetua_websocket_sessions",
            "perpetua_websocket_slow_consumers_total",
            "perpetua_rate_limit_rejections_total",
            "perpetua_liquidations_total",
        ):
            assert series in metrics, series
        # the operator's CLI acts on the running venue through its admin routes
        operator = [
            sys.executable,
            "-m",
            "perpetua.cli",
            "operator",
            "--url",
            f"http://127.0.0.1:{port}",
            "--operator-key",
            "op",
        ]
        halted = subprocess.run(
            [*operator, "halt", "XBTUSD"], env=env, capture_output=True, text=True, timeout=30
        )
        assert halted.returncode == 0, halted.stderr
        assert json.loads(halted.stdout)["state"] == "Closed"
        assert _get(port, "/api/v1/instrument?symbol=XBTUSD")[0]["state"] == "Closed"
        accounts = subprocess.run(
            [*operator, "accounts"], env=env, capture_output=True, text=True, timeout=30
        )
        assert accounts.returncode == 0, accounts.stderr
        assert isinstance(json.loads(accounts.stdout), list)
        refused = subprocess.run(
            [*operator[:-1], "wrong", "resume", "XBTUSD"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode == 1 and "403" in refused.stderr
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
    assert code == 0, "\n".join(errors[-20:])
    logs = [json.loads(line) for line in errors if line.startswith("{")]
    assert logs, errors[-20:]
    assert all({"event", "level", "timestamp"} <= set(entry) for entry in logs)
    # records about a command carry its seq (recovery logs the last one it reached)
    assert any(isinstance(entry.get("seq"), int) for entry in logs), logs
