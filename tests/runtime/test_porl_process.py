"""End to end on a real ``perpetua run`` process: the operator funds two users and publishes a
proof (``perpetua operator porl-snapshot``); a user fetches their nonce with a signed request,
downloads the proof, and ``perpetua verify-liabilities`` shows their total, the root's total and
digest as /porl/snapshots lists them."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from perpetua.gateway.auth import sign
from tests.runtime.test_run_process import SRC, UP_TIMEOUT_S, _free_port, _get, _wait

pytestmark = pytest.mark.slow  # a real server process


def _request(port: int, method: str, path: str, body: Any = None, headers: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        return json.loads(raw) if response.headers.get_content_type() == "application/json" else raw


def test_publish_fetch_nonce_and_verify(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "perpetua.toml"
    config.write_text(
        f'data_dir = "data"\noperator_key = "op"\n[server]\nport = {port}\n'
        '[feeds]\ndefault = "none"\n[porl]\nvenue = "e2e"\ndaily = false\n'
    )
    env = dict(os.environ, PYTHONPATH=str(SRC))
    process = subprocess.Popen(
        [sys.executable, "-m", "perpetua.cli", "run", "--config", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    admin = {"x-operator-key": "op"}
    try:
        _wait(lambda: _get(port, "/api/v1/instrument?symbol=XBTUSD"), UP_TIMEOUT_S)
        for account, amount in ((7, 250_000), (8, 31)):
            _request(port, "POST", "/api/v1/admin/faucet",
                     {"account": account, "currency": "XBt", "amount": amount}, admin)  # fmt: skip
        key = _request(port, "POST", "/api/v1/admin/apiKey", {"userId": 7}, admin)
        operator = [sys.executable, "-m", "perpetua.cli", "operator", "--url",
                    f"http://127.0.0.1:{port}", "--operator-key", "op"]  # fmt: skip
        published = subprocess.run(
            [*operator, "porl-snapshot"], env=env, capture_output=True, text=True, timeout=60
        )
        assert published.returncode == 0, published.stderr
        manifest = json.loads(published.stdout)
        row = _get(port, "/api/v1/porl/snapshots")[0]
        assert row["height"] == manifest["height"] and row["total"] == 250_031

        target = "/api/v1/porl/nonce"
        expires = str(int(time.time()) + 60)
        signed = {"api-key": key["id"], "api-expires": expires,
                  "api-signature": sign(key["secret"], "GET", target, expires, b"")}  # fmt: skip
        mine = _request(port, "GET", target, headers=signed)
        assert mine["account"] == 7 and mine["balance"] == 250_000
        proof = tmp_path / row["filename"]
        proof.write_bytes(_request(port, "GET", row["downloadUrl"]))
        checked = subprocess.run(
            [sys.executable, "-m", "perpetua.cli", "verify-liabilities", "--proof", str(proof),
             "--account", "7", "--nonce", mine["nonce"]],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        assert "account 7 included total: 250,000" in checked.stdout
        assert "root total: 250,031" in checked.stdout
        assert f"root digest: {row['rootDigest']}" in checked.stdout
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
