"""The Ethereum network module: ETH and ERC-20 tokens over JSON-RPC (``adapter`` ports).

Watching (``EthereumWatcher``, no key): native transfers are found in full blocks (a
transaction's ``to`` is a watched address, value > 0, receipt status 1); token transfers in the
token contract's ``Transfer`` logs, filtered locally by recipient, so any number of watched
addresses costs one ``eth_getLogs`` per range. ETH sent by a contract's internal call is not
seen (the operator credits it by hand). Blocks are read in batches of ``BLOCKS_PER_BATCH``.

Signing (``EthereumSigner``, the hot key): EIP-1559 transactions signed locally; ``broadcast``
tolerates a node that already has the same bytes (sending twice the same signed transaction
cannot pay twice: one hash, one nonce).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eth_account import Account
from eth_utils.crypto import keccak

from perpetua.chain import evm
from perpetua.chain.adapter import (
    Asset,
    BlockRef,
    ChainTransfer,
    SignedWithdrawal,
    TxState,
    TxStatus,
)
from perpetua.chain.keys import eth_receive_address
from perpetua.chain.rpc import JsonRpc, RpcError, quantity

__all__ = ["BLOCKS_PER_BATCH", "EthereumSigner", "EthereumSweeper", "EthereumWatcher"]

BLOCKS_PER_BATCH = 50
WEI_PER_GWEI = 10**9


class EthereumWatcher:
    def __init__(self, network: str, rpc: JsonRpc, xpub: str, assets: Mapping[str, Asset]) -> None:
        self._network = network
        self.rpc = rpc
        self.xpub = xpub
        self.assets = dict(assets)
        self._native = next((a for a in assets.values() if a.token is None), None)
        self._tokens = {a.token.lower(): a for a in assets.values() if a.token is not None}

    @property
    def network(self) -> str:
        return self._network

    def deposit_address(self, index: int) -> str:
        return eth_receive_address(self.xpub, index)

    def is_valid_address(self, address: str) -> bool:
        return evm.is_valid_address(address)

    def head(self) -> int:
        return self.rpc.block_number()

    def block_ref(self, number: int) -> BlockRef | None:
        block = self.rpc.block(number, full=False)
        return None if block is None else BlockRef(number, str(block["hash"]))

    def transfers(self, first: int, last: int, watched: frozenset[str]) -> list[ChainTransfer]:
        found: list[ChainTransfer] = []
        if last < first or not watched:
            return found
        if self._native is not None:
            found += self._native_transfers(first, last, watched, self._native)
        for token, asset in self._tokens.items():
            found += self._token_transfers(first, last, watched, token, asset)
        found.sort(key=lambda t: (t.block.number, t.log_index, t.tx))
        return found

    def _native_transfers(
        self, first: int, last: int, watched: frozenset[str], asset: Asset
    ) -> list[ChainTransfer]:
        candidates: list[tuple[BlockRef, dict[str, Any]]] = []
        for start in range(first, last + 1, BLOCKS_PER_BATCH):
            numbers = range(start, min(last, start + BLOCKS_PER_BATCH - 1) + 1)
            blocks = self.rpc.batch([("eth_getBlockByNumber", (hex(n), True)) for n in numbers])
            for number, block in zip(numbers, blocks, strict=True):
                if block is None:
                    continue
                ref = BlockRef(number, str(block["hash"]))
                for tx in block["transactions"]:
                    to = tx.get("to")
                    if to and to.lower() in watched and quantity(tx["value"]) > 0:
                        candidates.append((ref, tx))
        if not candidates:
            return []
        receipts = self.rpc.batch(
            [("eth_getTransactionReceipt", (tx["hash"],)) for _, tx in candidates]
        )
        out = []
        for (ref, tx), receipt in zip(candidates, receipts, strict=True):
            if receipt is None or quantity(receipt["status"]) != 1:
                continue
            amount = quantity(tx["value"]) // asset.base_per_minor
            if amount > 0:
                to = evm.checksum(tx["to"])
                out.append(ChainTransfer(asset.currency, str(tx["hash"]), -1, ref, to, amount))
        return out

    def _token_transfers(
        self, first: int, last: int, watched: frozenset[str], token: str, asset: Asset
    ) -> list[ChainTransfer]:
        out = []
        for log in self.rpc.logs(first, last, token, [evm.TRANSFER_TOPIC]):
            topics = log.get("topics") or []
            if len(topics) != 3 or log.get("removed"):
                continue
            to = "0x" + str(topics[2])[-40:]
            if to not in watched:
                continue
            amount = int(log["data"], 16) // asset.base_per_minor
            if amount <= 0:
                continue
            ref = BlockRef(quantity(log["blockNumber"]), str(log["blockHash"]))
            out.append(
                ChainTransfer(
                    asset.currency,
                    str(log["transactionHash"]),
                    quantity(log["logIndex"]),
                    ref,
                    evm.checksum(to),
                    amount,
                )
            )
        return out


class EthereumSigner:
    def __init__(self, network: str, rpc: JsonRpc, key: str, assets: Mapping[str, Asset]) -> None:
        self._network = network
        self.rpc = rpc
        self._key = key
        self.assets = dict(assets)
        self._address = evm.checksum(Account.from_key(key).address)
        self._chain_id = rpc.chain_id()

    @property
    def network(self) -> str:
        return self._network

    @property
    def hot_address(self) -> str:
        return self._address

    def next_nonce(self) -> int:
        return self.rpc.nonce(self._address, "pending")

    def sign(self, currency: str, to: str, amount: int, nonce: int) -> SignedWithdrawal:
        asset = self.assets[currency]
        signed = evm.sign_transfer(
            self._key,
            chain_id=self._chain_id,
            nonce=nonce,
            to=to,
            amount=amount * asset.base_per_minor,
            token=asset.token,
            fee_wei=evm.max_fee(self.rpc),
        )
        return SignedWithdrawal(signed.tx_hash, signed.raw, signed.nonce, signed.sender)

    def broadcast(self, raw: str) -> None:
        try:
            self.rpc.send_raw(raw)
        except RpcError:
            # Already known, or already mined (nonce too low): fine when the node has it.
            tx_hash = "0x" + keccak(hexstr=raw).hex()
            if self.rpc.transaction(tx_hash) is None:
                raise

    def state(self, tx_hash: str) -> TxState:
        receipt = self.rpc.receipt(tx_hash)
        if receipt is not None:
            number = quantity(receipt["blockNumber"])
            confirmations = max(0, self.rpc.block_number() - number + 1)
            ok = quantity(receipt["status"]) == 1
            return TxState(TxStatus.MINED if ok else TxStatus.FAILED, number, confirmations)
        if self.rpc.transaction(tx_hash) is not None:
            return TxState(TxStatus.PENDING)
        return TxState(TxStatus.UNKNOWN)

    def balance(self, currency: str, address: str) -> int:
        asset = self.assets[currency]
        if asset.token is None:
            return self.rpc.balance(address) // asset.base_per_minor
        return evm.token_balance(self.rpc, asset.token, address) // asset.base_per_minor

    def gas_spent_wei(self, tx_hash: str) -> int:
        """What a mined transaction cost the hot wallet in gas (wei)."""
        receipt = self.rpc.receipt(tx_hash)
        if receipt is None:
            return 0
        return quantity(receipt["gasUsed"]) * quantity(receipt["effectiveGasPrice"])


class EthereumSweeper:
    """Moves coins the exchange controls: deposit addresses -> hot wallet, hot wallet above
    ``hot_max`` -> the cold address (whose key the server never holds).

    It holds the deposit addresses' keys (``key_of``: derivation index -> private key, from the
    seed the watcher never sees) and the hot key. A token sweep first tops the deposit address
    up with the gas it needs, from the hot wallet. Every transaction waits for its receipt, so
    a step leaves nothing in flight. Amounts in exchange minor units; ``sweep_min`` below which
    an address is left alone (dust costs more gas than it is worth).
    """

    def __init__(
        self,
        rpc: JsonRpc,
        hot_key: str,
        key_of: Callable[[int], str],
        assets: Mapping[str, Asset],
        cold_address: str,
        hot_max: Mapping[str, int],
        sweep_min: Mapping[str, int],
    ) -> None:
        self.rpc = rpc
        self.hot_key = hot_key
        self.hot = evm.checksum(Account.from_key(hot_key).address)
        self.key_of = key_of
        self.assets = dict(assets)
        self.cold = cold_address
        self.hot_max = dict(hot_max)
        self.sweep_min = dict(sweep_min)
        self.chain_id = rpc.chain_id()

    def _send(self, key: str, to: str, amount_base: int, token: str | None) -> str:
        sender = evm.checksum(Account.from_key(key).address)
        signed = evm.sign_transfer(
            key, chain_id=self.chain_id, nonce=self.rpc.nonce(sender), to=to,
            amount=amount_base, token=token, fee_wei=evm.max_fee(self.rpc),
        )  # fmt: skip
        evm.send_and_wait(self.rpc, signed)
        return signed.tx_hash

    def sweep(self, index: int, address: str) -> list[str]:
        """Everything above ``sweep_min`` at deposit address ``index`` to the hot wallet."""
        key = self.key_of(index)
        if evm.checksum(Account.from_key(key).address) != evm.checksum(address):
            raise ValueError(f"key {index} does not open {address}")
        sent: list[str] = []
        for asset in self.assets.values():
            if asset.token is None:
                continue
            balance = evm.token_balance(self.rpc, asset.token, address)
            if balance < self.sweep_min.get(asset.currency, 1) * asset.base_per_minor:
                continue
            gas_wei = evm.GAS_TOKEN_TRANSFER * evm.max_fee(self.rpc)
            have = self.rpc.balance(address)
            if have < gas_wei:
                sent.append(self._send(self.hot_key, address, gas_wei - have, None))
            sent.append(self._send(key, self.hot, balance, asset.token))
        native = next((a for a in self.assets.values() if a.token is None), None)
        if native is not None:
            fee = evm.max_fee(self.rpc)
            movable = self.rpc.balance(address) - evm.GAS_ETH_TRANSFER * fee
            if movable >= self.sweep_min.get(native.currency, 1) * native.base_per_minor:
                sent.append(self._send(key, self.hot, movable, None))
        return sent

    def to_cold(self) -> list[str]:
        """The hot wallet's excess over ``hot_max`` to the cold address."""
        sent: list[str] = []
        for currency, asset in self.assets.items():
            ceiling = self.hot_max.get(currency)
            if ceiling is None or not self.cold:
                continue
            if asset.token is None:
                balance = self.rpc.balance(self.hot)
            else:
                balance = evm.token_balance(self.rpc, asset.token, self.hot)
            excess = balance - ceiling * asset.base_per_minor
            if excess > 0:
                sent.append(self._send(self.hot_key, self.cold, excess, asset.token))
        return sent
