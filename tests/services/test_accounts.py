"""Users and API keys on SQLite and PostgreSQL: argon2 passwords, keys encrypted at rest,
permissions and CIDR lists, the lookup cache and its invalidation, server key rotation."""

import os
import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from perpetua.services.accounts import (
    API_KEY_CACHE_TTL_NS,
    AccountsError,
    AccountsService,
    ip_allowed,
)
from perpetua.services.server_key import (
    load_server_key,
    retire_server_keys,
    rotate_server_key,
    server_key_path,
)
from perpetua.store.schema import api_keys, users
from tests.services.conftest import FAST_HASHER, Clock


def test_create_user_hashes_the_password_with_argon2(accounts: AccountsService) -> None:
    user = accounts.create_user(" Alice@Example.com ", "correct horse")
    assert (user.id, user.email, user.enabled) == (1, "alice@example.com", True)
    assert accounts.create_user("bob@example.com", "hunter2hunter2").id == 2
    with accounts.engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.id == 1)).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert PasswordHasher().verify(stored, "correct horse")
    assert accounts.get_user(1) == user


def test_user_rules(accounts: AccountsService) -> None:
    accounts.create_user("a@example.com", "password1")
    with pytest.raises(AccountsError, match="already registered"):
        accounts.create_user("A@example.com", "password1")
    with pytest.raises(AccountsError, match="Invalid email"):
        accounts.create_user("not-an-email", "password1")
    with pytest.raises(AccountsError, match="Password"):
        accounts.create_user("b@example.com", "short")
    assert accounts.create_user("c@example.com", "password1", user_id=50).id == 50
    with pytest.raises(AccountsError, match="taken"):
        accounts.create_user("d@example.com", "password1", user_id=50)
    assert accounts.create_user("e@example.com", "password1").id == 51
    assert [u.id for u in accounts.list_users()] == [1, 50, 51]


def test_api_key_create_and_lookup(accounts: AccountsService) -> None:
    user = accounts.create_user("a@example.com", "password1")
    key_id, secret = accounts.create_api_key(user.id, "bot", ["order"], ["10.0.0.0/8"])
    assert len(key_id) == 24 and key_id.isalnum()
    assert len(secret) == 48
    record = accounts.lookup_api_key(key_id)
    assert record is not None
    assert (
        record.user_id,
        record.secret,
        record.permissions,
        record.cidr,
        record.enabled,
        record.name,
    ) == (user.id, secret, ("order",), ("10.0.0.0/8",), True, "bot")
    assert accounts.lookup_api_key("x" * 24) is None
    assert accounts.lookup_api_key("short") is None


def test_secret_is_encrypted_at_rest(db_url: str, accounts: AccountsService) -> None:
    user = accounts.create_user("a@example.com", "password1")
    key_id, secret = accounts.create_api_key(user.id)
    with accounts.engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.secret_encrypted)).scalar_one()
    assert secret not in stored
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        accounts.engine.dispose()  # checkpoint nothing away: read every file SQLite wrote
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert key_id.encode() in raw  # the id is stored in clear: the check can see the file
        assert secret.encode() not in raw


def test_permissions_and_cidr_rules(accounts: AccountsService) -> None:
    user = accounts.create_user("a@example.com", "password1")
    with pytest.raises(AccountsError, match="mutually exclusive"):
        accounts.create_api_key(user.id, permissions=["order", "orderCancel"])
    with pytest.raises(AccountsError, match="Invalid permission"):
        accounts.create_api_key(user.id, permissions=["admin"])
    with pytest.raises(AccountsError, match="Invalid CIDR"):
        accounts.create_api_key(user.id, cidr=["300.1.2.3/8"])
    with pytest.raises(AccountsError, match="No user"):
        accounts.create_api_key(999)
    key_id, _ = accounts.create_api_key(
        user.id, permissions=["withdraw", "orderCancel"], cidr=["192.168.1.7/24", "::1"]
    )
    record = accounts.lookup_api_key(key_id)
    assert record is not None
    assert record.permissions == ("orderCancel", "withdraw")
    assert record.cidr == ("192.168.1.0/24", "::1/128")
    assert ip_allowed(record.cidr, "192.168.1.200")
    assert ip_allowed(record.cidr, "::1")
    assert not ip_allowed(record.cidr, "10.0.0.1")
    assert not ip_allowed(record.cidr, "not an ip")
    assert ip_allowed((), "10.0.0.1")


