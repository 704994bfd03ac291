"""Convert: swap one currency for another at a quoted price, against the venue's convert desk.

Pricing (pure, shared with the quoting service): the output of ``amount`` of one currency is
what the spot books' visible depth would give for it, walked level by level from the best price
(a VWAP for the size), routed through USDT when neither currency is USDT (every spot pair is
quoted in USDT), less the desk's spread (``CONVERT_SPREAD_PPM``). Each level's proceeds are
truncated, the spread rounds down: the output never exceeds what the books give. A book whose
visible depth (``CONVERT_LEVELS_MAX`` levels) cannot absorb the amount is too thin: no price.

Execution (``Convert``, one command): the user gives ``from_amount`` and receives exactly the
quoted ``to_amount``, two ledger transfers with ``CONVERT_DESK`` (operator-funded inventory,
``FundConvertDesk``), so every currency is conserved. It is refused, changing nothing, when the
quote has expired (command time after ``expires_ns``), its id was used, an asset's pair is not
Open, the user lacks the available balance (the withdrawal rule: margin and cross losses stay
covered), the desk lacks the output, or the books now give less than ``to_amount`` for
``from_amount`` (the quoted price is the guard: a stale quote cannot be executed at a price the
market no longer offers). Quote ids share the deposits' idempotency table (prefix ``cv:``).
"""

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from perpetua.core.commands import Convert, FundConvertDesk
from perpetua.core.events import Converted, Event
from perpetua.core.instruments import InstrumentSpec, Payout, spot_base_amount, spot_quote_amount
from perpetua.core.invariant import invariant
from perpetua.core.ledger import CONVERT_DESK, EXTERNAL, TransferCode
from perpetua.core.placement import reject
from perpetua.core.reasons import Reason
from perpetua.core.state import State
from perpetua.core.units import PPM, mul_div_ceil

__all__ = [
    "CONVERT_LEVELS_MAX",
    "BookLevels",
    "CONVERT_SPREAD_PPM",
    "QUOTE_CURRENCY",
    "ConvertRoute",
    "buy_base_output",
    "convert",
    "convert_output",
    "fund_desk",
    "route",
    "sell_base_output",
]

CONVERT_LEVELS_MAX = 1_000  # price levels walked per leg
CONVERT_SPREAD_PPM = 1_000  # the desk's spread: 0.1% of the output
QUOTE_CURRENCY = "USDt"
_BID = 1
_ASK = -1

Levels = Iterable[tuple[int, int]]  # (price ticks, visible size), best first
BookLevels = Callable[[str, int], Levels]  # (symbol, side: 1 bids, -1 asks) -> levels


class ConvertRoute(NamedTuple):
    """The spot pairs a conversion walks: ``sell`` (base -> USDT) then ``buy`` (USDT -> base);
    an empty symbol skips that leg."""

    sell: str
    buy: str


def route(specs: Sequence[InstrumentSpec], from_currency: str, to_currency: str) -> ConvertRoute:
    """The legs for ``from -> to``; ``("", "")`` when either currency has no USDT pair."""
    pairs = {
        s.base_currency: s.symbol
        for s in specs
        if s.payout == Payout.SPOT and s.settl_currency == QUOTE_CURRENCY
    }
    if from_currency == to_currency:
        return ConvertRoute("", "")
    sell = "" if from_currency == QUOTE_CURRENCY else pairs.get(from_currency, "")
    buy = "" if to_currency == QUOTE_CURRENCY else pairs.get(to_currency, "")
    if (from_currency != QUOTE_CURRENCY and not sell) or (
        to_currency != QUOTE_CURRENCY and not buy
    ):
        return ConvertRoute("", "")
    return ConvertRoute(sell, buy)


def sell_base_output(spec: InstrumentSpec, bids: Levels, base_in: int) -> int | None:
    """Quote minor units the bids pay for ``base_in`` base minor units (a multiple of one
    position unit's worth); None when the depth is too thin or the amount is off the grid."""
    per_unit = spot_base_amount(spec, 1)
    if base_in <= 0 or base_in % per_unit:
        return None
    remaining = base_in // per_unit
    out = 0
    for count, (price, size) in enumerate(bids):
        if count >= CONVERT_LEVELS_MAX or remaining == 0:
            break
        take = min(size, remaining)
        out += spot_quote_amount(spec, take, price)
        remaining -= take
    return out if remaining == 0 else None


def buy_base_output(spec: InstrumentSpec, asks: Levels, quote_in: int) -> int | None:
    """Base minor units the asks sell for ``quote_in`` quote minor units (what cannot buy a
    whole position unit more is the desk's); None when the depth is too thin."""
    if quote_in <= 0:
        return None
    remaining = quote_in
    units = 0
    for count, (price, size) in enumerate(asks):
        if count >= CONVERT_LEVELS_MAX:
            break
        cost = spot_quote_amount(spec, size, price)
        if cost <= remaining:
            units += size
            remaining -= cost
            continue
        low, high = 0, size  # the most units of this level that ``remaining`` pays for
        for _ in range(64):
            if low >= high:
                break
            middle = (low + high + 1) // 2
            if spot_quote_amount(spec, middle, price) <= remaining:
                low = middle
            else:
                high = middle - 1
        units += low
        return spot_base_amount(spec, units) if units else None
    return None  # the depth ran out before the amount was spent: too thin


