"""``WithdrawalPolicy``: the compliance checks a withdrawal passes before any money moves.

Compliance (issue 13) plugs its KYC levels, account restrictions and sanctions screening in
here; the wallets ship ``DefaultPolicy`` (every account level 0 with ``DAILY_LIMIT_DEFAULT``
per currency, no restriction, an operator-configured list of blocked addresses).

1. ``check`` returns a ``PolicyVerdict``: allowed, or refused with a reason the user may read
   (a sanctions hit is refused with a neutral message; the detail goes to the audit log).
2. ``daily_limit`` is per account and currency in minor units over a rolling 24 h; the wallets
   count what the account requested in that window (cancelled ones excepted).
3. Calls are synchronous and fast (a worker thread makes them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DAILY_LIMIT_DEFAULT",
    "DefaultPolicy",
    "PolicyVerdict",
    "WithdrawalPolicy",
]

# Per currency, minor units per rolling 24 h, for accounts the policy knows nothing about.
DAILY_LIMIT_DEFAULT: Mapping[str, int] = {
    "XBt": 100 * 10**8,
    "USDt": 2_000_000 * 10**6,
    "Gwei": 1_000 * 10**9,
    "BMEx": 10_000_000 * 10**6,
}


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    allowed: bool
    reason: str = ""


ALLOWED = PolicyVerdict(True)


class WithdrawalPolicy(Protocol):
    def check(
        self, account: int, currency: str, network: str, address: str, amount: int
    ) -> PolicyVerdict: ...

    def daily_limit(self, account: int, currency: str) -> int: ...

    def deposits_allowed(self, account: int) -> bool: ...


class DefaultPolicy:
    """Level 0 for everyone; ``blocked`` addresses (lower-case) refused (1)."""

    def __init__(
        self,
        blocked: Iterable[str] = (),
        limits: Mapping[str, int] = DAILY_LIMIT_DEFAULT,
    ) -> None:
        self.blocked = frozenset(a.lower() for a in blocked)
        self.limits = dict(limits)

    def check(
        self, account: int, currency: str, network: str, address: str, amount: int
    ) -> PolicyVerdict:
        if address.lower() in self.blocked:
            return PolicyVerdict(False, "This address cannot receive withdrawals")
        return ALLOWED

    def daily_limit(self, account: int, currency: str) -> int:
        return self.limits.get(currency, 0)

    def deposits_allowed(self, account: int) -> bool:
        return True
