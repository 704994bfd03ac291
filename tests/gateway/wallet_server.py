"""The real ``perpetua run`` process with ``[wallets] chain = "rpc"`` on a test's anvil node,
mail to a real SMTP server (aiosmtpd), and the helpers the wallet end-to-end tests share: a
user signed up with TOTP on, an operator-made API key with ``withdraw``, TOTP codes that never
repeat a step (the venue refuses a used step), signed REST calls."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from eth_account import Account

from perpetua.chain.keys import eth_account_xpub, new_mnemonic, save_keystore
from perpetua.gateway.auth import sign
from perpetua.services.mail import free_port
from tests.services.smtp import Inbox, body

OPERATOR_KEY = "wallets-e2e-operator"
PASSWORD = "violet tractor umbrella 42"
WALLET_PASSWORD = "hot wallet keystore password"
STARTUP_S = 120
SRC = Path(__file__).resolve().parents[2] / "src"
TOTP_STEP_S = 30
TOTP_MARGIN_S = 5.0  # User.code: the step before now only with this much of the current one left


@dataclass
class Chain:
    rpc_url: str
    token: str
    hot_key: str
    xpub: str


def make_chain_config(
    data_dir: Path, rpc_url: str, token: str, approval_usdt: int = 1_000
) -> tuple[Path, Chain]:
    hot_key = "0x" + bytes(Account.create().key).hex()
    keystore = data_dir / "hot-wallet.json"
    save_keystore(keystore, hot_key, WALLET_PASSWORD)
    xpub = eth_account_xpub(new_mnemonic())
    config = data_dir / "venue.toml"
    config.write_text(
        f'data_dir = "{data_dir / "data"}"\n'
        "[wallets]\n"
        'chain = "rpc"\n'
        f'rpc_url = "{rpc_url}"\n'
        f'token_address = "{token}"\n'
        f'eth_xpub = "{xpub}"\n'
        f'hot_keystore = "{keystore}"\n'
        "confirmations = 3\n"
        "poll_interval_s = 0.1\n"
        f"approval_usdt = {approval_usdt}\n"
    )
    return config, Chain(rpc_url, token, hot_key, xpub)


class Server:
    def __init__(self, config: Path, smtp_port: int, inbox: Inbox) -> None:
        self.config = config
        self.smtp_port = smtp_port
        self.inbox = inbox
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, crash_at: str = "") -> None:
        env = dict(
            os.environ,
            PYTHONPATH=str(SRC),
            PERPETUA_SMTP_URL=f"smtp://127.0.0.1:{self.smtp_port}",
            PERPETUA_WALLET_PASSWORD=WALLET_PASSWORD,
        )
        env.pop("PERPETUA_WALLETS_CRASH_AT", None)
        if crash_at:
            env["PERPETUA_WALLETS_CRASH_AT"] = crash_at
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perpetua.cli",
                "run",
                "--config",
                str(self.config),
                "--port",
                str(self.port),
                "--operator-key",
                OPERATOR_KEY,
                "--log-level",
                "warning",
                "--no-rate-limits",
                "--no-feeds",
            ],  # fmt: skip
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                httpx.get(self.base + "/api/v1/announcement", timeout=1)
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    out = self.process.stdout.read().decode() if self.process.stdout else ""
                    pytest.fail(f"server did not start:\n{out[-4000:]}")
                time.sleep(0.2)

    def wait_killed(self, timeout_s: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            finally:
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait()
        self.process = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base + "/api/v1", timeout=30)

    def operator(self, method: str, path: str, **params: Any) -> Any:
        with self.client() as client:
            response = client.request(
                method, path, headers={"x-operator-key": OPERATOR_KEY},
                **({"json": params} if method == "POST" else {"params": params}),
            )  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()


@dataclass
class User:
    email: str
    user_id: int
    otp: pyotp.TOTP
    key_id: str
    secret: str
    last_step: int = 0
    used: list[int] = field(default_factory=list)

    def code(self) -> str:
        """A code of a step after the last one used, waiting for time to reach it if needed.
        The step before now only while more than ``TOTP_MARGIN_S`` of the current step is left:
        the venue must still find it in reach when it reads it."""
        while True:
            moment = time.time()
            now = int(moment) // TOTP_STEP_S
            spare = (now + 1) * TOTP_STEP_S - moment
            step = max(self.last_step + 1, now - 1 if spare > TOTP_MARGIN_S else now)
            if step <= now + 1:
                self.last_step = step
                return str(self.otp.at(step * TOTP_STEP_S))
            time.sleep(1)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def sign_up(server: Server, email: str) -> User:
    with server.client() as client:
        ok(client.post("/user/register", json={"email": email, "password": PASSWORD}))
        message = server.inbox.wait(email, "confirm your email")
        found = re.search(r"Token: (\S+)", body(message))
        assert found
        ok(client.post("/user/confirmEmail", json={"token": found.group(1)}))
        signed = ok(client.post("/user/login", json={"email": email, "password": PASSWORD}))
        client.headers["x-csrf-token"] = signed["csrfToken"]
        user_id = ok(client.get("/user"))["id"]
        enrol = ok(client.post("/user/requestEnableTFA"))
        otp = pyotp.TOTP(enrol["secret"])
        user = User(email, user_id, otp, "", "")
        ok(client.post("/user/confirmEnableTFA", json={"token": user.code()}))
    key = server.operator("POST", "/admin/apiKey", userId=user_id, permissions="order,withdraw")
    user.key_id, user.secret = key["id"], key["secret"]
    return user


def signed(
    server: Server, user: User, method: str, path: str, params: dict[str, Any] | None = None
) -> httpx.Response:
    """A request signed with the user's key; ``path`` after /api/v1."""
    target = "/api/v1" + path
    data = b""
    if method == "GET" and params:
        target += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    elif params:
        data = json.dumps(params).encode()
    expires = str(int(time.time()) + 60)
    headers = {
        "api-key": user.key_id,
        "api-expires": expires,
        "api-signature": sign(user.secret, method, target, expires, data),
    }
    if data:
        headers["content-type"] = "application/json"
    return httpx.request(method, server.base + target, content=data, headers=headers, timeout=30)


def mailed_token(server: Server, email: str, count: int) -> str:
    message = server.inbox.wait(email, "confirm your withdrawal", count)
    found = re.search(r"token: (\S+)", body(message))
    assert found, body(message)
    return found.group(1)


def wait_for(predicate: Any, timeout_s: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.1)
