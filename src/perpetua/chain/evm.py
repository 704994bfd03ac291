"""Ethereum transactions and the ERC-20 calls the wallets need, signed locally with eth-account.

Invariants:
1. Keys never leave this process through here: transactions are signed locally
   (``sign_transfer``) and sent raw; the node's own accounts (eth_sendTransaction) are not used.
2. Addresses are EIP-55 checksummed on the way out (``checksum``); ``is_valid_address`` accepts
   an all-lower or all-upper hex address, or a mixed-case one only when its checksum is right.
3. Amounts are ints in the chain's smallest unit (wei, or the token's base unit).
4. Transactions are EIP-1559 (type 2) with ``GAS_ETH_TRANSFER`` / ``GAS_TOKEN_TRANSFER`` limits
   and a max fee of twice the node's current gas price (``max_fee``); the exchange's network fee
   to users is a separate, configured number (the fee model), not this.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode, encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import is_checksum_address, to_checksum_address
from eth_utils.crypto import keccak

from perpetua.chain.rpc import JsonRpc, RpcError

__all__ = [
    "TRANSFER_TOPIC",
    "Account",
    "SignedTx",
    "address_of",
    "address_topic",
    "checksum",
    "deploy",
    "is_valid_address",
    "load_artifact",
    "max_fee",
    "mint",
    "personal_sign",
    "personal_signer",
    "send_and_wait",
    "sign",
    "sign_transfer",
    "token_balance",
    "topic_address",
    "transfer_data",
    "wait_receipt",
]

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
GAS_ETH_TRANSFER = 21_000
GAS_TOKEN_TRANSFER = 100_000
GAS_DEPLOY = 3_000_000
RECEIPT_TIMEOUT_S = 30.0
RECEIPT_POLL_S = 0.05
WEI_PER_GWEI = 1_000_000_000
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
_SELECTOR_TRANSFER = keccak(text="transfer(address,uint256)")[:4]
_SELECTOR_MINT = keccak(text="mint(address,uint256)")[:4]
_SELECTOR_BALANCE_OF = keccak(text="balanceOf(address)")[:4]


def checksum(address: str) -> str:
    return str(to_checksum_address(address))


def is_valid_address(address: str) -> bool:
    """Invariant 2: 0x and 40 hex digits; mixed case must carry a correct EIP-55 checksum."""
    if not isinstance(address, str) or len(address) != 42 or not address.startswith("0x"):
        return False
    body = address[2:]
    if any(c not in "0123456789abcdefABCDEF" for c in body):
        return False
    if body == body.lower() or body == body.upper():
        return True
    return bool(is_checksum_address(address))


def address_of(key: str) -> str:
    """The checksummed address of a private key (hex)."""
    return str(Account.from_key(key).address)


def personal_sign(message: str, key: str) -> str:
    """EIP-191 ``personal_sign`` of a text message: the 65-byte signature as 0x-hex."""
    signed = Account.sign_message(encode_defunct(text=message), private_key=key)
    return "0x" + bytes(signed.signature).hex().removeprefix("0x")


def personal_signer(message: str, signature: str) -> str:
    """The checksummed address that made an EIP-191 signature of ``message``."""
    return str(Account.recover_message(encode_defunct(text=message), signature=signature))


def address_topic(address: str) -> str:
    """An address as a 32-byte log topic (indexed address argument)."""
    return "0x" + "0" * 24 + address[2:].lower()


def topic_address(topic: str) -> str:
    return checksum("0x" + topic[-40:])


def transfer_data(to: str, amount: int) -> str:
    return "0x" + (_SELECTOR_TRANSFER + encode(["address", "uint256"], [to, amount])).hex()


def mint_data(to: str, amount: int) -> str:
    return "0x" + (_SELECTOR_MINT + encode(["address", "uint256"], [to, amount])).hex()


def token_balance(rpc: JsonRpc, token: str, holder: str) -> int:
    data = "0x" + (_SELECTOR_BALANCE_OF + encode(["address"], [holder])).hex()
    raw = rpc.eth_call(token, data)
    (value,) = decode(["uint256"], bytes.fromhex(raw[2:]))
    return int(value)


def max_fee(rpc: JsonRpc) -> int:
    return 2 * rpc.gas_price() + WEI_PER_GWEI


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction, ready to broadcast; ``tx_hash`` is known before it is sent."""

    tx_hash: str
    raw: str
    nonce: int
    sender: str


