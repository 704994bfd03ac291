"""Wallets in cluster mode with real processes: one nats-server, two sequencers (s1 leads, s2
stands by), a projector and a gateway over PostgreSQL, an SMTP server, and an anvil node the
wallets reach with ``[wallets] chain = "rpc"``.

1. The gateway serves the wallet routes with no key (a deposit address from the xpub); the
   leader alone runs the wallets' jobs (its log names them; the standby's does not).
2. A USDT deposit on the chain is credited after 3 confirmations through the cluster.
3. ``kill -9`` of the leader: the standby takes the lease and its jobs credit the next deposit.
4. A deposit whose row a dead leader left uncredited after the core credited it (the row set
   back to ``Pending``) is offered again by the new leader, answered "duplicate" by the core,
   and its row catches up: the balance does not move.
5. A withdrawal requested on the gateway with 2FA and confirmed by the emailed token is signed
   and broadcast by the new leader, lands on chain once, and completes after 3 confirmations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from perpetua.chain import evm
from perpetua.chain.anvil import DEV_FUNDER_ADDRESS, DEV_FUNDER_KEY, AnvilNode
from perpetua.chain.keys import eth_account_xpub, new_mnemonic, save_keystore
from perpetua.chain.rpc import JsonRpc
from perpetua.runtime.cluster_dev import DevCluster
from perpetua.runtime.natsd import free_port, nats_server_binary
from perpetua.runtime.wallets import PASSWORD_ENV
from perpetua.store import open_engine
from perpetua.store.schema import chain_deposits, chain_withdrawals
from tests.chain.fixtures import start_anvil_or_skip
from tests.gateway.wallet_server import User, mailed_token, ok, sign_up, signed, wait_for
from tests.services.smtp import Inbox, smtp_server
from tests.store.databases import postgres_schema_url
from tests.transport.test_cluster import OPERATOR, leader, wait_http

pytestmark = pytest.mark.slow

USDT = 10**6
WALLET_PASSWORD = "cluster hot wallet password"
TO = "0x2222222222222222222222222222222222222222"
CREDIT_WAIT_S = 60.0


@dataclass
class Gateway:
    """What tests.gateway.wallet_server's helpers need of a server."""

    base: str
    inbox: Inbox

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base + "/api/v1", timeout=30)

    def operator(self, method: str, path: str, **params: Any) -> Any:
        with self.client() as client:
            response = client.request(
                method, path, headers={"x-operator-key": OPERATOR},
                **({"json": params} if method == "POST" else {"params": params}),
            )  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()


@dataclass
class Rig:
    cluster: DevCluster
    gateway: Gateway
    rpc: JsonRpc
    token: str
    url: str

    def pay(self, to: str, amount: int) -> None:
        tx = evm.sign_transfer(
            DEV_FUNDER_KEY, chain_id=self.rpc.chain_id(), nonce=self.rpc.nonce(DEV_FUNDER_ADDRESS),
            to=to, amount=amount, token=self.token, fee_wei=evm.max_fee(self.rpc),
        )  # fmt: skip
        evm.send_and_wait(self.rpc, tx)

    def mine(self, blocks: int) -> None:
        self.rpc.call("anvil_mine", hex(blocks))

    def usdt(self, address: str) -> int:
        return evm.token_balance(self.rpc, self.token, address)

    def log(self, name: str) -> str:
        return self.cluster.procs[name].log.read_text(errors="replace")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    root: Path = tmp_path_factory.mktemp("cluster-wallets")
    node: AnvilNode = start_anvil_or_skip()
    rpc = JsonRpc(node.url)
    with (
        pytest.MonkeyPatch.context() as patch,
        postgres_schema_url() as url,
        smtp_server() as (inbox, smtp_port),
    ):
        patch.setenv(PASSWORD_ENV, WALLET_PASSWORD)  # the sequencers' keystore password
        token = evm.deploy(rpc, DEV_FUNDER_KEY)
        evm.mint(rpc, DEV_FUNDER_KEY, token, DEV_FUNDER_ADDRESS, 1_000_000 * USDT)
        hot_key = "0x" + bytes(evm.Account.create().key).hex()
        keystore = root / "hot-wallet.json"
        save_keystore(keystore, hot_key, WALLET_PASSWORD)
        hot = evm.checksum(evm.Account.from_key(hot_key).address)
        evm.mint(rpc, DEV_FUNDER_KEY, token, hot, 100_000 * USDT)
        funding = evm.sign_transfer(
            DEV_FUNDER_KEY, chain_id=rpc.chain_id(), nonce=rpc.nonce(DEV_FUNDER_ADDRESS), to=hot,
            amount=10 * 10**18, token=None, fee_wei=evm.max_fee(rpc),
        )  # fmt: skip
        evm.send_and_wait(rpc, funding)
        wallets = "\n".join([
            'chain = "rpc"',
            f'rpc_url = "{node.url}"',
            f'token_address = "{token}"',
            f'eth_xpub = "{eth_account_xpub(new_mnemonic())}"',
            f'hot_keystore = "{keystore}"',
            "confirmations = 3",
            "poll_interval_s = 0.2",
        ])  # fmt: skip
        cluster = DevCluster(
            root / "c", nats_nodes=1, prefix="wl", database_url=url, reuse_port=False,
            smtp_url=f"smtp://127.0.0.1:{smtp_port}", wallets=wallets,
        )  # fmt: skip
        cluster.start_nats()
        try:
            for role, name in (("sequencer", "s1"), ("projector", "p1")):
                cluster.add(role, name)
                cluster.start(name)
            cluster.add("sequencer", "s2")  # a standby, started once s1 leads
            assert asyncio.run(leader(cluster)) == "s1"
            cluster.start("s2")
            port = free_port()
            cluster.add("gateway", "g1", port=port)
            cluster.start("g1")
            wait_http(port)
            yield Rig(cluster, Gateway(f"http://127.0.0.1:{port}", inbox), rpc, token, url)
        finally:
            codes = cluster.stop()
            rpc.close()
            node.stop()
        assert all(code in (0, -9, None) for code in codes.values()), codes


