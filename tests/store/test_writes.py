"""``insert_rows`` and ``upsert`` (and their tuple forms, ``insert_values`` and
``upsert_values``): the projector's writes, past one SQLite statement's worth of values
(multi-row statements of at most ``SQLITE_STATEMENT_PARAMETERS_MAX`` values; PostgreSQL goes
through COPY), with every row and every column where it belongs."""

from collections.abc import Iterator

import pytest
from sqlalchemy import BigInteger, Column, Engine, MetaData, Table, select

from perpetua.core.events import OrderEvent
from perpetua.store.database import (
    SQLITE_STATEMENT_PARAMETERS_MAX,
    insert_rows,
    insert_values,
    upsert,
    upsert_values,
)
from perpetua.store.rows import EXECUTION_COLUMNS, ORDER_COLUMNS, execution_values, order_values
from perpetua.store.schema import executions, orders

COLUMNS = 37  # not a divisor of the statement's values: the last statement is a short one
ROWS = 3 * (SQLITE_STATEMENT_PARAMETERS_MAX // COLUMNS) + 7


@pytest.fixture
def wide(engine: Engine) -> Iterator[Table]:
    table = Table(
        "test_wide",
        MetaData(),
        Column("id", BigInteger, primary_key=True),
        Column("created", BigInteger),
        *(Column(f"v{i}", BigInteger) for i in range(COLUMNS - 2)),
    )
    table.create(engine)
    yield table
    table.drop(engine)


def _row(key: int, created: int, salt: int) -> dict[str, object]:
    row: dict[str, object] = {"id": key, "created": created}
    row.update({f"v{i}": key * 1_000 + i + salt for i in range(COLUMNS - 2)})
    return row


def _stored(engine: Engine, table: Table) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]


def test_insert_rows_writes_every_row_across_statements(engine: Engine, wide: Table) -> None:
    rows = [_row(key, created=key, salt=0) for key in range(ROWS)]
    with engine.begin() as conn:
        insert_rows(conn, wide, rows)
    assert _stored(engine, wide) == rows


def test_upsert_replaces_all_but_the_kept_columns_across_statements(
    engine: Engine, wide: Table
) -> None:
    first = [_row(key, created=key, salt=0) for key in range(ROWS)]
    with engine.begin() as conn:
        upsert(conn, wide, first, ("id",), keep=("created",))
    later = [_row(key, created=-1, salt=5) for key in range(ROWS // 2, ROWS + 40)]
    with engine.begin() as conn:
        upsert(conn, wide, later, ("id",), keep=("created",))
    expected = {row["id"]: row for row in first}
    for row in later:
        key = row["id"]
        expected[key] = {**row, "created": key if key in expected else -1}
    assert _stored(engine, wide) == [expected[key] for key in sorted(expected)]  # type: ignore[type-var]


def test_values_in_their_own_column_order_land_in_their_columns(
    engine: Engine, wide: Table
) -> None:
    """``insert_values`` / ``upsert_values``: tuples in a column order that is not the table's
    (here reversed), across statements, each value in its named column."""
    rows = [_row(key, created=key, salt=0) for key in range(ROWS)]
    columns = tuple(reversed(list(rows[0])))
    with engine.begin() as conn:
        insert_values(conn, wide, columns, [tuple(row[c] for c in columns) for row in rows])
    assert _stored(engine, wide) == rows
    later = [_row(key, created=-1, salt=5) for key in range(ROWS // 2, ROWS + 40)]
    with engine.begin() as conn:
        upsert_values(
            conn, wide, columns, [tuple(row[c] for c in columns) for row in later], ("id",),
            keep=("created",),
        )  # fmt: skip
    expected = {row["id"]: row for row in rows}
    for row in later:
        key = row["id"]
        expected[key] = {**row, "created": key if key in expected else -1}
    assert _stored(engine, wide) == [expected[k] for k in sorted(expected)]  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("columns", "table"),
    [(ORDER_COLUMNS, orders), (EXECUTION_COLUMNS, executions)],
    ids=["orders", "executions"],
)
def test_the_projectors_tuple_rows_name_every_column_once(
    columns: tuple[str, ...], table: Table
) -> None:
    assert len(set(columns)) == len(columns)
    assert set(columns) == {c.name for c in table.columns}


def test_each_tuple_row_value_sits_under_its_column_name() -> None:
    """``order_values`` and ``execution_values`` against the column tuples, name by name: an
    event whose every field is distinct, so two values swapped in either builder fail here."""
    fields = OrderEvent._fields
    values: dict[str, object] = {name: 1_000 + i for i, name in enumerate(fields)}
    values.update(symbol="XBTUSD", cl_ord_id="cl", cl_ord_link_id="link", text="note")
    values.update(triggered=True, working=False)
    event = OrderEvent(**values)
    expected = {**values, "created_ns": 7, "timestamp_ns": event.ts_ns, "seq": 9}
    order = dict(zip(ORDER_COLUMNS, order_values(event, 7, 9), strict=True))
    execution = dict(zip(EXECUTION_COLUMNS, execution_values(event, 9), strict=True))
    assert order == {name: expected[name] for name in ORDER_COLUMNS}
    assert execution == {name: expected[name] for name in EXECUTION_COLUMNS}
