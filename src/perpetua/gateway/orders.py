"""Order requests -> core commands, and the core's events -> the order rows BitMEX returns.

Prices arrive as decimal strings or JSON numbers and are parsed exactly (``Decimal``); a price
off the instrument's tick grid is rejected with "Invalid price", never rounded. Quantities must
be whole lots ("orderQty is invalid"). ``ordType`` is inferred as BitMEX does when omitted:
Limit with a price, Stop with a stopPx, StopLimit with both, Pegged with only a pegPriceType,
else Market. A negative ``orderQty`` without ``side`` means Sell (the sample market maker's bulk
form); with an explicit ``side`` it is a 400, never a silent flip. ``clOrdID``, ``clOrdLinkID``
and ``text`` must be printable (no control characters). A cancel names at most
``CANCEL_IDS_MAX`` orders; ``DELETE /order/all``'s filter names order fields only
(``CANCEL_FILTER_FIELDS``), each a value or an IN list of at most ``CANCEL_FILTER_VALUES_MAX``,
enum values by their BitMEX names.
"""

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final

from perpetua.core.commands import AmendOrder, CancelOrders, PlaceOrder
from perpetua.core.enums import ExecType
from perpetua.core.events import Event, OrderEvent, Rejected
from perpetua.core.instruments import InstrumentSpec, qty_on_lot, ticks_for
from perpetua.core.reasons import MESSAGES, Reason
from perpetua.gateway.errors import ApiError, bad_request, from_rejection
from perpetua.gateway.params import Params, parse_number
from perpetua.gateway.symbols import SymbolIndex
from perpetua.marketdata.ids import parse_order_uuid
from perpetua.wire.vocabulary import (
    CONTINGENCY_NAMES,
    EXEC_INST_BITS,
    ORD_STATUS_NAMES,
    ORD_TYPE_NAMES,
    PEG_NAMES,
    SIDE_NAMES,
    TIF_NAMES,
    by_name,
)

__all__ = [
    "DEFAULT_TEXT",
    "amend_command",
    "cancel_command",
    "cancel_filter",
    "order_matches",
    "event_result",
    "place_command",
    "ticks_of",
]

DEFAULT_TEXT = "Submitted via API."
_SIDES = by_name(SIDE_NAMES)
_ORD_TYPES = by_name(ORD_TYPE_NAMES)
_TIFS = by_name(TIF_NAMES)
_PEGS = by_name(PEG_NAMES)
_CONTINGENCIES = by_name(CONTINGENCY_NAMES)
_EXEC_TYPE_NEW = int(ExecType.NEW)  # a plain int: compared per event
PRICE_DIGITS_MAX = 30
# BitMEX publishes no cap on the ids of one cancel; ours keeps one request to one bounded
# core command and one SQL query for its misses (and costs ceil(n / 10) requests).
CANCEL_IDS_MAX: Final = 500
CANCEL_FILTER_KEYS_MAX: Final = 16
CANCEL_FILTER_VALUES_MAX: Final = 500
_FILTER_ENUMS: Final = {
    "side": frozenset(SIDE_NAMES.values()),
    "ordType": frozenset(ORD_TYPE_NAMES.values()),
    "timeInForce": frozenset(TIF_NAMES.values()),
    "pegPriceType": frozenset(PEG_NAMES.values()),
    "contingencyType": frozenset(CONTINGENCY_NAMES.values()),
    "ordStatus": frozenset(ORD_STATUS_NAMES.values()),
}
_FILTER_NUMBERS: Final = frozenset(
    {
        "orderQty",
        "price",
        "displayQty",
        "stopPx",
        "pegOffsetValue",
        "leavesQty",
        "cumQty",
        "account",
    }
)
_FILTER_TEXTS: Final = frozenset(
    {"orderID", "clOrdID", "clOrdLinkID", "symbol", "currency", "settlCurrency", "execInst", "text"}
)
_FILTER_BOOLS: Final = frozenset({"workingIndicator"})
CANCEL_FILTER_FIELDS: Final = frozenset(
    {*_FILTER_ENUMS, *_FILTER_NUMBERS, *_FILTER_TEXTS, *_FILTER_BOOLS}
)


