"""Event-to-row mapping: pure functions from core events to read-model rows (plain dicts; the
hot ``orders`` and ``executions`` rows as tuples in a named column order).

Each function states which table it feeds. Rows keep the core's units (see ``schema``). The
risk engine's events (funding, settlement, liquidation orders) are not defined yet; their row
builders take the table's fields as arguments, so wiring an event later is one line in
``projector.EVENT_HANDLERS``.
"""

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Row as SqlRow

from perpetua.core.events import (
    AnnouncementPublished,
    OrderEvent,
    PositionChanged,
    Trade,
    UnstakingUpdated,
)

__all__ = [
    "announcement_row",
    "MINUS_TICK",
    "PLUS_TICK",
    "TICK_DIRECTION_NAMES",
    "ZERO_MINUS_TICK",
    "ZERO_PLUS_TICK",
    "EXECUTION_COLUMNS",
    "ORDER_COLUMNS",
    "ORDER_CREATED_NS_AT",
    "ORDER_SHARED_COLUMNS",
    "execution_values",
    "order_event_of",
    "order_shared",
    "funding_row",
    "is_orders_only",
    "orders_only_row",
    "liquidation_row",
    "order_values",
    "position_row",
    "settlement_row",
    "tick_direction",
    "trade_of",
    "trade_row",
    "unstaking_row",
]

PLUS_TICK = 1
ZERO_PLUS_TICK = 2
MINUS_TICK = -1
ZERO_MINUS_TICK = -2
TICK_DIRECTION_NAMES: dict[int, str] = {
    PLUS_TICK: "PlusTick",
    ZERO_PLUS_TICK: "ZeroPlusTick",
    MINUS_TICK: "MinusTick",
    ZERO_MINUS_TICK: "ZeroMinusTick",
}

Row = dict[str, object]


# The order columns ``orders`` and ``executions`` share, in the order ``order_shared`` gives them.
ORDER_SHARED_COLUMNS: Final = (
    "account",
    "symbol",
    "side",
    "ord_type",
    "time_in_force",
    "exec_inst",
    "order_qty",
    "price",
    "stop_px",
    "display_qty",
    "peg_price_type",
    "peg_offset",
    "contingency_type",
    "cl_ord_id",
    "cl_ord_link_id",
    "ord_status",
    "triggered",
    "working",
    "leaves_qty",
    "cum_qty",
    "cum_px_qty",
    "text",
    "transact_ts_ns",
)
ORDER_COLUMNS: Final = ("order_id", *ORDER_SHARED_COLUMNS, "created_ns", "timestamp_ns", "seq")
ORDER_CREATED_NS_AT: Final = ORDER_COLUMNS.index("created_ns")
EXECUTION_COLUMNS: Final = (
    "exec_id",
    "order_id",
    "exec_type",
    *ORDER_SHARED_COLUMNS,
    "last_qty",
    "last_px",
    "trd_match_id",
    "exec_cost",
    "exec_comm",
    "fee_rate_ppm",
    "liquidity",
    "timestamp_ns",
    "seq",
)


def order_shared(ev: OrderEvent) -> tuple[object, ...]:
    """``ORDER_SHARED_COLUMNS`` of ``ev`` (compute once per event for both tables)."""
    return (
        ev.account,
        ev.symbol,
        int(ev.side),
        int(ev.ord_type),
        int(ev.time_in_force),
        int(ev.exec_inst),
        ev.order_qty,
        ev.price,
        ev.stop_px,
        ev.display_qty,
        int(ev.peg_price_type),
        ev.peg_offset,
        int(ev.contingency_type),
        ev.cl_ord_id,
        ev.cl_ord_link_id,
        int(ev.ord_status),
        bool(ev.triggered),
        bool(ev.working),
        ev.leaves_qty,
        ev.cum_qty,
        ev.cum_px_qty,
        ev.text,
        ev.transact_ts_ns,
    )


def order_values(
    ev: OrderEvent, created_ns: int, seq: int, shared: tuple[object, ...] | None = None
) -> tuple[object, ...]:
    """``orders`` (``ORDER_COLUMNS``): the order's state after ``ev``; ``created_ns`` is its
    first event's time. Tuples, not dicts: the projector builds two rows per order event, and
    a dict per row was most of its row-building time (decisions §33)."""
    return (
        (ev.order_id,)
        + (order_shared(ev) if shared is None else shared)
        + (created_ns, ev.ts_ns, seq)
    )


