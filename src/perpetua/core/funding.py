"""Perpetual funding (§7.6): per-minute premium samples, the 8-hour rate, and the payments.

Rates are parts per billion (``ppb``) in state and events, but every rate the core publishes
or pays is a whole ``RATE_STEP_PPB`` (one millionth, 0.0001%): BitMEX publishes funding rates
and premium indices to six decimals (its funding table shows 0.000817, -0.00164, -0.001662;
the swagger types them as plain doubles), so a rate is fixed at that precision when it is
announced, and the number shown on the instrument, ``/funding``, the ``funding`` table and
every Funding execution is the number paid. Rounding to the step is half away from zero.

Every minute each perpetual with an index samples its premium ``P = (max(0, impactBid - mark) -
max(0, mark - impactAsk)) / index`` (a side too thin for the impact notional contributes 0),
rounded to the step (``.XBTUSDPI``); the interval's average is the samples' mean rounded to the
step (``.XBTUSDPI8H``). At a funding time (04:00, 12:00, 20:00 UTC):

1. every open position pays or receives ``value x rate`` for the rate announced for this time,
   ``value`` being the position's value at the mark rounded to the nearest tick (the Funding
   execution's ``lastPx``): payers (longs when the rate is positive, shorts when negative) pay
   ``ceil`` of it into ``FUNDING_POOL``, receivers get ``floor`` of it from the pool, so each
   row's ``execComm`` follows from its own quantity, price and rate. What the rounding leaves
   in the pool goes to ``RESIDUE``; if the receivers' values add up to more than the payers'
   (values are truncated per position), ``RESIDUE`` makes up the pool's few units. A payer
   with less than it owes (bankrupt: its margin is gone) pays what it has and the insurance
   fund covers the rest, as it covers a realised loss beyond the wallet (``fills.realise``),
   so receivers are always paid in full;
2. the next rate becomes the interval's ``F = avg(P) + clamp(I - avg(P), -0.05%, +0.05%)``
   with ``I`` the market's interest rate (0.01% per 8 h by default, ``SetInterestRate``),
   rounded to the step, capped at ``75% x (IM - MM)`` and moving at most ``75% x MM`` from the
   previous rate (both bounds whole steps, toward zero);
3. the samples restart. The indicative rate is the same formula over the samples so far.

A rate restored from an image written before rates were fixed to the step (the image layout
is unchanged, so those images restore as they are) is paid as it was announced; the next
announcement is a whole step.
"""

from perpetua.core.events import Event, Funding, FundingPaid, PremiumSampled
from perpetua.core.instruments import InstrumentKind
from perpetua.core.ledger import FUNDING_POOL, INSURANCE, RESIDUE, TransferCode
from perpetua.core.pricing import impact_prices_fine, next_funding_ns
from perpetua.core.risk import (
    FUNDING_RATE_STEP_PPB,
    fixed_funding_rate_ppb,
    premium_average_ppb,
)
from perpetua.core.state import (
    DEFAULT_INTEREST_PPB,
    PRICE_FINE_PER_TICK,
    FundingState,
    Market,
    Position,
    State,
)

__all__ = [
    "INTEREST_RATE_PPB",
    "PREMIUM_CLAMP_PPB",
    "funding_mark_ticks",
    "next_rate_ppb",
    "pay",
    "sample_premium",
]

INTEREST_RATE_PPB = DEFAULT_INTEREST_PPB  # 0.01% per 8 hours
PREMIUM_CLAMP_PPB = 500_000  # 0.05%
RATE_STEP_PPB = FUNDING_RATE_STEP_PPB
PPB = 1_000_000_000
_PPM_TO_PPB = 1_000


def _toward_zero_step(rate_ppb: int) -> int:
    magnitude = abs(rate_ppb) // RATE_STEP_PPB * RATE_STEP_PPB
    return magnitude if rate_ppb >= 0 else -magnitude


