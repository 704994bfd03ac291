"""BitMEX ``filter`` objects turned into SQL conditions, one field table per read model.

A filter is a JSON object: each key is a BitMEX field name, each value a scalar (equality) or
a list (IN, at most ``FILTER_VALUES_MAX`` values). Values arrive as the client wrote them:
``"Buy"``, ``"PartiallyFilled"``, a UUID string for ``orderID``, a decimal for ``price``; ints
(the core's values) are accepted as well, so a caller may convert first. A key the table does
not know, or a value that does not parse, is a ``QueryError`` (the gateway answers 400 with its
message). Special keys are the table's own (``open`` and ``ordStatus.isTerminated`` on orders).
"""

import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, false

from perpetua.core.enums import (
    ContingencyType,
    ExecType,
    Liquidity,
    OrdStatus,
    OrdType,
    PegPriceType,
    Side,
    TimeInForce,
)
from perpetua.core.instruments import InstrumentSpec, ticks_for
from perpetua.store.limits import (
    FILTER_KEYS_MAX,
    FILTER_NUMBER_CHARS_MAX,
    FILTER_NUMBER_EXPONENT_MAX,
    FILTER_VALUES_MAX,
)
from perpetua.wire.vocabulary import READ_MODEL_EXEC_TYPE_NAMES

__all__ = [
    "CONTINGENCY_BY_NAME",
    "EXEC_TYPE_BY_NAME",
    "FieldSpec",
    "LIQUIDITY_BY_NAME",
    "ORD_STATUS_BY_NAME",
    "ORD_TYPE_BY_NAME",
    "PEG_BY_NAME",
    "QueryError",
    "SIDE_BY_NAME",
    "TIF_BY_NAME",
    "conditions",
    "enum_value",
    "id_value",
    "int_value",
    "bool_value",
    "price_value",
    "text_value",
]


class QueryError(ValueError):
    """Reject: the query's parameters are invalid (HTTP 400 with ``str(error)``)."""


SIDE_BY_NAME = {"Buy": Side.BUY, "Sell": Side.SELL}
ORD_TYPE_BY_NAME = {
    "Limit": OrdType.LIMIT,
    "Market": OrdType.MARKET,
    "Stop": OrdType.STOP,
    "StopLimit": OrdType.STOP_LIMIT,
    "MarketIfTouched": OrdType.MARKET_IF_TOUCHED,
    "LimitIfTouched": OrdType.LIMIT_IF_TOUCHED,
    "Pegged": OrdType.PEGGED,
}
TIF_BY_NAME = {
    "GoodTillCancel": TimeInForce.GOOD_TILL_CANCEL,
    "ImmediateOrCancel": TimeInForce.IMMEDIATE_OR_CANCEL,
    "FillOrKill": TimeInForce.FILL_OR_KILL,
    "Day": TimeInForce.DAY,
}
ORD_STATUS_BY_NAME = {
    "New": OrdStatus.NEW,
    "PartiallyFilled": OrdStatus.PARTIALLY_FILLED,
    "Filled": OrdStatus.FILLED,
    "Canceled": OrdStatus.CANCELED,
    "Rejected": OrdStatus.REJECTED,
    "Expired": OrdStatus.EXPIRED,
}
EXEC_TYPE_BY_NAME = {
    "New": ExecType.NEW,
    "Trade": ExecType.TRADE,
    "Canceled": ExecType.CANCELED,
    "Replaced": ExecType.REPLACED,
    "Restated": ExecType.RESTATED,
    "Expired": ExecType.EXPIRED,
    "TriggeredOrActivatedBySystem": ExecType.TRIGGERED,
    "Triggered": ExecType.TRIGGERED,
    "Funding": ExecType.FUNDING,
    "Settlement": ExecType.SETTLEMENT,
    # the read models' own types for the risk engine's events
    **{name: value for value, name in READ_MODEL_EXEC_TYPE_NAMES.items()},
}
CONTINGENCY_BY_NAME = {
    "": ContingencyType.NONE,
    "OneCancelsTheOther": ContingencyType.ONE_CANCELS_THE_OTHER,
    "OneTriggersTheOther": ContingencyType.ONE_TRIGGERS_THE_OTHER,
}
PEG_BY_NAME = {
    "": PegPriceType.NONE,
    "PrimaryPeg": PegPriceType.PRIMARY_PEG,
    "MarketPeg": PegPriceType.MARKET_PEG,
    "TrailingStopPeg": PegPriceType.TRAILING_STOP_PEG,
}
LIQUIDITY_BY_NAME = {
    "": Liquidity.NONE,
    "AddedLiquidity": Liquidity.MAKER,
    "Added": Liquidity.MAKER,
    "RemovedLiquidity": Liquidity.TAKER,
    "Removed": Liquidity.TAKER,
}

