"""One account's wallet in one currency, folded from ledger events: the one fold of BitMEX's
``wallet`` model, kept by the read models (``store.wallet_book``) and the gateway's live views
(``gateway.private``) alike.

1. ``amount`` is the ledger balance: every ``Transfer`` moves it, on both sides.
2. The totals BitMEX shows beside it are counted by transfer code: ``deposited`` (DEPOSIT
   credits), ``transfer_in``/``transfer_out`` (WALLET_TRANSFER), ``pending_debit`` (a withdrawal's
   hold until it completes or is released), ``withdrawn`` (completed withdrawals, fee included).
3. A completed withdrawal moves nothing in the ledger (the hold already did): it turns its
   pending debit into ``withdrawn`` (``withdrawal_completed``).
4. ``pending_credit`` and ``confirmed_debit`` are zero until the wallets count unconfirmed
   deposits and confirmed withdrawals.
"""

from perpetua.core.ledger import TransferCode

__all__ = ["WALLET_FIELDS", "WalletTotals"]

WALLET_FIELDS = (
    "account",
    "currency",
    "amount",
    "deposited",
    "withdrawn",
    "transfer_in",
    "transfer_out",
    "pending_credit",
    "pending_debit",
    "confirmed_debit",
    "timestamp_ns",
)


class WalletTotals:
    """The ``wallets`` read model's row for (account, currency), as it folds."""

    __slots__ = WALLET_FIELDS

    def __init__(
        self,
        account: int,
        currency: str,
        amount: int = 0,
        deposited: int = 0,
        withdrawn: int = 0,
        transfer_in: int = 0,
        transfer_out: int = 0,
        pending_credit: int = 0,
        pending_debit: int = 0,
        confirmed_debit: int = 0,
        timestamp_ns: int = 0,
    ) -> None:
        self.account = account
        self.currency = currency
        self.amount = amount
        self.deposited = deposited
        self.withdrawn = withdrawn
        self.transfer_in = transfer_in
        self.transfer_out = transfer_out
        self.pending_credit = pending_credit
        self.pending_debit = pending_debit
        self.confirmed_debit = confirmed_debit
        self.timestamp_ns = timestamp_ns

    def on_transfer(self, code: int, amount: int, credited: bool, ts_ns: int) -> None:
        """This wallet's side of one ledger transfer (``credited``: money came in) (1, 2)."""
        if credited:
            self.amount += amount
            if code == TransferCode.DEPOSIT:
                self.deposited += amount
            elif code == TransferCode.WITHDRAWAL_RELEASE:
                self.pending_debit -= amount
            elif code == TransferCode.WALLET_TRANSFER:
                self.transfer_in += amount
        else:
            self.amount -= amount
            if code == TransferCode.WITHDRAWAL_HOLD:
                self.pending_debit += amount
            elif code == TransferCode.WALLET_TRANSFER:
                self.transfer_out += amount
        self.timestamp_ns = ts_ns

    def withdrawal_completed(self, amount_with_fee: int, ts_ns: int) -> None:
        """A withdrawal (amount plus fee) left the venue (3)."""
        self.pending_debit -= amount_with_fee
        self.withdrawn += amount_with_fee
        self.timestamp_ns = ts_ns

    def row(self) -> dict[str, object]:
        """The ``wallets`` table's row (snake case, as stored)."""
        return {name: getattr(self, name) for name in WALLET_FIELDS}