def sign(
    key: str,
    *,
    chain_id: int,
    nonce: int,
    to: str | None,
    value: int,
    data: str,
    gas: int,
    max_fee_wei: int,
) -> SignedTx:
    account = Account.from_key(key)
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "value": value,
        "data": data,
        "gas": gas,
        "maxFeePerGas": max_fee_wei,
        "maxPriorityFeePerGas": WEI_PER_GWEI,
    }
    if to is not None:
        tx["to"] = checksum(to)
    signed = account.sign_transaction(tx)
    return SignedTx(
        "0x" + bytes(signed.hash).hex(),
        "0x" + bytes(signed.raw_transaction).hex(),
        nonce,
        checksum(account.address),
    )


def sign_transfer(
    key: str, *, chain_id: int, nonce: int, to: str, amount: int, token: str | None, fee_wei: int
) -> SignedTx:
    """ETH (``token`` None) or an ERC-20 transfer of ``amount`` base units to ``to``."""
    if token is None:
        return sign(
            key, chain_id=chain_id, nonce=nonce, to=to, value=amount, data="0x",
            gas=GAS_ETH_TRANSFER, max_fee_wei=fee_wei,
        )  # fmt: skip
    return sign(
        key, chain_id=chain_id, nonce=nonce, to=token, value=0, data=transfer_data(to, amount),
        gas=GAS_TOKEN_TRANSFER, max_fee_wei=fee_wei,
    )  # fmt: skip


def wait_receipt(
    rpc: JsonRpc, tx_hash: str, timeout_s: float = RECEIPT_TIMEOUT_S
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        receipt = rpc.receipt(tx_hash)
        if receipt is not None:
            return receipt
        time.sleep(RECEIPT_POLL_S)
    raise TimeoutError(f"no receipt for {tx_hash} within {timeout_s} s")


def send_and_wait(rpc: JsonRpc, signed: SignedTx) -> dict[str, Any]:
    rpc.send_raw(signed.raw)
    receipt = wait_receipt(rpc, signed.tx_hash)
    if int(receipt["status"], 16) != 1:
        raise RpcError(0, f"transaction {signed.tx_hash} reverted")
    return receipt


def load_artifact(name: str) -> dict[str, Any]:
    """A compiled contract committed under chain/contracts (``make contracts`` builds it)."""
    artifact: dict[str, Any] = json.loads((CONTRACTS_DIR / f"{name}.json").read_text())
    return artifact


def deploy(rpc: JsonRpc, key: str, artifact_name: str = "TetherUSD") -> str:
    """Deploys a committed contract from ``key``'s account; returns its checksummed address."""
    artifact = load_artifact(artifact_name)
    sender = checksum(Account.from_key(key).address)
    signed = sign(
        key, chain_id=rpc.chain_id(), nonce=rpc.nonce(sender), to=None, value=0,
        data=artifact["bytecode"], gas=GAS_DEPLOY, max_fee_wei=max_fee(rpc),
    )  # fmt: skip
    receipt = send_and_wait(rpc, signed)
    address = receipt.get("contractAddress")
    if not address:
        raise RpcError(0, "deployment receipt without a contract address")
    return checksum(address)


def mint(rpc: JsonRpc, key: str, token: str, to: str, amount: int) -> str:
    """Mints test tokens (the deployer is the only minter); returns the tx hash once mined."""
    sender = checksum(Account.from_key(key).address)
    signed = sign(
        key, chain_id=rpc.chain_id(), nonce=rpc.nonce(sender), to=token, value=0,
        data=mint_data(to, amount), gas=GAS_TOKEN_TRANSFER, max_fee_wei=max_fee(rpc),
    )  # fmt: skip
    send_and_wait(rpc, signed)
    return signed.tx_hash
