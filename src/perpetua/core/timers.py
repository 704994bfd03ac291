"""Market clocks: index arrival, per-minute samples, funding times and futures expiry.

Only command timestamps move time. When a command arrives at or after a market's next due
time, the due work runs first, in catalogue order and, within a market: the minute sample
(premium or basis; one sample however many minutes were skipped), then funding, then expiry.
Every mark change is published (``MarkUpdated``) and marks the market for the liquidation scan.
"""

from perpetua.core import funding, pricing, settlement
from perpetua.core.catalogue import listing_time_ns, quarterly_future
from perpetua.core.events import Event, MarkUpdated
from perpetua.core.instruments import InstrumentKind, InstrumentSpec
from perpetua.core.risk import fixed_funding_rate_ppb
from perpetua.core.state import PRICE_FINE_PER_TICK, Market, State

__all__ = ["apply_index", "list_future", "next_due_ns", "publish_mark", "run_due", "touch_all"]

_NEVER = 1 << 62


def next_due_ns(market: Market) -> int:
    spec = market.spec
    if market.state != "Open" or market.index_fine is None:
        return _NEVER
    due = market.funding.next_sample_ns or _NEVER
    if spec.kind == InstrumentKind.PERPETUAL and market.funding.next_funding_ns:
        due = min(due, market.funding.next_funding_ns)
    if spec.kind == InstrumentKind.FUTURE and spec.expiry_ns:
        due = min(due, spec.expiry_ns)
    return due


def publish_mark(state: State, market: Market, out: list[Event]) -> None:
    mark = market.mark_fine
    index = market.index_fine
    if mark is None or index is None:
        return
    f = market.funding
    out.append(
        MarkUpdated(
            state.ts_ns,
            market.spec.symbol,
            mark,
            index,
            f.rate_ppb,
            f.indicative_rate_ppb,
            f.next_funding_ns,
        )
    )
    state.touched_marks[market.spec.symbol] = None


def _start_clocks(market: Market, now_ns: int) -> None:
    f = market.funding
    f.next_sample_ns = pricing.next_minute_ns(now_ns)
    if funding.is_funded(market):
        f.next_funding_ns = pricing.next_funding_ns(now_ns, market.spec.funding_interval_ns)
        f.rate_ppb = fixed_funding_rate_ppb(f.interest_ppb)
        f.indicative_rate_ppb = f.rate_ppb


def touch_all(state: State, market: Market) -> None:
    """Every open position's margin and threshold must be re-derived (rate change). In
    account order: a restored market's positions are not in the live insertion order."""
    for account, pos in sorted(market.positions.items()):
        if pos.qty:
            state.touched_positions[(market.spec.symbol, account)] = pos


def apply_index(state: State, market: Market, price_num: int, price_den: int) -> None:
    spec = market.spec
    now = state.ts_ns
    f = market.funding
    settlement.record_index(market, market.index_fine, f.index_ts_ns, now)
    fine = price_num * spec.tick_den * PRICE_FINE_PER_TICK // (price_den * spec.tick_num)
    market.index_fine = fine
    f.index_ts_ns = now
    if f.next_sample_ns == 0:
        _start_clocks(market, now)
        touch_all(state, market)
    pricing.update_mark(market, now)


def run_due(state: State, market: Market, out: list[Event]) -> None:
    now = state.ts_ns
    f = market.funding
    spec = market.spec
    if f.next_sample_ns and now >= f.next_sample_ns:
        pricing.update_mark(market, now)
        if spec.kind == InstrumentKind.PERPETUAL:
            funding.sample_premium(state, market, out)
        elif spec.kind == InstrumentKind.FUTURE:
            pricing.sample_basis(market, now)
        f.next_sample_ns = pricing.next_minute_ns(now)
    if spec.kind == InstrumentKind.PERPETUAL and f.next_funding_ns and now >= f.next_funding_ns:
        pricing.update_mark(market, now)
        funding.pay(state, market, out)
        touch_all(state, market)  # the new rate moves every position's maintenance margin
    if spec.kind == InstrumentKind.FUTURE and spec.expiry_ns and now >= spec.expiry_ns:
        settlement.record_index(market, market.index_fine, f.index_ts_ns, now)
        settlement.settle(state, market, out)
        return
    pricing.update_mark(market, now)
    publish_mark(state, market, out)


def list_future(
    state: State, root: str, year: int, quarter: int, index: int, listing_ns: int | None = None
) -> InstrumentSpec:
    """The spec of a quarterly listed now, or at ``listing_ns`` when restored (its market is
    added by the engine): listed at its scheduled time, or now if that is earlier."""
    if listing_ns is None:
        listing_ns = listing_time_ns(year, quarter, state.ts_ns)
    return quarterly_future(
        root, year, quarter, listing_ns=listing_ns, index=index, series=state.series
    )