def printable(params: Params, name: str) -> str | None:
    """``params.string(name)``, refused with 400 when it holds a control character."""
    value = params.string(name)
    if value is not None and not value.isprintable():
        raise bad_request(f"Invalid {name}: control characters are not allowed")
    return value


def ticks_of(spec: InstrumentSpec, value: Decimal, message: str, signed: bool = False) -> int:
    """Exact ticks of a decimal price; ``ApiError(message)`` when off the grid or not positive."""
    if not value.is_finite() or abs(value.adjusted()) > PRICE_DIGITS_MAX:
        raise ApiError(400, message)
    num, den = value.as_integer_ratio()
    on_grid = ticks_for(spec, num, den)
    if not on_grid.ok or (not signed and on_grid.ticks <= 0):
        raise ApiError(400, message)
    return on_grid.ticks


def _name(table: dict[str, int], value: str | None, message: str) -> int | None:
    if value is None:
        return None
    found = table.get(value)
    if found is None:
        raise ApiError(400, message)
    return found


def _exec_inst(text: str | None) -> int:
    bits = 0
    for part in (text or "").split(","):
        name = part.strip()
        if not name:
            continue
        bit = EXEC_INST_BITS.get(name)
        if bit is None:
            raise ApiError(400, MESSAGES[Reason.EXEC_INST_INVALID])
        bits |= bit
    return bits


def _qty(params: Params, name: str, spec: InstrumentSpec) -> int | None:
    try:
        qty = params.integer(name)
    except ApiError:
        raise ApiError(400, "orderQty is invalid") from None
    if qty is not None and (not qty_on_lot(spec, qty) or abs(qty) > spec.max_order_qty):
        raise ApiError(400, "orderQty is invalid")
    return qty


def _spec_of(symbols: SymbolIndex, symbol: str | None) -> InstrumentSpec:
    if symbol is None:
        raise bad_request("'symbol' is a required arg.")
    found = symbols.one(symbol)
    spec = symbols.specs.get(found) if found else None
    if spec is None or not spec.is_tradable_kind:
        raise ApiError(400, MESSAGES[Reason.INSTRUMENT_UNKNOWN])
    return spec


def _infer_ord_type(params: Params) -> int:
    has_price, has_stop = params.has("price"), params.has("stopPx")
    if has_price and has_stop:
        return _ORD_TYPES["StopLimit"]
    if has_stop:
        return _ORD_TYPES["Stop"]
    if has_price:
        return _ORD_TYPES["Limit"]
    if params.has("pegPriceType"):
        return _ORD_TYPES["Pegged"]
    return _ORD_TYPES["Market"]


def place_command(params: Params, account: int, symbols: SymbolIndex) -> PlaceOrder:
    """A ``PlaceOrder`` from POST /order parameters (also one element of a bulk place)."""
    if params.has("simpleOrderQty"):
        raise bad_request("simpleOrderQty is deprecated: use orderQty")
    spec = _spec_of(symbols, params.string("symbol"))
    qty = _qty(params, "orderQty", spec)
    side = _name(_SIDES, params.string("side"), MESSAGES[Reason.SIDE_INVALID])
    if qty is not None and qty < 0:
        if side is not None:
            raise ApiError(400, "orderQty is invalid: negative with an explicit side")
        side = -1
        qty = -qty
    exec_inst = _exec_inst(params.string("execInst"))
    if side is None and not (qty is None and exec_inst & EXEC_INST_BITS["Close"]):
        side = 1
    ord_type = _name(_ORD_TYPES, params.string("ordType"), MESSAGES[Reason.ORD_TYPE_INVALID])
    price = params.decimal("price")
    stop_px = params.decimal("stopPx")
    peg_offset = params.decimal("pegOffsetValue")
    display = params.integer("displayQty")
    return PlaceOrder(
        ts_ns=0,
        account=account,
        symbol=spec.symbol,
        side=side,  # type: ignore[arg-type]
        order_qty=qty,
        ord_type=ord_type if ord_type is not None else _infer_ord_type(params),  # type: ignore[arg-type]
        price=ticks_of(spec, price, "Invalid price") if price is not None else None,
        stop_px=ticks_of(spec, stop_px, "Invalid stopPx") if stop_px is not None else None,
        time_in_force=_name(
            _TIFS,
            params.string("timeInForce"),  # type: ignore[arg-type]
            MESSAGES[Reason.TIME_IN_FORCE_INVALID],
        ),
        exec_inst=exec_inst,
        display_qty=display,
        peg_price_type=_name(
            _PEGS,
            params.string("pegPriceType"),  # type: ignore[arg-type]
            MESSAGES[Reason.PEG_PRICE_TYPE_INVALID],
        )
        or 0,
        peg_offset=ticks_of(spec, peg_offset, "Invalid pegOffsetValue", signed=True)
        if peg_offset is not None
        else None,
        cl_ord_id=printable(params, "clOrdID") or "",
        cl_ord_link_id=printable(params, "clOrdLinkID") or "",
        contingency_type=_name(
            _CONTINGENCIES,  # type: ignore[arg-type]
            params.string("contingencyType"),
            MESSAGES[Reason.CONTINGENCY_TYPE_INVALID],
        )
        or 0,
        text=printable(params, "text") or DEFAULT_TEXT,
    )


