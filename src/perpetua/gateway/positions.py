"""BitMEX ``Position`` and ``Margin`` rows from the core's position events and the mark.

The core publishes a position's margin figures (``PositionChanged``: posInit, posComm,
posMargin, posMaint, requirements, bankruptcy and liquidation prices), the margin of its
working orders (there, and ``OrderMarginChanged`` when only the orders changed) and its ADL
quintile (``DeleverageRanked``, with mark updates); this module formats them, and derives only
what moves with the mark, per reference §3:

* ``markValue`` = value(currentQty) at the mark (truncated toward zero, as the core values it);
  ``unrealisedPnl`` = markValue - currentCost; ``unrealisedPnlPcnt`` = uPnL / |posCost|,
  ``unrealisedRoePcnt`` = uPnL / posInit (4 decimals, as the ccxt sample);
* ``maintMargin`` = posMargin + uPnL (the position's equity); ``initMargin`` = the working
  orders' margin as the core published it; ``leverage`` =
  the isolated leverage, or for cross the tier's maximum (1 / initMarginReq, in hundredths,
  floored);
* ``homeNotional`` is positive for a long (linear: qty / underlyingToPositionMultiplier;
  inverse: markValue / underlyingToSettleMultiplier); ``foreignNotional`` = -home x mark;
* ``avgEntryPrice`` = the price at which |qty| contracts are worth |currentCost|;
  ``breakEvenPrice`` = the price at which the unrealised PnL pays back the fees paid to open
  the position (``open_comm``), rounded to the tick away from the entry (longs up, shorts down);
* ``deleveragePercentile`` = the core's quintile of the position in its side's
  auto-deleveraging queue over 5 (``deleverage_percentile``): 1 for the first fifth to be
  deleveraged, then 0.8 ... 0.2; null when flat or not ranked since it opened.

Margin per currency: ``walletBalance`` from the ledger's transfers; ``unrealisedPnl`` the sum
over its positions; ``marginBalance`` = wallet + uPnL; ``initMargin`` = the working orders'
margin (derivatives, every symbol with working orders) plus spot holds; ``maintMargin`` = the
sum of posMargin; ``availableMargin`` = marginBalance - initMargin - maintMargin;
``withdrawableMargin`` the same without unrealised profit (never below 0); ``marginLeverage`` =
sum |markValue| / marginBalance; ``marginUsedPcnt`` = (initMargin + maintMargin) /
marginBalance.
"""

from collections.abc import Iterable
from decimal import Decimal

from perpetua.core.events import OrderEvent, PositionChanged
from perpetua.core.instruments import (
    InstrumentSpec,
    Payout,
    contract_value,
    contract_value_at,
    spot_base_amount,
    spot_quote_amount,
)
from perpetua.core.risk import ADL_BUCKETS, price_for_value_fine
from perpetua.core.units import PPM, PRICE_FINE_PER_TICK, mul_div_ceil
from perpetua.wire.values import JsonRow, iso_ms, price, rational

__all__ = [
    "ADL_BUCKETS",
    "PRICE_FINE_PER_TICK",
    "MarginInputs",
    "available_margin",
    "break_even_price",
    "deleverage_percentile",
    "flat_position",
    "leverage_of",
    "margin_row",
    "mark_price",
    "order_exposure",
    "position_row",
]

LEVERAGE_SCALE = 100
_PCT = Decimal("1e-4")
_RATIO = Decimal("1e-6")
_NOTIONAL = Decimal("1e-8")
_ZERO = Decimal(0)


def flat_position(spec: InstrumentSpec, account: int, ts_ns: int) -> PositionChanged:
    """A position the core has not published: flat, cross, at the base risk limit."""
    return PositionChanged(
        ts_ns,
        account,
        spec.symbol,
        0,
        0,
        0,
        0,
        0,
        spec.risk_limit,
        0,
        0,
        0,
        0,
        0,
        spec.init_margin_ppm,
        spec.maint_margin_ppm,
        None,
        None,
        0,
    )


