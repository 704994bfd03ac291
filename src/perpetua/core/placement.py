"""Placing an order: validation in a fixed precedence, acceptance, and activation.

Precedence of checks (the first broken rule names the rejection): instrument (known, open, in
trading hours) -> side -> identifiers and text -> execInst combination -> ordType's required and
forbidden fields -> prices (positive, within max) -> quantity (positive, on lot, within max) ->
displayQty -> contingency -> clOrdID uniqueness -> open/stop order limits -> money.

An accepted order gets its id from ``state.next_order_id`` (a pure function of the command
stream) and a ``New`` execution. Then one of: it waits for its trigger (Stop, StopLimit,
MarketIfTouched, LimitIfTouched), waits for its OneTriggersTheOther primary, or is *activated*:
priced (market orders at the protective band), matched, and rested or cancelled by its time in
force. A Market order executes only within ``price_band_ppm`` of the reference price (mark, else
last, else the best opposite price); the unfilled rest is cancelled.
"""

from perpetua.core import margin
from perpetua.core.calendar import ALWAYS_OPEN, is_open
from perpetua.core.commands import PlaceOrder
from perpetua.core.enums import (
    EXEC_INST_ALL,
    ORD_MARKET,
    ORD_MARKET_IF_TOUCHED,
    ORD_STOP,
    TIF_FILL_OR_KILL,
    TIF_IMMEDIATE_OR_CANCEL,
    ContingencyType,
    ExecInst,
    ExecType,
    OrdStatus,
    OrdType,
    PegPriceType,
    Side,
    TimeInForce,
)
from perpetua.core.events import Event, Rejected
from perpetua.core.instruments import Payout, spot_base_amount, spot_quote_amount
from perpetua.core.limits import (
    CL_ORD_ID_LENGTH_MAX,
    OPEN_ORDERS_PER_SYMBOL_MAX,
    STOP_ORDERS_PER_SYMBOL_MAX,
    TEXT_LENGTH_MAX,
)
from perpetua.core.matching import MatchEnd, crosses_all_or_none, fillable_qty, match
from perpetua.core.orders import Order, transition
from perpetua.core.reasons import Reason
from perpetua.core.registry import (
    is_triggered_type,
    publish_order,
    register,
    retire,
    start_working,
    stop_working,
)
from perpetua.core.state import PRICE_FINE_PER_TICK, Market, State
from perpetua.core.units import PPM, mul_div_ceil, mul_div_floor

__all__ = ["activate", "cancel_order", "place", "reject"]

_TRIGGER_SOURCES = ExecInst.MARK_PRICE | ExecInst.LAST_PRICE | ExecInst.INDEX_PRICE
_STOP_TYPES = (
    OrdType.STOP,
    OrdType.STOP_LIMIT,
    OrdType.MARKET_IF_TOUCHED,
    OrdType.LIMIT_IF_TOUCHED,
)
_PRICED = (OrdType.LIMIT, OrdType.STOP_LIMIT, OrdType.LIMIT_IF_TOUCHED)
_STOP_PX_TYPES = _STOP_TYPES


def reject(
    state: State,
    out: list[Event],
    command: str,
    account: int,
    reason: Reason,
    cl_ord_id: str = "",
    order_id: int = 0,
    required: int = 0,
    currency: str = "",
) -> None:
    out.append(
        Rejected(state.ts_ns, command, account, reason, cl_ord_id, order_id, required, currency)
    )


def _check_instrument(state: State, cmd: PlaceOrder) -> Reason:
    market = state.markets.get(cmd.symbol)
    if market is None or market.spec.payout == Payout.NONE:
        return Reason.INSTRUMENT_UNKNOWN
    if market.state != "Open":
        return Reason.INSTRUMENT_NOT_OPEN
    hours = market.hours
    if hours is not ALWAYS_OPEN and not is_open(hours, cmd.ts_ns):
        return Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS
    return Reason.OK


