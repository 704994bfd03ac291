"""The Bitcoin network module: the operator's own Bitcoin Core node over JSON-RPC.

Watching (``BitcoinWatcher``, no key): deposit addresses are BIP-84 (native segwit, bech32)
receive addresses derived from an account-level extended public key (``chain.keys``); blocks
are read with ``getblock <hash> 2`` and every output paying a watched address is a transfer
(``log_index`` = the output's index ``n``); amounts are BTC decimals in the node's JSON,
converted exactly to satoshis (XBt). Confirmations are the follower's, as on Ethereum.

Signing (``BitcoinSigner``): the node's own wallet holds the hot key. A withdrawal is built
(``createrawtransaction`` + ``fundrawtransaction`` at the node's ``estimatesmartfee`` rate)
and signed (``signrawtransactionwithwallet``) *without* being sent, so the caller records the
signed hex and txid first; ``broadcast`` is ``sendrawtransaction`` and treats "already in the
chain / mempool" as done. A withdrawal's nonce is meaningless here (0): the inputs it spends
make a double spend impossible once the signed bytes are recorded.

Address checks: bech32/bech32m (P2WPKH, P2WSH, P2TR) and base58check (P2PKH, P2SH) for the
network's prefixes; a bad checksum is invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from bip_utils import (
    P2PKHAddrDecoder,
    P2SHAddrDecoder,
    P2TRAddrDecoder,
    P2WPKHAddrDecoder,
)

from perpetua.chain.adapter import (
    Asset,
    BlockRef,
    ChainTransfer,
    SignedWithdrawal,
    TxState,
    TxStatus,
)
from perpetua.chain.keys import btc_receive_address
from perpetua.chain.rpc import RpcError

__all__ = ["NETWORKS", "BitcoinSigner", "BitcoinWatcher", "btc_to_sats", "is_valid_btc_address"]

SATS_PER_BTC = 100_000_000
CONF_TARGET_BLOCKS = 6  # estimatesmartfee's target
FALLBACK_FEE_BTC_PER_KVB = Decimal("0.0001")
# network -> (bech32 hrp, P2PKH version byte, P2SH version byte)
NETWORKS: Mapping[str, tuple[str, bytes, bytes]] = {
    "main": ("bc", b"\x00", b"\x05"),
    "test": ("tb", b"\x6f", b"\xc4"),
    "regtest": ("bcrt", b"\x6f", b"\xc4"),
}
_ALREADY = (
    "already in block chain",
    "outputs already in utxo set",
    "txn-already-known",
    "txn-already-in-mempool",
)

Call = Callable[..., Any]  # JsonRpc.call: (method, *params) -> result


def btc_to_sats(value: Any) -> int:
    """A BTC amount as the node writes it (a JSON number, parsed as Decimal or float) in
    satoshis, exactly; ValueError for a fraction of a satoshi."""
    sats = Decimal(str(value)) * SATS_PER_BTC
    if sats != sats.to_integral_value():
        raise ValueError(f"not a whole number of satoshis: {value}")
    return int(sats)


def is_valid_btc_address(address: str, network: str = "main") -> bool:
    hrp, p2pkh, p2sh = NETWORKS[network]
    if not isinstance(address, str) or not 14 <= len(address) <= 90:
        return False
    attempts: list[Callable[[], object]] = [
        lambda: P2WPKHAddrDecoder().DecodeAddr(address, hrp=hrp),
        lambda: P2TRAddrDecoder().DecodeAddr(address, hrp=hrp),
        lambda: P2PKHAddrDecoder().DecodeAddr(address, net_ver=p2pkh),
        lambda: P2SHAddrDecoder().DecodeAddr(address, net_ver=p2sh),
    ]
    for attempt in attempts:
        try:
            attempt()
        except (ValueError, TypeError):
            continue
        return True
    return False


class BitcoinWatcher:
    def __init__(
        self, network: str, call: Call, xpub: str, asset: Asset, chain: str = "main"
    ) -> None:
        self._network = network
        self.call = call
        self.xpub = xpub
        self.asset = asset
        self.chain = chain

    @property
    def network(self) -> str:
        return self._network

    def deposit_address(self, index: int) -> str:
        return btc_receive_address(self.xpub, index, regtest=self.chain == "regtest")

    def is_valid_address(self, address: str) -> bool:
        return is_valid_btc_address(address, self.chain)

    def head(self) -> int:
        return int(self.call("getblockcount"))

    def block_ref(self, number: int) -> BlockRef | None:
        try:
            return BlockRef(number, str(self.call("getblockhash", number)))
        except RpcError:
            return None  # above the tip

    def transfers(self, first: int, last: int, watched: frozenset[str]) -> list[ChainTransfer]:
        out: list[ChainTransfer] = []
        for number in range(first, last + 1):
            ref = self.block_ref(number)
            if ref is None:
                break
            block = self.call("getblock", ref.hash, 2)
            for tx in block["tx"]:
                for vout in tx["vout"]:
                    address = vout.get("scriptPubKey", {}).get("address", "")
                    if address.lower() not in watched:
                        continue
                    sats = btc_to_sats(vout["value"]) // self.asset.base_per_minor
                    if sats > 0:
                        out.append(
                            ChainTransfer(
                                self.asset.currency,
                                str(tx["txid"]),
                                int(vout["n"]),
                                ref,
                                address,
                                sats,
                            )  # fmt: skip
                        )
        return out

    def fee_rate_btc_per_kvb(self) -> Decimal:
        """The node's estimate for CONF_TARGET_BLOCKS, or the fallback when it has none."""
        found = self.call("estimatesmartfee", CONF_TARGET_BLOCKS)
        rate = found.get("feerate") if isinstance(found, dict) else None
        return Decimal(str(rate)) if rate is not None else FALLBACK_FEE_BTC_PER_KVB


