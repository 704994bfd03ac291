"""Wallets end to end: the real ``perpetua run`` process on a real anvil node, mail to a real
SMTP server, ccxt's unchanged ``bitmex`` class.

Deposits of ETH and of the ERC-20 credited after 3 confirmations, shown over REST
(``/user/wallet``, ``walletHistory`` Pending then Completed with the tx) and WebSocket
(``wallet``); a withdrawal through ccxt with 2FA, confirmed by the emailed token, landing at
the address for the amount (the fee kept); over the threshold it waits for the operator;
whitelist mode and the 24 h lock refuse; a paused network shows in ``/wallet/assets``;
conservation: user balance plus the fees account equal the on-chain movements."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from perpetua.chain import evm
from perpetua.chain.anvil import DEV_FUNDER_ADDRESS, DEV_FUNDER_KEY, AnvilNode
from perpetua.chain.rpc import JsonRpc
from perpetua.gateway.auth import sign
from tests.chain.fixtures import start_anvil_or_skip
from tests.gateway.wallet_server import (
    PASSWORD,
    Chain,
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

pytestmark = pytest.mark.slow  # real processes: the venue and anvil

ccxt = pytest.importorskip("ccxt")
websockets_sync = pytest.importorskip("websockets.sync.client")

USDT = 10**6
TO = "0x2222222222222222222222222222222222222222"
TO_BIG = "0x3333333333333333333333333333333333333333"
TO_SESSION = "0x4444444444444444444444444444444444444444"


class Rig:
    def __init__(self, server: Server, node: AnvilNode, chain: Chain) -> None:
        self.server = server
        self.node = node
        self.chain = chain
        self.rpc = JsonRpc(node.url)
        self.hot = evm.checksum(evm.Account.from_key(chain.hot_key).address)

    def pay(self, to: str, amount: int, token: str | None) -> None:
        tx = evm.sign_transfer(
            DEV_FUNDER_KEY, chain_id=self.rpc.chain_id(), nonce=self.rpc.nonce(DEV_FUNDER_ADDRESS),
            to=to, amount=amount, token=token, fee_wei=evm.max_fee(self.rpc),
        )  # fmt: skip
        evm.send_and_wait(self.rpc, tx)

    def mine(self, blocks: int) -> None:
        self.rpc.call("anvil_mine", hex(blocks))

    def usdt(self, address: str) -> int:
        return evm.token_balance(self.rpc, self.chain.token, address)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    node = start_anvil_or_skip()
    try:
        rpc = JsonRpc(node.url)
        token = evm.deploy(rpc, DEV_FUNDER_KEY)
        evm.mint(rpc, DEV_FUNDER_KEY, token, DEV_FUNDER_ADDRESS, 10_000_000 * USDT)
        config, chain = make_chain_config(tmp_path_factory.mktemp("wallets"), node.url, token)
        hot = evm.checksum(evm.Account.from_key(chain.hot_key).address)
        evm.mint(rpc, DEV_FUNDER_KEY, token, hot, 1_000_000 * USDT)
        with smtp_server() as (inbox, smtp_port):
            server = Server(config, smtp_port, inbox)
            server.start()
            rig = Rig(server, node, chain)
            rig.pay(hot, 10 * 10**18, None)
            try:
                yield rig
            finally:
                server.stop()
    finally:
        node.stop()


@pytest.fixture(scope="module")
def alice(rig: Rig) -> User:
    return sign_up(rig.server, "alice@example.com")


# The venue takes a TOTP step once, and only steps within one of now: a user has three codes
# at hand, then one more per 30 s. Tests that need codes besides alice's three have users of
# their own, so the module does not wait for the clock.
@pytest.fixture(scope="module")
def bob(rig: Rig) -> User:
    return sign_up(rig.server, "bob@example.com")


@pytest.fixture(scope="module")
def carol(rig: Rig) -> User:
    return sign_up(rig.server, "carol@example.com")


def exchange(rig: Rig, user: User) -> Any:
    client = ccxt.bitmex({"apiKey": user.key_id, "secret": user.secret, "enableRateLimit": False})
    for key in ("public", "private"):
        client.urls["api"][key] = rig.server.base
    return client


def wallet(rig: Rig, user: User, currency: str) -> int:
    return int(
        ok(signed(rig.server, user, "GET", "/user/wallet", {"currency": currency}))["amount"]
    )


def history(rig: Rig, user: User, currency: str) -> list[dict[str, Any]]:
    return ok(signed(rig.server, user, "GET", "/user/walletHistory", {"currency": currency}))  # type: ignore[no-any-return]


def test_deposits_credited_after_confirmations_over_rest_and_websocket(
    rig: Rig, alice: User
) -> None:
    client = exchange(rig, alice)
    found = client.fetch_deposit_address("USDT", {"network": "ERC20"})
    address = found["address"]
    assert evm.is_valid_address(address) and found["network"] == "ERC20"
    assert client.fetch_deposit_address("ETH", {"network": "ERC20"})["address"] == address
    with websockets_sync.connect(rig.server.base.replace("http", "ws") + "/realtime") as ws:
        json.loads(ws.recv(timeout=10))  # welcome
        expires = int(time.time()) + 60
        auth = [alice.key_id, expires, sign(alice.secret, "GET", "/realtime", str(expires))]
        ws.send(json.dumps({"op": "authKeyExpires", "args": auth}))
        assert json.loads(ws.recv(timeout=10)).get("success") is True
        ws.send(json.dumps({"op": "subscribe", "args": ["wallet"]}))
        time.sleep(0.5)  # the follower has read the head since the address was made
        rig.pay(address, 250 * USDT, rig.chain.token)
        rig.pay(address, 2 * 10**18, None)
        pending = wait_for(
            lambda: [r for r in history(rig, alice, "USDt") if r["transactStatus"] == "Pending"],
            what="a pending deposit row",
        )
        assert pending[0]["amount"] == 250 * USDT and pending[0]["network"] == "eth"
        assert wallet(rig, alice, "USDt") == 0  # not yet: 3 confirmations
        rig.mine(3)
        wait_for(lambda: wallet(rig, alice, "USDt") == 250 * USDT, what="USDT credit")
        wait_for(lambda: wallet(rig, alice, "Gwei") == 2 * 10**9, what="ETH credit")
        rows = [r for r in history(rig, alice, "USDt") if r["transactType"] == "Deposit"]
        assert [(r["transactStatus"], r["amount"]) for r in rows] == [("Completed", 250 * USDT)]
        assert rows[0]["tx"].startswith("0x") and rows[0]["address"] == address
        seen: list[int] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and 250 * USDT not in seen:
            message = json.loads(ws.recv(timeout=10))
            for row in message.get("data", []) if message.get("table") == "wallet" else []:
                if row.get("currency") == "USDt" and "amount" in row:
                    seen.append(row["amount"])
        assert 250 * USDT in seen
    # ccxt 4.5.83's bitmex answers deposits and withdrawals through fetchDepositsWithdrawals
    # (its fetch_deposits / fetch_withdrawals raise NotSupported inside ccxt, before any request)
    deposits = [t for t in client.fetch_deposits_withdrawals("USDT") if t["type"] == "deposit"]
    assert [(d["status"], d["amount"]) for d in deposits] == [("ok", 250.0)]


def test_withdrawal_with_2fa_and_email_lands_amount_minus_fee(rig: Rig, alice: User) -> None:
    client = exchange(rig, alice)
    fees = client.fetch_deposit_withdraw_fees(["USDT"])
    assert fees["USDT"]["networks"]["ERC20"]["withdraw"]["fee"] == 5.0
    before = wallet(rig, alice, "USDt")
    with pytest.raises(ccxt.BaseError):  # no 2FA code
        client.withdraw("USDT", 100, TO, params={"network": "ERC20"})
    with pytest.raises(ccxt.BaseError):  # a malformed address
        client.withdraw("USDT", 100, "0x1234", params={"network": "ERC20", "otpToken": "1"})
    assert wallet(rig, alice, "USDt") == before
    sent = client.withdraw("USDT", 100, TO, params={"network": "ERC20", "otpToken": alice.code()})
    assert sent["status"] == "pending" and sent["address"] == TO
    assert wallet(rig, alice, "USDt") == before - 105 * USDT  # held: amount + network fee
    time.sleep(1)
    assert rig.usdt(TO) == 0  # not before the emailed confirmation
    token = mailed_token(rig.server, alice.email, 1)
    with rig.server.client() as http:
        confirmed = ok(http.post("/user/confirmWithdrawal", json={"token": token}))
        assert confirmed["transactStatus"] == "Confirmed"
        replay = http.post("/user/confirmWithdrawal", json={"token": token})
        assert replay.status_code == 400
    wait_for(lambda: rig.usdt(TO) == 100 * USDT, what="the transfer on chain")
    rig.mine(3)
    done = wait_for(
        lambda: [
            w
            for w in client.fetch_deposits_withdrawals("USDT")
            if w["type"] == "withdrawal" and w["status"] == "ok"
        ],
        what="withdrawal completed",
    )
    assert done[0]["amount"] == 105.0 and done[0]["fee"]["cost"] == 5.0
    assert done[0]["txid"].startswith("0x")
    assert rig.usdt(TO) == 100 * USDT  # once
    fees_row = [
        r for r in rig.server.operator("GET", "/admin/accounts")
        if r["name"] == "fees" and r["currency"] == "USDt"
    ]  # fmt: skip
    assert fees_row and fees_row[0]["amount"] >= 5 * USDT


def test_over_the_threshold_waits_for_the_operator(rig: Rig, alice: User) -> None:
    address = deposit_address(rig, alice)
    rig.pay(address, 2_000 * USDT, rig.chain.token)
    rig.mine(3)
    wait_for(lambda: wallet(rig, alice, "USDt") >= 2_000 * USDT, what="funding")
    params = {
        "currency": "USDt", "network": "eth", "amount": 1_500 * USDT, "address": TO_BIG,
        "otpToken": alice.code(),
    }  # fmt: skip
    row = ok(signed(rig.server, alice, "POST", "/user/requestWithdrawal", params))
    token = mailed_token(rig.server, alice.email, 2)
    with rig.server.client() as http:
        ok(http.post("/user/confirmWithdrawal", json={"token": token}))
    waiting = rig.server.operator("GET", "/admin/withdrawals", status="Approval")
    assert [w["transactID"] for w in waiting] == [row["transactID"]]
    # the trader's history: BitMEX's status, and ours saying what it waits for
    mine = [r for r in history(rig, alice, "USDt") if r["transactID"] == row["transactID"]]
    assert [(r["transactStatus"], r["state"]) for r in mine] == [("Confirmed", "Approval")]
    time.sleep(1)
    assert rig.usdt(TO_BIG) == 0
    approved = rig.server.operator(
        "POST", "/admin/withdrawal/approve", withdrawalId=row["transactID"], operator="ops-bo"
    )
    assert approved["state"] == "Queued"
    wait_for(lambda: rig.usdt(TO_BIG) == 1_500 * USDT, what="the approved transfer")


def test_whitelist_lock_and_paused_network(rig: Rig, bob: User) -> None:
    server = rig.server
    saved = signed(server, bob, "POST", "/address", {
        "currency": "USDt", "network": "eth", "address": TO, "name": "mine",
        "otpToken": bob.code(),
    })  # fmt: skip
    entry = ok(saved)
    assert entry["address"] == TO and entry["network"] == "eth"
    server.inbox.wait(bob.email, "new withdrawal address saved")
    assert [a["id"] for a in ok(signed(server, bob, "GET", "/address"))] == [entry["id"]]
    refused = signed(server, bob, "POST", "/user/requestWithdrawal", {
        "currency": "USDt", "network": "eth", "amount": 20 * USDT, "addressId": entry["id"],
        "otpToken": "000000",
    })  # fmt: skip
    assert refused.status_code == 400 and "24 hours" in refused.text
    server.operator("POST", "/admin/wallets/network", network="eth", withdrawals=False)
    assets = {a["currency"]: a for a in ok(httpx_get(server, "/wallet/assets"))}
    usdt = assets["USDt"]["networks"][0]
    assert usdt["asset"] == "eth" and usdt["withdrawalEnabled"] is False
    assert usdt["depositEnabled"] is True and usdt["withdrawalFee"] == 5 * USDT
    assert (
        usdt["tokenAddress"] == rig.chain.token
        and assets["USDt"]["minWithdrawalAmount"] == 10 * USDT
    )
    paused = signed(server, bob, "POST", "/user/requestWithdrawal", {
        "currency": "USDt", "network": "eth", "amount": 20 * USDT, "address": TO,
        "otpToken": "000000",
    })  # fmt: skip
    assert paused.status_code == 400 and "paused" in paused.text
    server.operator("POST", "/admin/wallets/network", network="eth", withdrawals=True)
    networks = ok(httpx_get(server, "/wallet/networks"))
    assert networks[0]["network"] == "eth" and networks[0]["depositConfirmations"] == 3


def test_a_browser_session_withdraws_with_2fa_and_the_mailed_token(rig: Rig, carol: User) -> None:
    """The owner signed in with the cookie (no API key) withdraws like a withdraw key: the
    same TOTP and mailed confirmation, the same transfer on chain."""
    rig.pay(deposit_address(rig, carol), 100 * USDT, rig.chain.token)
    rig.mine(3)
    wait_for(lambda: wallet(rig, carol, "USDt") == 100 * USDT, what="carol's deposit")
    with rig.server.client() as browser:
        login = {"email": carol.email, "password": PASSWORD, "otpToken": carol.code()}
        signed_in = ok(browser.post("/user/login", json=login))
        browser.headers["x-csrf-token"] = signed_in["csrfToken"]
        params = {"currency": "USDt", "network": "eth", "amount": 20 * USDT, "address": TO_SESSION}
        refused = browser.post("/user/requestWithdrawal", json=params)
        assert refused.status_code == 401 and "two-factor" in refused.text
        row = ok(browser.post("/user/requestWithdrawal", json=params | {"otpToken": carol.code()}))
        assert row["transactStatus"] == "Pending" and row["address"] == TO_SESSION
        token = mailed_token(rig.server, carol.email, 1)
        ok(browser.post("/user/confirmWithdrawal", json={"token": token}))
    wait_for(lambda: rig.usdt(TO_SESSION) == 20 * USDT, what="the session's withdrawal on chain")


def test_conservation_user_balances_and_fees_equal_chain_movements(
    rig: Rig, alice: User, carol: User
) -> None:
    """USDT: what the users' deposit addresses hold, minus what the hot wallet paid out, equals
    the users' wallets (held withdrawals included) plus the fees account."""
    users = (alice, carol)  # bob never had a deposit
    addresses = [deposit_address(rig, user) for user in users]
    rig.mine(3)
    wait_for(
        lambda: not [w for w in rig.server.operator("GET", "/admin/withdrawals")
                     if w["state"] not in ("Completed", "Canceled", "Rejected", "Failed")],
        what="withdrawals settled",
    )  # fmt: skip
    paid_out = 1_000_000 * USDT - rig.usdt(rig.hot)
    accounts = {
        (r["name"], r["currency"]): r["amount"]
        for r in rig.server.operator("GET", "/admin/accounts")
    }
    fees = accounts.get(("fees", "USDt"), 0)
    in_transit = accounts.get(("withdrawal_transit", "USDt"), 0)
    held = sum(rig.usdt(address) for address in addresses)
    owed = sum(wallet(rig, user, "USDt") for user in users)
    assert held - paid_out == owed + fees + in_transit


def deposit_address(rig: Rig, user: User) -> str:
    query = {"currency": "USDt", "network": "eth"}
    return str(ok(signed(rig.server, user, "GET", "/user/depositAddress", query)))


def httpx_get(server: Server, path: str) -> Any:
    with server.client() as client:
        return client.get(path)
