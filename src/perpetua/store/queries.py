"""BitMEX table queries on the read models: one function per table.

Every function takes an open SQLAlchemy ``Connection`` (``engine.connect()``; reads only) and
BitMEX's query parameters in core units:

* ``symbol``: a string resolved by ``symbols.resolve_symbols`` (exact, series root or
  ``ROOT:timeframe``; unknown matches nothing), or a list of exact symbols, or ``None`` (all);
* ``filter``: a dict, see ``filters`` (unknown keys and bad values raise ``QueryError``);
* ``count``: 0..``QUERY_COUNT_MAX`` (1000; wallet history ``WALLET_HISTORY_COUNT_MAX``),
  ``start``: an offset, ``reverse``: newest first;
* ``start_time_ns`` / ``end_time_ns``: inclusive bounds on the row's ``timestamp_ns``.

Rows come back as SQLAlchemy ``Row`` objects (attribute access ``row.order_id``, or
``row._mapping``) with the columns of ``schema``, in the core's units. Rows are ordered by
(``timestamp_ns``, id) ascending, or descending with ``reverse``.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    and_,
    case,
    func,
    not_,
    or_,
    select,
)

from perpetua.core.catalogue import default_catalogue
from perpetua.core.enums import ExecType, OrdStatus
from perpetua.core.instruments import InstrumentSpec
from perpetua.store.filters import (
    CONTINGENCY_BY_NAME,
    EXEC_TYPE_BY_NAME,
    LIQUIDITY_BY_NAME,
    ORD_STATUS_BY_NAME,
    ORD_TYPE_BY_NAME,
    PEG_BY_NAME,
    SIDE_BY_NAME,
    TIF_BY_NAME,
    FieldSpec,
    QueryError,
    bool_value,
    conditions,
    enum_value,
    id_value,
    int_value,
    price_value,
    text_value,
)
from perpetua.store.limits import QUERY_COUNT_MAX, QUERY_START_MAX, WALLET_HISTORY_COUNT_MAX
from perpetua.store.rows import TICK_DIRECTION_NAMES
from perpetua.store.schema import (
    announcements,
    executions,
    funding,
    insurance,
    liquidations,
    orders,
    positions,
    projector_state,
    settlement,
    trade_bins,
    trades,
    transactions,
    unstaking_requests,
    wallets,
)
from perpetua.store.symbols import resolve_symbols
from perpetua.wire.vocabulary import (
    EXEC_TYPE_BANKRUPTCY,
    EXEC_TYPE_DELEVERAGE,
    EXEC_TYPE_LIQUIDATION,
)

__all__ = [
    "withdrawal_rows",
    "ANNOUNCEMENTS_MAX",
    "BIN_SIZES",
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "TRADE_HISTORY_EXEC_TYPES",
    "QueryError",
    "announcements_of_all",
    "unstaking_of_all",
    "daily_execution_counts",
    "daily_trade_totals",
    "get_order",
    "get_order_by_cl_ord_id",
    "get_orders_by_ids",
    "get_wallet",
    "hourly_quote_values",
    "last_projected_seq",
    "open_orders_of_all",
    "positions_of_all",
    "wallets_of_all",
    "query_executions",
    "query_funding",
    "query_insurance",
    "query_liquidations",
    "query_orders",
    "query_positions",
    "query_settlement",
    "query_trade_bins",
    "query_trades",
    "query_transactions",
    "query_wallets",
]

Filter = Mapping[str, Any] | None
Symbol = str | Sequence[str] | None
Catalogue = Sequence[InstrumentSpec] | None

OPEN_STATUSES = (int(OrdStatus.NEW), int(OrdStatus.PARTIALLY_FILLED))
TERMINAL_STATUSES = (
    int(OrdStatus.FILLED),
    int(OrdStatus.CANCELED),
    int(OrdStatus.REJECTED),
    int(OrdStatus.EXPIRED),
)
TRADE_HISTORY_EXEC_TYPES = (
    int(ExecType.TRADE),
    int(ExecType.FUNDING),
    int(ExecType.SETTLEMENT),
    EXEC_TYPE_LIQUIDATION,
    EXEC_TYPE_BANKRUPTCY,
    EXEC_TYPE_DELEVERAGE,
)
BIN_SIZES = ("1m", "5m", "1h", "1d")


def _triggered_value(field: str, value: Any, spec: InstrumentSpec | None) -> bool:
    if value == "StopOrderTriggered":
        return True
    if value == "":
        return False
    return bool_value(field, value, spec)


def _order_fields(table: Table) -> dict[str, FieldSpec]:
    c = table.c
    return {
        "orderID": FieldSpec(c.order_id, id_value),
        "clOrdID": FieldSpec(c.cl_ord_id, text_value),
        "clOrdLinkID": FieldSpec(c.cl_ord_link_id, text_value),
        "account": FieldSpec(c.account, int_value),
        "symbol": FieldSpec(c.symbol, text_value),
        "side": FieldSpec(c.side, enum_value(SIDE_BY_NAME)),
        "ordType": FieldSpec(c.ord_type, enum_value(ORD_TYPE_BY_NAME)),
        "timeInForce": FieldSpec(c.time_in_force, enum_value(TIF_BY_NAME)),
        "ordStatus": FieldSpec(c.ord_status, enum_value(ORD_STATUS_BY_NAME)),
        "contingencyType": FieldSpec(c.contingency_type, enum_value(CONTINGENCY_BY_NAME)),
        "pegPriceType": FieldSpec(c.peg_price_type, enum_value(PEG_BY_NAME)),
        "triggered": FieldSpec(c.triggered, _triggered_value),
        "workingIndicator": FieldSpec(c.working, bool_value),
        "orderQty": FieldSpec(c.order_qty, int_value),
        "leavesQty": FieldSpec(c.leaves_qty, int_value),
        "cumQty": FieldSpec(c.cum_qty, int_value),
        "displayQty": FieldSpec(c.display_qty, int_value),
        "price": FieldSpec(c.price, price_value),
        "stopPx": FieldSpec(c.stop_px, price_value),
        "text": FieldSpec(c.text, text_value),
    }


ORDER_FIELDS = _order_fields(orders)
EXECUTION_FIELDS = {
    **_order_fields(executions),
    "execID": FieldSpec(executions.c.exec_id, id_value),
    "execType": FieldSpec(executions.c.exec_type, enum_value(EXEC_TYPE_BY_NAME)),
    "trdMatchID": FieldSpec(executions.c.trd_match_id, id_value),
    "lastQty": FieldSpec(executions.c.last_qty, int_value),
    "lastPx": FieldSpec(executions.c.last_px, price_value),
    "lastLiquidityInd": FieldSpec(executions.c.liquidity, enum_value(LIQUIDITY_BY_NAME)),
    "execCost": FieldSpec(executions.c.exec_cost, int_value),
    "execComm": FieldSpec(executions.c.exec_comm, int_value),
}
TRADE_FIELDS = {
    "symbol": FieldSpec(trades.c.symbol, text_value),
    "side": FieldSpec(trades.c.side, enum_value(SIDE_BY_NAME)),
    "size": FieldSpec(trades.c.size, int_value),
    "price": FieldSpec(trades.c.price, price_value),
    "tickDirection": FieldSpec(
        trades.c.tick_direction,
        enum_value({name: value for value, name in TICK_DIRECTION_NAMES.items()}),
    ),
    "trdMatchID": FieldSpec(trades.c.trd_match_id, id_value),
    "grossValue": FieldSpec(trades.c.gross_value, int_value),
}
TRADE_BIN_FIELDS = {
    "symbol": FieldSpec(trade_bins.c.symbol, text_value),
    "open": FieldSpec(trade_bins.c.open, price_value),
    "high": FieldSpec(trade_bins.c.high, price_value),
    "low": FieldSpec(trade_bins.c.low, price_value),
    "close": FieldSpec(trade_bins.c.close, price_value),
    "trades": FieldSpec(trade_bins.c.trades, int_value),
    "volume": FieldSpec(trade_bins.c.volume, int_value),
    "turnover": FieldSpec(trade_bins.c.turnover, int_value),
}
TRANSACTION_FIELDS = {
    "transactID": FieldSpec(transactions.c.transact_id, id_value),
    "currency": FieldSpec(transactions.c.currency, text_value),
    "transactType": FieldSpec(transactions.c.transact_type, text_value),
    "transactStatus": FieldSpec(transactions.c.transact_status, text_value),
    "amount": FieldSpec(transactions.c.amount, int_value),
    "fee": FieldSpec(transactions.c.fee, int_value),
    "network": FieldSpec(transactions.c.network, text_value),
    "address": FieldSpec(transactions.c.address, text_value),
    "tx": FieldSpec(transactions.c.tx, text_value),
    "text": FieldSpec(transactions.c.text, text_value),
}
POSITION_FIELDS = {
    "symbol": FieldSpec(positions.c.symbol, text_value),
    "currentQty": FieldSpec(positions.c.current_qty, int_value),
    "account": FieldSpec(positions.c.account, int_value),
}
FUNDING_FIELDS = {"symbol": FieldSpec(funding.c.symbol, text_value)}
INSURANCE_FIELDS = {"currency": FieldSpec(insurance.c.currency, text_value)}
SETTLEMENT_FIELDS = {
    "symbol": FieldSpec(settlement.c.symbol, text_value),
    "settlementType": FieldSpec(settlement.c.settlement_type, text_value),
}
LIQUIDATION_FIELDS = {
    "orderID": FieldSpec(liquidations.c.order_id, id_value),
    "symbol": FieldSpec(liquidations.c.symbol, text_value),
    "side": FieldSpec(liquidations.c.side, enum_value(SIDE_BY_NAME)),
    "price": FieldSpec(liquidations.c.price, price_value),
    "leavesQty": FieldSpec(liquidations.c.leaves_qty, int_value),
}


def _order_special(column_status: Any) -> Any:
    def special(key: str, value: Any) -> ColumnElement[bool] | None:
        if key not in ("open", "ordStatus.isTerminated"):
            return None
        flag = bool_value(key, value, None)
        live: ColumnElement[bool] = column_status.in_(OPEN_STATUSES)
        wants_live = flag if key == "open" else not flag
        return live if wants_live else not_(live)

    return special


def _single_spec(
    symbols: tuple[str, ...] | None, filter_: Filter, catalogue: Catalogue
) -> InstrumentSpec | None:
    """The query's one instrument (for price filters), if it names exactly one."""
    names = symbols
    if names is None and filter_ and isinstance(filter_.get("symbol"), str):
        names = (filter_["symbol"],)
    if names is None or len(names) != 1:
        return None
    specs = catalogue if catalogue is not None else default_catalogue()
    return next((s for s in specs if s.symbol == names[0]), None)


