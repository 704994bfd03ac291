"""BitMEX table query semantics on the projected stream, on SQLite and PostgreSQL: symbol
roots and timeframes, filters (IN, open, ordStatus.isTerminated, ids, prices), count limits,
start, reverse, time ranges, and each table's own function."""

from typing import Any

import pytest
from sqlalchemy import Engine

from perpetua.core.enums import ExecType, OrdStatus, Side
from perpetua.store import QueryError, queries
from perpetua.store.limits import QUERY_COUNT_MAX, WALLET_HISTORY_COUNT_MAX
from perpetua.store.rows import funding_row, liquidation_row, settlement_row
from perpetua.store.schema import funding, liquidations, settlement
from perpetua.store.symbols import resolve_symbols
from tests.store.stream import DAY, T0, P, S, commands

pytestmark = pytest.mark.usefixtures("projected")

ACCOUNT_1_ORDERS = ("a1", "a2", "s1")


def cl_ids(found: list[Any]) -> list[str]:
    return [row.cl_ord_id for row in found]


def test_symbol_exact_case_insensitive_root_and_timeframe(engine: Engine) -> None:
    with engine.connect() as conn:
        assert cl_ids(queries.query_orders(conn, 1, symbol="xbtusd")) == ["a1", "a2"]
        assert cl_ids(queries.query_orders(conn, 1, symbol="XBT")) == list(ACCOUNT_1_ORDERS)
        assert cl_ids(queries.query_orders(conn, 1, symbol="XBT:perpetual")) == ["a1", "a2"]
        assert cl_ids(queries.query_orders(conn, 1, symbol=["XBT_USDT"])) == ["s1"]
        assert queries.query_orders(conn, 1, symbol="NOPE") == []
        assert cl_ids(queries.query_orders(conn, 1)) == list(ACCOUNT_1_ORDERS)


def test_resolve_symbols() -> None:
    assert resolve_symbols(None) is None
    assert resolve_symbols("ethusdt") == ("ETHUSDT",)
    assert set(resolve_symbols("XBT") or ()) >= {
        "XBTUSD",
        "XBTUSDT",
        "XBTH27",
        "XBTM27",
        "XBT_USDT",
    }
    assert resolve_symbols("XBT:quarterly", now_ns=T0) == ("XBTH27",)
    assert resolve_symbols("XBT:biquarterly", now_ns=T0) == ("XBTM27",)
    assert resolve_symbols("XBT:monthly") == ()
    assert resolve_symbols(["A", "B"]) == ("A", "B")


def test_filter_equality_and_in_lists(engine: Engine) -> None:
    with engine.connect() as conn:
        assert cl_ids(queries.query_orders(conn, 2, filter={"side": "Sell"})) == ["b1", "s2", "b2"]
        assert cl_ids(
            queries.query_orders(conn, 2, filter={"ordStatus": ["Canceled", "PartiallyFilled"]})
        ) == ["b1"]
        assert cl_ids(queries.query_orders(conn, 1, filter={"clOrdID": ["a2", "s1"]})) == [
            "a2",
            "s1",
        ]
        assert queries.query_orders(conn, 1, filter={"clOrdID": []}) == []
        both = queries.query_orders(conn, 1, filter={"side": Side.BUY, "ordType": "Limit"})
        assert cl_ids(both) == list(ACCOUNT_1_ORDERS)


def test_filter_open_and_is_terminated(engine: Engine) -> None:
    with engine.connect() as conn:
        live = queries.query_orders(conn, 3, filter={"open": True})
        assert cl_ids(live) == ["c4"]
        assert live[0].ord_status == OrdStatus.NEW
        ended = queries.query_orders(conn, 3, filter={"ordStatus.isTerminated": True})
        assert cl_ids(ended) == ["c1", "c2", "c3"]
        assert cl_ids(queries.query_orders(conn, 3, filter={"open": "false"})) == cl_ids(ended)
        assert cl_ids(queries.query_orders(conn, 3, filter={"ordStatus.isTerminated": False})) == [
            "c4"
        ]


