"""Opening the SQL database, migrating it, and the dialect-neutral upsert.

SQLite is the default: one file under the data dir (``default_url``), opened in WAL mode so
readers (the gateway's queries) never block the single writer (the projector) and vice versa.
PostgreSQL is chosen by URL (``postgresql+psycopg://user@host:5432/db``). Both take the same
schema through the same Alembic revisions; ``migrate(url)`` upgrades to head and is safe to call
at every start.

Migrating is one at a time, for two reasons:

1. In one process: Alembic keeps the running migration in module globals (``alembic.context``,
   ``alembic.op``), so two upgrades on two threads mix their connections. Seen in a cluster
   sequencer, whose leader services, bots and wallets (when configured) each migrate on a worker
   thread at start: one thread's transaction created ``alembic_version`` and then waited, on the
   other thread's connection, for itself; every process migrating that schema then waited
   forever. A process lock (``_MIGRATING``) serialises them.
2. Across processes: the projector, gateways and sequencers of a cluster start together on one
   fresh schema. A PostgreSQL advisory lock held for the migration's transaction, keyed by
   ``MIGRATION_LOCK_KEY`` and the schema, makes the later ones wait and then find the schema at
   head, instead of failing on each other's half-created tables. A SQLite file is migrated under
   an exclusive ``flock`` on a file beside it (``<database>.migrate-lock``): pysqlite runs DDL
   outside a transaction, so two processes would otherwise create the same table twice.

``migrate_once`` adds retries for a database that is not up yet.

Writing rows (the projector's hot path): PostgreSQL takes them by ``COPY``; SQLite by multi-row
``INSERT`` statements, not ``executemany``. ``executemany`` binds and steps one row at a time
and gives the GIL back at every step; while the event loop is busy, each row then waits up to
the switch interval to get it back. ``bench/bench_sqlite_writes.py`` (a writer beside a busy
thread, 36 integer columns, 200 rows a transaction): 667 rows/s with ``executemany`` against
15,000 with ``insert_rows``, at 48-53 against 25-26 µs of the writer's CPU a row (decisions §31).
``insert_values`` and ``upsert_values`` take rows already built as tuples in a given column
order; ``insert_rows`` and ``upsert`` take dicts and turn them into those.
"""

import contextlib
import fcntl
import functools
import itertools
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import make_url

__all__ = [
    "DATABASE_FILE_NAME",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_STATEMENT_PARAMETERS_MAX",
    "default_url",
    "insert_rows",
    "insert_values",
    "migrate",
    "migrate_once",
    "open_engine",
    "upsert",
    "upsert_values",
]

log = logging.getLogger(__name__)

DATABASE_FILE_NAME = "perpetua.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 10_000
_PLACEHOLDERS = {"sqlite": "?", "postgresql": "%s"}
_ALEMBIC_LOCATION = str(Path(__file__).resolve().parent / "alembic")
# reason 2: the advisory lock's first key ("perp"); the second is the schema's hash
MIGRATION_LOCK_KEY: Final = 0x70657270
# SQLite: the values one multi-row INSERT binds (SQLite allows 32,766). Binding runs in C with the
# GIL held for the whole statement, so this also bounds how long a write keeps the event loop
# waiting: a whole 4,000-value statement (binding and step) took 0.17 ms on this machine.
SQLITE_STATEMENT_PARAMETERS_MAX: Final = 4_000
MIGRATE_ATTEMPTS: Final = 5  # migrate_once: a database that is still starting
MIGRATE_RETRY_S: Final = 0.5  # times the attempt number
_MIGRATING = threading.Lock()  # reason 1


def default_url(data_dir: str | Path) -> str:
    """The SQLite database of a data dir (created on first use)."""
    return f"sqlite:///{Path(data_dir).resolve() / DATABASE_FILE_NAME}"


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def open_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url``; SQLite files get WAL mode and a busy timeout, and their
    parent directory is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest). Idempotent."""
    from alembic import command
    from alembic.config import Config

    engine = open_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    config = Config()
    config.set_main_option("script_location", _ALEMBIC_LOCATION)
    try:
        with _one_migration_at_a_time(engine), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))",
                    (MIGRATION_LOCK_KEY,),
                )
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()
    log.info("database migrated to %s", revision)


@contextlib.contextmanager
def _one_migration_at_a_time(engine: Engine) -> Iterator[None]:
    """Reasons 1 and 2 (SQLite's part; PostgreSQL's lock is taken in the transaction)."""
    with _MIGRATING:
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        try:
            lock = open(f"{database}.migrate-lock", "a")  # noqa: SIM115 - closed below
        except OSError:  # a directory this process cannot write: it can only find the file at head
            yield
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            yield


def migrate_once(url: str) -> None:
    """``migrate`` with ``MIGRATE_ATTEMPTS`` tries: a cluster's processes may start before the
    database accepts connections."""
    for attempt in range(MIGRATE_ATTEMPTS):
        try:
            migrate(url)
            return
        except Exception:
            if attempt == MIGRATE_ATTEMPTS - 1:
                raise
            log.warning("migrating the database failed (attempt %d); trying again", attempt + 1)
            time.sleep(MIGRATE_RETRY_S * (attempt + 1))


@functools.lru_cache(maxsize=1024)  # tables x column sets x row counts
def _write_sql(
    dialect: str,
    quote: Callable[[str], str],
    table: str,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    keep: tuple[str, ...],
    rows: int = 1,
) -> str:
    """``INSERT INTO table (columns) VALUES (...)`` with ``rows`` rows of placeholders, and with
    ``keys`` the upsert's ``ON CONFLICT`` clause."""
    if dialect not in _PLACEHOLDERS:
        raise NotImplementedError(f"writes on {dialect!r}: only sqlite and postgresql")
    marks = "(" + ", ".join(_PLACEHOLDERS[dialect] for _ in columns) + ")"
    values = ", ".join([marks] * rows)
    sql = f"INSERT INTO {quote(table)} ({', '.join(map(quote, columns))}) VALUES {values}"
    if keys:
        fixed = set(keys) | set(keep)
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in fixed)
        sql += f" ON CONFLICT ({', '.join(map(quote, keys))}) DO UPDATE SET {updates}"
    return sql