def _check_page(count: int, start: int, count_max: int) -> None:
    if isinstance(count, bool) or not 0 <= count <= count_max:
        raise QueryError(f"count must be between 0 and {count_max}")
    if isinstance(start, bool) or not 0 <= start <= QUERY_START_MAX:
        raise QueryError(f"start must be between 0 and {QUERY_START_MAX}")


def _run(
    conn: Connection,
    stmt: Select[Any],
    table: Table,
    where: list[Any],
    order_keys: Sequence[str],
    count: int,
    start: int,
    reverse: bool,
    start_time_ns: int | None,
    end_time_ns: int | None,
) -> list[Row[Any]]:
    time_column = table.c.timestamp_ns
    if start_time_ns is not None:
        where.append(time_column >= start_time_ns)
    if end_time_ns is not None:
        where.append(time_column <= end_time_ns)
    if where:
        stmt = stmt.where(and_(*where))
    columns = [table.c[name] for name in order_keys]
    stmt = stmt.order_by(*(c.desc() if reverse else c.asc() for c in columns))
    stmt = stmt.limit(count).offset(start)
    return list(conn.execute(stmt).all())


def _table_query(
    conn: Connection,
    table: Table,
    fields: Mapping[str, FieldSpec],
    where: list[Any],
    symbol: Symbol,
    filter_: Filter,
    count: int,
    start: int,
    reverse: bool,
    start_time_ns: int | None,
    end_time_ns: int | None,
    catalogue: Catalogue,
    order_keys: Sequence[str],
    count_max: int = QUERY_COUNT_MAX,
    special: Any = None,
    now_ns: int | None = None,
) -> list[Row[Any]]:
    _check_page(count, start, count_max)
    symbols = resolve_symbols(symbol, catalogue, now_ns)
    if symbols is not None:
        if not symbols:
            return []
        where.append(table.c.symbol.in_(symbols))
    spec = _single_spec(symbols, filter_, catalogue)
    where.extend(conditions(filter_, fields, spec, special))
    if count == 0:
        return []
    return _run(
        conn,
        select(table),
        table,
        where,
        order_keys,
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
    )


