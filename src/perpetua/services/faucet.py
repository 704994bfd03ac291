"""The testnet faucet: test funds enter only through the core, as a ``Deposit`` command.

``faucet_command`` builds the command; whoever holds the sequencer (the gateway's faucet route,
``perpetua admin faucet`` once the sequencer runs in-process) submits it. The core credits the
account from ``EXTERNAL`` once per ``transfer_id`` (a repeat is rejected as a duplicate), so a
retried faucet request with the same id never pays twice.
"""

from typing import Final

from perpetua.core.commands import Deposit
from perpetua.core.units import CURRENCIES

__all__ = ["FAUCET_AMOUNT_MAX", "FAUCET_DEFAULT_AMOUNT", "faucet_command"]

# Per request, in minor units: 1 XBT, 10,000 USDT, 10 ETH, 100,000 BMEX by default.
FAUCET_DEFAULT_AMOUNT: Final[dict[str, int]] = {
    "XBt": 100_000_000,
    "USDt": 10_000 * 1_000_000,
    "Gwei": 10 * 1_000_000_000,
    "BMEx": 100_000 * 1_000_000,
}
FAUCET_AMOUNT_MAX: Final[dict[str, int]] = {
    code: 100 * amount for code, amount in FAUCET_DEFAULT_AMOUNT.items()
}


def faucet_command(user_id: int, currency: str, amount: int, transfer_id: str) -> Deposit:
    """A ``Deposit`` of ``amount`` minor units of ``currency`` to ``user_id`` (``ts_ns`` 0:
    the sequencer stamps it). Raises ``ValueError`` for an unknown currency, a non-positive or
    excessive amount, a bad account id or an empty transfer id."""
    if currency not in CURRENCIES:
        raise ValueError(f"unknown currency {currency!r}; one of {', '.join(CURRENCIES)}")
    if not 0 < amount <= FAUCET_AMOUNT_MAX[currency]:
        raise ValueError(f"faucet amount must be in 1..{FAUCET_AMOUNT_MAX[currency]} {currency}")
    if user_id <= 0:
        raise ValueError(f"user id must be positive: {user_id}")
    if not transfer_id:
        raise ValueError("a faucet deposit needs a transfer id (its idempotency key)")
    return Deposit(0, user_id, currency, amount, transfer_id)
