"""Sweeps on a real anvil chain: credited deposits move from their deposit addresses to the
hot wallet (a token sweep first gets its gas from the hot wallet), the hot wallet's excess
over its ceiling goes to the cold address, and user balances do not move."""

from __future__ import annotations

import pytest
from eth_account import Account

from perpetua.chain import evm
from perpetua.chain.ethereum import EthereumSweeper
from perpetua.chain.keys import eth_private_key
from perpetua.services.wallets.sweeps import Sweeps
from tests.services.wallets.rig import CONFIRMATIONS, ETH, HOT_USDT, Rig

pytestmark = pytest.mark.slow  # a real anvil per test

ALICE = 7
USDT = 10**6
COLD = evm.checksum(Account.create().address)  # its key is thrown away here


def test_deposits_swept_to_hot_and_excess_to_cold(rig: Rig) -> None:
    signer = rig.wallets.signers["eth"]
    assets = {c: r.asset for c, r in rig.wallets.networks["eth"].assets.items()}
    sweeper = EthereumSweeper(
        rig.rpc, rig.hot_key, lambda index: eth_private_key(rig.mnemonic, index), assets, COLD,
        hot_max={"USDt": HOT_USDT}, sweep_min={"USDt": USDT, "Gwei": 10**6},
    )  # fmt: skip
    sweeps = Sweeps("eth", sweeper, rig.wallets.engine)
    address = rig.wallets.book.deposit_address(ALICE, "USDt", "eth")
    rig.follow()
    rig.pay(address, 300 * USDT, rig.token)
    rig.pay(address, 2 * ETH, None)
    assert sweeps.step() == []  # nothing credited yet
    rig.mine(CONFIRMATIONS)
    rig.follow()
    hot_eth = rig.rpc.balance(signer.hot_address)
    sent = sweeps.step()
    assert len(sent) == 3  # gas top-up, the tokens, the ether
    assert evm.token_balance(rig.rpc, rig.token, address) == 0
    assert rig.rpc.balance(address) < 10**15  # what the last transfer's gas left
    assert rig.rpc.balance(signer.hot_address) > hot_eth + ETH
    assert evm.token_balance(rig.rpc, rig.token, COLD) == 300 * USDT  # hot was at its ceiling
    assert evm.token_balance(rig.rpc, rig.token, signer.hot_address) == HOT_USDT
    assert rig.balance(ALICE, "USDt") == 300 * USDT  # the ledger does not move
    assert sweeps.step() == []  # once
    assert address in rig.wallets.reserve_addresses("eth")
