"""Deposit addresses and the address book.

1. An account's deposit address on a network is derived once from the network's extended public
   key at index = account id, stored, and watched from then on (``wallet_addresses``).
2. The address book (BitMEX ``Address``): adding an entry needs a current second-factor code,
   checks the address for its network, and mails a notice to the owner. A new entry can be used
   for withdrawals only ``ADDRESS_LOCK_NS`` (24 h) after it was added.
3. Whitelist mode (per account): withdrawals go only to address-book entries. Turning it on or
   off needs a second-factor code and mails a notice.
4. At most ``ADDRESS_BOOK_MAX`` entries per account.
5. A memo (tag) is checked with the address (``validate``): a network that needs one
   (``Network.memo_required``) refuses a destination without it, a network that has none
   refuses one (a memo the chain would drop usually means the user is sending to another
   exchange's shared address and the coins would be lost), and a memo is at most
   ``MEMO_LENGTH_MAX`` printable ASCII characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select

from perpetua.chain.adapter import DepositWatcher
from perpetua.services.wallets.errors import WalletError
from perpetua.services.wallets.networks import Network
from perpetua.services.wallets.ports import Clock, Verifier
from perpetua.store.schema import address_book, wallet_addresses, wallet_settings

__all__ = ["ADDRESS_BOOK_MAX", "ADDRESS_LOCK_NS", "AddressBook", "BookEntry"]

ADDRESS_LOCK_NS = 24 * 3600 * 10**9
ADDRESS_BOOK_MAX = 200
NAME_LENGTH_MAX = 64
NOTE_LENGTH_MAX = 500
MEMO_LENGTH_MAX = 64  # XRP's destination tag is 10 digits, Stellar's text memo 28 bytes


@dataclass(frozen=True, slots=True)
class BookEntry:
    id: int
    account: int
    currency: str
    network: str
    address: str
    memo: str
    name: str
    note: str
    created_ns: int
    usable_ns: int


def _entry(row: Any) -> BookEntry:
    return BookEntry(
        int(row.id),
        int(row.account),
        row.currency,
        row.network,
        row.address,
        row.memo,
        row.name,
        row.note,
        int(row.created_ns),
        int(row.usable_ns),
    )


class AddressBook:
    def __init__(
        self,
        engine: Engine,
        networks: dict[str, Network],
        watchers: dict[str, DepositWatcher],
        verifier: Verifier,
        clock_ns: Clock,
    ) -> None:
        self.engine = engine
        self.networks = networks
        self.watchers = watchers
        self.verifier = verifier
        self.clock_ns = clock_ns

    def deposit_address(self, account: int, currency: str, network: str) -> str:
        net = self.networks.get(network)
        watcher = self.watchers.get(network)
        if net is None or watcher is None or net.rules(currency) is None:
            raise WalletError(400, f"{currency} cannot be deposited on network {network!r}")
        with self.engine.begin() as conn:
            row = conn.execute(
                select(wallet_addresses.c.address).where(
                    wallet_addresses.c.account == account, wallet_addresses.c.network == network
                )
            ).first()
            if row is not None:
                return str(row[0])
            address = watcher.deposit_address(account)
            conn.execute(
                insert(wallet_addresses).values(
                    account=account,
                    network=network,
                    address=address,
                    derivation_index=account,
                    created_ns=self.clock_ns(),
                )
            )
            return address

    def entries(self, account: int) -> list[BookEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(address_book)
                .where(address_book.c.account == account)
                .order_by(address_book.c.id)
            ).all()
        return [_entry(r) for r in rows]

    def entry(self, account: int, entry_id: int) -> BookEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(address_book).where(
                    address_book.c.account == account, address_book.c.id == entry_id
                )
            ).first()
        return None if row is None else _entry(row)

    def find(self, account: int, network: str, address: str) -> BookEntry | None:
        for entry in self.entries(account):
            if entry.network == network and entry.address.lower() == address.lower():
                return entry
        return None

    def validate(self, currency: str, network: str, address: str, memo: str = "") -> None:
        """The destination (rules 5): the address's checksum for its network, and its memo."""
        net = self.networks.get(network)
        watcher = self.watchers.get(network)
        if net is None or watcher is None or net.rules(currency) is None:
            raise WalletError(400, f"{currency} is not supported on network {network!r}")
        if not watcher.is_valid_address(address):
            raise WalletError(400, f"Invalid address for network {network}")
        if memo and not net.memo_required:
            raise WalletError(400, f"Network {network} takes no memo (tag): leave it empty")
        if net.memo_required and not memo:
            raise WalletError(400, f"Network {network} needs a memo (tag) with the address")
        if len(memo) > MEMO_LENGTH_MAX or not all(" " <= c <= "~" for c in memo):
            raise WalletError(
                400, f"Invalid memo: at most {MEMO_LENGTH_MAX} printable ASCII characters"
            )

    def add(
        self,
        account: int,
        user_id: int,
        currency: str,
        network: str,
        address: str,
        name: str,
        note: str,
        memo: str,
        otp: str,
    ) -> BookEntry:
        self.validate(currency, network, address, memo)
        if not name.strip() or len(name) > NAME_LENGTH_MAX or len(note) > NOTE_LENGTH_MAX:
            raise WalletError(400, f"name is required (at most {NAME_LENGTH_MAX} characters)")
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count()).where(address_book.c.account == account)
            ).scalar_one()
        if count >= ADDRESS_BOOK_MAX:
            raise WalletError(400, f"At most {ADDRESS_BOOK_MAX} saved addresses")
        if not self.verifier.second_factor_ok(user_id, otp):
            raise WalletError(401, "Invalid or missing two-factor code (otpToken)")
        now = self.clock_ns()
        with self.engine.begin() as conn:
            new_id = conn.execute(
                insert(address_book).values(
                    account=account,
                    currency=currency,
                    network=network,
                    address=address,
                    memo=memo,
                    name=name.strip(),
                    note=note,
                    created_ns=now,
                    usable_ns=now + ADDRESS_LOCK_NS,
                )
            ).inserted_primary_key
        self.verifier.send_notice(
            user_id,
            "new withdrawal address saved",
            f"The {network} address {address} ({name.strip()}) was added to your address book. "
            "It can be used for withdrawals in 24 hours. If this was not you, lock your account "
            "and contact support now.",
        )
        found = self.entry(account, int(new_id[0]) if new_id else 0)
        if found is None:
            raise WalletError(500, "address not saved")
        return found

    def remove(self, account: int, entry_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(address_book).where(
                    address_book.c.account == account, address_book.c.id == entry_id
                )
            )

    def whitelist(self, account: int) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(wallet_settings.c.whitelist).where(wallet_settings.c.account == account)
            ).first()
        return bool(row and row[0])

    def set_whitelist(self, account: int, user_id: int, enabled: bool, otp: str) -> bool:
        if not self.verifier.second_factor_ok(user_id, otp):
            raise WalletError(401, "Invalid or missing two-factor code (otpToken)")
        with self.engine.begin() as conn:
            conn.execute(delete(wallet_settings).where(wallet_settings.c.account == account))
            conn.execute(insert(wallet_settings).values(account=account, whitelist=enabled))
        state = "on" if enabled else "off"
        self.verifier.send_notice(
            user_id,
            f"withdrawal address whitelist turned {state}",
            f"Withdrawals only to saved addresses is now {state} for account {account}.",
        )
        return enabled
