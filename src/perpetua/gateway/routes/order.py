"""/order: list, place, amend, cancel, cancel all, bulk place and amend, closePosition and
cancelAllAfter. New orders and amends may be shed (503); cancels and closes never are."""

from typing import Any

from perpetua.core.commands import (
    AmendOrder,
    Batch,
    CancelAll,
    CancelAllAfter,
    CancelOrders,
    PlaceOrder,
)
from perpetua.core.enums import ExecType, OrdStatus
from perpetua.core.events import Event, OrderEvent, Rejected
from perpetua.core.instruments import InstrumentSpec
from perpetua.core.reasons import MESSAGES, Reason
from perpetua.gateway.auth import PERMISSION_CANCEL, PERMISSION_ORDER
from perpetua.gateway.context import Context
from perpetua.gateway.errors import (
    ApiError,
    bad_request,
    from_reason,
    from_rejection,
    reason_message,
)
from perpetua.gateway.orders import (
    amend_command,
    cancel_command,
    cancel_filter,
    event_result,
    order_matches,
    place_command,
)
from perpetua.gateway.params import Params
from perpetua.gateway.ratelimit import bulk_cost
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.rows import order_row
from perpetua.gateway.tables import parse_table_query, project, store_query
from perpetua.marketdata.ids import order_uuid, parse_order_uuid
from perpetua.store import queries
from perpetua.store.rows import order_event_of
from perpetua.wire.values import JsonRow, iso_ms
from perpetua.wire.vocabulary import (
    EXEC_INST_BITS,
    SIDE_NAMES,
    by_name,
)
from perpetua.wire.vocabulary import (
    ORD_STATUS_TERMINAL_VALUES as TERMINAL_VALUES,
)

__all__ = ["SPECS"]

BULK_ORDERS_MAX = 100
CANCEL_ALL_AFTER_MS_MAX = 7 * 24 * 3_600_000
_SIDES = by_name(SIDE_NAMES)
_CANCELED = int(OrdStatus.CANCELED)


def _row(ctx: Context, event: OrderEvent) -> JsonRow:
    return order_row(event, ctx.gw.market.specs[event.symbol])


async def get_orders(ctx: Context) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    symbols = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    if symbols is not None and not symbols:
        return []
    found = await ctx.gw.history.read(
        ctx.gw.account_seq(ctx.account),
        queries.query_orders,
        ctx.account,
        **store_query(query, symbols, ctx.gw.market.specs),
    )
    return project([_stored_row(ctx, r) for r in found], query, ("orderID",))


def _stored_row(ctx: Context, row: Any) -> JsonRow:
    event = order_event_of(row)
    return order_row(event, ctx.gw.market.specs[event.symbol])


async def post_order(ctx: Context) -> JsonRow:
    command = place_command(ctx.params, ctx.account, ctx.gw.symbols)
    result = await ctx.gw.submit(command)
    return _row(ctx, event_result(result.events, ctx.account, "PlaceOrder"))


async def _stored_order(ctx: Context, order_id: int | None, cl_ord_id: str) -> Any:
    """The caller's order from the read models (by id, else its newest with ``cl_ord_id``)."""
    history = ctx.gw.history
    if order_id is None and not cl_ord_id:
        return None
    seq = ctx.gw.account_seq(ctx.account)
    if order_id is not None:
        return await history.read(seq, queries.get_order, ctx.account, order_id)
    return await history.read(seq, queries.get_order_by_cl_ord_id, ctx.account, cl_ord_id)


async def _resolve(
    ctx: Context, order_id: int | None, cl_ord_id: str
) -> tuple[int | None, InstrumentSpec | None]:
    """(order id, instrument) of one of the caller's orders: live, recent, then stored."""
    found, spec = ctx.gw.private.spec_of_order(ctx.account, order_id, cl_ord_id)
    if spec is not None:
        return found, spec
    row = await _stored_order(ctx, order_id, cl_ord_id)
    if row is None:
        return order_id, None
    return int(row.order_id), ctx.gw.market.specs.get(row.symbol)


