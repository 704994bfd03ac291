"""The wallets' addresses as reserves on a real anvil: hot (keystore key), deposit addresses
(keys derived from the deposit seed at their derivation index) and cold (offline) are listed
per currency; the server signs hot and deposit addresses, the cold one waits for the operator;
the document verifies against the node."""

from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import insert

from perpetua.chain.anvil import DEV_FUNDER_KEY
from perpetua.chain.keys import eth_account_xpub, eth_receive_address, new_mnemonic
from perpetua.chain.rpc import JsonRpc
from perpetua.services.porl.reserves import EvmReserveChain, build_reserves, verify_reserves
from perpetua.services.porl.wallet_reserves import WalletReserves
from perpetua.store import default_url, migrate, open_engine
from perpetua.store.schema import wallet_addresses
from tests.services.porl.test_reserves import ETH, pay

pytestmark = pytest.mark.slow  # a real anvil process


def test_wallet_addresses_sign_and_verify(tmp_path: Path, anvil_rpc: JsonRpc, usdt: str) -> None:
    url = default_url(tmp_path)
    migrate(url)
    engine = open_engine(url)
    mnemonic = new_mnemonic()
    xpub = eth_account_xpub(mnemonic)
    deposits = {account: eth_receive_address(xpub, account) for account in (1001, 1002)}
    with engine.begin() as conn:
        for account, address in deposits.items():
            conn.execute(insert(wallet_addresses).values(
                account=account, network="eth", address=address, derivation_index=account,
                created_ns=1,
            ))  # fmt: skip
    hot, cold = Account.create(), Account.create()
    pay(anvil_rpc, DEV_FUNDER_KEY, hot.address, 3 * ETH)
    pay(anvil_rpc, DEV_FUNDER_KEY, deposits[1002], ETH // 4)
    pay(anvil_rpc, DEV_FUNDER_KEY, cold.address, 9 * ETH)
    height = anvil_rpc.block_number()
    chain = EvmReserveChain(anvil_rpc, {"USDt": usdt})

    wallets = WalletReserves(
        engine, "eth", ["Gwei", "USDt"], hot_key=hot.key.hex(), cold_address=cold.address,
        deposit_mnemonic=mnemonic,
    )  # fmt: skip
    listed = wallets.reserve_addresses()
    assert [(e.address, e.kind) for e in listed[::2]] == [
        (hot.address, "hot"), (deposits[1001], "deposit"), (deposits[1002], "deposit"),
        (cold.address, "cold"),
    ]  # fmt: skip
    assert {e.currency for e in listed} == {"Gwei", "USDt"} and len(listed) == 8
    document = build_reserves("perpetua", height, listed, chain, wallets, {})
    assert document["totals"] == {"Gwei": 3 * 10**9 + 25 * 10**7, "USDt": 0}
    assert document["unsigned"] == {"Gwei": 9 * 10**9, "USDt": 0}
    assert verify_reserves(document, chain) == []

    watching = WalletReserves(engine, "eth", ["Gwei"], hot_key=hot.key.hex())  # no seed here
    assert watching.sign(deposits[1002], "x") is None and watching.sign(hot.address, "x")
    engine.dispose()
