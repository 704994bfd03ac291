"""BitMEX's standard table query: symbol, filter, columns, count, start, reverse, startTime,
endTime (reference §1), applied to chronological lists of rows.

``filter`` is a JSON object: equality per key, a list value means IN, and the pseudo-fields
``open`` and ``ordStatus.isTerminated`` select live or ended orders. Other dotted pseudo-fields
(``timestamp.time``...) are accepted and ignored. ``columns`` keeps the named fields plus the
table's key fields. ``count`` defaults to 100 and is capped at ``COUNT_MAX``.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from perpetua.gateway.errors import bad_request
from perpetua.gateway.params import Params
from perpetua.gateway.vocabulary import ORD_STATUS_TERMINAL
from perpetua.marketdata.wire import iso_ms

__all__ = ["COUNT_DEFAULT", "COUNT_MAX", "TableQuery", "parse_table_query", "run_query"]

COUNT_DEFAULT = 100
COUNT_MAX = 1_000
START_MAX = 10_000_000


class TableQuery:
    __slots__ = ("filter", "columns", "count", "start", "reverse", "start_time", "end_time")

    def __init__(self, filter_: dict[str, Any], columns: list[str] | None, count: int,
                 start: int, reverse: bool, start_time: str | None, end_time: str | None) -> None:
        self.filter = filter_
        self.columns = columns
        self.count = count
        self.start = start
        self.reverse = reverse
        self.start_time = start_time
        self.end_time = end_time


def parse_table_query(params: Params, count_default: int = COUNT_DEFAULT,
                      reverse_default: bool = False) -> TableQuery:
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
    return TableQuery(
        filter_, columns, min(count, COUNT_MAX) if count else count_default, start,
        params.boolean("reverse", reverse_default),
        iso_ms(start_ns) if start_ns is not None else None,
        iso_ms(end_ns) if end_ns is not None else None,
    )


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


def run_query(rows: Iterable[dict[str, Any]], query: TableQuery, keys: tuple[str, ...] = (),
              time_field: str = "timestamp") -> list[dict[str, Any]]:
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
    page = chosen[query.start: query.start + query.count]
    if query.columns:
        wanted = set(query.columns) | set(keys) | {time_field}
        page = [{k: v for k, v in row.items() if k in wanted} for row in page]
    return page
