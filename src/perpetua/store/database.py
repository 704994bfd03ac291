"""Opening the SQL database, migrating it, and the dialect-neutral upsert.

SQLite is the default: one file under the data dir (``default_url``), opened in WAL mode so
readers (the gateway's queries) never block the single writer (the projector) and vice versa.
PostgreSQL is chosen by URL (``postgresql+psycopg://user@host:5432/db``). Both take the same
schema through the same Alembic revisions; ``migrate(url)`` upgrades to head and is safe to call
at every start.
"""

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

__all__ = [
    "DATABASE_FILE_NAME",
    "SQLITE_BUSY_TIMEOUT_MS",
    "default_url",
    "migrate",
    "open_engine",
    "upsert",
]

log = logging.getLogger(__name__)

DATABASE_FILE_NAME = "perpetua.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 10_000
_ALEMBIC_LOCATION = str(Path(__file__).resolve().parent / "alembic")


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
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    if isinstance(url_or_engine, str):
        engine.dispose()
    log.info("database migrated to %s", revision)


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, object]],
    keys: Sequence[str],
    keep: Sequence[str] = (),
) -> None:
    """Insert ``rows``; a row whose ``keys`` exist replaces every column but ``keys`` and
    ``keep`` (columns that keep their first value, such as ``created_ns``)."""
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect == "sqlite":
        stmt: Any = sqlite.insert(table)
    elif dialect == "postgresql":
        stmt = postgresql.insert(table)
    else:
        raise NotImplementedError(f"upsert on {dialect!r}: only sqlite and postgresql")
    fixed = set(keys) | set(keep)
    updates = {name: stmt.excluded[name] for name in rows[0] if name not in fixed}
    connection.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updates),
                       list(rows))
