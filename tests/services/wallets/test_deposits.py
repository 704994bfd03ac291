"""Deposits on a real anvil chain: ETH and the ERC-20 credited once, after N confirmations,
idempotent; below the minimum never; a paused network holds and credits on resume; a reorg
(evm_snapshot / evm_revert, then a different chain mined) reverses a credited deposit."""

from __future__ import annotations

import pytest

from perpetua.core.ledger import EXTERNAL
from tests.services.wallets.rig import CONFIRMATIONS, ETH, Rig

pytestmark = pytest.mark.slow  # a real anvil per test

ALICE = 7
BOB = 8


def test_eth_and_usdt_credited_after_confirmations(rig: Rig) -> None:
    address = rig.wallets.book.deposit_address(ALICE, "Gwei", "eth")
    assert rig.wallets.book.deposit_address(ALICE, "USDt", "eth") == address  # one per network
    assert rig.wallets.book.deposit_address(BOB, "Gwei", "eth") != address
    rig.follow()
    rig.pay(address, 2 * ETH + 123, None)  # dust below 1 Gwei stays on chain
    rig.pay(address, 250 * 10**6, rig.token)
    report = rig.follow()
    assert report.seen == 2 and report.credited == []
    assert {d.status for d in rig.wallets.deposits(ALICE)} == {"Pending"}
    assert rig.balance(ALICE, "Gwei") == 0
    rig.mine(CONFIRMATIONS - 2)  # the later deposit's block + CONFIRMATIONS - 2 on top
    assert rig.follow().credited == [
        next(d.id for d in rig.wallets.deposits() if d.currency == "Gwei")
    ]
    rig.mine(1)
    assert len(rig.follow().credited) == 1
    assert rig.balance(ALICE, "Gwei") == 2 * 10**9
    assert rig.balance(ALICE, "USDt") == 250 * 10**6
    assert {d.status for d in rig.wallets.deposits(ALICE)} == {"Credited"}
    rig.mine(5)
    assert rig.follow().credited == []  # never twice
    assert rig.balance(ALICE, "USDt") == 250 * 10**6
    assert rig.external("USDt") == 250 * 10**6


def test_a_crash_between_credit_and_row_is_repaired(rig: Rig) -> None:
    address = rig.wallets.book.deposit_address(ALICE, "USDt", "eth")
    rig.follow()
    rig.pay(address, 10 * 10**6, rig.token)
    rig.mine(CONFIRMATIONS)
    rig.follow()
    # as if the process died after the core's Deposit and before the row's update
    from sqlalchemy import update

    from perpetua.store.schema import chain_deposits

    with rig.wallets.engine.begin() as conn:
        conn.execute(update(chain_deposits).values(status="Pending", credits=0))
    assert len(rig.follow().credited) == 1  # the core answers "duplicate": nothing moves
    assert rig.balance(ALICE, "USDt") == 10 * 10**6


def test_below_minimum_is_never_credited(rig: Rig) -> None:
    address = rig.wallets.book.deposit_address(ALICE, "USDt", "eth")
    rig.follow()
    rig.pay(address, 999_999, rig.token)  # minimum 1 USDT
    rig.mine(CONFIRMATIONS + 1)
    rig.follow()
    assert [d.status for d in rig.wallets.deposits(ALICE)] == ["BelowMinimum"]
    assert rig.balance(ALICE, "USDt") == 0


def test_paused_network_holds_and_credits_on_resume(rig: Rig) -> None:
    address = rig.wallets.book.deposit_address(ALICE, "USDt", "eth")
    rig.follow()
    rig.wallets.set_state("eth", deposits=False, withdrawals=None)
    rig.pay(address, 5 * 10**6, rig.token)
    rig.mine(CONFIRMATIONS)
    rig.follow()
    assert [d.status for d in rig.wallets.deposits(ALICE)] == ["Held"]
    assert rig.balance(ALICE, "USDt") == 0
    rig.wallets.set_state("eth", deposits=True, withdrawals=None)
    rig.follow()
    assert [d.status for d in rig.wallets.deposits(ALICE)] == ["Credited"]
    assert rig.balance(ALICE, "USDt") == 5 * 10**6


def test_reorg_reverses_a_credited_deposit(rig: Rig) -> None:
    address = rig.wallets.book.deposit_address(ALICE, "USDt", "eth")
    rig.follow()
    snapshot = rig.rpc.call("evm_snapshot")
    rig.pay(address, 40 * 10**6, rig.token)
    rig.mine(CONFIRMATIONS)
    assert len(rig.follow().credited) == 1
    assert rig.balance(ALICE, "USDt") == 40 * 10**6
    head_before = rig.rpc.block_number()
    # the chain reorganises: back to before the deposit, then a longer chain without it
    assert rig.rpc.call("evm_revert", snapshot) is True
    rig.rpc.call("evm_setNextBlockTimestamp", hex(2_000_000_000))
    rig.mine(CONFIRMATIONS + 3)
    assert rig.rpc.block_number() > head_before
    report = rig.follow()
    assert report.reorg_depth > 0
    assert len(report.reversed) == 1
    assert [d.status for d in rig.wallets.deposits(ALICE)] == ["Reversed"]
    assert rig.balance(ALICE, "USDt") == 0
    assert rig.external("USDt") == 0  # the ledger is whole again
    assert rig.engine.state.ledger.balance(EXTERNAL, "USDt") == 0


def test_reorg_after_spending_takes_the_rest_from_insurance(rig: Rig) -> None:
    from perpetua.core.commands import WithdrawalRequest
    from perpetua.core.ledger import INSURANCE

    address = rig.wallets.book.deposit_address(ALICE, "USDt", "eth")
    rig.follow()
    snapshot = rig.rpc.call("evm_snapshot")
    rig.pay(address, 40 * 10**6, rig.token)
    rig.mine(CONFIRMATIONS)
    rig.follow()
    rig.sequencer.execute(WithdrawalRequest(0, ALICE, "USDt", 30 * 10**6, 0, "spent"))
    insurance = rig.engine.state.ledger.balance(INSURANCE, "USDt")
    rig.rpc.call("evm_revert", snapshot)
    rig.rpc.call("evm_setNextBlockTimestamp", hex(2_000_000_000))
    rig.mine(CONFIRMATIONS + 3)
    rig.follow()
    assert rig.balance(ALICE, "USDt") == 0
    assert rig.engine.state.ledger.balance(INSURANCE, "USDt") == insurance - 30 * 10**6