def _check_exec_inst(cmd: PlaceOrder, spot: bool) -> Reason:
    inst = cmd.exec_inst
    if inst & ~EXEC_INST_ALL:
        return Reason.EXEC_INST_INVALID
    sources = inst & _TRIGGER_SOURCES
    if sources & (sources - 1):
        return Reason.EXEC_INST_CONFLICT
    if spot and inst & (ExecInst.REDUCE_ONLY | ExecInst.CLOSE):
        return Reason.REDUCE_ONLY_NOT_FOR_SPOT
    if spot and inst & ExecInst.INDEX_PRICE:
        return Reason.INDEX_PRICE_NOT_FOR_SPOT
    if inst & ExecInst.LAST_WITHIN_MARK and not (
        inst & ExecInst.LAST_PRICE and cmd.ord_type in (OrdType.STOP, OrdType.STOP_LIMIT)
    ):
        return Reason.LAST_WITHIN_MARK_REQUIRES_LAST_PRICE
    if inst & ExecInst.PARTICIPATE_DO_NOT_INITIATE and (
        cmd.ord_type in (OrdType.MARKET, OrdType.STOP, OrdType.MARKET_IF_TOUCHED)
        or cmd.time_in_force in (TimeInForce.IMMEDIATE_OR_CANCEL, TimeInForce.FILL_OR_KILL)
    ):
        return Reason.EXEC_INST_CONFLICT
    return Reason.OK


def _check_shape(cmd: PlaceOrder) -> Reason:
    ord_type = cmd.ord_type
    trailing = cmd.peg_price_type == PegPriceType.TRAILING_STOP_PEG
    if ord_type in _PRICED and cmd.price is None:
        return Reason.PRICE_REQUIRED
    if ord_type in (OrdType.MARKET, OrdType.STOP, OrdType.MARKET_IF_TOUCHED) and (
        cmd.price is not None
    ):
        return Reason.PRICE_NOT_ALLOWED_FOR_ORD_TYPE
    if ord_type in _STOP_PX_TYPES and cmd.stop_px is None and not trailing:
        return Reason.STOP_PX_REQUIRED
    if ord_type not in _STOP_PX_TYPES and cmd.stop_px is not None:
        return Reason.STOP_PX_INVALID_FOR_ORD_TYPE
    if ord_type == OrdType.PEGGED:
        if cmd.peg_price_type not in (PegPriceType.PRIMARY_PEG, PegPriceType.MARKET_PEG):
            return Reason.PEG_PRICE_TYPE_INVALID
        if not cmd.exec_inst & ExecInst.FIXED:
            return Reason.PEG_REQUIRES_FIXED
        if cmd.price is not None:
            return Reason.PRICE_NOT_ALLOWED_FOR_ORD_TYPE
    elif trailing:
        if ord_type not in _STOP_TYPES or cmd.peg_offset is None or cmd.peg_offset == 0:
            return Reason.PEG_PRICE_TYPE_INVALID
    elif cmd.peg_price_type != PegPriceType.NONE:
        return Reason.PEG_PRICE_TYPE_INVALID
    return Reason.OK


def trailing_offset_ok(ord_type: int, side: int, peg_offset: int) -> bool:
    """The reference's rule: a trailing sell Stop (StopLimit) or buy IfTouched order trails
    below the price, so its offset is negative; a buy Stop or sell IfTouched one positive.
    The other sign would put the stop on the wrong side of the price and trigger at once."""
    rises = (ord_type in (OrdType.STOP, OrdType.STOP_LIMIT)) == (side > 0)
    return peg_offset > 0 if rises else peg_offset < 0


def _check_trailing(cmd: PlaceOrder, side: int) -> Reason:
    if cmd.peg_price_type != PegPriceType.TRAILING_STOP_PEG or cmd.peg_offset is None:
        return Reason.OK
    if not trailing_offset_ok(cmd.ord_type, side, cmd.peg_offset):
        return Reason.PEG_OFFSET_SIGN_INVALID
    return Reason.OK


def _check_numbers(market: Market, cmd: PlaceOrder, qty: int) -> Reason:
    spec = market.spec
    for px, positive, bad_tick in (
        (cmd.price, Reason.PRICE_MUST_BE_POSITIVE, Reason.PRICE_ABOVE_MAX),
        (cmd.stop_px, Reason.PRICE_MUST_BE_POSITIVE, Reason.PRICE_ABOVE_MAX),
    ):
        if px is not None:
            if px <= 0:
                return positive
            if px > spec.max_price_ticks:
                return bad_tick
    if qty <= 0:
        return Reason.QTY_MUST_BE_POSITIVE
    if qty % spec.lot_size:
        return Reason.QTY_MUST_BE_MULTIPLE_OF_LOT
    if qty > spec.max_order_qty:
        return Reason.QTY_ABOVE_MAX
    display = cmd.display_qty
    if display is not None and (display < 0 or display > qty or display % spec.lot_size):
        return Reason.DISPLAY_QTY_INVALID
    if cmd.exec_inst & ExecInst.ALL_OR_NONE and display != 0:
        return Reason.ALL_OR_NONE_REQUIRES_HIDDEN
    return Reason.OK