def parse_order_id(text: str) -> int:
    order_id = parse_order_uuid(text)
    if order_id is None:
        raise ApiError(404, "Not Found")
    return order_id


def amend_command(
    params: Params,
    account: int,
    symbols: SymbolIndex,
    spec_of_order: Callable[[int | None, str], InstrumentSpec | None],
) -> AmendOrder:
    """An ``AmendOrder`` from PUT /order parameters; ``spec_of_order(order_id, clOrdID)``
    names the instrument of the order being amended (prices need its tick grid)."""
    order_id_text = params.string("orderID")
    orig = params.string("origClOrdID") or ""
    if order_id_text is None and not orig:
        raise bad_request("Must specify either orderID or origClOrdID.")
    order_id = parse_order_id(order_id_text) if order_id_text is not None else None
    if params.has("simpleOrderQty") or params.has("simpleLeavesQty"):
        raise bad_request("simpleOrderQty is deprecated: use orderQty")
    spec: InstrumentSpec | None = spec_of_order(order_id, orig)
    price = params.decimal("price")
    stop_px = params.decimal("stopPx")
    peg_offset = params.decimal("pegOffsetValue")
    needs_spec = (
        any(v is not None for v in (price, stop_px, peg_offset))
        or params.has("orderQty")
        or params.has("leavesQty")
    )
    if spec is None and needs_spec:
        raise (
            ApiError(400, MESSAGES[Reason.ORDER_STATUS_INVALID])
            if order_id is None
            else (ApiError(404, "Not Found"))
        )
    order_qty = _qty(params, "orderQty", spec) if spec is not None else None
    leaves_qty = _qty(params, "leavesQty", spec) if spec is not None else None
    return AmendOrder(
        ts_ns=0,
        account=account,
        order_id=order_id,
        orig_cl_ord_id=orig,
        cl_ord_id=printable(params, "clOrdID") or "",
        order_qty=order_qty,
        leaves_qty=leaves_qty,
        price=ticks_of(spec, price, "Invalid price") if spec and price is not None else None,
        stop_px=ticks_of(spec, stop_px, "Invalid stopPx") if spec and stop_px is not None else None,
        peg_offset=ticks_of(spec, peg_offset, "Invalid pegOffsetValue", signed=True)
        if spec and peg_offset is not None
        else None,
        text=printable(params, "text"),
    )


def cancel_command(params: Params, account: int) -> CancelOrders:
    order_ids = params.string_list("orderID") or []
    cl_ord_ids = params.string_list("clOrdID") or []
    if not order_ids and not cl_ord_ids:
        raise bad_request("Must specify either orderID or clOrdID.")
    if len(order_ids) + len(cl_ord_ids) > CANCEL_IDS_MAX:
        raise bad_request(f"At most {CANCEL_IDS_MAX} orderIDs and clOrdIDs per cancel.")
    parsed = []
    for text in order_ids:
        order_id = parse_order_uuid(text)
        parsed.append(order_id if order_id is not None else -1)
    return CancelOrders(
        ts_ns=0,
        account=account,
        order_ids=tuple(parsed),
        cl_ord_ids=tuple(cl_ord_ids),
        text=printable(params, "text") or "",
    )


