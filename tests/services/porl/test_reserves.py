"""Reserves on a real anvil node: balances read at the proof's block, EIP-191 signatures by the
server's keys and an imported offline signature for the cold address all verify; a wrong
address, a wrong height, a changed balance or a signature over another height fail; the solvency
report sets the reserves against the liabilities at the same height."""

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from perpetua.chain import evm
from perpetua.chain.anvil import DEV_FUNDER_ADDRESS, DEV_FUNDER_KEY
from perpetua.chain.rpc import JsonRpc
from perpetua.cli import main
from perpetua.sequencer.liabilities import Liabilities
from perpetua.services.porl.reserves import (
    EvmReserveChain,
    LocalKeySigner,
    ReserveAddress,
    SignatureBook,
    block_date,
    build_reserves,
    reserve_message,
    verify_reserves,
)
from perpetua.services.porl.service import ProofService, Reserves
from perpetua.services.server_key import load_server_key

pytestmark = pytest.mark.slow  # a real anvil process

ETH = 10**18
VENUE = "perpetua-test"


class Book:
    def __init__(self, entries: list[ReserveAddress]) -> None:
        self.entries = entries

    def reserve_addresses(self) -> list[ReserveAddress]:
        return self.entries


def pay(rpc: JsonRpc, key: str, to: str, wei: int) -> None:
    sender = Account.from_key(key).address
    signed = evm.sign_transfer(
        key, chain_id=rpc.chain_id(), nonce=rpc.nonce(sender), to=to, amount=wei, token=None,
        fee_wei=evm.max_fee(rpc),
    )  # fmt: skip
    evm.send_and_wait(rpc, signed)


def offline_sign(key: str, message: str) -> str:
    signature: bytes = Account.sign_message(encode_defunct(text=message), private_key=key).signature
    return "0x" + signature.hex().removeprefix("0x")


