"""The wallets' addresses as reserves: `ReserveAddresses` and `ReserveSigner` over the wallets'
tables and keys (issue 14, ``services.wallets``; docs/wallets.md).

1. Addresses, per network: the hot wallet (its key in the server's keystore), every deposit
   address handed out (``wallet_addresses``: the sweeper has not necessarily emptied them), and
   the cold address (its key is never on the server). Each address is listed once per currency
   the network carries (ether in Gwei and the USDT token), since each currency's balance is read
   separately.
2. Signing: the hot key signs for the hot address; a deposit address is signed with the key
   derived from the deposit seed at its ``derivation_index`` (BIP-44 m/44'/60'/0'/0/i) when the
   server holds that seed (the local demo chain); otherwise, and always for the cold address,
   ``sign`` answers None and the operator signs offline (``perpetua operator porl-signature``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select

from perpetua.chain.evm import address_of, personal_sign
from perpetua.chain.keys import eth_private_key
from perpetua.services.porl.reserves import ReserveAddress
from perpetua.store.schema import wallet_addresses

__all__ = ["WalletReserves"]


class WalletReserves:
    """`ReserveAddresses` and `ReserveSigner` for one network of the wallets (rules 1-2)."""

    def __init__(
        self,
        engine: Engine,
        network: str,
        currencies: Sequence[str],
        *,
        hot_key: str | None = None,
        cold_address: str | None = None,
        deposit_mnemonic: str | None = None,
    ) -> None:
        self._engine = engine
        self._network = network
        self._currencies = tuple(currencies)
        self._hot_key = hot_key
        self._hot = None if hot_key is None else address_of(hot_key)
        self._cold = cold_address
        self._mnemonic = deposit_mnemonic

    def _deposits(self) -> list[tuple[str, int]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(wallet_addresses.c.address, wallet_addresses.c.derivation_index)
                .where(wallet_addresses.c.network == self._network)
                .order_by(wallet_addresses.c.account)
            ).all()
        return [(str(address), int(index)) for address, index in rows]

    def reserve_addresses(self) -> Sequence[ReserveAddress]:
        listed: list[tuple[str, str]] = []
        if self._hot is not None:
            listed.append((self._hot, "hot"))
        listed.extend((address, "deposit") for address, _ in self._deposits())
        if self._cold:
            listed.append((self._cold, "cold"))
        return [
            ReserveAddress(address, kind, currency)
            for address, kind in listed
            for currency in self._currencies
        ]

    def _key_of(self, address: str) -> str | None:
        hot, hot_key = self._hot, self._hot_key
        if hot is not None and hot_key is not None and address.lower() == hot.lower():
            return hot_key
        if self._mnemonic is None:
            return None
        for deposit, index in self._deposits():
            if deposit.lower() == address.lower():
                return eth_private_key(self._mnemonic, index)
        return None

    def sign(self, address: str, message: str) -> str | None:
        key = self._key_of(address)
        if key is None:
            return None
        return personal_sign(message, key)
