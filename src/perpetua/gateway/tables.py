"""BitMEX's standard table query: symbol, filter, columns, count, start, reverse, startTime,
endTime (reference §1), applied to chronological lists of rows.

``filter`` is a JSON object: equality per key, a list value means IN, and the pseudo-fields
``open`` and ``ordStatus.isTerminated`` select live or ended orders. Other dotted pseudo-fields
(``timestamp.time``...) are accepted and ignored. ``columns`` keeps the named fields plus the
table's key fields. ``count`` defaults to 100 and is capped at ``COUNT_MAX``.
"""

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypedDict

from perpetua.core.instruments import InstrumentSpec
from perpetua.gateway.errors import bad_request
from perpetua.gateway.params import Params
from perpetua.marketdata.ids import parse_order_uuid
from perpetua.wire.values import JsonRow, iso_ms
from perpetua.wire.vocabulary import ORD_STATUS_TERMINAL

__all__ = [
    "StoreQuery",
    "COUNT_DEFAULT",
    "COUNT_MAX",
    "TableQuery",
    "parse_table_query",
    "project",
    "run_query",
    "store_query",
]

COUNT_DEFAULT = 100
COUNT_MAX = 1_000
START_MAX = 10_000_000


class TableQuery:
    __slots__ = (
        "filter",
        "columns",
        "count",
        "start",
        "reverse",
        "start_time",
        "end_time",
        "start_ns",
        "end_ns",
    )

    def __init__(
        self,
        filter_: dict[str, Any],
        columns: list[str] | None,
        count: int,
        start: int,
        reverse: bool,
        start_ns: int | None,
        end_ns: int | None,
    ) -> None:
        self.filter = filter_
        self.columns = columns
        self.count = count
        self.start = start
        self.reverse = reverse
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.start_time = iso_ms(start_ns) if start_ns is not None else None
        self.end_time = iso_ms(end_ns) if end_ns is not None else None


def parse_table_query(
    params: Params, count_default: int = COUNT_DEFAULT, reverse_default: bool = False
) -> TableQuery:
    raw_filter = params.json_value("filter")
    if raw_filter is None:
        filter_: dict[str, Any] = {}
    elif isinstance(raw_filter, dict):
        filter_ = raw_filter
    else:
        raise bad_request("Invalid filter: must be a JSON object")
    columns = params.string_list("columns")
    count = params.integer("count", count_default)
    if count is None or count < 0:
        raise bad_request("Invalid count")
    start = params.integer("start", 0)
    if start is None or not 0 <= start <= START_MAX:
        raise bad_request("Invalid start")
    start_ns = params.time_ns("startTime")
    end_ns = params.time_ns("endTime")
    count_max = max(COUNT_MAX, count_default)
    return TableQuery(
        filter_,
        columns,
        min(count, count_max) if count else count_default,
        start,
        params.boolean("reverse", reverse_default),
        start_ns,
        end_ns,
    )


class StoreQuery(TypedDict, total=False):
    """The keyword arguments ``store.queries``' table reads share."""

    filter: Mapping[str, Any] | None
    count: int
    start: int
    reverse: bool
    start_time_ns: int | None
    end_time_ns: int | None
    symbol: Sequence[str]
    catalogue: Sequence[InstrumentSpec]


def store_query(
    query: TableQuery,
    symbols: list[str] | None = None,
    specs: Mapping[str, InstrumentSpec] | None = None,
) -> StoreQuery:
    """The ``store.queries`` keyword arguments of a table query; ``specs``: the gateway's
    instruments (with futures listed at runtime), for price filters."""
    kwargs: StoreQuery = {
        "filter": _core_order_ids(query.filter) or None,
        "count": query.count,
        "start": query.start,
        "reverse": query.reverse,
        "start_time_ns": query.start_ns,
        "end_time_ns": query.end_ns,
    }
    if symbols is not None:
        kwargs["symbol"] = symbols
    if specs is not None:
        kwargs["catalogue"] = tuple(specs.values())
    return kwargs


def _core_order_ids(filter_: dict[str, Any]) -> JsonRow:
    """``orderID`` filter values as the core's ints: the wire's ids are a keyed permutation
    of them (``marketdata.ids``), which only the gateway can invert."""
    wanted = filter_.get("orderID")
    if wanted is None:
        return filter_
    items = wanted if isinstance(wanted, list) else [wanted]
    converted: list[int] = []
    for item in items:
        order_id = parse_order_uuid(item) if isinstance(item, str) else None
        if order_id is None:
            raise bad_request("Invalid filter: orderID is not a valid id")
        converted.append(order_id)
    return dict(filter_, orderID=converted if isinstance(wanted, list) else converted[0])


def project(
    rows: list[dict[str, Any]],
    query: TableQuery,
    keys: tuple[str, ...] = (),
    time_field: str = "timestamp",
) -> list[JsonRow]:
    """Keep the requested ``columns`` (plus the keys and the time field) of formatted rows."""
    if not query.columns:
        return rows
    wanted = set(query.columns) | set(keys) | {time_field}
    return [{k: v for k, v in row.items() if k in wanted} for row in rows]


def _matches_value(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, list):
        return any(_matches_value(actual, item) for item in wanted)
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return actual is wanted or str(actual).lower() == str(wanted).lower()
    if isinstance(actual, int | Decimal) and isinstance(wanted, int | Decimal | str):
        try:
            return Decimal(actual) == Decimal(str(wanted))
        except ArithmeticError:
            return False
    return bool(actual == wanted)


def _row_passes(row: dict[str, Any], filter_: dict[str, Any]) -> bool:
    for key, wanted in filter_.items():
        if key == "open":
            terminal = row.get("ordStatus") in ORD_STATUS_TERMINAL
            if bool(wanted) == terminal:
                return False
        elif key == "ordStatus.isTerminated":
            terminal = row.get("ordStatus") in ORD_STATUS_TERMINAL
            if bool(wanted) != terminal:
                return False
        elif "." in key:
            continue
        elif key not in row or not _matches_value(row[key], wanted):
            return False
    return True


def run_query(
    rows: Iterable[dict[str, Any]],
    query: TableQuery,
    keys: tuple[str, ...] = (),
    time_field: str = "timestamp",
) -> list[JsonRow]:
    """Filter, window, order, page and project ``rows`` (chronological on input)."""
    chosen = []
    for row in rows:
        stamp = row.get(time_field)
        if query.start_time is not None and (stamp is None or stamp < query.start_time):
            continue
        if query.end_time is not None and (stamp is None or stamp > query.end_time):
            continue
        if query.filter and not _row_passes(row, query.filter):
            continue
        chosen.append(row)
    if query.reverse:
        chosen.reverse()
    page = chosen[query.start : query.start + query.count]
    if query.columns:
        wanted = set(query.columns) | set(keys) | {time_field}
        page = [{k: v for k, v in row.items() if k in wanted} for row in page]
    return page