def _check_identity(state: State, market: Market, cmd: PlaceOrder) -> Reason:
    if len(cmd.cl_ord_id) > CL_ORD_ID_LENGTH_MAX:
        return Reason.CL_ORD_ID_TOO_LONG
    if len(cmd.text) > TEXT_LENGTH_MAX:
        return Reason.TEXT_TOO_LONG
    if cmd.contingency_type != ContingencyType.NONE and not cmd.cl_ord_link_id:
        return Reason.CONTINGENCY_TYPE_INVALID
    acct = state.accounts.get(cmd.account)
    if acct is not None and cmd.cl_ord_id and cmd.cl_ord_id in acct.cl_ord_ids:
        return Reason.CL_ORD_ID_DUPLICATE
    pos = market.positions.get(cmd.account)
    if pos is not None:
        if pos.open_orders_count >= OPEN_ORDERS_PER_SYMBOL_MAX:
            return Reason.OPEN_ORDERS_MAX
        if cmd.ord_type in _STOP_TYPES and pos.stop_orders_count >= STOP_ORDERS_PER_SYMBOL_MAX:
            return Reason.STOP_ORDERS_MAX
    return Reason.OK


def _resolve_close(market: Market, cmd: PlaceOrder) -> tuple[Reason, int, int]:
    """(reason, side, qty) after applying execInst Close's defaults."""
    pos = market.positions.get(cmd.account)
    held = 0 if pos is None else pos.qty
    side = cmd.side
    qty = cmd.order_qty
    if cmd.exec_inst & ExecInst.CLOSE:
        if side is None:
            if held == 0:
                return Reason.CLOSE_WITHOUT_POSITION, 0, 0
            side = Side.SELL if held > 0 else Side.BUY
        if qty is None:
            if held == 0 or (held > 0) == (side > 0):
                return Reason.CLOSE_WITHOUT_POSITION, 0, 0
            qty = abs(held)
    if side is None or side not in (Side.BUY, Side.SELL):
        return Reason.SIDE_INVALID, 0, 0
    if qty is None:
        return Reason.QTY_MUST_BE_POSITIVE, 0, 0
    return Reason.OK, int(side), qty


def _validate(state: State, cmd: PlaceOrder) -> tuple[Reason, int, int]:
    reason = _check_instrument(state, cmd)
    if reason:
        return reason, 0, 0
    market = state.markets[cmd.symbol]
    reason, side, qty = _resolve_close(market, cmd)
    if reason:
        return reason, 0, 0
    for check in (
        _check_exec_inst(cmd, market.spot),
        _check_shape(cmd),
        _check_trailing(cmd, side),
        _check_numbers(market, cmd, qty),
        _check_identity(state, market, cmd),
    ):
        if check:
            return check, 0, 0
    return Reason.OK, side, qty


def _default_tif(cmd: PlaceOrder) -> TimeInForce:
    if cmd.time_in_force is not None:
        return cmd.time_in_force
    if cmd.ord_type in (OrdType.MARKET, OrdType.STOP, OrdType.MARKET_IF_TOUCHED):
        return TimeInForce.IMMEDIATE_OR_CANCEL
    return TimeInForce.GOOD_TILL_CANCEL


def _peg_price(market: Market, side: int, cmd: PlaceOrder) -> int | None:
    book = market.book
    if cmd.peg_price_type == PegPriceType.PRIMARY_PEG:
        touch = book.side(side).best_price()
        if touch is None:
            touch = book.opposite(side).best_price()
    else:
        touch = book.opposite(side).best_price()
    if touch is None:
        return None
    price = touch + (cmd.peg_offset or 0)
    return price if 0 < price <= market.spec.max_price_ticks else None


def place(state: State, cmd: PlaceOrder, out: list[Event]) -> Order | None:
    """Validate and accept ``cmd``; return the new order (None when rejected)."""
    reason, side, qty = _validate(state, cmd)
    if reason:
        reject(state, out, "PlaceOrder", cmd.account, reason, cmd.cl_ord_id)
        return None
    market = state.markets[cmd.symbol]
    price = cmd.price
    if cmd.ord_type == OrdType.PEGGED:
        price = _peg_price(market, side, cmd)
        if price is None:
            reject(
                state, out, "PlaceOrder", cmd.account, Reason.PEG_NO_REFERENCE_PRICE, cmd.cl_ord_id
            )
            return None
    order = Order(
        state.next_order_id,
        cmd.account,
        cmd.symbol,
        side,
        cmd.ord_type,
        _default_tif(cmd),
        cmd.exec_inst,
        qty,
        price,
        cmd.stop_px,
        cmd.display_qty,
        cmd.peg_price_type,
        cmd.peg_offset,
        cmd.contingency_type,
        cmd.cl_ord_id,
        cmd.cl_ord_link_id,
        cmd.text,
        cmd.ts_ns,
    )
    if _reduce_only_check(market, cmd.account, side, cmd.exec_inst, cmd.ord_type):
        _accept_canceled(state, market, order, out)
        return order
    waiting = _waits(state, market, order)
    if not waiting:
        order.limit_price = _limit_price(market, order)
        if not _money_ok(state, market, order, out):
            return None
    state.next_order_id += 1
    order.working = not waiting
    register(state, market, order)
    publish_order(state, out, order, ExecType.NEW)
    if not waiting:
        activate(state, market, order, out)
    return order