def _values(
    columns: tuple[str, ...], rows: Sequence[Mapping[str, object]]
) -> list[tuple[object, ...]]:
    """Rows as tuples in ``columns`` order (itemgetter: the per-row loop stays in C)."""
    if len(columns) == 1:
        return [(row[columns[0]],) for row in rows]
    getter = operator.itemgetter(*columns)
    return [getter(row) for row in rows]


def _copy_rows(
    connection: Connection,
    target: str,
    columns: tuple[str, ...],
    values: Sequence[tuple[object, ...]],
) -> None:
    """PostgreSQL ``COPY ... FROM STDIN`` (about 3x an executemany) inside the open transaction."""
    quote = connection.dialect.identifier_preparer.quote
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        copy_sql = f"COPY {target} ({', '.join(map(quote, columns))}) FROM STDIN"
        with cursor.copy(copy_sql) as copy:
            for row in values:
                copy.write_row(row)


def _postgres_write(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    values: Sequence[tuple[object, ...]],
    keys: tuple[str, ...],
    keep: tuple[str, ...],
) -> None:
    quote = connection.dialect.identifier_preparer.quote
    if not keys:
        _copy_rows(connection, quote(table.name), columns, values)
        return
    staging = quote(f"staging_{table.name}")
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {quote(table.name)}) "
        "ON COMMIT DELETE ROWS"
    )
    connection.exec_driver_sql(f"TRUNCATE {staging}")
    _copy_rows(connection, staging, columns, values)
    upsert_sql = _write_sql("postgresql", quote, table.name, columns, keys, keep)
    names = ", ".join(map(quote, columns))
    values_at = upsert_sql.index(" VALUES (")
    conflict_at = upsert_sql.index(" ON CONFLICT ")
    connection.exec_driver_sql(
        f"{upsert_sql[:values_at]} SELECT {names} FROM {staging}{upsert_sql[conflict_at:]}"
    )


def _write(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    values: Sequence[tuple[object, ...]],
    keys: Sequence[str],
    keep: Sequence[str],
) -> None:
    dialect = connection.dialect
    if dialect.name == "postgresql":
        _postgres_write(connection, table, columns, values, tuple(keys), tuple(keep))
        return
    # SQLite: multi-row statements of at most SQLITE_STATEMENT_PARAMETERS_MAX values (see
    # "Writing rows" in the module docstring); full-size statements come from the cache
    quote = dialect.identifier_preparer.quote
    per_statement = max(1, SQLITE_STATEMENT_PARAMETERS_MAX // len(columns))
    for start in range(0, len(values), per_statement):
        part = values[start : start + per_statement]
        sql = _write_sql(
            dialect.name, quote, table.name, columns, tuple(keys), tuple(keep), len(part)
        )
        connection.exec_driver_sql(sql, tuple(itertools.chain.from_iterable(part)))


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert ``rows`` (dicts with the same keys) straight through the driver (SQLite:
    multi-row INSERTs; PostgreSQL: COPY; see "Writing rows"), skipping SQLAlchemy's per-row
    parameter processing: the projector's path. Values must be plain ints, strings, bools or
    None (no enums)."""
    if rows:
        columns = tuple(rows[0])
        _write(connection, table, columns, _values(columns, rows), (), ())


def insert_values(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    values: Sequence[tuple[object, ...]],
) -> None:
    """``insert_rows`` for rows already in ``columns`` order (tuples): the projector's orders and
    executions, which skip building a dict per row (decisions §33)."""
    if values:
        _write(connection, table, columns, values, (), ())


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, object]],
    keys: Sequence[str],
    keep: Sequence[str] = (),
) -> None:
    """Insert ``rows``; a row whose ``keys`` exist replaces every column but ``keys`` and
    ``keep`` (columns that keep their first value, such as ``created_ns``). ``rows`` must not
    repeat a key. PostgreSQL goes through COPY into a temporary staging table."""
    if rows:
        columns = tuple(rows[0])
        _write(connection, table, columns, _values(columns, rows), keys, keep)


def upsert_values(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    values: Sequence[tuple[object, ...]],
    keys: Sequence[str],
    keep: Sequence[str] = (),
) -> None:
    """``upsert`` for rows already in ``columns`` order (tuples); the same rules."""
    if values:
        _write(connection, table, columns, values, keys, keep)