def convert_output(
    specs: dict[str, InstrumentSpec],
    legs: ConvertRoute,
    book: BookLevels,
    amount: int,
) -> int | None:
    """Output of ``amount`` along ``legs`` at the books ``book`` gives, less the spread."""
    middle = amount
    if legs.sell:
        sold = sell_base_output(specs[legs.sell], book(legs.sell, _BID), amount)
        if sold is None:
            return None
        middle = sold
    out = middle
    if legs.buy:
        bought = buy_base_output(specs[legs.buy], book(legs.buy, _ASK), middle)
        if bought is None:
            return None
        out = bought
    net = out - mul_div_ceil(out, CONVERT_SPREAD_PPM, PPM)  # the spread rounds up
    invariant(net <= out, "the spread cannot add to the output")
    return net if net > 0 else None


def _engine_books(state: State) -> BookLevels:
    def levels(symbol: str, side: int) -> Levels:
        book = state.markets[symbol].book
        found = (book.bids if side == _BID else book.asks).iter_levels(CONVERT_LEVELS_MAX)
        return [(level.price, level.visible_size) for level in found]

    return levels


def _check(state: State, cmd: Convert) -> Reason:
    specs = {symbol: market.spec for symbol, market in state.markets.items()}
    legs = route(list(specs.values()), cmd.from_currency, cmd.to_currency)
    if not legs.sell and not legs.buy:
        return Reason.CONVERT_PAIR_UNKNOWN
    if cmd.from_amount <= 0 or cmd.to_amount <= 0:
        return Reason.AMOUNT_MUST_BE_POSITIVE
    if cmd.ts_ns > cmd.expires_ns:
        return Reason.CONVERT_QUOTE_EXPIRED
    if not cmd.quote_id or "cv:" + cmd.quote_id in state.deposits:
        return Reason.CONVERT_QUOTE_USED
    if any(state.markets[s].state != "Open" for s in legs if s):
        return Reason.CONVERT_ASSET_PAUSED
    if state.ledger.balance(CONVERT_DESK, cmd.to_currency) < cmd.to_amount:
        return Reason.CONVERT_LIQUIDITY_INSUFFICIENT
    now = convert_output(specs, legs, _engine_books(state), cmd.from_amount)
    if now is None or now < cmd.to_amount:
        return Reason.CONVERT_PRICE_MOVED
    return Reason.OK


def convert(state: State, cmd: Convert, out: list[Event], withdrawable: int) -> None:
    """Execute a quoted conversion (module docstring); ``withdrawable``: what the account may
    take out of ``from_currency`` now (treasury's rule)."""
    reason = _check(state, cmd)
    if reason == Reason.OK and withdrawable < cmd.from_amount:
        reject(state, out, "Convert", cmd.account, Reason.BALANCE_INSUFFICIENT,
               required=cmd.from_amount, currency=cmd.from_currency)  # fmt: skip
        return
    if reason != Reason.OK:
        reject(state, out, "Convert", cmd.account, reason)
        return
    state.deposits["cv:" + cmd.quote_id] = cmd.account
    ledger = state.ledger
    ledger.transfer(out, state.ts_ns, cmd.account, CONVERT_DESK, cmd.from_currency,
                    cmd.from_amount, TransferCode.CONVERT, 0)  # fmt: skip
    ledger.transfer(out, state.ts_ns, CONVERT_DESK, cmd.account, cmd.to_currency,
                    cmd.to_amount, TransferCode.CONVERT, 0)  # fmt: skip
    out.append(
        Converted(
            state.ts_ns,
            cmd.quote_id,
            cmd.account,
            cmd.from_currency,
            cmd.to_currency,
            cmd.from_amount,
            cmd.to_amount,
        )
    )


def fund_desk(state: State, cmd: FundConvertDesk, out: list[Event]) -> None:
    """Operator: credit the convert desk's inventory from outside (idempotent by id)."""
    key = "cd:" + cmd.transfer_id
    if not state.ledger.has_currency(cmd.currency):
        reject(state, out, "FundConvertDesk", 0, Reason.CURRENCY_UNKNOWN)
    elif cmd.amount <= 0:
        reject(state, out, "FundConvertDesk", 0, Reason.AMOUNT_MUST_BE_POSITIVE)
    elif not cmd.transfer_id or key in state.deposits:
        reject(state, out, "FundConvertDesk", 0, Reason.TRANSFER_ID_DUPLICATE)
    else:
        state.deposits[key] = CONVERT_DESK
        state.ledger.transfer(out, state.ts_ns, EXTERNAL, CONVERT_DESK, cmd.currency,
                              cmd.amount, TransferCode.CONVERT_DESK_FUNDING, 0)  # fmt: skip