def query_orders(
    conn: Connection,
    account: int,
    symbol: Symbol = None,
    filter: Filter = None,
    count: int = 100,
    start: int = 0,
    reverse: bool = False,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
    catalogue: Catalogue = None,
) -> list[Row[Any]]:
    """``orders`` of ``account`` (latest state per order), by last update time. Filter keys:
    ``ORDER_FIELDS`` plus ``open`` (true: New or PartiallyFilled, untriggered stops included)
    and ``ordStatus.isTerminated``."""
    return _table_query(
        conn,
        orders,
        ORDER_FIELDS,
        [orders.c.account == account],
        symbol,
        filter,
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
        catalogue,
        ("timestamp_ns", "order_id"),
        special=_order_special(orders.c.ord_status),
    )


def get_order(conn: Connection, account: int, order_id: int) -> Row[Any] | None:
    return conn.execute(
        select(orders).where(orders.c.account == account, orders.c.order_id == order_id)
    ).first()


def get_order_by_cl_ord_id(conn: Connection, account: int, cl_ord_id: str) -> Row[Any] | None:
    """The account's newest order with ``cl_ord_id``."""
    return conn.execute(
        select(orders)
        .where(orders.c.account == account, orders.c.cl_ord_id == cl_ord_id)
        .order_by(orders.c.created_ns.desc(), orders.c.order_id.desc())
        .limit(1)
    ).first()


