"""The wallets: deposits and withdrawals on real chains (docs/wallets.md).

``service.Wallets`` assembles them: ``addresses`` (deposit addresses from an xpub, the address
book, whitelist mode), ``follower`` (blocks in, ``Deposit``/``DepositReverse`` out),
``withdrawals`` (request, 2FA, email confirmation, four-eyes approval, cancel), ``sender``
(sign, record, broadcast, follow, complete or refund), ``policy`` (the ``WithdrawalPolicy``
compliance plugs into), ``networks`` (fees, minimums, confirmations).
"""

from perpetua.services.wallets.errors import WalletError
from perpetua.services.wallets.networks import AssetRules, Network, default_networks
from perpetua.services.wallets.policy import DefaultPolicy, PolicyVerdict, WithdrawalPolicy
from perpetua.services.wallets.service import DepositRow, NetworkState, Wallets
from perpetua.services.wallets.withdrawals import Request, WithdrawalRow, bitmex_status

__all__ = [
    "AssetRules",
    "DefaultPolicy",
    "DepositRow",
    "Network",
    "NetworkState",
    "PolicyVerdict",
    "Request",
    "WalletError",
    "Wallets",
    "WithdrawalPolicy",
    "WithdrawalRow",
    "bitmex_status",
    "default_networks",
]