def wallet(rig: Rig, user: User) -> int:
    answer = ok(signed(rig.gateway, user, "GET", "/user/wallet", {"currency": "USDt"}))  # type: ignore[arg-type]
    return int(answer["amount"])


def deposit_rows(rig: Rig) -> dict[str, tuple[str, str]]:
    engine = open_engine(rig.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(chain_deposits)).all()
    finally:
        engine.dispose()
    return {r.id: (r.status, r.transfer_id) for r in rows}


def withdrawal_status(rig: Rig, withdrawal_id: str) -> str:
    engine = open_engine(rig.url)
    try:
        with engine.connect() as conn:
            return str(
                conn.execute(
                    select(chain_withdrawals.c.status).where(
                        chain_withdrawals.c.withdrawal_id == withdrawal_id
                    )
                ).scalar()
            )
    finally:
        engine.dispose()


def jobs_started(log: str) -> bool:
    return "wallets.follow.eth" in log and "wallets.send.eth" in log


def test_deposits_and_withdrawals_through_a_failover(rig: Rig) -> None:
    gateway: Any = rig.gateway
    alice = sign_up(gateway, "alice@example.com")
    where = {"currency": "USDt", "network": "eth"}
    address = str(ok(signed(gateway, alice, "GET", "/user/depositAddress", where)))
    assert evm.is_valid_address(address)
    # 1: the leader runs the jobs, the standby does not
    wait_for(lambda: jobs_started(rig.log("s1")), what="the leader's wallet jobs")
    assert not jobs_started(rig.log("s2"))
    assert "wallets.follow" not in rig.log("g1")
    time.sleep(1)  # the follower has read the head since the address was made
    # 2: a deposit credited through the cluster
    rig.pay(address, 250 * USDT)
    rig.mine(3)
    wait_for(lambda: wallet(rig, alice) == 250 * USDT, CREDIT_WAIT_S, "the first credit")
    # 3: the leader dies; the standby's jobs credit the next deposit
    assert "stepping down" not in rig.log("s1")  # s1 led throughout (one leadership)
    assert not jobs_started(rig.log("s2"))
    rig.cluster.kill("s1")
    assert asyncio.run(leader(rig.cluster, exclude="s1")) == "s2"
    wait_for(lambda: jobs_started(rig.log("s2")), what="the new leader's wallet jobs")
    rig.pay(address, 100 * USDT)
    rig.mine(3)
    wait_for(lambda: wallet(rig, alice) == 350 * USDT, CREDIT_WAIT_S, "the credit after failover")
    rows = deposit_rows(rig)
    assert sorted(status for status, _ in rows.values()) == ["Credited", "Credited"]
    # 4: a credit whose row was not updated (the leader died in between) is not paid twice
    first = min(rows)
    engine = open_engine(rig.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(chain_deposits).where(chain_deposits.c.id == first).values(status="Pending")
            )
    finally:
        engine.dispose()
    wait_for(lambda: deposit_rows(rig)[first][0] == "Credited", CREDIT_WAIT_S, "the row again")
    assert deposit_rows(rig)[first][1] == rows[first][1]  # the same transfer id: a duplicate
    assert wallet(rig, alice) == 350 * USDT
    # 5: a withdrawal requested on the gateway goes out from the new leader, once
    params = {
        "currency": "USDt", "network": "eth", "amount": 100 * USDT, "address": TO,
        "otpToken": alice.code(),
    }  # fmt: skip
    row = ok(signed(gateway, alice, "POST", "/user/requestWithdrawal", params))
    assert wallet(rig, alice) == 245 * USDT  # held: amount and the network fee
    token = mailed_token(gateway, alice.email, 1)
    with gateway.client() as http:
        assert ok(http.post("/user/confirmWithdrawal", json={"token": token}))
    wait_for(lambda: rig.usdt(TO) == 100 * USDT, CREDIT_WAIT_S, "the transfer on chain")
    rig.mine(3)
    wait_for(
        lambda: withdrawal_status(rig, row["transactID"]) == "Completed",
        CREDIT_WAIT_S,
        "the withdrawal completed",
    )
    assert rig.usdt(TO) == 100 * USDT
    assert wallet(rig, alice) == 245 * USDT
    assert "Traceback" not in rig.log("s2"), rig.log("s2")[-3000:]
