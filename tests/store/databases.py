"""Test databases: a SQLite file per test, and a PostgreSQL schema per test.

PostgreSQL runs on 127.0.0.1:5432 with trust auth (``PERPETUA_TEST_POSTGRES_URL`` overrides).
Each test gets its own schema (``search_path`` set through the URL), dropped afterwards, so
parallel runs never collide. When the server is unreachable the PostgreSQL cases skip, except
in CI (``CI=true``), where they fail: cluster mode must be tested there.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from perpetua.store import migrate, open_engine

POSTGRES_URL = os.environ.get(
    "PERPETUA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    admin = open_engine(POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except OperationalError as error:
        admin.dispose()
        _postgres_unavailable(str(error).splitlines()[0])
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'perpetua.sqlite3'}"
    else:
        with postgres_schema_url() as url:
            yield url


@contextmanager
def migrated_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    with database_url(backend, tmp_path) as url:
        migrate(url)
        engine = open_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