async def _amend(ctx: Context, params: Params) -> AmendOrder:
    order_id_text = params.string("orderID")
    order_id = parse_order_uuid(order_id_text) if order_id_text else None
    found, spec = await _resolve(ctx, order_id, params.string("origClOrdID") or "")

    def spec_of(_order_id: int | None, _orig: str) -> InstrumentSpec | None:
        return spec

    command = amend_command(params, ctx.account, ctx.gw.symbols, spec_of)
    if command.order_id is None and found is not None:
        command = command._replace(order_id=found)
    return command


async def put_order(ctx: Context) -> JsonRow:
    command = await _amend(ctx, ctx.params)
    result = await ctx.gw.submit(command)
    names = tuple(n for n in (command.orig_cl_ord_id, command.cl_ord_id) if n)
    return _row(
        ctx, event_result(result.events, ctx.account, "AmendOrder", command.order_id, names)
    )


async def _ended_rows(ctx: Context, misses: list[Rejected]) -> dict[int | str, OrderEvent]:
    """The ended orders a cancel missed, by order id and by clOrdID: the recent ones this
    process keeps first, the rest from the read models in one query (never one per id)."""
    found: dict[int | str, OrderEvent] = {}
    for event in ctx.gw.private.ended_orders.get(ctx.account, {}).values():  # oldest first
        found[event.order_id] = event
        if event.cl_ord_id:
            found[event.cl_ord_id] = event
    order_ids = [m.order_id for m in misses if m.order_id > 0 and m.order_id not in found]
    cl_ord_ids = [m.cl_ord_id for m in misses if m.cl_ord_id and m.cl_ord_id not in found]
    if not (order_ids or cl_ord_ids):
        return found
    rows = await ctx.gw.history.read(
        ctx.gw.account_seq(ctx.account),
        queries.get_orders_by_ids,
        ctx.account,
        order_ids,
        cl_ord_ids,
    )
    for row in reversed(rows):  # oldest first: the newest order with a clOrdID wins
        if row.ord_status in TERMINAL_VALUES:
            event = order_event_of(row)
            found[event.order_id] = event
            if event.cl_ord_id:
                found[event.cl_ord_id] = event
    return found


async def delete_order(ctx: Context) -> list[JsonRow]:
    command = cancel_command(ctx.params, ctx.account)
    result = await ctx.gw.submit_unshed(command)
    rows: list[dict[str, Any]] = []
    misses = [
        e
        for e in result.events
        if isinstance(e, Rejected) and e.account == ctx.account and e.command == "CancelOrders"
    ]
    ended = await _ended_rows(ctx, misses) if misses else {}
    missing = 0
    for event in result.events:
        if (
            isinstance(event, OrderEvent)
            and event.account == ctx.account
            and (event.ord_status == _CANCELED)
        ):
            rows.append(_row(ctx, event))
        elif (
            isinstance(event, Rejected)
            and event.account == ctx.account
            and (event.command == "CancelOrders")
        ):
            known = ended.get(event.order_id if event.order_id > 0 else event.cl_ord_id)
            if known is not None and known.symbol in ctx.gw.market.specs:
                row = _row(ctx, known)
                rows.append(
                    dict(
                        row,
                        error=f"Unable to cancel order due to existing state: {row['ordStatus']}",
                    )
                )
            else:
                missing += 1
                rows.append(
                    {
                        "orderID": order_uuid(event.order_id) if event.order_id > 0 else None,
                        "clOrdID": event.cl_ord_id,
                        "error": MESSAGES[Reason(event.reason)],
                    }
                )
    if missing and missing == len(rows):
        raise ApiError(404, "Not Found")
    return rows


def _cancel_cost(params: Params) -> int:
    """A cancel of n ids costs like a bulk of n orders (``bulk_cost``)."""
    count = sum(len(params.string_list(name) or ()) for name in ("orderID", "clOrdID"))
    return bulk_cost(count)


