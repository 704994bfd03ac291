"""Perpetual funding (§7.6): per-minute premium samples, the 8-hour rate, and the payments.

Rates are parts per billion (``ppb``). Every minute each perpetual with an index samples its
premium ``P = (max(0, impactBid - mark) - max(0, mark - impactAsk)) / index`` (a side too thin
for the impact notional contributes 0). At a funding time (04:00, 12:00, 20:00 UTC):

1. every open position pays or receives ``markValue x rate`` for the rate announced for this
   time: payers (longs when the rate is positive, shorts when negative) pay ``ceil`` of their
   share into ``FUNDING_POOL``; receivers get ``floor`` of the pool in proportion to their mark
   value; what rounding leaves in the pool goes to ``RESIDUE``, so the exchange neither makes
   nor loses money on funding. A payer with less than it owes (bankrupt: its margin is gone)
   pays what it has and the insurance fund covers the rest, as it covers a realised loss beyond
   the wallet (``fills.realise``), so receivers are always paid in full;
2. the next rate becomes the interval's ``F = avg(P) + clamp(I - avg(P), -0.05%, +0.05%)``
   with ``I`` the market's interest rate (0.01% per 8 h by default, ``SetInterestRate``),
   capped at ``75% x (IM - MM)`` and moving at most ``75% x MM`` from the previous rate;
3. the samples restart. The indicative rate is the same formula over the samples so far.
"""

from perpetua.core.events import Funding, FundingPaid, PremiumSampled
from perpetua.core.instruments import InstrumentKind
from perpetua.core.ledger import FUNDING_POOL, INSURANCE, RESIDUE, TransferCode
from perpetua.core.pricing import impact_prices_fine, next_funding_ns
from perpetua.core.state import DEFAULT_INTEREST_PPB, FundingState, Market, Position, State

__all__ = ["INTEREST_RATE_PPB", "PREMIUM_CLAMP_PPB", "next_rate_ppb", "pay", "sample_premium"]

INTEREST_RATE_PPB = DEFAULT_INTEREST_PPB  # 0.01% per 8 hours
PREMIUM_CLAMP_PPB = 500_000  # 0.05%
PPB = 1_000_000_000
_PPM_TO_PPB = 1_000


def sample_premium(state: State, market: Market, out: list[object]) -> None:
    index, mark = market.index_fine, market.mark_fine
    if index is None or mark is None or index <= 0:
        return
    bid, ask = impact_prices_fine(market)
    premium = 0
    if bid is not None and bid > mark:
        premium += bid - mark
    if ask is not None and mark > ask:
        premium -= mark - ask
    funding = market.funding
    sample = premium * PPB // index if premium >= 0 else -(-premium * PPB // index)
    funding.premium_sum_ppb += sample
    funding.premium_count += 1
    funding.indicative_rate_ppb = next_rate_ppb(market)
    out.append(PremiumSampled(state.ts_ns, market.spec.symbol, sample, _average(funding),
                              funding.interest_ppb))


def _average(funding: FundingState) -> int:
    """The interval's average premium so far, rounded toward zero (0 before any sample)."""
    count = funding.premium_count
    if not count:
        return 0
    total = funding.premium_sum_ppb
    return total // count if total >= 0 else -(-total // count)


def next_rate_ppb(market: Market) -> int:
    """The funding rate the current interval's samples give, with both caps applied."""
    funding = market.funding
    premium = _average(funding)
    gap = max(-PREMIUM_CLAMP_PPB, min(PREMIUM_CLAMP_PPB, funding.interest_ppb - premium))
    rate = premium + gap
    spec = market.spec
    cap = 3 * (spec.init_margin_ppm - spec.maint_margin_ppm) * _PPM_TO_PPB // 4
    rate = max(-cap, min(cap, rate))
    step = 3 * spec.maint_margin_ppm * _PPM_TO_PPB // 4
    previous = funding.rate_ppb
    return max(previous - step, min(previous + step, rate))


def _payer(qty: int, rate: int) -> bool:
    return (rate > 0 and qty > 0) or (rate < 0 and qty < 0)


def pay(state: State, market: Market, out: list[object]) -> None:
    """Settle funding for ``market`` at ``state.ts_ns`` and roll to the next interval."""
    spec = market.spec
    funding = market.funding
    rate = funding.rate_ppb
    magnitude = rate if rate >= 0 else -rate
    mark = market.mark_fine
    currency = spec.settl_currency
    ledger = state.ledger
    ts = state.ts_ns
    if mark is not None and mark > 0 and magnitude:
        holders = [p for _, p in sorted(market.positions.items()) if p.qty]
        values = {p.account: abs(market.value_fine(p.qty, mark)) for p in holders}
        pool = 0
        receivers = []
        for pos in holders:
            if not _payer(pos.qty, rate):
                receivers.append(pos)
                continue
            owed = -(-values[pos.account] * magnitude // PPB)
            paid = owed if pos.account < 0 else min(owed, max(0, ledger.available(
                pos.account, currency)))
            if paid > 0:
                ledger.transfer(out, ts, pos.account, FUNDING_POOL, currency, paid,
                                TransferCode.FUNDING, 0)
            if owed > paid:  # a bankrupt payer: the insurance fund covers, receivers are whole
                ledger.transfer(out, ts, INSURANCE, FUNDING_POOL, currency, owed - paid,
                                TransferCode.BANKRUPTCY_COVER, 0)
            pool += owed
            out.append(FundingPaid(ts, pos.account, spec.symbol, pos.qty, values[pos.account],
                                   rate, -paid))
            state.touched_positions[(spec.symbol, pos.account)] = pos
        _distribute(state, market, receivers, values, pool, rate, out)
    out.append(Funding(ts, spec.symbol, rate, spec.funding_interval_ns, 0, 0))
    new_rate = next_rate_ppb(market)
    funding.rate_ppb = new_rate
    funding.premium_sum_ppb = 0
    funding.premium_count = 0
    funding.indicative_rate_ppb = new_rate
    funding.next_funding_ns = next_funding_ns(ts, spec.funding_interval_ns)
    out[-1] = Funding(ts, spec.symbol, rate, spec.funding_interval_ns, new_rate, new_rate)


def _distribute(state: State, market: Market, receivers: list[Position],
                values: dict[int, int],
                pool: int, rate: int, out: list[object]) -> None:
    spec = market.spec
    currency = spec.settl_currency
    ledger = state.ledger
    ts = state.ts_ns
    total = sum(values[p.account] for p in receivers)
    left = pool
    for pos in receivers:
        share = pool * values[pos.account] // total if total else 0
        if share > 0:
            ledger.transfer(out, ts, FUNDING_POOL, pos.account, currency, share,
                            TransferCode.FUNDING, 0)
            left -= share
        out.append(FundingPaid(ts, pos.account, spec.symbol, pos.qty, values[pos.account], rate,
                               share))
        state.touched_positions[(spec.symbol, pos.account)] = pos
    if left > 0:
        ledger.transfer(out, ts, FUNDING_POOL, RESIDUE, currency, left,
                        TransferCode.FUNDING_RESIDUE, 0)


def is_funded(market: Market) -> bool:
    return market.spec.kind == InstrumentKind.PERPETUAL and market.spec.funding_interval_ns > 0
