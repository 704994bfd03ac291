"""Migrations: from an empty database to head on SQLite and PostgreSQL, idempotent, and the
migrated schema equals ``store.schema`` exactly (no drift between revisions and metadata)."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from perpetua.store import default_url, migrate, open_engine
from perpetua.store.database import _ALEMBIC_LOCATION
from perpetua.store.schema import ALL_TABLES, metadata


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", _ALEMBIC_LOCATION)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_upgrade_from_empty_creates_every_table(db_url: str) -> None:
    migrate(db_url)
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            assert {t.name for t in ALL_TABLES} | {"alembic_version"} == names
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_migrate_twice_is_a_no_op(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [v[0] for v in versions] == [_head()]
    finally:
        engine.dispose()


def test_indexes_for_bitmex_query_patterns(db_url: str) -> None:
    migrate(db_url)
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            orders = {tuple(ix["column_names"]) for ix in inspector.get_indexes("orders")}
            executions = {tuple(ix["column_names"]) for ix in inspector.get_indexes("executions")}
    finally:
        engine.dispose()
    assert ("account", "symbol", "timestamp_ns") in orders
    assert ("account", "cl_ord_id") in orders
    assert ("order_id",) in executions
    assert ("account", "timestamp_ns") in executions


def test_default_url_is_a_wal_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    url = default_url(tmp_path / "data")
    migrate(url)
    assert (tmp_path / "data" / "perpetua.sqlite3").is_file()
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
