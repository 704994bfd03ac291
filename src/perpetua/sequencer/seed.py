"""The recovered engine's state as the readers need it, read once before the sequencer starts
(while no thread touches the engine): public market state (L2 levels with visible sizes, last
price, mark, index, funding rates and samples, instrument states, open interest), the
instruments with the futures listed at runtime, accounts' restrictions, fee settings, stakes,
pending unstaking requests and withdrawals. Nothing else knows the visible size of an iceberg
tranche or the current mark: no event history re-derives them after a snapshot.

It lives in the sequencer, which may read the core's state types; the gateway and the market
views receive the ``EngineSeed`` (``gateway.bootstrap`` loads the views from it).
"""

from typing import NamedTuple

from perpetua.core.book import BookSide
from perpetua.core.catalogue import FutureSeries
from perpetua.core.engine import Engine
from perpetua.core.events import (
    AccountRestricted,
    DeleverageRanked,
    StakingChanged,
    UnstakingUpdated,
)
from perpetua.core.indicators import deleverage_ranking
from perpetua.core.instruments import InstrumentSpec
from perpetua.core.staking import staking_tier
from perpetua.core.state import Market, State

__all__ = ["EngineSeed", "MarketSeed", "engine_seed", "fee_tiers"]


class MarketSeed(NamedTuple):
    symbol: str
    state: str
    last_price: int | None
    mark_fine: int | None
    index_fine: int | None
    funding_rate_ppb: int
    indicative_rate_ppb: int
    next_funding_ns: int
    bids: list[tuple[int, int]]  # (price ticks, visible size), any order
    asks: list[tuple[int, int]]
    positions: dict[int, int]  # account -> signed quantity (open ones)
    # the funding series (.XBTUSDPI8H, .XBTBON8H, ...): the interval's samples, the interest
    premium_sum_ppb: int = 0
    premium_count: int = 0
    interest_ppb: int = 0


class EngineSeed(NamedTuple):
    seq: int  # the last command in the recovered state
    ts_ns: int
    markets: list[MarketSeed]
    instruments: tuple[InstrumentSpec, ...] = ()  # the engine's: with futures listed at runtime
    restrictions: tuple[AccountRestricted, ...] = ()  # accounts' restrictions (core.restrictions)
    fees: dict[int, tuple[int, int]] = {}  # account -> (fee tier, effective discount ppm)
    stakes: tuple[StakingChanged, ...] = ()
    unstaking: tuple[UnstakingUpdated, ...] = ()  # pending requests
    series: tuple[FutureSeries, ...] = ()  # the futures series it defined (catalogue file)
    withdrawals: tuple[tuple[int, str], ...] = ()  # pending: (account, withdrawal id)
    # each market's ADL ranking as the state stands (published live only with mark updates)
    ranks: tuple[DeleverageRanked, ...] = ()


def _levels(side: BookSide) -> list[tuple[int, int]]:
    return [
        (price, level.visible_size)
        for price, level in side.levels.items()
        if level.visible_size > 0
    ]


def _market_seed(market: Market) -> MarketSeed:
    funding = market.funding
    return MarketSeed(
        market.spec.symbol,
        market.state,
        market.last_price,
        market.mark_fine,
        market.index_fine,
        funding.rate_ppb,
        funding.indicative_rate_ppb,
        funding.next_funding_ns,
        _levels(market.book.bids),
        _levels(market.book.asks),
        {account: pos.qty for account, pos in market.positions.items() if pos.qty},
        funding.premium_sum_ppb,
        funding.premium_count,
        funding.interest_ppb,
    )


def engine_seed(engine: Engine, seq: int) -> EngineSeed:
    """Everything the views need from a recovered, not yet started engine (read once)."""
    state = engine.state
    markets = [_market_seed(m) for m in state.markets.values()]
    restrictions = tuple(
        AccountRestricted(
            state.ts_ns, account, r.trading, r.products_denied, r.deposits, r.withdrawals, r.cause
        )
        for account, r in sorted(state.restrictions.items())
    )
    return EngineSeed(
        seq,
        state.ts_ns,
        markets,
        tuple(engine.instruments),
        restrictions,
        *_cost_seed(state),
        tuple(state.series.values()),
        tuple(
            (w.account, w.withdrawal_id)
            for _, w in sorted(state.withdrawals.items())
            if w.status == "Pending"
        ),
        tuple(deleverage_ranking(state, symbol) for symbol in state.markets),
    )


def fee_tiers(engine: Engine) -> dict[int, int]:
    """Each account's volume fee tier where not 0 (the volume tiers' starting point)."""
    return {
        account: acct.fee_tier for account, acct in engine.state.accounts.items() if acct.fee_tier
    }


def _cost_seed(
    state: State,
) -> tuple[dict[int, tuple[int, int]], tuple[StakingChanged, ...], tuple[UnstakingUpdated, ...]]:
    """Fee settings, stakes and pending unstaking requests, as the events that made them."""
    fees = {
        account: (acct.fee_tier, max(acct.discount_ppm, acct.staking_discount_ppm))
        for account, acct in sorted(state.accounts.items())
        if acct.fee_tier or acct.discount_ppm or acct.staking_discount_ppm
    }
    stakes = tuple(
        StakingChanged(
            state.ts_ns,
            r.account,
            r.currency,
            r.staked,
            r.unstaking,
            r.eligible,
            staking_tier(r.eligible),
        )
        for _, r in sorted(state.stakes.items())
    )
    unstaking = tuple(
        UnstakingUpdated(state.ts_ns, u.request_id, u.account, u.currency, u.amount, u.release_ns,
                         u.status)
        for _, u in sorted(state.unstaking.items())
    )  # fmt: skip
    return fees, stakes, unstaking
