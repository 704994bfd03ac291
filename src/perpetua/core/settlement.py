"""Futures settlement (§7.9) and listing new quarterlies.

In the 30 minutes before ``expiry_ns`` each index update adds to a time-weighted sum (in
thousandths of a tick x milliseconds), so the settlement price is the 30-minute TWAP of the
index (``.BXBT30M``), rounded to the nearest tick (halves up) so that the published
``settledPrice``, each Settlement execution's ``lastPx`` and its ``execCost`` and fee agree to
the unit. At expiry every order is cancelled and every position closes at that price, paying
the settlement fee (``settlement_fee_ppm`` of the position's value, rounded up, to FEES, capped
at what the account has); the market's state becomes "Settled". Closing values are truncated
per position, so CLEARING is left with their small sum: it moves to RESIDUE (either way),
keeping CLEARING equal to minus the open positions' costs.
"""

from perpetua.core import lifecycle, margin
from perpetua.core.events import Event, InstrumentStateChanged, PositionSettled, Settled
from perpetua.core.fills import apply_position_fill, realise
from perpetua.core.ledger import CLEARING, FEES, RESIDUE, TransferCode
from perpetua.core.state import PRICE_FINE_PER_TICK, Market, State
from perpetua.core.units import PPM

__all__ = ["SETTLEMENT_WINDOW_NS", "record_index", "settle", "settlement_price_fine"]

SETTLEMENT_WINDOW_NS = 30 * 60 * 1_000_000_000
_NS_PER_MS = 1_000_000
_FINE_PER_TWAP_UNIT = 1_000


def record_index(market: Market, previous_fine: int | None, previous_ns: int, now_ns: int) -> None:
    """Add the index that held from ``previous_ns`` to ``now_ns`` to the settlement TWAP."""
    expiry = market.spec.expiry_ns
    if not expiry or previous_fine is None:
        return
    start = max(previous_ns, expiry - SETTLEMENT_WINDOW_NS)
    end = min(now_ns, expiry)
    if end > start:
        # Thousandths of a tick x milliseconds: the sum stays far inside 64 bits (snapshots
        # are MessagePack) over any 30-minute window at any listed price.
        ms = end // _NS_PER_MS - start // _NS_PER_MS
        market.funding.twap_sum += previous_fine // _FINE_PER_TWAP_UNIT * ms
        market.funding.twap_ns += ms * _NS_PER_MS


def settlement_price_fine(market: Market) -> int | None:
    """The settlement price in millionths of a tick, a whole tick; None without any price."""
    funding = market.funding
    if funding.twap_ns > 0:
        fine = funding.twap_sum * _FINE_PER_TWAP_UNIT // (funding.twap_ns // _NS_PER_MS)
    elif market.index_fine is not None:
        fine = market.index_fine
    elif market.mark_fine is not None:
        fine = market.mark_fine
    else:
        return None
    return (2 * fine + PRICE_FINE_PER_TICK) // (2 * PRICE_FINE_PER_TICK) * PRICE_FINE_PER_TICK


def settle(state: State, market: Market, out: list[Event]) -> None:
    spec = market.spec
    price = settlement_price_fine(market)
    if price is None or price <= 0:
        return  # nothing to settle on: stays open until an index arrives
    for acct_id in sorted({o.account for o in state.orders.values() if o.symbol == spec.symbol}):
        lifecycle.cancel_account_orders(
            state, state.account(acct_id), out, "Canceled: instrument settled", spec.symbol
        )
    ledger = state.ledger
    currency = spec.settl_currency
    ts = state.ts_ns
    residue = 0
    for _, pos in sorted(market.positions.items()):
        if pos.qty == 0:
            continue
        qty = pos.qty
        value = market.value_fine(-qty, price)
        ref = state.new_exec_id()
        realised = apply_position_fill(market, pos, -qty, value, 1)
        realise(state, out, pos.account, currency, realised, ref)
        residue += value
        fee = -(-abs(value) * spec.settlement_fee_ppm // PPM)
        if pos.account > 0:
            fee = min(fee, ledger.available(pos.account, currency))
        if fee > 0 and pos.account > 0:
            ledger.transfer(
                out, ts, pos.account, FEES, currency, fee, TransferCode.SETTLEMENT_FEE, ref
            )
        else:
            fee = 0
        out.append(PositionSettled(ts, pos.account, spec.symbol, qty, price, realised, fee))
        margin.refresh_requirement(state, market, pos)
        state.touched_positions[(spec.symbol, pos.account)] = pos
    if residue > 0:
        ledger.transfer(
            out, ts, CLEARING, RESIDUE, currency, residue, TransferCode.SETTLEMENT_RESIDUE, 0
        )
    elif residue < 0:
        ledger.transfer(
            out, ts, RESIDUE, CLEARING, currency, -residue, TransferCode.SETTLEMENT_RESIDUE, 0
        )
    market.state = "Settled"
    out.append(Settled(ts, spec.symbol, price, "Settlement"))
    out.append(InstrumentStateChanged(ts, spec.symbol, "Settled"))