def test_filter_ids_and_prices(engine: Engine) -> None:
    with engine.connect() as conn:
        a1 = queries.get_order_by_cl_ord_id(conn, 1, "a1")
        assert a1 is not None
        as_uuid = f"4f524400-0000-4000-{a1.order_id >> 48:04x}-{a1.order_id & (2**48 - 1):012x}"
        assert cl_ids(queries.query_orders(conn, 1, filter={"orderID": as_uuid})) == ["a1"]
        assert cl_ids(queries.query_orders(conn, 1, filter={"orderID": a1.order_id})) == ["a1"]
        assert cl_ids(
            queries.query_orders(conn, 1, symbol="XBTUSD", filter={"price": "19999.0"})
        ) == ["a2"]
        assert cl_ids(
            queries.query_orders(conn, 1, filter={"symbol": "XBTUSD", "price": 20000})
        ) == ["a1"]
        assert queries.get_order(conn, 1, a1.order_id) == a1
        assert queries.get_order(conn, 2, a1.order_id) is None


@pytest.mark.parametrize(
    ("filter_", "message"),
    [
        ({"colour": "red"}, "unknown field"),
        ({"side": "Up"}, "no value"),
        ({"price": 20000}, "single symbol"),
        ({"orderID": "not-a-uuid-but-36-characters-long!!!"}, "not a valid id"),
        ({"open": "maybe"}, "true or false"),
        ({"orderQty": True}, "integer"),
    ],
)
def test_bad_filters_are_query_errors(
    engine: Engine, filter_: dict[str, Any], message: str
) -> None:
    with engine.connect() as conn, pytest.raises(QueryError, match=message):
        queries.query_orders(conn, 1, filter=filter_)


