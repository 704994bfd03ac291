"""Indicators: what BitMEX shows beside a position that only the core knows exactly.

Published after a command, never read back, so they change no state and no state hash; recovery
(``publish`` off) builds none.

1. ``OrderMarginChanged``: a position's requirement changed (``margin.refresh_requirement``
   records it) while the position itself was not published: its working orders' margin
   (``core.risk.orders_margin``) is the requirement less the position's margin. A position
   published whole (``PositionChanged``) carries the same figure as ``order_margin``. Order:
   by (symbol, account) of the first change this command, user accounts only.
2. ``DeleverageRanked``: after a mark update, every open user position of the market in its
   side's ADL queue by the rank ADL itself uses (``liquidation.adl_rank_of``), ties by account;
   ``ADL_BUCKETS`` buckets, the top one deleveraged first. A market with more than
   ``ADL_EAGER_HOLDERS_MAX`` open positions is re-ranked at most once per
   ``max(ADL_RERANK_NS, holders x ADL_RERANK_NS_PER_HOLDER)`` of market time (ranking costs a
   few microseconds a holder: 100,000 holders at most every 5 s).
"""

from perpetua.core import margin
from perpetua.core.emit import order_margin
from perpetua.core.events import DeleverageRanked, Event
from perpetua.core.liquidation import adl_rank_of
from perpetua.core.risk import ADL_BUCKETS
from perpetua.core.state import State

__all__ = [
    "ADL_EAGER_HOLDERS_MAX",
    "ADL_RERANK_NS",
    "ADL_RERANK_NS_PER_HOLDER",
    "deleverage_ranking",
    "publish_deleverage_ranks",
    "publish_order_margins",
]

ADL_EAGER_HOLDERS_MAX = 1_000
ADL_RERANK_NS = 1_000_000_000
ADL_RERANK_NS_PER_HOLDER = 50_000


def publish_order_margins(state: State, out: list[Event]) -> None:
    """(1) for the positions whose requirement changed and that were not published whole."""
    changed = state.order_margins_changed
    ts_ns = state.ts_ns
    for pos in changed:
        account = pos.account
        if account <= 0:
            continue
        market = state.markets[pos.symbol]
        live = market.positions.get(account)
        if live is not None and live is not pos:
            continue  # dropped and opened again this command: the live one speaks for it
        required = pos.margin_required
        if pos.qty or pos.cost or pos.deposit:  # else the requirement is the orders' alone
            required -= margin.position_figures(market, pos).pos_margin
        out.append(order_margin(ts_ns, account, pos.symbol, required))
    changed.clear()


def publish_deleverage_ranks(state: State, symbols: dict[str, None], out: list[Event]) -> None:
    """(2) for the markets whose mark moved this command (in the order they moved)."""
    now = state.ts_ns
    for symbol in symbols:
        market = state.markets[symbol]
        holders = [p for p in market.positions.values() if p.account > 0 and p.qty]
        count = len(holders)
        if count == 0:
            continue
        if count > ADL_EAGER_HOLDERS_MAX:
            period = max(ADL_RERANK_NS, count * ADL_RERANK_NS_PER_HOLDER)
            if now - market.adl_ranked_ns < period:
                continue
        market.adl_ranked_ns = now
        out.append(deleverage_ranking(state, symbol))


def deleverage_ranking(state: State, symbol: str) -> DeleverageRanked:
    """(2)'s ranking of ``symbol``'s open user positions as the state stands (also what a
    restarted venue shows until the next mark update: ``sequencer.seed``)."""
    market = state.markets[symbol]
    holders = [p for p in market.positions.values() if p.account > 0 and p.qty]
    accounts: list[int] = []
    quintiles: list[int] = []
    for long_side in (True, False):
        side = [
            (-adl_rank_of(state, market, p), p.account) for p in holders if (p.qty > 0) == long_side
        ]
        side.sort()
        size = len(side)
        for place, (_rank, account) in enumerate(side):
            accounts.append(account)
            quintiles.append(-(-(size - place) * ADL_BUCKETS // size))
    return DeleverageRanked(state.ts_ns, symbol, tuple(accounts), tuple(quintiles))