class BitcoinSigner:
    def __init__(self, network: str, call: Call, hot_address: str, asset: Asset) -> None:
        self._network = network
        self.call = call
        self._hot = hot_address
        self.asset = asset

    @property
    def network(self) -> str:
        return self._network

    @property
    def hot_address(self) -> str:
        return self._hot

    def next_nonce(self) -> int:
        return 0

    def sign(self, currency: str, to: str, amount: int, nonce: int) -> SignedWithdrawal:
        btc = Decimal(amount * self.asset.base_per_minor) / SATS_PER_BTC
        raw = self.call("createrawtransaction", [], [{to: f"{btc:.8f}"}])
        funded = self.call(
            "fundrawtransaction", raw, {"changeAddress": self._hot, "lockUnspents": True}
        )
        signed = self.call("signrawtransactionwithwallet", funded["hex"])
        if not signed.get("complete"):
            raise RpcError(0, f"the node's wallet could not sign: {signed.get('errors')}")
        decoded = self.call("decoderawtransaction", signed["hex"])
        return SignedWithdrawal(str(decoded["txid"]), str(signed["hex"]), 0, self._hot)

    def broadcast(self, raw: str) -> None:
        try:
            self.call("sendrawtransaction", raw)
        except RpcError as error:
            if not any(text in error.message for text in _ALREADY):
                raise

    def state(self, tx_hash: str) -> TxState:
        """A withdrawal as the node's wallet sees it (``gettransaction``: the withdrawal spends
        the wallet's coins, so the wallet knows it from its broadcast on; ``getrawtransaction``
        finds a mined transaction only on a node run with ``-txindex``, so on any other node
        every withdrawal would have looked never sent, forever). Unknown to the wallet: never
        sent. Unconfirmed and out of the mempool (evicted, expired): UNKNOWN too, so the caller
        sends the same bytes again. Negative confirmations are Bitcoin Core's way of saying a
        conflicting transaction spent the same inputs and is that deep: this one can never be
        mined (FAILED)."""
        try:
            tx = self.call("gettransaction", tx_hash)
        except RpcError:
            return TxState(TxStatus.UNKNOWN)
        confirmations = int(tx.get("confirmations", 0))
        if confirmations < 0:
            return TxState(TxStatus.FAILED)
        if confirmations == 0:
            try:
                self.call("getmempoolentry", tx_hash)
            except RpcError:
                return TxState(TxStatus.UNKNOWN)
            return TxState(TxStatus.PENDING)
        height = tx.get("blockheight")
        if height is None:  # nodes before 0.20 do not say
            height = self.call("getblockheader", tx["blockhash"])["height"]
        return TxState(TxStatus.MINED, int(height), confirmations)

    def balance(self, currency: str, address: str) -> int:
        """The node wallet's spendable balance (the hot wallet is the node's wallet)."""
        return btc_to_sats(self.call("getbalance")) // self.asset.base_per_minor