def _filter_value(key: str, value: Any) -> Any:
    """One checked filter value (400 when it cannot match anything of its field's kind)."""
    if isinstance(value, dict | list) or value is None:
        raise bad_request(f"Invalid filter: {key} must be a value or a list of values")
    if key in _FILTER_ENUMS:
        if value not in _FILTER_ENUMS[key]:
            raise bad_request(f"Invalid filter: {key} has no value {str(value)[:40]!r}")
        return value
    if key in _FILTER_NUMBERS:
        return parse_number(value, f"filter: {key}")
    if key in _FILTER_BOOLS:
        if not isinstance(value, bool):
            raise bad_request(f"Invalid filter: {key} must be true or false")
        return value
    if not isinstance(value, str):
        raise bad_request(f"Invalid filter: {key} must be a string")
    if key == "orderID" and parse_order_uuid(value) is None:
        raise bad_request(f"Invalid filter: {key} is not an order id")
    return value.lower() if key == "orderID" else value


def cancel_filter(value: Any) -> dict[str, list[Any]]:
    """``DELETE /order/all``'s ``filter``, checked: each field an order field, each value of
    its field's kind; values become lists (a scalar is a list of one)."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise bad_request("Invalid filter: must be a JSON object")
    if len(value) > CANCEL_FILTER_KEYS_MAX:
        raise bad_request(f"Invalid filter: more than {CANCEL_FILTER_KEYS_MAX} keys")
    checked: dict[str, list[Any]] = {}
    for key, wanted in value.items():
        if key not in CANCEL_FILTER_FIELDS:
            raise bad_request(f"Invalid filter: unknown field {str(key)[:40]!r}")
        items = wanted if isinstance(wanted, list) else [wanted]
        if not items or len(items) > CANCEL_FILTER_VALUES_MAX:
            raise bad_request(f"Invalid filter: {key} needs 1..{CANCEL_FILTER_VALUES_MAX} values")
        checked[key] = [_filter_value(key, item) for item in items]
    return checked


def _field_equals(key: str, actual: Any, wanted: Any) -> bool:
    if actual is None:
        return False
    if key in _FILTER_NUMBERS:
        return bool(Decimal(str(actual)) == wanted)
    if key == "orderID":
        return bool(str(actual).lower() == wanted)
    return bool(actual == wanted)


def order_matches(row: dict[str, Any], filter_: dict[str, list[Any]]) -> bool:
    """Whether an order row passes a ``cancel_filter``: every field equals one of its values
    (``execInst``: the row's instruction list contains the value)."""
    for key, values in filter_.items():
        actual = row.get(key)
        if key == "execInst":
            held = {part for part in str(actual or "").split(",") if part}
            if not any(set(v.split(",")) <= held for v in values):
                return False
        elif not any(_field_equals(key, actual, v) for v in values):
            return False
    return True


def event_result(
    events: Sequence[Event],
    account: int,
    command: str,
    order_id: int | None = None,
    cl_ord_ids: tuple[str, ...] = (),
) -> OrderEvent:
    """The final ``OrderEvent`` of the order one place or amend acted on; raise its rejection.

    A place's order is the first ``New`` row of the account (timers that ran first only cancel);
    an amend's is the first row for ``order_id`` (or, by clOrdID, the first row naming it).
    """
    target = order_id
    last: OrderEvent | None = None
    for event in events:
        if isinstance(event, Rejected):
            mine = event.account == account and event.command == command
            if mine and (target is None or event.order_id in (0, target)):
                raise from_rejection(event)
            continue
        if not isinstance(event, OrderEvent) or event.account != account:
            continue
        if target is None and (
            (command == "PlaceOrder" and event.exec_type == _EXEC_TYPE_NEW)
            or (command == "AmendOrder" and event.cl_ord_id in cl_ord_ids)
        ):
            target = event.order_id
        if event.order_id == target:
            last = event
    if last is None:
        raise ApiError(
            400,
            MESSAGES[Reason.ORDER_STATUS_INVALID]
            if command == "AmendOrder"
            else "Order was not accepted",
        )
    return last
