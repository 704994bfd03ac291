from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from perpetua.services.accounts import AccountsService
from perpetua.services.server_key import load_server_key
from perpetua.store import migrate, open_engine
from tests.store.databases import BACKENDS, database_url

# Cheap argon2 parameters: the tests check behaviour, not cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now_ns = 1_000_000_000

    def __call__(self) -> int:
        return self.now_ns


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(str(request.param), tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[AccountsService]:
    migrate(db_url)
    service = AccountsService(
        open_engine(db_url),
        load_server_key(tmp_path / "data"),
        monotonic_ns=clock,
        password_hasher=FAST_HASHER,
    )
    yield service
    service.close()
