"""Withdrawals on a real anvil chain, through the real core: 2FA and the emailed token, the
network fee kept by the exchange, the amount landing at the address; every bad input a 4xx that
moves nothing; whitelist mode and the 24 h lock; four-eyes approval; cancel; a failed or
dropped transaction refunded; conservation after each step."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from perpetua.chain import evm
from perpetua.chain.rpc import JsonRpc
from perpetua.core.commands import Deposit, SetAccountRestriction
from perpetua.core.enums import RestrictionCause, TradingMode
from perpetua.services.compliance import Compliance, ComplianceConfig, CompliancePolicy, ListSource
from perpetua.services.server_key import load_server_key
from perpetua.services.wallets import Request, WalletError
from perpetua.services.wallets.addresses import ADDRESS_LOCK_NS
from perpetua.store import default_url, migrate, open_engine
from tests.services.wallets.rig import CONFIRMATIONS, GOOD_OTP, HOT_USDT, Rig, build

pytestmark = pytest.mark.slow  # a real anvil per test

ALICE = 7
TO = "0x1111111111111111111111111111111111111111"
USDT = 10**6
FEE = 5 * USDT  # the network fee for USDT (networks.default_networks)


def fund(rig: Rig, amount: int = 1_000 * USDT, currency: str = "USDt") -> None:
    rig.sequencer.execute(Deposit(0, ALICE, currency, amount, f"fund-{amount}-{currency}"))


def req(**changes: Any) -> Request:
    base: dict[str, Any] = dict(
        account=ALICE, user_id=ALICE, currency="USDt", network="eth", amount=100 * USDT,
        address=TO, address_id=None, memo="", fee=None, otp=GOOD_OTP, text="",
    )  # fmt: skip
    base.update(changes)
    return Request(**base)


def conserved(rig: Rig) -> None:
    """User balances + fees + in transit == what the core took in minus what it sent out."""
    ledger = rig.engine.state.ledger.balances["USDt"]
    assert sum(v for a, v in ledger.items() if a != -1) == rig.external("USDt")


def on_chain(rig: Rig, address: str) -> int:
    return evm.token_balance(rig.rpc, rig.token, address)


def test_end_to_end_lands_amount_and_keeps_the_fee(rig: Rig) -> None:
    fund(rig)
    row, token = rig.wallets.desk.request(req())
    assert row.status == "Pending" and row.fee == FEE
    assert rig.balance(ALICE, "USDt") == 1_000 * USDT - 100 * USDT - FEE  # held at request
    conserved(rig)
    assert rig.verifier.token() == token
    assert rig.send().broadcast == []  # unconfirmed: nothing is signed
    row = rig.wallets.desk.confirm(token)
    assert row.status == "Queued"
    with pytest.raises(WalletError):
        rig.wallets.desk.confirm(token)  # replayed token
    report = rig.send()
    assert report.broadcast == [row.withdrawal_id]
    evm.wait_receipt(rig.rpc, rig.wallets.desk.get(row.withdrawal_id).tx_hash)
    assert on_chain(rig, TO) == 100 * USDT  # mined (automine), not yet deep enough
    assert rig.wallets.desk.get(row.withdrawal_id).status == "Broadcast"
    rig.mine(CONFIRMATIONS)
    assert rig.send().completed == [row.withdrawal_id]
    assert rig.fees("USDt") == FEE
    assert rig.balance(ALICE, "USDt") == 895 * USDT
    assert on_chain(rig, rig.wallets.signers["eth"].hot_address) == HOT_USDT - 100 * USDT
    conserved(rig)
    rig.mine(3)
    assert rig.send().broadcast == [] and on_chain(rig, TO) == 100 * USDT  # never twice


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        (dict(network="btc"), 400, "cannot be withdrawn"),
        (dict(currency="XBt"), 400, "cannot be withdrawn"),
        (dict(address="0x1234"), 400, "Invalid address"),
        (dict(address="bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh"), 400, "Invalid address"),
        (dict(address=TO[:-1] + "X"), 400, "Invalid address"),
        (dict(address="0x52908400098527886E0F7030069857D2E4169Ee7"), 400, "Invalid address"),
        (dict(amount=9 * USDT), 400, "below the minimum"),
        (dict(fee=1), 400, "fee must be"),
        (dict(otp=""), 401, "two-factor"),
        (dict(otp="000000"), 401, "two-factor"),
        (dict(amount=5_000 * USDT), 400, "Insufficient available balance"),
        (dict(amount=3_000_000 * USDT), 400, "24-hour withdrawal limit"),
        (dict(address="0x000000000000000000000000000000000000bad1"), 403, "cannot receive"),
        (dict(address_id=999), 400, "Unknown addressId"),
        (dict(memo="104567"), 400, "takes no memo"),  # Ethereum has none: the coins'd be lost
    ],
)
def test_bad_requests_move_nothing(
    rig: Rig, changes: dict[str, Any], status: int, message: str
) -> None:
    fund(rig)
    before = rig.balance(ALICE, "USDt")
    with pytest.raises(WalletError) as refused:
        rig.wallets.desk.request(req(**changes))
    assert refused.value.status == status and message in refused.value.message
    assert rig.balance(ALICE, "USDt") == before
    assert all(w.status == "Rejected" for w in rig.wallets.withdrawals(ALICE))
    conserved(rig)


def test_a_memo_network_checks_the_memo_and_the_book_keeps_it(rig: Rig) -> None:
    """On a network that needs a memo (tag) a destination without one, or with one that is
    not short printable ASCII, is refused for a withdrawal and for the address book alike."""
    rig.wallets.networks["eth"] = replace(rig.wallets.networks["eth"], memo_required=True)
    fund(rig)
    before = rig.balance(ALICE, "USDt")
    for memo, message in (
        ("", "needs a memo"),
        ("x" * 65, "Invalid memo"),
        ("t\nag", "Invalid memo"),
    ):
        with pytest.raises(WalletError) as refused:
            rig.wallets.desk.request(req(memo=memo))
        assert refused.value.status == 400 and message in refused.value.message, memo
        with pytest.raises(WalletError) as not_saved:
            rig.wallets.book.add(ALICE, ALICE, "USDt", "eth", TO, "desk", "", memo, GOOD_OTP)
        assert not_saved.value.status == 400 and message in not_saved.value.message, memo
    assert rig.wallets.book.entries(ALICE) == [] and rig.balance(ALICE, "USDt") == before
    entry = rig.wallets.book.add(ALICE, ALICE, "USDt", "eth", TO, "desk", "", "104567", GOOD_OTP)
    assert entry.memo == "104567"
    rig.clock.now_ns += ADDRESS_LOCK_NS
    with pytest.raises(WalletError) as other:
        rig.wallets.desk.request(req(address="", address_id=entry.id, memo="999"))
    assert other.value.status == 400 and "comes from the saved address" in other.value.message
    row, _ = rig.wallets.desk.request(req(address="", address_id=entry.id))
    assert (row.address, row.memo) == (TO, "104567")


def test_a_restricted_account_is_refused_403_with_the_cause_and_nothing_moves(rig: Rig) -> None:
    fund(rig)
    before = rig.balance(ALICE, "USDt")
    rig.sequencer.execute(
        SetAccountRestriction(
            0, ALICE, TradingMode.ALLOWED, withdrawals=False, cause=RestrictionCause.OPERATOR
        )
    )
    with pytest.raises(WalletError) as refused:
        rig.wallets.desk.request(req())
    assert refused.value.status == 403
    assert refused.value.message == (
        "Withdrawals are not permitted for this account (reason: restricted by the operator)"
    )
    assert rig.balance(ALICE, "USDt") == before
    assert [w.status for w in rig.wallets.withdrawals(ALICE)] == ["Rejected"]
    conserved(rig)


def test_a_sanctioned_address_is_refused_and_goes_to_review(
    anvil_rpc: JsonRpc, usdt: str, tmp_path: Path
) -> None:
    """The venue's withdrawal policy (services.compliance): an address on a sanctions list is
    refused before anything is held, with a neutral message; the hit opens a sanctions case
    for the reviewers; a clean address still goes through."""
    listed = "0x2222222222222222222222222222222222222222"
    lists = tmp_path / "internal.csv"
    lists.write_text(
        f"name,addresses,id,program\nMixer Ops,{listed.upper()[2:]};{listed},M-1,CYBER\n"
    )
    url = default_url(str(tmp_path))
    migrate(url)
    compliance = Compliance(
        open_engine(url),
        load_server_key(tmp_path),
        None,
        ComplianceConfig(sanctions_lists=(ListSource(lists, "generic"),)),
    )
    try:
        rig = build(anvil_rpc, usdt, tmp_path, policy=CompliancePolicy(compliance))
        fund(rig)
        before = rig.balance(ALICE, "USDt")
        with pytest.raises(WalletError) as refused:
            rig.wallets.desk.request(req(address=listed))
        assert (refused.value.status, refused.value.message) == (
            403, "This address cannot receive withdrawals",
        )  # fmt: skip
        assert rig.balance(ALICE, "USDt") == before and rig.wallets.withdrawals(ALICE) == []
        [case] = asyncio.run(compliance.queue())
        assert (case["account"], case["kind"], case["risk"]) == (ALICE, "sanctions", "high")
        assert case["detail"]["address"] == listed and case["detail"]["at"] == "withdrawal"
        assert case["detail"]["hits"][0]["entryId"] == "M-1"
        row, _ = rig.wallets.desk.request(req())
        assert row.status == "Pending"
        conserved(rig)
    finally:
        compliance.close()


def test_expired_token_and_cancel_release_the_hold(rig: Rig) -> None:
    fund(rig)
    row, token = rig.wallets.desk.request(req())
    rig.clock.now_ns += 31 * 60 * 10**9
    with pytest.raises(WalletError, match="expired"):
        rig.wallets.desk.confirm(token)
    row = rig.wallets.desk.cancel_by_token(token)
    assert row.status == "Canceled"
    assert rig.balance(ALICE, "USDt") == 1_000 * USDT
    with pytest.raises(WalletError):
        rig.wallets.desk.cancel_by_token(token)  # once
    conserved(rig)


def test_whitelist_mode_and_the_24h_lock(rig: Rig) -> None:
    fund(rig)
    book = rig.wallets.book
    with pytest.raises(WalletError):
        book.set_whitelist(ALICE, ALICE, True, "bad")
    book.set_whitelist(ALICE, ALICE, True, GOOD_OTP)
    with pytest.raises(WalletError, match="Whitelist mode"):
        rig.wallets.desk.request(req())
    with pytest.raises(WalletError, match="two-factor"):
        book.add(ALICE, ALICE, "USDt", "eth", TO, "cold", "", "", "nope")
    with pytest.raises(WalletError, match="Invalid address"):
        book.add(ALICE, ALICE, "USDt", "eth", "0xnope", "cold", "", "", GOOD_OTP)
    entry = book.add(ALICE, ALICE, "USDt", "eth", TO, "cold", "my cold wallet", "", GOOD_OTP)
    assert any(s == "new withdrawal address saved" for _, s, _ in rig.verifier.notices)
    with pytest.raises(WalletError, match="24 hours"):
        rig.wallets.desk.request(req(address="", address_id=entry.id))
    with pytest.raises(WalletError, match="24 hours"):
        rig.wallets.desk.request(req())  # the same address typed in
    rig.clock.now_ns += ADDRESS_LOCK_NS
    row, token = rig.wallets.desk.request(req(address="", address_id=entry.id))
    assert row.address == TO
    conserved(rig)


def test_operator_approval_over_the_threshold(rig: Rig) -> None:
    fund(rig, 100_000 * USDT)
    row, token = rig.wallets.desk.request(req(amount=60_000 * USDT))  # threshold 50,000
    row = rig.wallets.desk.confirm(token)
    assert row.status == "Approval"
    assert rig.send().broadcast == []
    with pytest.raises(WalletError):
        rig.wallets.desk.approve(row.withdrawal_id, "")
    row = rig.wallets.desk.approve(row.withdrawal_id, "ops-anna")
    assert row.status == "Queued"
    assert rig.send().broadcast == [row.withdrawal_id]
    rig.mine(CONFIRMATIONS)
    rig.send()
    assert on_chain(rig, TO) == 60_000 * USDT
    conserved(rig)


def test_eth_withdrawal_and_gas(rig: Rig) -> None:
    fund(rig, 10 * 10**9, "Gwei")
    signer = rig.wallets.signers["eth"]
    hot_before = rig.rpc.balance(signer.hot_address)
    row, token = rig.wallets.desk.request(req(currency="Gwei", amount=10**9))
    rig.wallets.desk.confirm(token)
    rig.send()
    rig.mine(CONFIRMATIONS)
    rig.send()
    assert rig.rpc.balance(TO) == 10**18
    row = rig.wallets.desk.get(row.withdrawal_id)
    assert row.status == "Completed"
    gas = signer.gas_spent_wei(row.tx_hash)  # type: ignore[attr-defined]
    assert rig.rpc.balance(signer.hot_address) == hot_before - 10**18 - gas
    assert rig.fees("Gwei") == 3 * 10**6  # 0.003 ETH: more than this transfer's gas
    assert gas < 3 * 10**6 * 10**9


def test_a_reverted_transaction_is_refunded(rig: Rig) -> None:
    fund(rig)
    row, token = rig.wallets.desk.request(req())
    rig.wallets.desk.confirm(token)
    # the hot wallet's tokens vanish before the send: the transfer reverts on chain
    signer = rig.wallets.signers["eth"]
    sender = rig.wallets.senders["eth"]
    real_balance = signer.balance
    signer.balance = lambda currency, address: 10**30  # type: ignore[method-assign]
    hot = signer.hot_address
    drained = evm.sign_transfer(
        rig.hot_key, chain_id=rig.rpc.chain_id(), nonce=rig.rpc.nonce(hot), to=TO,
        amount=HOT_USDT, token=rig.token, fee_wei=evm.max_fee(rig.rpc),
    )  # fmt: skip
    evm.send_and_wait(rig.rpc, drained)
    sender.step()
    signer.balance = real_balance  # type: ignore[method-assign]
    report = sender.step()
    assert report.failed == [row.withdrawal_id]
    assert rig.wallets.desk.get(row.withdrawal_id).status == "Failed"
    assert rig.balance(ALICE, "USDt") == 1_000 * USDT  # refunded, fee included
    conserved(rig)


def test_a_dropped_transaction_whose_nonce_was_taken_is_refunded(rig: Rig) -> None:
    """The broadcast transfer leaves the node's mempool, and another transaction of the hot
    wallet is mined with its nonce: it can never be mined now, so the hold is released
    (WithdrawalCancel), once, and nothing reaches the address."""
    fund(rig)
    row, token = rig.wallets.desk.request(req())
    rig.wallets.desk.confirm(token)
    rig.rpc.call("evm_setAutomine", False)
    try:
        assert rig.send().broadcast == [row.withdrawal_id]
        sent = rig.wallets.desk.get(row.withdrawal_id)
        assert sent.status == "Broadcast"
        nonce = int(rig.rpc.call("eth_getTransactionByHash", sent.tx_hash)["nonce"], 16)
        rig.rpc.call("anvil_dropTransaction", sent.tx_hash)
        assert rig.rpc.call("eth_getTransactionByHash", sent.tx_hash) is None
        hot = rig.wallets.signers["eth"].hot_address
        assert rig.rpc.nonce(hot) == nonce
        other = evm.sign_transfer(
            rig.hot_key, chain_id=rig.rpc.chain_id(), nonce=nonce, to=hot, amount=1,
            token=None, fee_wei=evm.max_fee(rig.rpc),
        )  # fmt: skip
        rig.rpc.send_raw(other.raw)
        rig.rpc.call("evm_mine")
    finally:
        rig.rpc.call("evm_setAutomine", True)
    assert rig.rpc.nonce(hot) == nonce + 1  # the nonce is taken
    report = rig.send()
    assert report.failed == [row.withdrawal_id] and report.broadcast == []
    assert rig.wallets.desk.get(row.withdrawal_id).status == "Failed"
    assert rig.balance(ALICE, "USDt") == 1_000 * USDT  # amount and fee back
    assert rig.send().failed == []  # once
    rig.mine(CONFIRMATIONS)
    assert on_chain(rig, TO) == 0
    conserved(rig)


def test_a_withdrawal_racing_an_order_for_the_same_margin_is_refused(rig: Rig) -> None:
    """The order comes first in the sequencer and holds its margin: a withdrawal that needs
    that margin is a 400 that moves nothing; one within what is left goes through."""
    from perpetua.core.commands import IndexPrice, PlaceOrder
    from perpetua.core.enums import OrdType, Side

    fund(rig)
    rig.sequencer.execute(IndexPrice(0, ".BXBTT", 20_000, 1))
    rig.sequencer.execute(
        PlaceOrder(0, ALICE, "XBTUSDT", Side.BUY, 100_000, OrdType.LIMIT, price=38_000)
    )
    margin = rig.engine.state.accounts[ALICE].margin_required["USDt"]
    assert margin > 0
    before = rig.balance(ALICE, "USDt")
    with pytest.raises(WalletError, match="Insufficient available balance") as refused:
        rig.wallets.desk.request(req(amount=1_000 * USDT - FEE))
    assert refused.value.status == 400
    assert rig.balance(ALICE, "USDt") == before
    assert [w.status for w in rig.wallets.withdrawals(ALICE)] == ["Rejected"]
    row, _ = rig.wallets.desk.request(req(amount=1_000 * USDT - FEE - margin - 1))
    assert row.status == "Pending"
    conserved(rig)