def test_disable_enable_delete_and_list(accounts: AccountsService) -> None:
    user = accounts.create_user("a@example.com", "password1")
    first, _ = accounts.create_api_key(user.id, "one")
    second, _ = accounts.create_api_key(user.id, "two", ["order"])
    assert [k.key_id for k in accounts.list_api_keys(user.id)] == [first, second]
    assert accounts.lookup_api_key(first).enabled  # type: ignore[union-attr]
    assert accounts.set_api_key_enabled(first, False)
    assert not accounts.lookup_api_key(first).enabled  # type: ignore[union-attr]
    assert accounts.set_api_key_enabled(first, True)
    assert accounts.lookup_api_key(first).enabled  # type: ignore[union-attr]
    assert accounts.delete_api_key(second)
    assert accounts.lookup_api_key(second) is None
    assert not accounts.delete_api_key(second)
    assert not accounts.set_api_key_enabled("nope", False)
    info = accounts.list_api_keys()[0]
    assert (info.name, info.enabled, info.permissions) == ("one", True, ())
    assert not hasattr(info, "secret")


def test_disabling_the_user_disables_its_keys(accounts: AccountsService) -> None:
    user = accounts.create_user("a@example.com", "password1")
    key_id, _ = accounts.create_api_key(user.id)
    assert accounts.lookup_api_key(key_id).enabled  # type: ignore[union-attr]
    with accounts.engine.begin() as conn:  # as the operator's lock does (services.identity)
        conn.execute(update(users).where(users.c.id == user.id).values(enabled=False))
    accounts.forget_cached_keys()
    assert not accounts.lookup_api_key(key_id).enabled  # type: ignore[union-attr]


def test_lookup_cache_sees_other_writers_after_the_ttl(
    db_url: str, tmp_path: Path, accounts: AccountsService, clock: Clock
) -> None:
    user = accounts.create_user("a@example.com", "password1")
    key_id, _ = accounts.create_api_key(user.id)
    assert accounts.lookup_api_key(key_id).enabled  # type: ignore[union-attr]
    other = AccountsService(
        accounts.engine, load_server_key(tmp_path / "data"), password_hasher=FAST_HASHER
    )
    other.set_api_key_enabled(key_id, False)  # another process
    assert accounts.lookup_api_key(key_id).enabled  # type: ignore[union-attr]  # cached
    clock.now_ns += API_KEY_CACHE_TTL_NS
    assert not accounts.lookup_api_key(key_id).enabled  # type: ignore[union-attr]


def test_server_key_file_is_private(tmp_path: Path) -> None:
    load_server_key(tmp_path)
    path = server_key_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().strip()
    before = path.read_bytes()
    load_server_key(tmp_path)
    assert path.read_bytes() == before  # created once, then reused


def test_server_key_rotation(db_url: str, tmp_path: Path, accounts: AccountsService) -> None:
    data_dir = tmp_path / "data"
    user = accounts.create_user("a@example.com", "password1")
    key_id, secret = accounts.create_api_key(user.id)
    rotated = AccountsService(
        accounts.engine, rotate_server_key(data_dir), password_hasher=FAST_HASHER
    )
    assert rotated.lookup_api_key(key_id).secret == secret  # type: ignore[union-attr]
    assert rotated.reencrypt_secrets() == 1
    retired = AccountsService(
        accounts.engine, retire_server_keys(data_dir), password_hasher=FAST_HASHER
    )
    assert retired.lookup_api_key(key_id).secret == secret  # type: ignore[union-attr]
    assert len(server_key_path(data_dir).read_bytes().split()) == 1
    assert stat.S_IMODE(os.stat(server_key_path(data_dir)).st_mode) == 0o600


def test_open_migrates_and_creates_the_key(tmp_path: Path) -> None:
    service = AccountsService.open(tmp_path / "d")
    try:
        user = service.create_user("a@example.com", "password1")
        key_id, secret = service.create_api_key(user.id, permissions=["order"])
    finally:
        service.close()
    again = AccountsService.open(tmp_path / "d")
    try:
        assert again.lookup_api_key(key_id).secret == secret  # type: ignore[union-attr]
    finally:
        again.close()
    assert server_key_path(tmp_path / "d").exists()
