"""The Bitcoin Core adapter against recorded RPC answers (tests/chain/recorded/), and against a
real regtest node when ``bitcoind`` is on PATH (it is not on this project's machines: that
test is skipped here, and the docs say so)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpetua.chain.adapter import Asset, TxStatus
from perpetua.chain.bitcoin import (
    BitcoinSigner,
    BitcoinWatcher,
    btc_to_sats,
    is_valid_btc_address,
)
from perpetua.chain.rpc import JsonRpc, RpcError
from perpetua.services.mail import free_port

RECORDED = Path(__file__).parent / "recorded" / "bitcoin_core_27.json"
VPUB = (
    "vpub5YRRorZVvAATHuEEHuFw1sBdoTr86WAbRqErEmc37QW5GQdJ6QT2iARGALeCtcpVRmFdR1PQ4BFAuCNPy6Rv4"
    "tqSLNHpbaCNDAF4K549MT1"
)  # m/84'/1'/0' of the public test mnemonic "test ... junk"
XBT = Asset("XBt", None, 1)
ADDRESS_0 = "bcrt1qquv9lg5g2r4jkr0ahun0ddfg5xntxjelwjpnuw"
ADDRESS_7 = "bcrt1q769sksczmj4w0zwzxm9mxv5934nepg5vjyjsxh"
ADDRESS_8 = "bcrt1qcvtlsjudzj0lpk47fhlu0zncaepl672xfx2th2"


class Recorded:
    """Answers a call from the recording; an unrecorded call fails the test."""

    def __init__(self) -> None:
        self.answers = json.loads(RECORDED.read_text())
        self.calls: list[str] = []

    def __call__(self, method: str, *params: Any) -> Any:
        key = f"{method} {json.dumps(list(params))}"
        self.calls.append(key)
        answer = self.answers.get(key)
        if answer is None:
            raise AssertionError(f"no recorded answer for {key}")
        if "error" in answer:
            raise RpcError(answer["error"]["code"], answer["error"]["message"])
        return answer["result"]


def test_addresses_are_bip84_from_the_public_key_and_checked() -> None:
    watcher = BitcoinWatcher("btc", Recorded(), VPUB, XBT, chain="regtest")
    assert watcher.deposit_address(0) == ADDRESS_0
    assert watcher.deposit_address(7) == ADDRESS_7
    assert watcher.is_valid_address(ADDRESS_7)
    assert not watcher.is_valid_address(ADDRESS_7[:-1] + "q")  # checksum
    assert not watcher.is_valid_address("0x000000000000000000000000000000000000dEaD")
    assert is_valid_btc_address("bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh")
    assert is_valid_btc_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    assert is_valid_btc_address("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy")
    assert not is_valid_btc_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb")
    assert not is_valid_btc_address("bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh", "regtest")


def test_transfers_to_watched_addresses_in_satoshis() -> None:
    watcher = BitcoinWatcher("btc", Recorded(), VPUB, XBT, chain="regtest")
    assert watcher.head() == 102
    assert watcher.block_ref(103) is None  # above the tip
    found = watcher.transfers(101, 103, frozenset({ADDRESS_7, ADDRESS_8}))
    assert [(t.block.number, t.tx[-1], t.log_index, t.to_address, t.amount) for t in found] == [
        (101, "2", 0, ADDRESS_7, 12_345_678),
        (102, "3", 1, ADDRESS_8, 100_000),
    ]
    assert watcher.fee_rate_btc_per_kvb() == Decimal("0.00012")


def test_signer_builds_signs_without_sending_then_broadcasts_idempotently() -> None:
    node = Recorded()
    signer = BitcoinSigner("btc", node, ADDRESS_0, XBT)
    signed = signer.sign("XBt", ADDRESS_8, 25_000_000, signer.next_nonce())
    assert signed.tx_hash.startswith("beef") and signed.raw.endswith("signed")
    assert not any(call.startswith("sendrawtransaction") for call in node.calls)
    signer.broadcast(signed.raw)  # already in the chain: done, not an error
    state = signer.state(signed.tx_hash)
    assert (state.status, state.block_number, state.confirmations) == (TxStatus.MINED, 100, 3)
    # from the node's wallet, never getrawtransaction (which needs -txindex for mined ones)
    assert not any(call.startswith("getrawtransaction") for call in node.calls)
    assert signer.state("dead" + "0" * 59 + "5").status == TxStatus.UNKNOWN  # never sent
    assert signer.state("cafe" + "0" * 59 + "6").status == TxStatus.PENDING  # in the mempool
    evicted = signer.state("cafe" + "0" * 59 + "7")
    assert evicted.status == TxStatus.UNKNOWN  # unconfirmed, out of the mempool: send again
    conflicted = signer.state("cafe" + "0" * 59 + "8")
    assert conflicted.status == TxStatus.FAILED  # its inputs spent by another: refund
    assert signer.balance("XBt", ADDRESS_0) == 1_250_000_000


def test_amounts_are_exact() -> None:
    assert btc_to_sats(0.1) == 10_000_000
    assert btc_to_sats("20999999.97690000") == 2_099_999_997_690_000
    with pytest.raises(ValueError):
        btc_to_sats("0.000000001")


@pytest.fixture
def regtest(tmp_path: Path) -> Iterator[JsonRpc]:
    if shutil.which("bitcoind") is None:
        pytest.skip("bitcoind is not on PATH (none can be installed on this project's machines)")
    port = free_port()
    process = subprocess.Popen(
        [
            "bitcoind",
            "-regtest",
            f"-datadir={tmp_path}",
            f"-rpcport={port}",
            "-port=0",
            "-listen=0",
            "-rpcuser=perpetua",
            "-rpcpassword=regtest",
            "-fallbackfee=0.0001",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rpc = JsonRpc(f"http://perpetua:regtest@127.0.0.1:{port}")
    try:
        for _ in range(300):
            try:
                rpc.call("getblockcount")
                break
            except Exception:
                time.sleep(0.1)
        rpc.call("createwallet", "hot")
        yield rpc
    finally:
        rpc.close()
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_regtest_deposit_and_withdrawal(regtest: JsonRpc) -> None:
    assert os.environ.get("PATH")
    watcher = BitcoinWatcher("btc", regtest.call, VPUB, XBT, chain="regtest")
    hot = regtest.call("getnewaddress", "", "bech32")
    regtest.call("generatetoaddress", 101, hot)
    deposit = watcher.deposit_address(7)
    txid = regtest.call("sendtoaddress", deposit, 0.5)
    regtest.call("generatetoaddress", 1, hot)
    head = watcher.head()
    found = watcher.transfers(head, head, frozenset({deposit.lower()}))
    assert [(t.tx, t.amount) for t in found] == [(txid, 50_000_000)]
    signer = BitcoinSigner("btc", regtest.call, hot, XBT)
    signed = signer.sign("XBt", ADDRESS_8, 1_000_000, 0)
    assert signer.state(signed.tx_hash).status == TxStatus.UNKNOWN  # recorded, not sent
    signer.broadcast(signed.raw)
    signer.broadcast(signed.raw)  # again: harmless
    assert signer.state(signed.tx_hash).status == TxStatus.PENDING
    regtest.call("generatetoaddress", 3, hot)
    # no -txindex on this node: the state comes from the wallet, as on an operator's node
    state = signer.state(signed.tx_hash)
    tip = watcher.head()
    assert (state.status, state.block_number, state.confirmations) == (
        TxStatus.MINED, tip - 2, 3,
    )  # fmt: skip
    landed = watcher.transfers(tip - 2, tip - 2, frozenset({ADDRESS_8.lower()}))
    assert [(t.tx, t.amount) for t in landed] == [(signed.tx_hash, 1_000_000)]
    assert watcher.fee_rate_btc_per_kvb() > 0