def get_orders_by_ids(
    conn: Connection, account: int, order_ids: Sequence[int], cl_ord_ids: Sequence[str]
) -> list[Row[Any]]:
    """The account's orders with any of ``order_ids`` or ``cl_ord_ids``, in one query (a bulk
    cancel's misses; the caller bounds both lists), newest first."""
    if not order_ids and not cl_ord_ids:
        return []
    match = or_(orders.c.order_id.in_(list(order_ids)), orders.c.cl_ord_id.in_(list(cl_ord_ids)))
    return list(
        conn.execute(
            select(orders)
            .where(orders.c.account == account, match)
            .order_by(orders.c.created_ns.desc(), orders.c.order_id.desc())
        ).all()
    )


def query_executions(
    conn: Connection,
    account: int,
    symbol: Symbol = None,
    filter: Filter = None,
    count: int = 100,
    start: int = 0,
    reverse: bool = False,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
    exec_types: Sequence[int] | None = None,
    catalogue: Catalogue = None,
) -> list[Row[Any]]:
    """``executions`` of ``account``. ``/execution/tradeHistory`` passes
    ``exec_types=TRADE_HISTORY_EXEC_TYPES``. Filter keys: ``EXECUTION_FIELDS``, ``open`` and
    ``ordStatus.isTerminated`` (on the order status at the execution)."""
    where: list[Any] = [executions.c.account == account]
    if exec_types is not None:
        where.append(executions.c.exec_type.in_([int(t) for t in exec_types]))
    return _table_query(
        conn,
        executions,
        EXECUTION_FIELDS,
        where,
        symbol,
        filter,
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
        catalogue,
        ("timestamp_ns", "exec_id"),
        special=_order_special(executions.c.ord_status),
    )


def query_trades(
    conn: Connection,
    symbol: Symbol = None,
    filter: Filter = None,
    count: int = 100,
    start: int = 0,
    reverse: bool = False,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
    catalogue: Catalogue = None,
) -> list[Row[Any]]:
    """Public prints (``trades``). Never send the maker/taker columns to clients."""
    return _table_query(
        conn,
        trades,
        TRADE_FIELDS,
        [],
        symbol,
        filter,
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
        catalogue,
        ("timestamp_ns", "trd_match_id"),
    )