def _accept_canceled(state: State, market: Market, order: Order, out: list[Event]) -> None:
    """BitMEX accepts a ReduceOnly or Close order with nothing to reduce and cancels it at
    once, naming the side and the position (its text, then the client's)."""
    pos = market.positions.get(order.account)
    held = 0 if pos is None else pos.qty
    side = "Buy" if order.side > 0 else "Sell"
    text = (
        f"Canceled: Order had execInst of Close or ReduceOnly and side of {side} but "
        f"current position is {held}"
    )
    state.next_order_id += 1
    register(state, market, order)
    publish_order(state, out, order, ExecType.NEW)
    cancel_order(state, market, order, out, f"{text}\n{order.text}" if order.text else text)


def _reduce_only_check(
    market: Market, account: int, side: int, exec_inst: int, ord_type: int
) -> Reason:
    if not exec_inst & (ExecInst.REDUCE_ONLY | ExecInst.CLOSE) or ord_type in _STOP_TYPES:
        return Reason.OK
    pos = market.positions.get(account)
    held = 0 if pos is None else pos.qty
    if held == 0 or (held > 0) == (side > 0):
        return Reason.REDUCE_ONLY_WOULD_INCREASE_POSITION
    return Reason.OK


def _waits(state: State, market: Market, order: Order) -> bool:
    """Register ``order`` as waiting for a trigger or an OTO primary, if it must wait."""
    if is_triggered_type(order.ord_type):
        if order.peg_price_type == PegPriceType.TRAILING_STOP_PEG:
            market.trailing[order.order_id] = order
            if order.stop_px is None:
                order.stop_px = trailing_start(market, order)
        market.stops[order.trigger_source][order.order_id] = order
        return True
    if order.contingency_type == ContingencyType.ONE_TRIGGERS_THE_OTHER:
        acct = state.accounts.get(order.account)
        primaries = None if acct is None else acct.links.get(order.cl_ord_link_id)
        if primaries:
            order.held_by_link = True
            return True
    return False


