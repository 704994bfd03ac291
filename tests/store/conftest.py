from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.store.databases import BACKENDS, database_url, migrated_engine


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    with database_url(backend, tmp_path) as url:
        yield url


@pytest.fixture
def engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    with migrated_engine(backend, tmp_path) as opened:
        yield opened