def query_trade_bins(
    conn: Connection,
    bin_size: str,
    symbol: Symbol = None,
    filter: Filter = None,
    count: int = 100,
    start: int = 0,
    reverse: bool = False,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
    partial: bool = False,
    now_ns: int | None = None,
    catalogue: Catalogue = None,
) -> list[Row[Any]]:
    """``trade_bins`` of ``bin_size`` ('1m', '5m', '1h', '1d'); ``timestamp_ns`` is the bin's
    end. Without ``partial``, the bin still open at ``now_ns`` (end > now_ns) is left out;
    pass the current time. Bins without prints are absent (no gap filling)."""
    if bin_size not in BIN_SIZES:
        raise QueryError(f"binSize must be one of {', '.join(BIN_SIZES)}")
    where: list[Any] = [trade_bins.c.bin_size == bin_size]
    if not partial and now_ns is not None:
        where.append(trade_bins.c.timestamp_ns <= now_ns)
    return _table_query(
        conn,
        trade_bins,
        TRADE_BIN_FIELDS,
        where,
        symbol,
        filter,
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
        catalogue,
        ("timestamp_ns", "symbol"),
        now_ns=now_ns,
    )


def daily_trade_totals(conn: Connection, rows_max: int) -> list[Any]:
    """``(timestamp_ns, symbol, volume, turnover)`` of the daily trade bins (``timestamp_ns``
    the day's end), newest first, at most ``rows_max``: ``/stats/history`` sums them."""
    return list(
        conn.execute(
            select(
                trade_bins.c.timestamp_ns,
                trade_bins.c.symbol,
                trade_bins.c.volume,
                trade_bins.c.turnover,
            )
            .where(trade_bins.c.bin_size == "1d")
            .order_by(trade_bins.c.timestamp_ns.desc(), trade_bins.c.symbol)
            .limit(rows_max)
        ).all()
    )


DAY_NS = 86_400 * 10**9


def daily_execution_counts(
    conn: Connection, account: int, since_ns: int, exec_types: Sequence[int]
) -> list[Any]:
    """``(day, exec_type, count)`` of ``account``'s executions since ``since_ns``, ``day`` the
    number of whole days since the epoch: the quote fill ratio counts them."""
    day = executions.c.timestamp_ns.op("/")(DAY_NS)  # integer division on both databases
    return list(
        conn.execute(
            select(day.label("day"), executions.c.exec_type, func.count().label("count"))
            .where(
                executions.c.account == account,
                executions.c.timestamp_ns >= since_ns,
                executions.c.exec_type.in_([int(t) for t in exec_types]),
            )
            .group_by(day, executions.c.exec_type)
        ).all()
    )


ANNOUNCEMENTS_MAX = 1_000  # newest kept in answers and views: an operator's news, not a log


def announcements_of_all(conn: Connection) -> list[Row[Any]]:
    """The live announcements, newest first, at most ``ANNOUNCEMENTS_MAX``."""
    return list(
        conn.execute(
            select(announcements).order_by(announcements.c.id.desc()).limit(ANNOUNCEMENTS_MAX)
        ).all()
    )


def unstaking_of_all(conn: Connection, per_account: int) -> list[Row[Any]]:
    """Every account's pending unstaking requests (the core holds at most
    ``core.staking.UNSTAKING_REQUESTS_PER_ACCOUNT_MAX``) and its newest ``per_account`` ended
    ones of each status (Canceled, Released), by account, then oldest first."""
    ranked = select(
        unstaking_requests,
        func.row_number()
        .over(
            partition_by=(unstaking_requests.c.account, unstaking_requests.c.status),
            order_by=(
                unstaking_requests.c.timestamp_ns.desc(),
                unstaking_requests.c.request_id.desc(),
            ),
        )
        .label("newest"),
    ).subquery()
    return list(
        conn.execute(
            select(ranked)
            .where(or_(ranked.c.newest <= per_account, ranked.c.status == "Pending"))
            .order_by(ranked.c.account, ranked.c.timestamp_ns, ranked.c.request_id)
        ).all()
    )


HOUR_NS = 3_600 * 10**9