def mark_price(spec: InstrumentSpec, mark_fine: int | None) -> Decimal | None:
    if mark_fine is None:
        return None
    return rational(mark_fine * spec.tick_num, spec.tick_den * PRICE_FINE_PER_TICK)


def _mark_value(spec: InstrumentSpec, qty: int, mark_fine: int | None) -> int:
    if not qty or not mark_fine or mark_fine <= 0:
        return 0
    return contract_value_at(
        spec, qty, mark_fine * spec.tick_num, spec.tick_den * PRICE_FINE_PER_TICK
    )


def leverage_of(ev: PositionChanged) -> Decimal:
    """Isolated: the chosen leverage; cross: the tier's maximum, floor(1 / initMarginReq)."""
    if ev.leverage_e2:
        return rational(ev.leverage_e2, LEVERAGE_SCALE)
    init = ev.init_margin_ppm
    e2 = max(1, PPM * LEVERAGE_SCALE // init) if init > 0 else 10_000
    return rational(e2, LEVERAGE_SCALE)


def _pct(num: int, den: int) -> Decimal:
    if den == 0:
        return _ZERO
    return (Decimal(num) / Decimal(den)).quantize(_PCT)


def _ratio(num: int, den: int) -> Decimal:
    if den <= 0:
        return _ZERO
    return (Decimal(num) / Decimal(den)).quantize(_RATIO).normalize()


def _notionals(
    spec: InstrumentSpec, qty: int, mark_value: int, mark: Decimal | None
) -> tuple[Decimal | None, Decimal | None]:
    """(home, foreign) at the mark; before the first mark at the entry (``mark_value`` is then
    the cost and ``mark`` the entry price), so a position always shows its side."""
    if not qty or mark is None:
        return None, None
    if spec.payout in (Payout.LINEAR, Payout.SPOT) and spec.underlying_to_position_multiplier:
        home = Decimal(qty) / Decimal(spec.underlying_to_position_multiplier)
    elif spec.payout == Payout.INVERSE and spec.underlying_to_settle_multiplier:
        home = Decimal(mark_value) / Decimal(spec.underlying_to_settle_multiplier)
    else:  # quanto: the value in settlement major units (no FX rate to the underlying)
        home = Decimal(mark_value) / Decimal(10**8)
    home = home.quantize(_NOTIONAL).normalize()
    return home, (-home * mark).quantize(_NOTIONAL).normalize()


def _entry_price(spec: InstrumentSpec, qty: int, cost: int) -> Decimal | None:
    if not qty or not cost:
        return None
    magnitude = abs(qty * spec.multiplier)
    if spec.payout == Payout.INVERSE:
        return rational(magnitude, abs(cost))
    return rational(abs(cost), magnitude)


def break_even_price(spec: InstrumentSpec, ev: PositionChanged) -> Decimal | None:
    """Where ``markValue - currentCost`` equals the fees paid to open the position."""
    qty = ev.current_qty
    if not qty:
        return None
    ticks = price_for_value_fine(spec, qty, ev.current_cost + ev.open_comm, 1, round_up=qty > 0)
    return price(spec, ticks)


def deleverage_percentile(quintile: int | None) -> Decimal | None:
    """BitMEX's ``deleveragePercentile`` of the core's quintile (``DeleverageRanked``)."""
    return None if quintile is None else _BUCKET_VALUES[quintile]


_BUCKET_VALUES = {b: (Decimal(b) / ADL_BUCKETS).normalize() for b in range(1, ADL_BUCKETS + 1)}


def order_exposure(spec: InstrumentSpec, orders: Iterable[OrderEvent]) -> tuple[int, int, int, int]:
    """(buy qty, buy cost, sell qty, sell cost) of working priced orders; costs signed as
    BitMEX's execCost (the value of the position change they would make)."""
    buy_qty = buy_cost = sell_qty = sell_cost = 0
    for order in orders:
        if not order.working or order.price is None or order.leaves_qty <= 0:
            continue
        if order.side > 0:
            buy_qty += order.leaves_qty
            buy_cost += contract_value(spec, order.leaves_qty, order.price)
        else:
            sell_qty += order.leaves_qty
            sell_cost += contract_value(spec, -order.leaves_qty, order.price)
    return buy_qty, buy_cost, sell_qty, sell_cost


def position_row(
    spec: InstrumentSpec,
    ev: PositionChanged,
    mark_fine: int | None,
    orders: Iterable[OrderEvent] = (),
    order_margin: int = 0,
    quintile: int | None = None,
) -> JsonRow:
    """The BitMEX ``Position`` of ``ev`` at the mark ``mark_fine`` (millionths of a tick), with
    its working orders, their margin and its ADL quintile as the core published them."""
    qty, cost = ev.current_qty, ev.current_cost
    mark = mark_price(spec, mark_fine)
    mark_value = _mark_value(spec, qty, mark_fine)
    upnl = mark_value - cost if qty and mark is not None else 0
    entry = _entry_price(spec, qty, cost)
    if mark is None:
        home, foreign = _notionals(spec, qty, cost, entry)
    else:
        home, foreign = _notionals(spec, qty, mark_value, mark)
    buy_qty, buy_cost, sell_qty, sell_cost = order_exposure(spec, orders)
    liquidation = price(spec, ev.liquidation_price)
    return {
        "account": ev.account,
        "symbol": ev.symbol,
        "currency": spec.settl_currency,
        "underlying": spec.underlying,
        "quoteCurrency": spec.quote_currency,
        "commission": (Decimal(spec.taker_fee_ppm) / PPM).normalize(),
        "initMarginReq": (Decimal(ev.init_margin_ppm) / PPM).normalize(),
        "maintMarginReq": (Decimal(ev.maint_margin_ppm) / PPM).normalize(),
        "riskLimit": ev.risk_limit,
        "leverage": leverage_of(ev),
        "crossMargin": ev.leverage_e2 == 0,
        "deleveragePercentile": deleverage_percentile(quintile) if qty else None,
        "rebalancedPnl": 0,
        "prevRealisedPnl": 0,
        "openOrderBuyQty": buy_qty,
        "openOrderBuyCost": buy_cost,
        "openOrderBuyPremium": 0,
        "openOrderSellQty": sell_qty,
        "openOrderSellCost": sell_cost,
        "openOrderSellPremium": 0,
        "currentQty": qty,
        "currentCost": cost,
        "realisedPnl": ev.realised_pnl,
        "unrealisedCost": cost,
        "grossOpenCost": abs(buy_cost) + abs(sell_cost),
        "grossOpenPremium": 0,
        "isOpen": qty != 0,
        "markPrice": mark,
        "markValue": mark_value,
        "riskValue": abs(mark_value) + abs(buy_cost) + abs(sell_cost),
        "homeNotional": home,
        "foreignNotional": foreign,
        "posState": "",
        "posCost": cost,
        "posCross": 0,
        "posInit": ev.pos_init,
        "posComm": ev.pos_comm,
        "posLoss": 0,
        "posMargin": ev.pos_margin,
        "posMaint": ev.pos_maint,
        "initMargin": order_margin,
        "maintMargin": ev.pos_margin + upnl,
        "realisedGrossPnl": ev.realised_pnl,
        "unrealisedGrossPnl": upnl,
        "unrealisedPnl": upnl,
        "unrealisedPnlPcnt": _pct(upnl, abs(cost)),
        "unrealisedRoePcnt": _pct(upnl, ev.pos_init),
        "avgCostPrice": entry,
        "avgEntryPrice": entry,
        "breakEvenPrice": break_even_price(spec, ev),
        "marginCallPrice": liquidation,
        "liquidationPrice": liquidation,
        "bankruptPrice": price(spec, ev.bankrupt_price),
        "timestamp": iso_ms(ev.ts_ns),
        "lastPrice": mark,
        "lastValue": mark_value,
    }


class MarginInputs:
    """One account's figures in one currency, summed by ``PrivateViews.margin_inputs``."""

    __slots__ = (
        "wallet",
        "unrealised",
        "pos_margin",
        "order_margin",
        "spot_holds",
        "mark_value_abs",
        "open_cost",
        "realised",
        "deposited",
        "ts_ns",
    )

    def __init__(self, wallet: int, ts_ns: int) -> None:
        self.wallet = wallet
        self.ts_ns = ts_ns
        self.unrealised = 0
        self.pos_margin = 0
        self.order_margin = 0
        self.spot_holds = 0
        self.mark_value_abs = 0
        self.open_cost = 0
        self.realised = 0
        self.deposited = 0

    def add_position(
        self,
        spec: InstrumentSpec,
        ev: PositionChanged,
        mark_fine: int | None,
    ) -> None:
        mark_value = _mark_value(spec, ev.current_qty, mark_fine)
        if ev.current_qty and mark_fine:
            self.unrealised += mark_value - ev.current_cost
        self.mark_value_abs += abs(mark_value)
        self.pos_margin += ev.pos_margin
        self.realised += ev.realised_pnl

    def add_orders(self, spec: InstrumentSpec, orders: Iterable[OrderEvent], margin: int) -> None:
        """Working orders on one derivative and their margin as the core published it."""
        self.order_margin += margin
        _bq, buy_cost, _sq, sell_cost = order_exposure(spec, orders)
        self.open_cost += abs(buy_cost) + abs(sell_cost)

    def add_spot_hold(self, spec: InstrumentSpec, order: OrderEvent) -> None:
        """What an open spot order holds (core margin rule): a buy its quote amount at its
        price plus the base taker fee on it; a sell its base amount."""
        if order.leaves_qty <= 0:
            return
        if order.side > 0 and order.price is not None:
            quote = spot_quote_amount(spec, order.leaves_qty, order.price)
            self.spot_holds += quote + mul_div_ceil(quote, max(spec.taker_fee_ppm, 0), PPM)
        elif order.side < 0:
            self.spot_holds += spot_base_amount(spec, order.leaves_qty)


def available_margin(m: MarginInputs) -> int:
    """marginBalance - initMargin - maintMargin."""
    return m.wallet + m.unrealised - m.order_margin - m.spot_holds - m.pos_margin


def margin_row(account: int, currency: str, m: MarginInputs) -> JsonRow:
    """The BitMEX ``Margin`` of ``account`` in ``currency``."""
    balance = m.wallet + m.unrealised
    init = m.order_margin + m.spot_holds
    maint = m.pos_margin
    available = available_margin(m)
    withdrawable = max(0, available - max(0, m.unrealised))
    return {
        "account": account,
        "currency": currency,
        "riskLimit": 0,
        "state": "",
        "amount": m.wallet,
        "prevRealisedPnl": 0,
        "grossComm": 0,
        "grossOpenCost": m.open_cost,
        "grossOpenPremium": 0,
        "grossExecCost": 0,
        "grossMarkValue": m.mark_value_abs,
        "riskValue": m.mark_value_abs + m.open_cost,
        "initMargin": init,
        "maintMargin": maint,
        "targetExcessMargin": 0,
        "realisedPnl": m.realised,
        "unrealisedPnl": m.unrealised,
        "walletBalance": m.wallet,
        "marginBalance": balance,
        "marginLeverage": _ratio(m.mark_value_abs, balance),
        "marginUsedPcnt": _pct(init + maint, balance) if balance > 0 else _ZERO,
        "excessMargin": available,
        "availableMargin": available,
        "withdrawableMargin": withdrawable,
        "makerFeeDiscount": _ZERO,
        "takerFeeDiscount": _ZERO,
        "timestamp": iso_ms(m.ts_ns),
    }