def test_off_grid_price_filter(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(QueryError, match="tick size"):
        queries.query_orders(conn, 1, symbol="XBTUSD", filter={"price": "20000.05"})


def test_count_limit_start_and_reverse(engine: Engine) -> None:
    with engine.connect() as conn:
        for bad in (QUERY_COUNT_MAX + 1, -1):
            with pytest.raises(QueryError, match="count"):
                queries.query_orders(conn, 1, count=bad)
        with pytest.raises(QueryError, match="start"):
            queries.query_orders(conn, 1, start=-1)
        assert len(queries.query_orders(conn, 1, count=QUERY_COUNT_MAX)) == 3
        assert cl_ids(queries.query_orders(conn, 1, count=2)) == ["a1", "a2"]
        assert cl_ids(queries.query_orders(conn, 1, count=2, start=1)) == ["a2", "s1"]
        assert cl_ids(queries.query_orders(conn, 1, reverse=True)) == ["s1", "a2", "a1"]
        assert cl_ids(queries.query_orders(conn, 1, reverse=True, start=2)) == ["a1"]
        assert queries.query_orders(conn, 1, count=0) == []


def test_time_range_is_inclusive(engine: Engine) -> None:
    with engine.connect() as conn:
        prints = queries.query_trades(conn, symbol="XBTUSD")
        stamps = [row.timestamp_ns for row in prints]
        middle = queries.query_trades(
            conn, symbol="XBTUSD", start_time_ns=stamps[1], end_time_ns=stamps[2]
        )
        assert [row.timestamp_ns for row in middle] == stamps[1:3]
        assert queries.query_trades(conn, start_time_ns=stamps[-1] + 1) == []


def test_executions_and_trade_history(engine: Engine) -> None:
    with engine.connect() as conn:
        every = queries.query_executions(conn, 2, symbol="XBTUSD")
        assert {row.exec_type for row in every} >= {
            ExecType.NEW,
            ExecType.TRADE,
            ExecType.REPLACED,
            ExecType.CANCELED,
        }
        fills = queries.query_executions(conn, 2, exec_types=queries.TRADE_HISTORY_EXEC_TYPES)
        assert fills and all(row.exec_type == ExecType.TRADE for row in fills)
        assert [row.exec_id for row in fills] == sorted(row.exec_id for row in fills)
        by_filter = queries.query_executions(conn, 2, filter={"execType": "Trade"})
        assert by_filter == fills
        makers = queries.query_executions(conn, 2, filter={"lastLiquidityInd": "AddedLiquidity"})
        assert all(row.liquidity == 1 for row in makers)
        match = fills[0].trd_match_id
        assert (
            queries.query_executions(conn, 2, filter={"trdMatchID": match})[0].exec_id
            == fills[0].exec_id
        )


def test_trades_and_tick_direction_filter(engine: Engine) -> None:
    with engine.connect() as conn:
        xbt = queries.query_trades(conn, symbol="XBTUSD")
        assert [row.price for row in xbt] == [P, P, P - 10, P + 20]
        down = queries.query_trades(conn, filter={"tickDirection": "MinusTick"})
        assert [row.price for row in down] == [P - 10]
        assert [row.symbol for row in queries.query_trades(conn, symbol="XBT")] == [
            "XBTUSD",
            "XBTUSD",
            "XBTUSD",
            "XBT_USDT",
            "XBTUSD",
        ]


def test_trade_bins_partial_and_sizes(engine: Engine) -> None:
    with engine.connect() as conn:
        days = queries.query_trade_bins(conn, "1d", symbol="XBTUSD")
        assert [row.timestamp_ns for row in days] == [T0 + DAY, T0 + 2 * DAY]
        closed = queries.query_trade_bins(conn, "1d", symbol="XBTUSD", now_ns=T0 + DAY + 6 * S)
        assert [row.timestamp_ns for row in closed] == [T0 + DAY]
        partial = queries.query_trade_bins(
            conn, "1d", symbol="XBTUSD", partial=True, now_ns=T0 + DAY + 6 * S
        )
        assert len(partial) == 2
        newest = queries.query_trade_bins(conn, "1m", symbol="XBTUSD", reverse=True, count=1)
        assert newest[0].timestamp_ns == T0 + DAY + 60 * S
        with pytest.raises(QueryError, match="binSize"):
            queries.query_trade_bins(conn, "7m")


def test_transactions_defaults_currency_and_filter(engine: Engine) -> None:
    with engine.connect() as conn:
        history = queries.query_transactions(conn, 1)
        ids = [row.transact_id for row in history]
        assert ids == sorted(ids, reverse=True)  # BitMEX default: newest first
        assert {row.currency for row in history} == {"XBt", "USDt"}
        usdt = queries.query_transactions(conn, 1, currency="USDt", reverse=False)
        assert [row.transact_type for row in usdt] == ["Deposit", "SpotTrade"]
        assert queries.query_transactions(conn, 1, currency="all") == history
        withdrawals = queries.query_transactions(conn, 1, filter={"transactType": "Withdrawal"})
        assert [row.ref for row in withdrawals] == ["w1"]
        with pytest.raises(QueryError):
            queries.query_transactions(conn, 1, count=WALLET_HISTORY_COUNT_MAX + 1)


def test_wallets_and_positions(engine: Engine) -> None:
    with engine.connect() as conn:
        assert [row.currency for row in queries.query_wallets(conn, 1)] == ["USDt", "XBt"]
        wallet = queries.get_wallet(conn, 2, "XBt")
        assert wallet is not None and wallet.deposited == 10 * 100_000_000
        assert queries.get_wallet(conn, 2, "Gwei") is None
        every = queries.query_positions(conn, 3)
        assert [(row.symbol, row.current_qty) for row in every] == [("XBTUSD", 100)]
        assert queries.query_positions(conn, 3, filter={"isOpen": False}) == []
        assert queries.query_positions(conn, 3, filter={"isOpen": True}) == every
        assert len(queries.query_positions(conn, 1, filter={"symbol": "XBTUSD"})) == 1


def test_funding_settlement_and_liquidation_tables(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            funding.insert(),
            [
                funding_row(T0 + 4 * 3600 * S, "XBTUSD", 8 * 3600 * S, 1, 10_000, 30),
                funding_row(T0 + 12 * 3600 * S, "XBTUSD", 8 * 3600 * S, -3, 10_000, 31),
                funding_row(T0 + 12 * 3600 * S, "ETHUSD", 8 * 3600 * S, 1, 10_000, 31),
            ],
        )
        conn.execute(
            settlement.insert(),
            [settlement_row(T0, "XBTH27", "Settlement", 123_456, 10, 0, 0, 500, 40)],
        )
        conn.execute(
            liquidations.insert(),
            [
                liquidation_row(T0, 900, "XBTUSD", -1, P, 100, True, 41),
                liquidation_row(T0 + S, 901, "XBTUSD", 1, P, 0, False, 42),
            ],
        )
    with engine.connect() as conn:
        rates = queries.query_funding(conn, symbol="XBT")
        assert [(r.funding_rate_num, r.funding_rate_den) for r in rates] == [
            (1, 10_000),
            (-3, 10_000),
        ]
        assert len(queries.query_funding(conn)) == 3
        settled = queries.query_settlement(conn, symbol="XBTH27")
        assert settled[0].settled_price_num == 123_456
        assert [r.order_id for r in queries.query_liquidations(conn)] == [900]
        assert len(queries.query_liquidations(conn, working_only=False)) == 2
        assert queries.query_insurance(conn, "XBt") == []
        assert queries.last_projected_seq(conn) == len(commands())
    with pytest.raises(ValueError):
        funding_row(T0, "XBTUSD", 0, 1, 10_000, 1)