def hourly_quote_values(
    conn: Connection,
    account: int,
    since_ns: int,
    quote_types: Sequence[int],
    trade_type: int,
) -> list[Any]:
    """``(hour, symbol, quotes, value)`` of ``account``'s executions since ``since_ns``: per
    whole hour since the epoch and symbol, the number of quotes (executions of
    ``quote_types``) and the summed ``|exec_cost|`` of its fills (``trade_type``), in the
    symbol's settlement currency; the quote value ratio reads them."""
    hour = executions.c.timestamp_ns.op("/")(HOUR_NS)
    is_quote = executions.c.exec_type.in_([int(t) for t in quote_types])
    is_fill = executions.c.exec_type == int(trade_type)
    return list(
        conn.execute(
            select(
                hour.label("hour"),
                executions.c.symbol,
                func.sum(case((is_quote, 1), else_=0)).label("quotes"),
                func.sum(case((is_fill, func.abs(executions.c.exec_cost)), else_=0)).label("value"),
            )
            .where(
                executions.c.account == account,
                executions.c.timestamp_ns >= since_ns,
                or_(is_quote, is_fill),
            )
            .group_by(hour, executions.c.symbol)
            .order_by(hour.desc(), executions.c.symbol)
        ).all()
    )


def traded_totals(conn: Connection, start_ns: int, end_ns: int) -> list[Any]:
    """``(account, symbol, qty, cost)`` summed over the Trade executions with
    ``start_ns <= timestamp_ns < end_ns``: ``qty`` in contracts, ``cost`` the sum of
    ``|execCost|`` in settlement minor units (the volume tiers measure them)."""
    return list(
        conn.execute(
            select(
                executions.c.account,
                executions.c.symbol,
                func.sum(executions.c.last_qty).label("qty"),
                func.sum(func.abs(executions.c.exec_cost)).label("cost"),
            )
            .where(
                executions.c.exec_type == int(ExecType.TRADE),
                executions.c.timestamp_ns >= start_ns,
                executions.c.timestamp_ns < end_ns,
            )
            .group_by(executions.c.account, executions.c.symbol)
            .order_by(executions.c.account, executions.c.symbol)
        ).all()
    )


def query_transactions(
    conn: Connection,
    account: int,
    currency: str | None = None,
    filter: Filter = None,
    count: int = WALLET_HISTORY_COUNT_MAX,
    start: int = 0,
    reverse: bool = True,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
) -> list[Row[Any]]:
    """Wallet history of ``account`` (``currency`` None or "all": every currency), ordered by
    ``transact_id`` (creation order); BitMEX's defaults: count 10,000, newest first."""
    where: list[Any] = [transactions.c.account == account]
    if currency is not None and currency.lower() != "all":
        where.append(transactions.c.currency == currency)
    _check_page(count, start, WALLET_HISTORY_COUNT_MAX)
    where.extend(conditions(filter, TRANSACTION_FIELDS, None))
    if count == 0:
        return []
    return _run(
        conn,
        select(transactions),
        transactions,
        where,
        ("transact_id",),
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
    )


def get_wallet(conn: Connection, account: int, currency: str) -> Row[Any] | None:
    return conn.execute(
        select(wallets).where(wallets.c.account == account, wallets.c.currency == currency)
    ).first()


def query_wallets(conn: Connection, account: int) -> list[Row[Any]]:
    """Every currency the account's ledger has touched, by currency code."""
    return list(
        conn.execute(
            select(wallets).where(wallets.c.account == account).order_by(wallets.c.currency)
        ).all()
    )


def query_positions(
    conn: Connection, account: int, filter: Filter = None, count: int = 100
) -> list[Row[Any]]:
    """``positions`` of ``account`` by symbol. Filter keys: ``POSITION_FIELDS`` and ``isOpen``
    (current_qty != 0)."""

    def special(key: str, value: Any) -> ColumnElement[bool] | None:
        if key != "isOpen":
            return None
        is_open = positions.c.current_qty != 0
        return is_open if bool_value(key, value, None) else not_(is_open)

    _check_page(count, 0, QUERY_COUNT_MAX)
    where = [positions.c.account == account, *conditions(filter, POSITION_FIELDS, None, special)]
    stmt = select(positions).where(and_(*where)).order_by(positions.c.symbol).limit(count)
    return list(conn.execute(stmt).all()) if count else []