async def delete_all(ctx: Context) -> list[JsonRow]:
    symbol_text = ctx.params.string("symbol")
    symbol = ""
    if symbol_text:
        symbol = ctx.gw.symbols.one(symbol_text) or ""
        if not symbol:
            raise ApiError(400, MESSAGES[Reason.INSTRUMENT_UNKNOWN])
    filter_ = cancel_filter(ctx.params.json_value("filter"))
    text = ctx.params.string("text") or ""
    sides = filter_.get("side", [])
    if set(filter_) <= {"side"} and len(sides) <= 1:  # the core's own CancelAll, atomic
        side = _SIDES[sides[0]] if sides else None
        command: CancelAll | CancelOrders = CancelAll(0, ctx.account, symbol, side, text)  # type: ignore[arg-type]
    else:  # the open orders the filter selects, cancelled by id: never more than asked
        chosen = [
            event.order_id
            for event in list(ctx.gw.private.open_orders.get(ctx.account, {}).values())
            if (not symbol or event.symbol == symbol)
            and event.symbol in (ctx.gw.market.specs)
            and order_matches(_row(ctx, event), filter_)
        ]
        if not chosen:
            return []
        command = CancelOrders(0, ctx.account, tuple(chosen), (), text)
    result = await ctx.gw.submit_unshed(command)
    for event in result.events:
        if (
            isinstance(event, Rejected)
            and event.account == ctx.account
            and (event.command == "CancelAll")
        ):
            raise from_reason(event.reason)
    return [
        _row(ctx, e)
        for e in result.events
        if isinstance(e, OrderEvent) and e.account == ctx.account and e.ord_status == _CANCELED
    ]


def _orders_param(params: Params) -> list[JsonRow]:
    orders = params.json_value("orders")
    if not isinstance(orders, list) or not orders:
        raise bad_request("'orders' must be a non-empty array of orders.")
    if len(orders) > BULK_ORDERS_MAX:
        raise bad_request(MESSAGES[Reason.BATCH_TOO_LARGE])
    if not all(isinstance(o, dict) for o in orders):
        raise bad_request("'orders' must be an array of objects.")
    return orders


def _bulk_cost(params: Params) -> int:
    orders = params.raw("orders")
    return bulk_cost(len(orders) if isinstance(orders, list) else 1)


def _segments(
    events: list[Event], commands: list[PlaceOrder | AmendOrder], account: int
) -> list[OrderEvent | Rejected | None]:
    """The final row (or rejection) of each sub-command of a batch, in order."""
    results: list[OrderEvent | Rejected | None] = [None] * len(commands)
    ids: list[int | None] = [c.order_id if isinstance(c, AmendOrder) else None for c in commands]
    index = 0
    seen: set[int] = set()
    for event in events:
        if isinstance(event, Rejected) and event.account == account and index < len(commands):
            if event.command in ("PlaceOrder", "AmendOrder"):
                results[index] = event
                index += 1
            continue
        if not isinstance(event, OrderEvent) or event.account != account:
            continue
        if (
            index < len(commands)
            and event.order_id not in seen
            and (
                (isinstance(commands[index], PlaceOrder) and event.exec_type == ExecType.NEW)
                or (isinstance(commands[index], AmendOrder) and event.order_id == ids[index])
            )
        ):
            ids[index] = event.order_id
            index += 1
        seen.add(event.order_id)
        for position, order_id in enumerate(ids):
            if order_id == event.order_id and not isinstance(results[position], Rejected):
                results[position] = event
    return results


def _bulk_rows(ctx: Context, results: list[OrderEvent | Rejected | None]) -> list[JsonRow]:
    rejections = [r for r in results if isinstance(r, Rejected)]
    if rejections and len(rejections) == len(results):
        first = rejections[0]
        raise from_rejection(first)
    for rejected in rejections:
        if rejected.reason == Reason.ORDER_STATUS_INVALID:
            raise from_reason(rejected.reason)
    rows = []
    for item in results:
        if isinstance(item, OrderEvent):
            rows.append(_row(ctx, item))
        elif isinstance(item, Rejected):
            rows.append(
                {
                    "clOrdID": item.cl_ord_id,
                    "ordStatus": "Rejected",
                    "ordRejReason": reason_message(
                        Reason(item.reason), item.required, item.currency, item.cause
                    ),
                }
            )
    return rows


