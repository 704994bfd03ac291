from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from perpetua.store import Projector
from tests.store.databases import BACKENDS, database_url, migrated_engine
from tests.store.stream import run


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


@pytest.fixture
def projected(engine: Engine) -> tuple[Any, list[Any], Projector]:
    """(core engine, records, projector) after projecting the whole ``stream``."""
    core, records = run()
    projector = Projector(engine)
    assert projector.project(records) == len(records)
    return core, records, projector
