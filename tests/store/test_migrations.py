"""Migrations: from an empty database to head on SQLite and PostgreSQL, idempotent, and the
migrated schema equals ``store.schema`` exactly (no drift between revisions and metadata)."""

import os
import subprocess
import sys
import threading
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import perpetua
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


# A lock wait that would be a deadlock fails the test after this, instead of hanging the run.
LOCK_TIMEOUT_MS = 20_000
MIGRATORS = 4


def _with_lock_timeout(url: str) -> str:
    if not url.startswith("postgresql"):
        return url
    option = f"-clock_timeout%3D{LOCK_TIMEOUT_MS}"
    if "options=" in url:
        return url.replace("options=", f"options={option}%20", 1)
    return f"{url}{'&' if '?' in url else '?'}options={option}"


def _at_head(url: str) -> None:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
    finally:
        engine.dispose()


def test_threads_of_one_process_migrate_one_at_a_time(db_url: str) -> None:
    """Alembic's running migration is a module global: a cluster sequencer's services migrating
    on several threads at once waited for each other forever before migrations took turns."""
    url = _with_lock_timeout(db_url)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(url)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(MIGRATORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LOCK_TIMEOUT_MS / 1000 + 30)
    assert not [t for t in threads if t.is_alive()]
    assert errors == []
    _at_head(db_url)


def test_processes_migrate_one_fresh_schema_together(db_url: str) -> None:
    """The projector, gateways and sequencers of a cluster migrate one schema at once: each
    waits for the one before it and finds the schema at head; none fails."""
    url = _with_lock_timeout(db_url)
    script = "import sys; from perpetua.store import migrate; migrate(sys.argv[1])"
    env = {**os.environ, "PYTHONPATH": str(Path(perpetua.__file__).parents[1])}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for _ in range(MIGRATORS)
    ]
    outputs = [p.communicate(timeout=LOCK_TIMEOUT_MS / 1000 + 60)[0] for p in processes]
    failed = [
        out.decode(errors="replace")[-2000:]
        for p, out in zip(processes, outputs, strict=True)
        if p.returncode
    ]
    assert failed == []
    _at_head(db_url)
