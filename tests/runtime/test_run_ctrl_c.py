"""End to end: Ctrl-C in the terminal that runs ``perpetua run`` with a local chain. A terminal
sends SIGINT to its whole foreground process group (the venue and every child left in it); the
venue must still stop in its own order: the wallet jobs, then the chain they use, then the
password hash workers. So the exit is 0 with no traceback, no job reported failed, and nothing
of the run's left behind."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.chain.fixtures import start_anvil_or_skip
from tests.runtime.sessions import session_members

pytestmark = pytest.mark.slow  # real processes: the venue, anvil and the hash workers

SRC = Path(__file__).resolve().parents[2] / "src"
UP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# The wallet jobs poll the chain this often, so one is talking to it when the Ctrl-C comes.
WALLET_POLL_S = 0.05
JOBS_RUNNING_S = 1.0  # after the venue answers, before the Ctrl-C
POLL_S = 0.25


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/api/v1/instrument?symbol=XBTUSD"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(json.loads(response.read()))
    except OSError:
        return False


def test_ctrl_c_to_the_process_group_stops_the_venue_cleanly(tmp_path: Path) -> None:
    start_anvil_or_skip().stop()  # skips when anvil is not installed (fails in CI)
    port = _free_port()
    config = tmp_path / "perpetua.toml"
    config.write_text(
        f'data_dir = "data"\noperator_key = "op"\n[server]\nport = {port}\n'
        f'[wallets]\nchain = "local"\npoll_interval_s = {WALLET_POLL_S}\n'
    )
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "w") as stderr:
        venue = subprocess.Popen(
            [sys.executable, "-m", "perpetua.cli", "run", "--config", str(config)],
            env=dict(os.environ, PYTHONPATH=str(SRC)),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own session and process group: a terminal's job
        )
    try:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while not _answers(port):
            assert venue.poll() is None and time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(POLL_S)
        time.sleep(JOBS_RUNNING_S)
        children = session_members(venue.pid)
        assert any("anvil" in c for c in children), children
        assert any("perpetua.services.hash_pool" in c for c in children), children
        os.killpg(venue.pid, signal.SIGINT)  # what Ctrl-C does
        code = venue.wait(STOP_TIMEOUT_S)
    finally:
        if venue.poll() is None:
            os.killpg(venue.pid, signal.SIGKILL)
            venue.wait()
    err = stderr_path.read_text()
    assert code == 0, err
    assert "Traceback" not in err, err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert not [e for e in logs if e["level"] in ("error", "critical")], err
    assert any(e["event"] == "stopped cleanly" for e in logs), err
    assert session_members(venue.pid) == []  # no anvil, no hash worker left behind