@pytest.fixture
def wallets(anvil_rpc: JsonRpc, usdt: str):  # type: ignore[no-untyped-def]
    hot, deposit, cold = (Account.create() for _ in range(3))
    for account, wei in ((hot, 5 * ETH), (deposit, 3 * ETH // 2 + 7), (cold, 10 * ETH)):
        pay(anvil_rpc, DEV_FUNDER_KEY, account.address, wei)
    height = anvil_rpc.block_number()
    # after the proof's block the hot wallet pays out; the proof must still see 5 ETH
    pay(anvil_rpc, hot.key.hex(), DEV_FUNDER_ADDRESS, 2 * ETH)
    assert anvil_rpc.balance(hot.address) < 3 * ETH
    entries = [
        ReserveAddress(hot.address, "hot", "Gwei"),
        ReserveAddress(deposit.address, "deposit", "Gwei"),
        ReserveAddress(cold.address, "cold", "Gwei"),
        ReserveAddress(DEV_FUNDER_ADDRESS, "hot", "USDt"),
    ]
    signer = LocalKeySigner([hot.key.hex(), deposit.key.hex(), DEV_FUNDER_KEY])
    chain = EvmReserveChain(anvil_rpc, {"USDt": usdt})
    return entries, signer, chain, cold, height


def cold_signature(chain: EvmReserveChain, cold, height: int) -> str:  # type: ignore[no-untyped-def]
    _, timestamp_s = chain.block_header(height)
    message = reserve_message(VENUE, chain.chain_id(), height, block_date(timestamp_s))
    return offline_sign(cold.key.hex(), message), message  # type: ignore[return-value]


def test_signed_reserves_at_the_block_verify(wallets, tmp_path: Path, anvil) -> None:  # type: ignore[no-untyped-def]
    entries, signer, chain, cold, height = wallets
    signature, message = cold_signature(chain, cold, height)
    book = SignatureBook(tmp_path)
    with pytest.raises(ValueError):  # the hot key's signature is not the cold address's
        book.add(height, cold.address, signer.sign(entries[0].address, message), message)
    book.add(height, cold.address, signature, message)
    document = build_reserves(VENUE, height, entries, chain, signer, book.signatures(height))
    assert document["totals"] == {
        "Gwei": 5 * 10**9 + 15 * 10**8 + 10 * 10**9,  # wei // 1e9: the 7 wei round away
        "USDt": 1_000_000 * 10**6,
    }
    assert document["unsigned"] == {}
    assert verify_reserves(document, chain) == []

    path = tmp_path / "reserves.json"
    path.write_text(json.dumps(document))
    argv = ["verify-reserves", "--reserves", str(path), "--rpc", anvil.url]
    assert main([*argv, "--token", f"USDt={chain._tokens['USDt']}"]) == 0
    assert main(argv) == 1  # without the token's contract its balances cannot be read


def test_a_wrong_address_height_balance_or_signature_fails(wallets) -> None:  # type: ignore[no-untyped-def]
    entries, signer, chain, cold, height = wallets
    signature, _ = cold_signature(chain, cold, height)
    document = build_reserves(
        VENUE, height, entries, chain, signer, {cold.address.lower(): signature}
    )
    assert verify_reserves(document, chain) == []

    wrong_address = json.loads(json.dumps(document))
    wrong_address["addresses"][2]["address"] = Account.create().address
    assert any("not by this address" in p for p in verify_reserves(wrong_address, chain))

    for other in (height - 1, height + 1):
        wrong_height = json.loads(json.dumps(document))
        wrong_height["height"] = other
        problems = verify_reserves(wrong_height, chain)
        assert any("block" in p for p in problems) and any("message" in p for p in problems)

    changed = json.loads(json.dumps(document))
    changed["addresses"][0]["balance"] += 1
    changed["totals"]["Gwei"] += 1
    assert any("claimed" in p for p in verify_reserves(changed, chain))

    stale, _ = cold_signature(chain, cold, height - 1)  # signed for another height
    unsigned = build_reserves(VENUE, height, entries, chain, signer, {cold.address.lower(): stale})
    assert unsigned["addresses"][2]["signature"] is None
    assert unsigned["unsigned"] == {"Gwei": 10 * 10**9}
    assert unsigned["totals"]["Gwei"] == 5 * 10**9 + 15 * 10**8
    forged = json.loads(json.dumps(unsigned))
    forged["addresses"][2]["signature"] = stale
    forged["totals"]["Gwei"] += 10 * 10**9
    assert any("not by this address" in p for p in verify_reserves(forged, chain))


class NoSnapshots:
    def request_snapshot(self):  # type: ignore[no-untyped-def]
        raise AssertionError("publish() is given its liabilities")


def test_the_solvency_report_sits_beside_the_proofs(wallets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    entries, signer, chain, cold, height = wallets
    service = ProofService(
        tmp_path,
        load_server_key(tmp_path),
        NoSnapshots(),
        venue=VENUE,
        reserves=Reserves(Book(entries), chain, signer),
    )
    owed = {"Gwei": {1: 12 * 10**9, 2: 4 * 10**9}, "XBt": {1: 5}}
    liabilities = Liabilities(77, 1_700_000_000 * 10**9, owed, {"Gwei": {3: -9}}, {})
    manifest = service.publish(liabilities, height)
    published = service.publication.root / str(height)
    solvency = json.loads((published / manifest["solvency"]).read_bytes())
    rows = {row["currency"]: row for row in solvency["currencies"]}
    assert rows["Gwei"] == {
        "currency": "Gwei",
        "reserves": 65 * 10**8,  # the cold address is not signed: not counted
        "liabilities": 16 * 10**9,
        "ratio": "0.406250",
        "difference": 65 * 10**8 - 16 * 10**9,
        "negativeEquity": -9,
        "pendingWithdrawals": 0,
    }
    assert rows["XBt"]["reserves"] == 0 and rows["XBt"]["ratio"] == "0.000000"
    assert rows["USDt"]["liabilities"] == 0 and rows["USDt"]["ratio"] is None
    reserves = json.loads((published / manifest["reserves"]).read_bytes())
    assert verify_reserves(reserves, chain) == []
    with pytest.raises(ValueError, match="published already"):
        service.publish(liabilities, height)
