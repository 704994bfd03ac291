"""kill -9 at every step of a withdrawal, on the real ``perpetua run`` process and a real anvil:
the process SIGKILLs itself at a named point (``PERPETUA_WALLETS_CRASH_AT``), is started again,
and the withdrawal either completes with exactly one transfer on chain or is released; the
user's wallet is debited amount + fee exactly once, or not at all."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from perpetua.chain import evm
from perpetua.chain.anvil import DEV_FUNDER_ADDRESS, DEV_FUNDER_KEY, AnvilNode
from perpetua.chain.rpc import JsonRpc
from tests.chain.fixtures import start_anvil_or_skip
from tests.gateway.wallet_server import (
    Server,
    User,
    mailed_token,
    make_chain_config,
    ok,
    sign_up,
    signed,
    wait_for,
)
from tests.services.smtp import smtp_server

pytestmark = pytest.mark.slow  # real processes, killed and restarted

USDT = 10**6
AMOUNT = 100 * USDT
FEE = 5 * USDT
FUNDS = 10_000 * USDT


@dataclass
class Rig:
    server: Server
    node: AnvilNode
    rpc: JsonRpc
    token: str
    user: User
    mails: int = 0

    def usdt(self, address: str) -> int:
        return evm.token_balance(self.rpc, self.token, address)

    def wallet(self) -> int:
        found = signed(self.server, self.user, "GET", "/user/wallet", {"currency": "USDt"})
        return int(ok(found)["amount"])

    def withdrawals(self) -> list[dict[str, object]]:
        return self.server.operator("GET", "/admin/withdrawals")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    node = start_anvil_or_skip()
    try:
        rpc = JsonRpc(node.url)
        token = evm.deploy(rpc, DEV_FUNDER_KEY)
        config, chain = make_chain_config(tmp_path_factory.mktemp("crash"), node.url, token)
        hot = evm.checksum(evm.Account.from_key(chain.hot_key).address)
        evm.mint(rpc, DEV_FUNDER_KEY, token, hot, 1_000_000 * USDT)
        tx = evm.sign_transfer(
            DEV_FUNDER_KEY, chain_id=rpc.chain_id(), nonce=rpc.nonce(DEV_FUNDER_ADDRESS), to=hot,
            amount=10**19, token=None, fee_wei=evm.max_fee(rpc),
        )  # fmt: skip
        evm.send_and_wait(rpc, tx)
        with smtp_server() as (inbox, smtp_port):
            server = Server(config, smtp_port, inbox)
            server.start()
            try:
                user = sign_up(server, "carol@example.com")
                server.operator(
                    "POST", "/admin/faucet", account=user.user_id, currency="USDt", amount=FUNDS
                )
            finally:
                server.stop()
            yield Rig(server, node, rpc, token, user)
            server.stop()
    finally:
        node.stop()


def _request(rig: Rig, to: str) -> httpx.Response:
    params = {
        "currency": "USDt", "network": "eth", "amount": AMOUNT, "address": to,
        "otpToken": rig.user.code(),
    }  # fmt: skip
    return signed(rig.server, rig.user, "POST", "/user/requestWithdrawal", params)


def _confirm(rig: Rig) -> None:
    rig.mails += 1
    token = mailed_token(rig.server, rig.user.email, rig.mails)
    with rig.server.client() as http:
        ok(http.post("/user/confirmWithdrawal", json={"token": token}))


def _killed(rig: Rig) -> None:
    assert rig.server.wait_killed() == -signal.SIGKILL
    rig.server.process = None


@pytest.mark.parametrize("point", ["signer.recorded", "signer.broadcast", "signer.completed"])
def test_kill_after_signing_never_sends_twice_never_loses_the_debit(rig: Rig, point: str) -> None:
    to = "0x" + f"{abs(hash(point)) % 10**40:040d}"
    rig.server.start(crash_at=point)
    before = rig.wallet()
    row = ok(_request(rig, to))
    _confirm(rig)
    if point == "signer.completed":
        wait_for(lambda: rig.usdt(to) == AMOUNT, what="the transfer on chain")
        rig.rpc.call("anvil_mine", hex(3))
    _killed(rig)
    rig.server.start()
    rig.rpc.call("anvil_mine", hex(3))
    wait_for(
        lambda: any(
            w["transactID"] == row["transactID"] and w["state"] == "Completed"
            for w in rig.withdrawals()
        ),
        timeout_s=60,
        what=f"completion after a kill at {point}",
    )
    rig.rpc.call("anvil_mine", hex(3))
    time.sleep(1)  # a second sender step: still exactly once
    assert rig.usdt(to) == AMOUNT
    assert rig.wallet() == before - AMOUNT - FEE
    rig.server.stop()


@pytest.mark.parametrize("point", ["withdrawal.requested", "withdrawal.held"])
def test_kill_during_the_request_releases_the_hold(rig: Rig, point: str) -> None:
    to = "0x" + f"{abs(hash(point)) % 10**40:040d}"
    rig.server.start(crash_at=point)
    before = rig.wallet()
    with pytest.raises(httpx.HTTPError):
        _request(rig, to)
    _killed(rig)
    rig.server.start()
    wait_for(
        lambda: [w for w in rig.withdrawals() if w["address"] == to and w["state"] == "Canceled"],
        what="the half-made request released",
    )
    assert rig.wallet() == before
    assert rig.usdt(to) == 0
    rig.server.stop()