_ID_MASK = (1 << 64) - 1

# convert(field name, value, the query's single instrument or None) -> column value
Converter = Callable[[str, Any, InstrumentSpec | None], object]


INT64_LIMIT = 1 << 63  # integer filter values are SQL BIGINTs


class FieldSpec(NamedTuple):
    column: Any  # a SQLAlchemy column
    convert: Converter


def int_value(field: str, value: Any, _spec: InstrumentSpec | None) -> int:
    if isinstance(value, bool):
        raise QueryError(f"Invalid filter: {field} must be an integer")
    if (
        isinstance(value, str)
        and len(value) <= FILTER_NUMBER_CHARS_MAX
        and (value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit())
    ):
        value = int(value)
    if isinstance(value, int) and -INT64_LIMIT <= value < INT64_LIMIT:
        return value
    raise QueryError(f"Invalid filter: {field} must be an integer")


def bool_value(field: str, value: Any, _spec: InstrumentSpec | None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise QueryError(f"Invalid filter: {field} must be true or false")


def text_value(field: str, value: Any, _spec: InstrumentSpec | None) -> str:
    if isinstance(value, str):
        return value
    raise QueryError(f"Invalid filter: {field} must be a string")


def id_value(field: str, value: Any, spec: InstrumentSpec | None) -> int:
    """An id as the core's int, from an int, a decimal string or a BitMEX UUID string (the id
    is the UUID's low 64 bits, the gateway's encoding)."""
    if isinstance(value, str) and len(value) == 36:
        try:
            return uuid.UUID(value).int & _ID_MASK
        except ValueError:
            raise QueryError(f"Invalid filter: {field} is not a valid id") from None
    return int_value(field, value, spec)


def enum_value(names: Mapping[str, int]) -> Converter:
    known = frozenset(int(v) for v in names.values())

    def convert(field: str, value: Any, _spec: InstrumentSpec | None) -> int:
        if isinstance(value, str) and value in names:
            return int(names[value])
        if isinstance(value, int) and not isinstance(value, bool) and value in known:
            return value
        raise QueryError(f"Invalid filter: {field} has no value {value!r}")

    return convert


def price_value(field: str, value: Any, spec: InstrumentSpec | None) -> int:
    """A price in ticks of the query's one instrument, from a decimal (string or number)."""
    if spec is None:
        raise QueryError(f"Invalid filter: {field} needs a single symbol")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QueryError(f"Invalid filter: {field} must be a number")
    text = str(value)
    if len(text) > FILTER_NUMBER_CHARS_MAX or not text.isascii():
        raise QueryError(f"Invalid filter: {field} must be a number")
    try:
        exact = Decimal(text)
    except InvalidOperation:
        raise QueryError(f"Invalid filter: {field} must be a number") from None
    # the exponent bound comes before as_integer_ratio, which builds 10**exponent
    if not exact.is_finite() or (exact and abs(exact.adjusted()) > FILTER_NUMBER_EXPONENT_MAX):
        raise QueryError(f"Invalid filter: {field} must be a number")
    num, den = exact.as_integer_ratio()
    on_grid = ticks_for(spec, num, den)
    if not on_grid.ok:
        raise QueryError(f"Invalid filter: {field} {value} is not a multiple of the tick size")
    return on_grid.ticks


def conditions(
    filter_: Mapping[str, Any] | None,
    fields: Mapping[str, FieldSpec],
    spec: InstrumentSpec | None,
    special: Callable[[str, Any], ColumnElement[bool] | None] | None = None,
) -> list[ColumnElement[bool]]:
    """SQL conditions for ``filter_`` on a table whose filterable fields are ``fields``;
    ``special(key, value)`` answers the table's pseudo-fields (``None``: not one)."""
    if not filter_:
        return []
    if not isinstance(filter_, Mapping):
        raise QueryError("Invalid filter: must be a JSON object")
    if len(filter_) > FILTER_KEYS_MAX:
        raise QueryError(f"Invalid filter: more than {FILTER_KEYS_MAX} keys")
    found: list[ColumnElement[bool]] = []
    for key, value in filter_.items():
        extra = special(key, value) if special is not None else None
        if extra is not None:
            found.append(extra)
            continue
        field = fields.get(key)
        if field is None:
            raise QueryError(f"Invalid filter: unknown field {key!r}")
        if isinstance(value, list):
            if len(value) > FILTER_VALUES_MAX:
                raise QueryError(
                    f"Invalid filter: {key} lists more than {FILTER_VALUES_MAX} values"
                )
            wanted = [field.convert(key, item, spec) for item in value]
            found.append(field.column.in_(wanted) if wanted else false())
        elif value is None:
            found.append(field.column.is_(None))
        else:
            found.append(field.column == field.convert(key, value, spec))
    return found