def funding_mark_ticks(market: Market) -> int | None:
    """The mark funding is paid at: the mark rounded to the nearest tick (halves up)."""
    mark = market.mark_fine
    if mark is None or mark <= 0:
        return None
    return max(1, (2 * mark + PRICE_FINE_PER_TICK) // (2 * PRICE_FINE_PER_TICK))


def sample_premium(state: State, market: Market, out: list[Event]) -> None:
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
    # premium / index to the step in one exact division: the mean of one sample of that ratio
    sample = premium_average_ppb(premium * PPB, index)
    funding.premium_sum_ppb += sample
    funding.premium_count += 1
    funding.indicative_rate_ppb = next_rate_ppb(market)
    out.append(
        PremiumSampled(
            state.ts_ns, market.spec.symbol, sample, _average(funding), funding.interest_ppb
        )
    )


def _average(funding: FundingState) -> int:
    return premium_average_ppb(funding.premium_sum_ppb, funding.premium_count)


def next_rate_ppb(market: Market) -> int:
    """The funding rate the current interval's samples give, to the step, both caps applied."""
    funding = market.funding
    premium = _average(funding)
    gap = max(-PREMIUM_CLAMP_PPB, min(PREMIUM_CLAMP_PPB, funding.interest_ppb - premium))
    rate = fixed_funding_rate_ppb(premium + gap)
    spec = market.spec
    cap = _toward_zero_step(3 * (spec.init_margin_ppm - spec.maint_margin_ppm) * _PPM_TO_PPB // 4)
    rate = max(-cap, min(cap, rate))
    step = _toward_zero_step(3 * spec.maint_margin_ppm * _PPM_TO_PPB // 4)
    previous = funding.rate_ppb  # whole steps unless restored from an older image
    low = -((step - previous) // RATE_STEP_PPB) * RATE_STEP_PPB  # ceil to a step
    high = (previous + step) // RATE_STEP_PPB * RATE_STEP_PPB  # floor to a step
    return max(low, min(high, rate))


def _payer(qty: int, rate: int) -> bool:
    return (rate > 0 and qty > 0) or (rate < 0 and qty < 0)


def pay(state: State, market: Market, out: list[Event]) -> None:
    """Settle the funding due at ``next_funding_ns`` for ``market`` (the first command at or
    after it runs this) and roll to the next interval from ``state.ts_ns``.

    The events (``Funding``, each ``FundingPaid`` and their ``Transfer``s) carry the funding
    time, not the command's: BitMEX inserts the funding row and the Funding executions at the
    funding time itself (04:00, 12:00, 20:00 UTC for 8 h), whenever the engine gets to it. Only
    the events: the state, and so replay, is the same as when they carried the command's time.
    """
    spec = market.spec
    funding = market.funding
    rate = funding.rate_ppb
    at_ns = funding.next_funding_ns or state.ts_ns
    mark_ticks = funding_mark_ticks(market)
    if mark_ticks is not None and rate:
        _pay_positions(state, market, rate, mark_ticks, at_ns, out)
    new_rate = next_rate_ppb(market)
    funding.rate_ppb = new_rate
    funding.premium_sum_ppb = 0
    funding.premium_count = 0
    funding.indicative_rate_ppb = new_rate
    funding.next_funding_ns = next_funding_ns(state.ts_ns, spec.funding_interval_ns)
    out.append(Funding(at_ns, spec.symbol, rate, spec.funding_interval_ns, new_rate, new_rate))


def _pay_positions(
    state: State, market: Market, rate: int, mark_ticks: int, ts: int, out: list[Event]
) -> None:
    """Payers pay ``ceil(value x |rate|)`` into the pool, receivers get ``floor`` of theirs;
    the events carry ``ts``, the funding time (``pay``)."""
    spec = market.spec
    currency = spec.settl_currency
    ledger = state.ledger
    magnitude = rate if rate >= 0 else -rate
    mark_fine = mark_ticks * PRICE_FINE_PER_TICK
    holders = [p for _, p in sorted(market.positions.items()) if p.qty]
    pool = 0
    receivers: list[tuple[Position, int, int]] = []
    for pos in holders:
        value = abs(market.value_fine(pos.qty, mark_fine))
        if not _payer(pos.qty, rate):
            receivers.append((pos, value, value * magnitude // PPB))
            continue
        owed = -(-value * magnitude // PPB)
        paid = (
            owed if pos.account < 0 else min(owed, max(0, ledger.available(pos.account, currency)))
        )
        if paid > 0:
            ledger.transfer(
                out, ts, pos.account, FUNDING_POOL, currency, paid, TransferCode.FUNDING, 0
            )
        if owed > paid:  # a bankrupt payer: the insurance fund covers, receivers are whole
            ledger.transfer(
                out,
                ts,
                INSURANCE,
                FUNDING_POOL,
                currency,
                owed - paid,
                TransferCode.BANKRUPTCY_COVER,
                0,
            )
        pool += owed
        out.append(
            FundingPaid(ts, pos.account, spec.symbol, pos.qty, value, rate, -paid, mark_ticks)
        )
        state.touched_positions[(spec.symbol, pos.account)] = pos
    due = sum(share for _, _, share in receivers)
    if due > pool:  # receivers' values outweigh payers' by their truncation: RESIDUE pays
        ledger.transfer(
            out, ts, RESIDUE, FUNDING_POOL, currency, due - pool, TransferCode.FUNDING_RESIDUE, 0
        )
    for pos, value, share in receivers:
        if share > 0:
            ledger.transfer(
                out, ts, FUNDING_POOL, pos.account, currency, share, TransferCode.FUNDING, 0
            )
        out.append(
            FundingPaid(ts, pos.account, spec.symbol, pos.qty, value, rate, share, mark_ticks)
        )
        state.touched_positions[(spec.symbol, pos.account)] = pos
    if pool > due:
        ledger.transfer(
            out, ts, FUNDING_POOL, RESIDUE, currency, pool - due, TransferCode.FUNDING_RESIDUE, 0
        )


def is_funded(market: Market) -> bool:
    return market.spec.kind == InstrumentKind.PERPETUAL and market.spec.funding_interval_ns > 0