def trailing_start(market: Market, order: Order) -> int | None:
    reference = market.reference_fine(order.trigger_source)
    if reference is None or order.peg_offset is None:
        return None
    return max(1, reference // PRICE_FINE_PER_TICK + order.peg_offset)


def _band_reference(market: Market, side: int) -> int | None:
    """Reference price in ticks for the protective band: mark, else last, else best opposite."""
    if market.mark_fine is not None:
        return market.mark_fine // PRICE_FINE_PER_TICK
    if market.last_price is not None:
        return market.last_price
    return market.book.opposite(side).best_price()


def _limit_price(market: Market, order: Order) -> int | None:
    if order.price is not None:
        return order.price
    reference = _band_reference(market, order.side)
    if reference is None:
        return None
    band = market.spec.price_band_ppm
    if order.side > 0:
        return min(market.spec.max_price_ticks, reference + mul_div_floor(reference, band, PPM))
    return max(1, reference - mul_div_floor(reference, band, PPM))


def _money_ok(state: State, market: Market, order: Order, out: list[Event]) -> bool:
    """Can the account afford ``order``'s open quantity? Rejects with the amount if not."""
    spec = market.spec
    price = order.limit_price
    if price is None:
        return True  # nothing to execute against: it will be cancelled for no liquidity
    if market.spot:
        if order.side > 0:
            currency = spec.settl_currency
            quote = spot_quote_amount(spec, order.leaves_qty, price)
            need = quote + mul_div_ceil(
                quote, max(margin.taker_rate_ppm(state, market, order.account), 0), PPM
            )
        else:
            currency = spec.base_currency
            need = spot_base_amount(spec, order.leaves_qty)
        have = state.ledger.available(order.account, currency)
        if need <= have:
            return True
        reject(
            state,
            out,
            "PlaceOrder",
            order.account,
            Reason.BALANCE_INSUFFICIENT,
            order.cl_ord_id,
            0,
            need,
            currency,
        )
        return False
    pos = market.position(order.account)
    value = market.value_abs(order.leaves_qty, price)
    if order.account < 0:
        return True  # the liquidation engine (insurance fund) trades without margin
    reason, required = margin.requirement_after(state, market, pos, order.side, value, 0)
    if reason == Reason.OK:
        return True
    market.drop_position_if_empty(pos)
    reject(
        state,
        out,
        "PlaceOrder",
        order.account,
        reason,
        order.cl_ord_id,
        0,
        required,
        spec.settl_currency,
    )
    return False


def activate(state: State, market: Market, order: Order, out: list[Event]) -> None:
    """Price, match and rest (or cancel) an accepted order that is ready to work."""
    order.working = True
    if order.limit_price is None:
        order.limit_price = _limit_price(market, order)
    if order.limit_price is None:
        cancel_order(state, market, order, out, "Canceled: no liquidity and no reference price")
        return
    book = market.book
    opposite_best = book.opposite(order.side).best_price()
    would_cross = opposite_best is not None and (
        opposite_best <= order.limit_price if order.side > 0 else opposite_best >= order.limit_price
    )
    if order.exec_inst & ExecInst.PARTICIPATE_DO_NOT_INITIATE and would_cross:
        cancel_order(
            state, market, order, out, "Canceled: Order had execInst of ParticipateDoNotInitiate"
        )
        return
    all_or_none = order.time_in_force == TIF_FILL_OR_KILL or bool(
        order.exec_inst & ExecInst.ALL_OR_NONE
    )
    if (
        all_or_none
        and would_cross
        and fillable_qty(market, order, order.leaves_qty) < (order.leaves_qty)
    ):
        # It can neither fill whole now nor rest across the book: killed, like FillOrKill.
        # (An AllOrNone order that does not cross rests, hidden, and executes only whole.)
        cancel_order(
            state,
            market,
            order,
            out,
            "Canceled: FillOrKill order could not be filled"
            if order.time_in_force == TIF_FILL_OR_KILL
            else "Canceled: AllOrNone order could not be filled",
        )
        return
    end = MatchEnd.EXHAUSTED
    executed = state.executed
    if would_cross:
        end = match(state, market, order, out, executed)
        margin.refresh_requirement(state, market, market.position_of(order))
    if order.leaves_qty == 0:
        _finish_filled(state, market, order)
        return
    _rest_or_cancel(state, market, order, end, out)


def _finish_filled(state: State, market: Market, order: Order) -> None:
    if order.hold_amount:
        margin.set_spot_hold(state, market, order)
    if order.margin_qty:
        margin.retrack(state, market, market.position_of(order), order, 0)
    retire(state, market, order)


def _rest_or_cancel(
    state: State, market: Market, order: Order, end: MatchEnd, out: list[Event]
) -> None:
    if end == MatchEnd.SELF_TRADE:
        cancel_order(state, market, order, out, "Canceled: Self trade prevention")
        return
    if end == MatchEnd.REDUCE_ONLY:
        cancel_order(
            state, market, order, out, "Canceled: ReduceOnly order would have increased position"
        )
        return
    if order.ord_type in (ORD_MARKET, ORD_STOP, ORD_MARKET_IF_TOUCHED):
        cancel_order(
            state,
            market,
            order,
            out,
            "Canceled: Market order outside price band"
            if order.cum_qty
            else "Canceled: no liquidity within the price band",
        )
        return
    if order.time_in_force in (TIF_IMMEDIATE_OR_CANCEL, TIF_FILL_OR_KILL):
        cancel_order(state, market, order, out, "Canceled: ImmediateOrCancel")
        return
    if crosses_all_or_none(market, order):  # resting would cross the book
        cancel_order(state, market, order, out, "Canceled: would cross an AllOrNone order")
        return
    start_working(state, market, order, rest=True, out=out)


def cancel_order(
    state: State,
    market: Market,
    order: Order,
    out: list[Event],
    text: str,
    status: OrdStatus = OrdStatus.CANCELED,
) -> None:
    """End a live order: out of the book, margin and holds released, retired."""
    stop_working(state, market, order, out)
    order.leaves_qty = 0
    order.visible_qty = 0
    order.working = False
    order.text = text
    transition(order, status)
    exec_type = ExecType.EXPIRED if status == OrdStatus.EXPIRED else ExecType.CANCELED
    publish_order(state, out, order, exec_type)
    retire(state, market, order)
