"""SQLite row writes beside a busy thread: ``executemany`` against the store's multi-row INSERTs.

The projector writes the read models from its own thread while the event loop's thread is busy
with requests (docs/decisions.md §31). This runs that shape: a writer thread inserts
``--rows-per-transaction`` rows of ``--columns`` integers per transaction into a WAL SQLite file
(two indexes, as the read models have), while the main thread spins pure-Python work, with the
server's switch interval (``runtime.venue.SWITCH_INTERVAL_S``). Two arms, alternating,
``--rounds`` times, each ``--seconds`` long:

- ``executemany``: the driver's executemany, one statement a row (what the store did before);
- ``insert_rows``: ``perpetua.store.database.insert_rows`` (multi-row statements of at most
  ``SQLITE_STATEMENT_PARAMETERS_MAX`` values).

Per arm: rows written per second, the writer's CPU per row, and how much pure-Python work the
busy thread still did (loops/s). Prints one JSON object on stdout.

    .venv/bin/python bench/bench_sqlite_writes.py [--seconds 3] [--rounds 2]
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import BigInteger, Column, Connection, MetaData, Table

from perpetua.runtime.venue import SWITCH_INTERVAL_S
from perpetua.store import open_engine
from perpetua.store.database import insert_rows


def _table(columns: int) -> Table:
    return Table(
        "bench_rows",
        MetaData(),
        Column("id", BigInteger, primary_key=True),
        *(Column(f"c{i}", BigInteger, index=i in (1, 4)) for i in range(columns - 1)),
    )


def _rows(start: int, count: int, columns: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for key in range(start, start + count):
        row: dict[str, object] = {"id": key}
        row.update({f"c{i}": key * 7919 % 1_000_003 + i for i in range(columns - 1)})
        rows.append(row)
    return rows


def _executemany(conn: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    names = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    conn.exec_driver_sql(sql, [tuple(row[n] for n in names) for row in rows])


def _insert_rows(conn: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    insert_rows(conn, table, rows)


def _arm(
    write: Callable[[Connection, Table, list[dict[str, object]]], None],
    seconds: float,
    per_transaction: int,
    columns: int,
) -> dict[str, float]:
    directory = tempfile.mkdtemp(prefix="bench-sqlite-")
    engine = open_engine(f"sqlite:///{Path(directory) / 'rows.sqlite3'}")
    table = _table(columns)
    table.create(engine)
    stop = threading.Event()
    written = [0, 0.0]  # rows, writer CPU seconds

    def writer() -> None:
        cpu = time.thread_time()
        key = 0
        while not stop.is_set():
            with engine.begin() as conn:
                write(conn, table, _rows(key, per_transaction, columns))
            key += per_transaction
        written[0], written[1] = key, time.thread_time() - cpu

    thread = threading.Thread(target=writer)
    thread.start()
    started = time.perf_counter()
    loops = 0
    while time.perf_counter() - started < seconds:
        for _ in range(200):
            pass
        loops += 1
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join()
    engine.dispose()
    rows = max(1, int(written[0]))
    return {
        "rows_per_s": round(written[0] / elapsed),
        "writer_cpu_us_per_row": round(written[1] / rows * 1e6, 2),
        "busy_thread_loops_per_s": round(loops / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows-per-transaction", type=int, default=200)
    parser.add_argument("--columns", type=int, default=36)
    args = parser.parse_args()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    arms = {"executemany": _executemany, "insert_rows": _insert_rows}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
    for round_ in range(args.rounds):
        for name, write in arms.items():
            print(f"round {round_ + 1}: {name}", file=sys.stderr)
            results[name].append(_arm(write, args.seconds, args.rows_per_transaction, args.columns))
    print(
        json.dumps(
            {
                "bench": "sqlite_writes",
                "switch_interval_s": SWITCH_INTERVAL_S,
                "rows_per_transaction": args.rows_per_transaction,
                "columns": args.columns,
                "load_average_1m": round(os.getloadavg()[0], 2),
                "arms": results,
            }
        )
    )


if __name__ == "__main__":
    main()