def execution_values(
    ev: OrderEvent, seq: int, shared: tuple[object, ...] | None = None
) -> tuple[object, ...]:
    """``executions`` (``EXECUTION_COLUMNS``): one row per OrderEvent (or an execution-shaped
    row of the risk engine's, ``risk_rows.risk_execution``)."""
    return (
        (ev.exec_id, ev.order_id, int(ev.exec_type))
        + (order_shared(ev) if shared is None else shared)
        + (
            ev.last_qty,
            ev.last_px,
            ev.trd_match_id,
            ev.exec_cost,
            ev.exec_comm,
            ev.fee_rate_ppm,
            int(ev.liquidity),
            ev.ts_ns,
            seq,
        )
    )


def tick_direction(price: int, last_price: int | None, last_direction: int) -> int:
    """BitMEX's tickDirection of a print at ``price`` after one at ``last_price``: up or down
    is PlusTick or MinusTick; unchanged keeps the last direction as Zero(Plus|Minus)Tick. A
    symbol's first print is PlusTick."""
    if last_price is None or price > last_price:
        return PLUS_TICK
    if price < last_price:
        return MINUS_TICK
    return ZERO_PLUS_TICK if last_direction in (PLUS_TICK, ZERO_PLUS_TICK) else ZERO_MINUS_TICK


def trade_row(ev: Trade, direction: int, seq: int) -> Row:
    """``trades``: the public print, with the private maker/taker columns."""
    return {
        "trd_match_id": ev.trd_match_id,
        "timestamp_ns": ev.ts_ns,
        "symbol": ev.symbol,
        "side": int(ev.side),
        "size": ev.qty,
        "price": ev.price,
        "tick_direction": direction,
        "gross_value": ev.gross_value,
        "maker_account": ev.maker_account,
        "taker_account": ev.taker_account,
        "maker_order_id": ev.maker_order_id,
        "taker_order_id": ev.taker_order_id,
        "seq": seq,
    }


def position_row(ev: PositionChanged, seq: int) -> Row:
    """``positions``: the latest PositionChanged of (account, symbol), margins included."""
    return {
        "account": ev.account,
        "symbol": ev.symbol,
        "current_qty": ev.current_qty,
        "current_cost": ev.current_cost,
        "realised_pnl": ev.realised_pnl,
        "exec_realised_pnl": ev.exec_realised_pnl,
        "timestamp_ns": ev.ts_ns,
        "seq": seq,
        "leverage_e2": ev.leverage_e2,
        "risk_limit": ev.risk_limit,
        "deposit": ev.deposit,
        "pos_init": ev.pos_init,
        "pos_comm": ev.pos_comm,
        "pos_margin": ev.pos_margin,
        "pos_maint": ev.pos_maint,
        "init_margin_ppm": ev.init_margin_ppm,
        "maint_margin_ppm": ev.maint_margin_ppm,
        "bankrupt_price": ev.bankrupt_price,
        "liquidation_price": ev.liquidation_price,
        "order_margin": ev.order_margin,
        "open_comm": ev.open_comm,
    }


def orders_only_row(account: int, symbol: str, order_margin: int, seq: int, ts_ns: int) -> Row:
    """``positions`` row of an account with working orders on ``symbol`` and no published
    position: flat, ``risk_limit`` 0 (a published position always has one; see
    ``is_orders_only``) and the orders' margin. Upserted keeping an existing row's other columns."""
    row = position_row(PositionChanged(ts_ns, account, symbol, 0, 0, 0), seq)
    row["order_margin"] = order_margin
    return row


def is_orders_only(event: PositionChanged) -> bool:
    """A ``positions`` row that only carries the working orders' margin (``orders_only_row``)."""
    return event.risk_limit == 0


StoredRow = SqlRow[Any] | Mapping[str, Any]  # a row read back, or its columns by name


def _columns(row: StoredRow) -> Mapping[Any, Any]:
    return row._mapping if isinstance(row, SqlRow) else row


def position_event_of(row: StoredRow) -> PositionChanged:
    """The ``PositionChanged`` a ``positions`` row was made from (the position view's seed)."""
    m = _columns(row)
    return PositionChanged(
        m["timestamp_ns"],
        m["account"],
        m["symbol"],
        m["current_qty"],
        m["current_cost"],
        m["realised_pnl"],
        m["exec_realised_pnl"],
        m["leverage_e2"],
        m["risk_limit"],
        m["deposit"],
        m["pos_init"],
        m["pos_comm"],
        m["pos_margin"],
        m["pos_maint"],
        m["init_margin_ppm"],
        m["maint_margin_ppm"],
        m["bankrupt_price"],
        m["liquidation_price"],
        m["order_margin"],
        m["open_comm"],
    )


