"""The networks the exchange takes deposits on and pays withdrawals to, with their numbers.

1. A ``Network`` names its chain module's assets; each ``AssetRules`` carries what BitMEX's
   ``/wallet/assets`` shows and the checks use: minimum deposit, minimum withdrawal, the network
   fee charged to the user (BitMEX charges a fixed fee per network in the currency withdrawn,
   added to the amount: the user's wallet pays ``amount + fee`` and ``amount`` arrives), an
   optional higher fee the user may offer (``fee`` at most ``fee_max``), confirmations, and the
   operator-approval threshold (four-eyes above it).
2. Amounts are the exchange's minor units (Gwei, USDt).
3. ``default_networks`` is the embedded default: network ``eth`` with ETH and the local USDT
   token (its address known only once deployed, hence a function of it); ``bitcoin_network``
   adds ``btc`` when an operator's Bitcoin Core node is configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perpetua.chain.adapter import Asset

__all__ = ["AssetRules", "Network", "bitcoin_network", "default_networks"]

GWEI_PER_ETH = 10**9
USDT_MINOR = 10**6


@dataclass(frozen=True, slots=True)
class AssetRules:
    asset: Asset
    major: str  # "ETH", "USDT"
    deposit_min: int
    withdrawal_min: int
    withdrawal_fee: int  # charged on top of the amount (1)
    withdrawal_fee_max: int
    approval_threshold: int  # amounts at or above wait for an operator (four-eyes)

    @property
    def currency(self) -> str:
        return self.asset.currency


@dataclass(frozen=True, slots=True)
class Network:
    name: str  # BitMEX's network code: "eth", "btc"
    title: str
    symbol: str
    confirmations: int
    memo_required: bool = False
    explorer_tx: str = ""
    reorg_window_blocks: int = 64  # how far back the follower re-checks block hashes
    assets: dict[str, AssetRules] = field(default_factory=dict)

    def rules(self, currency: str) -> AssetRules | None:
        return self.assets.get(currency)


def default_networks(
    token: str | None, confirmations: int = 3, approval_usdt: int = 100_000
) -> dict[str, Network]:
    """ETH and (when ``token`` is deployed) USDT on network ``eth`` (3)."""
    assets = {
        "Gwei": AssetRules(
            Asset("Gwei", None, 10**9),
            "ETH",
            deposit_min=GWEI_PER_ETH // 1000,  # 0.001 ETH
            withdrawal_min=GWEI_PER_ETH // 100,  # 0.01 ETH
            withdrawal_fee=GWEI_PER_ETH // 1000 * 3,  # 0.003 ETH
            withdrawal_fee_max=GWEI_PER_ETH // 10,
            approval_threshold=50 * GWEI_PER_ETH,
        )
    }
    if token is not None:
        assets["USDt"] = AssetRules(
            Asset("USDt", token, 1),
            "USDT",
            deposit_min=1 * USDT_MINOR,
            withdrawal_min=10 * USDT_MINOR,
            withdrawal_fee=5 * USDT_MINOR,
            withdrawal_fee_max=100 * USDT_MINOR,
            approval_threshold=approval_usdt * USDT_MINOR,
        )
    return {"eth": Network("eth", "Ethereum (ERC-20)", "ETH", confirmations, assets=assets)}


SATS_PER_BTC = 10**8


def bitcoin_network(confirmations: int = 2) -> Network:
    """XBT on network ``btc`` (BitMEX's numbers: 0.0002 XBT network fee)."""
    rules = AssetRules(
        Asset("XBt", None, 1),
        "XBT",
        deposit_min=10_000,  # 0.0001 XBT
        withdrawal_min=100_000,  # 0.001 XBT
        withdrawal_fee=20_000,
        withdrawal_fee_max=10_000_000,
        approval_threshold=10 * SATS_PER_BTC,
    )
    return Network("btc", "Bitcoin", "BTC", confirmations, assets={"XBt": rules})