def query_funding(
    conn: Connection,
    symbol: Symbol = None,
    filter: Filter = None,
    count: int = 100,
    start: int = 0,
    reverse: bool = False,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
    catalogue: Catalogue = None,
) -> list[Row[Any]]:
    return _table_query(
        conn,
        funding,
        FUNDING_FIELDS,
        [],
        symbol,
        filter,
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
        catalogue,
        ("timestamp_ns", "symbol"),
    )


def query_insurance(
    conn: Connection,
    currency: str | None = None,
    filter: Filter = None,
    count: int = 100,
    start: int = 0,
    reverse: bool = False,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
) -> list[Row[Any]]:
    """Insurance fund balances; BitMEX's ``symbol`` parameter here is a currency (``XBt``)."""
    _check_page(count, start, QUERY_COUNT_MAX)
    where: list[Any] = []
    if currency:
        where.append(insurance.c.currency == currency)
    where.extend(conditions(filter, INSURANCE_FIELDS, None))
    if count == 0:
        return []
    return _run(
        conn,
        select(insurance),
        insurance,
        where,
        ("timestamp_ns", "currency"),
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
    )


def query_settlement(
    conn: Connection,
    symbol: Symbol = None,
    filter: Filter = None,
    count: int = 100,
    start: int = 0,
    reverse: bool = False,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
    catalogue: Catalogue = None,
) -> list[Row[Any]]:
    return _table_query(
        conn,
        settlement,
        SETTLEMENT_FIELDS,
        [],
        symbol,
        filter,
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
        catalogue,
        ("timestamp_ns", "symbol"),
    )


def query_liquidations(
    conn: Connection,
    symbol: Symbol = None,
    filter: Filter = None,
    count: int = 100,
    start: int = 0,
    reverse: bool = False,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
    working_only: bool = True,
    catalogue: Catalogue = None,
) -> list[Row[Any]]:
    """Liquidation-engine orders; by default only working ones (BitMEX's public table)."""
    where: list[Any] = [liquidations.c.working.is_(True)] if working_only else []
    return _table_query(
        conn,
        liquidations,
        LIQUIDATION_FIELDS,
        where,
        symbol,
        filter,
        count,
        start,
        reverse,
        start_time_ns,
        end_time_ns,
        catalogue,
        ("timestamp_ns", "order_id"),
    )


def last_projected_seq(conn: Connection) -> int:
    """The last seq the projector committed; -1 when none (the gateway can wait on it to read
    its own writes)."""
    value = conn.execute(select(projector_state.c.last_seq)).scalar()
    return -1 if value is None else int(value)


# Start-up reads: the whole of what the gateway's private views hold (see gateway.bootstrap).


def open_orders_of_all(conn: Connection) -> list[Row[Any]]:
    """Every live order (New or PartiallyFilled) of every account, system accounts included
    (the liquidation engine's orders are the public ``liquidation`` table), oldest first."""
    stmt = (
        select(orders)
        .where(orders.c.ord_status.in_(OPEN_STATUSES))
        .order_by(orders.c.created_ns, orders.c.order_id)
    )
    return list(conn.execute(stmt).all())


def positions_of_all(conn: Connection) -> list[Row[Any]]:
    """The latest PositionChanged row of every (account, symbol), system accounts included."""
    stmt = select(positions).order_by(positions.c.account, positions.c.symbol)
    return list(conn.execute(stmt).all())


def withdrawal_rows(conn: Connection, keys: Sequence[tuple[int, str]]) -> list[Row[Any]]:
    """The wallet history rows of withdrawals by (account, withdrawal id), in ``keys`` order
    (the ones the read models hold)."""
    found = []
    for account, withdrawal_id in keys:
        row = conn.execute(
            select(transactions).where(
                transactions.c.account == account,
                transactions.c.transact_type == "Withdrawal",
                transactions.c.ref == withdrawal_id,
            )
        ).first()
        if row is not None:
            found.append(row)
    return found


def wallets_of_all(conn: Connection) -> list[Row[Any]]:
    """Every ledger account's balance per currency, system accounts included."""
    return list(conn.execute(select(wallets).order_by(wallets.c.account, wallets.c.currency)).all())
