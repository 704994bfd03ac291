"""A position: one account's holding and open-order sums on one market (``state.Market``
keeps them by account).

Plain data. ``POSITION_FIELDS`` are the state, in snapshot order; the other attributes are
derived (margin memo, the liquidation index's entry) and never in snapshots. Its own module so
that ``orders.Order`` can hold its position without an import cycle through ``state``.
"""

from perpetua.core.risk import PositionMargin

__all__ = ["POSITION_FIELDS", "Position"]

# Every attribute of a position, in snapshot order.
POSITION_FIELDS = (
    "account",
    "buy_qty",
    "buy_value",
    "cost",
    "deposit",
    "leverage_e2",
    "liq_fine",
    "margin_required",
    "open_comm",
    "open_orders_count",
    "qty",
    "realised_pnl",
    "risk_limit",
    "sell_qty",
    "sell_value",
    "stop_orders_count",
    "symbol",
)


class Position:
    """One account's position and open orders on one market.

    Besides ``POSITION_FIELDS`` (the state) it keeps the last margin figures computed for it
    and their inputs (``margin.position_figures``'s memo: derived, never in snapshots)."""

    __slots__ = (
        *POSITION_FIELDS,
        "liq_indexed",
        "liq_long",
        "memo",
        "memo_deposit",
        "memo_funding_ppb",
        "memo_leverage_e2",
        "memo_risk_limit",
        "memo_value",
    )

    def __init__(self, account: int, symbol: str, risk_limit: int = 0) -> None:
        self.account = account
        self.symbol = symbol
        self.leverage_e2 = 0  # 0: cross margin; else isolated leverage in hundredths
        self.risk_limit = risk_limit  # chosen risk limit, settlement minor units
        self.deposit = 0  # margin added to an isolated position (transferMargin)
        # Liquidation threshold registered in the market's index (millionths of a tick), or
        # None when the position has none (flat, or no finite price).
        self.liq_fine: int | None = None
        # The threshold the market's sorted index holds for it and which side's index (derived,
        # not in snapshots): the index catches up with ``liq_fine`` lazily (liquidation.py,
        # "The index").
        self.liq_indexed: int | None = None
        self.liq_long = False
        self.qty = 0  # signed contracts
        self.cost = 0  # signed settlement minor units, BitMEX's currentCost convention
        self.realised_pnl = 0
        # Fees paid to open what is held (rebates negative): a reduction keeps the share of
        # what remains, a close or flip starts again. ``breakEvenPrice`` covers them.
        self.open_comm = 0
        self.open_orders_count = 0  # live orders, stops included
        self.stop_orders_count = 0  # untriggered stops
        self.buy_qty = 0  # working (not untriggered) orders
        self.buy_value = 0  # |value| at the orders' prices
        self.sell_qty = 0
        self.sell_value = 0
        self.margin_required = 0  # this position's part of Account.margin_required
        self.memo: PositionMargin | None = None
        self.memo_risk_limit = 0
        self.memo_value = 0
        self.memo_leverage_e2 = 0
        self.memo_funding_ppb = 0
        self.memo_deposit = 0

    def is_empty(self, default_risk_limit: int) -> bool:
        """Nothing held, nothing open, default settings: the record can be dropped."""
        return (
            self.qty == 0
            and self.cost == 0
            and self.open_orders_count == 0
            and self.margin_required == 0
            and self.leverage_e2 == 0
            and self.deposit == 0
            and self.risk_limit == default_risk_limit
        )