def funding_row(
    ts_ns: int,
    symbol: str,
    funding_interval_ns: int,
    funding_rate_num: int,
    funding_rate_den: int,
    seq: int,
) -> Row:
    """``funding``: one funding time of a perpetual; rate = num / den exactly (den > 0)."""
    if funding_rate_den <= 0 or funding_interval_ns <= 0:
        raise ValueError(
            f"funding row {symbol}: bad rate den {funding_rate_den} "
            f"or interval {funding_interval_ns}"
        )
    return {
        "symbol": symbol,
        "timestamp_ns": ts_ns,
        "funding_interval_ns": funding_interval_ns,
        "funding_rate_num": funding_rate_num,
        "funding_rate_den": funding_rate_den,
        "seq": seq,
    }


def settlement_row(
    ts_ns: int,
    symbol: str,
    settlement_type: str,
    settled_price_num: int,
    settled_price_den: int,
    bankrupt: int,
    tax_base: int,
    tax_rate_ppm: int,
    seq: int,
) -> Row:
    """``settlement``: a future's (or other) settlement at an exact rational price."""
    if settled_price_den <= 0:
        raise ValueError(f"settlement row {symbol}: bad price den {settled_price_den}")
    return {
        "symbol": symbol,
        "timestamp_ns": ts_ns,
        "settlement_type": settlement_type,
        "settled_price_num": settled_price_num,
        "settled_price_den": settled_price_den,
        "option_strike_price_num": None,
        "option_underlying_price_num": None,
        "option_price_den": None,
        "bankrupt": bankrupt,
        "tax_base": tax_base,
        "tax_rate_ppm": tax_rate_ppm,
        "seq": seq,
    }


def liquidation_row(
    ts_ns: int,
    order_id: int,
    symbol: str,
    side: int,
    price: int,
    leaves_qty: int,
    working: bool,
    seq: int,
) -> Row:
    """``liquidations``: the latest state of one liquidation-engine order (price in ticks)."""
    return {
        "order_id": order_id,
        "symbol": symbol,
        "side": side,
        "price": price,
        "leaves_qty": leaves_qty,
        "working": working,
        "timestamp_ns": ts_ns,
        "seq": seq,
    }


def order_event_of(row: StoredRow) -> OrderEvent:
    """The ``OrderEvent`` an ``executions`` row was made from (equal field by field, enums as
    ints), or, for an ``orders`` row, the order's latest state as an event without execution
    fields (exec_type and exec_id 0). Lets the gateway format history rows with the code that
    formats live events."""
    m = _columns(row)
    return OrderEvent(
        m["timestamp_ns"],
        m.get("exec_type", 0),
        m.get("exec_id", 0),
        m["order_id"],
        m["account"],
        m["symbol"],
        m["side"],
        m["ord_type"],
        m["time_in_force"],
        m["exec_inst"],
        m["order_qty"],
        m["price"],
        m["stop_px"],
        m["display_qty"],
        m["peg_price_type"],
        m["peg_offset"],
        m["contingency_type"],
        m["cl_ord_id"],
        m["cl_ord_link_id"],
        m["ord_status"],
        bool(m["triggered"]),
        bool(m["working"]),
        m["leaves_qty"],
        m["cum_qty"],
        m["cum_px_qty"],
        m["text"],
        m.get("last_qty", 0),
        m.get("last_px"),
        m.get("trd_match_id", 0),
        m.get("exec_cost", 0),
        m.get("exec_comm", 0),
        m.get("fee_rate_ppm", 0),
        m.get("liquidity", 0),
        m["transact_ts_ns"],
    )


def trade_of(row: StoredRow) -> Trade:
    """The ``Trade`` event a ``trades`` row was made from."""
    m = _columns(row)
    return Trade(
        m["timestamp_ns"],
        m["symbol"],
        m["trd_match_id"],
        m["side"],
        m["size"],
        m["price"],
        m["gross_value"],
        m["maker_account"],
        m["taker_account"],
        m["maker_order_id"],
        m["taker_order_id"],
    )


def announcement_row(ev: AnnouncementPublished, seq: int) -> Row:
    """``announcements``: the id is the publishing command's seq."""
    return {
        "id": seq,
        "timestamp_ns": ev.ts_ns,
        "title": ev.title,
        "content": ev.content,
        "link": ev.link,
        "urgent": ev.urgent,
    }


def unstaking_row(ev: UnstakingUpdated) -> Row:
    """``unstaking_requests``: the request's latest status and when it got it."""
    return {
        "request_id": ev.request_id,
        "account": ev.account,
        "currency": ev.currency,
        "amount": ev.amount,
        "release_ns": ev.release_ns,
        "status": ev.status,
        "timestamp_ns": ev.ts_ns,
    }