async def post_bulk(ctx: Context) -> list[JsonRow]:
    commands: list[PlaceOrder | AmendOrder] = [
        place_command(Params(o), ctx.account, ctx.gw.symbols) for o in _orders_param(ctx.params)
    ]
    result = await ctx.gw.submit(Batch(0, tuple(commands)))
    return _bulk_rows(ctx, _segments(list(result.events), commands, ctx.account))


async def put_bulk(ctx: Context) -> list[JsonRow]:
    commands: list[PlaceOrder | AmendOrder] = [
        await _amend(ctx, Params(o)) for o in _orders_param(ctx.params)
    ]
    if any(isinstance(c, AmendOrder) and c.order_id is None for c in commands):
        raise ApiError(400, MESSAGES[Reason.ORDER_STATUS_INVALID])
    result = await ctx.gw.submit(Batch(0, tuple(commands)))
    return _bulk_rows(ctx, _segments(list(result.events), commands, ctx.account))


async def post_close_position(ctx: Context) -> JsonRow:
    params = dict(ctx.params.values)
    params["execInst"] = "Close"
    params.pop("orderQty", None)
    params.pop("side", None)
    params["ordType"] = "Limit" if ctx.params.has("price") else "Market"
    command = place_command(Params(params), ctx.account, ctx.gw.symbols)
    if not command.exec_inst & EXEC_INST_BITS["Close"]:
        raise bad_request("closePosition needs execInst Close")
    result = await ctx.gw.submit_unshed(command)
    return _row(ctx, event_result(result.events, ctx.account, "PlaceOrder"))


async def post_cancel_all_after(ctx: Context) -> JsonRow:
    timeout = ctx.params.integer("timeout")
    if timeout is None:
        raise bad_request("'timeout' is a required arg.")
    if not 0 <= timeout <= CANCEL_ALL_AFTER_MS_MAX:
        raise bad_request(f"Invalid timeout: 0..{CANCEL_ALL_AFTER_MS_MAX} ms")
    result = await ctx.gw.submit_unshed(CancelAllAfter(0, ctx.account, timeout))
    for event in result.events:
        if isinstance(event, Rejected):
            raise from_rejection(event)
    now = result.ts_ns
    return {"now": iso_ms(now), "cancelTime": iso_ms(now + timeout * 1_000_000) if timeout else 0}


SPECS = [
    Spec("/order", "GET", get_orders, private=True),
    Spec("/order", "POST", post_order, private=True, permission=PERMISSION_ORDER, order_layer=True),
    Spec("/order", "PUT", put_order, private=True, permission=PERMISSION_ORDER, order_layer=True),
    Spec(
        "/order",
        "DELETE",
        delete_order,
        private=True,
        permission=PERMISSION_CANCEL,
        order_layer=True,
        cost=_cancel_cost,
    ),
    Spec(
        "/order/all",
        "DELETE",
        delete_all,
        private=True,
        permission=PERMISSION_CANCEL,
        order_layer=True,
    ),
    Spec(
        "/order/bulk",
        "POST",
        post_bulk,
        private=True,
        permission=PERMISSION_ORDER,
        order_layer=True,
        cost=_bulk_cost,
    ),
    Spec(
        "/order/bulk",
        "PUT",
        put_bulk,
        private=True,
        permission=PERMISSION_ORDER,
        order_layer=True,
        cost=_bulk_cost,
    ),
    Spec(
        "/order/closePosition",
        "POST",
        post_close_position,
        private=True,
        permission=PERMISSION_ORDER,
    ),
    Spec(
        "/order/cancelAllAfter",
        "POST",
        post_cancel_all_after,
        private=True,
        permission=PERMISSION_CANCEL,
    ),
]
