"""``perpetua admin`` end to end through ``cli.main`` on a data dir."""

import json
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from perpetua.cli import main
from perpetua.services.accounts import AccountsService
from perpetua.services.signing import signature
from perpetua.store.schema import users as users_table


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object, str]:
    code = main(["admin", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def test_create_user_key_list_and_disable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    code, user, _ = run(capsys, "create-user", "--data-dir", data, "--email", "a@example.com")
    assert code == 0
    assert user["id"] == 1 and len(user["password"]) >= 16  # type: ignore[index]
    code, key, _ = run(
        capsys,
        "create-key",
        "--data-dir",
        data,
        "--user-id",
        "1",
        "--permissions",
        "order,withdraw",
        "--cidr",
        "10.0.0.0/8",
        "--cidr",
        "127.0.0.1",
        "--name",
        "bot",
    )
    assert code == 0
    assert key["permissions"] == ["order", "withdraw"]  # type: ignore[index]
    assert key["cidr"] == ["10.0.0.0/8", "127.0.0.1/32"]  # type: ignore[index]
    key_id, secret = key["id"], key["secret"]  # type: ignore[index]
    service = AccountsService.open(tmp_path / "data")
    try:
        record = service.lookup_api_key(key_id)
        assert record is not None and record.secret == secret
        assert signature(record.secret, "GET", "/api/v1/user", 1) == signature(
            secret, "GET", "/api/v1/user", 1
        )
        with service.engine.connect() as conn:
            stored = conn.execute(select(users_table.c.password_hash)).scalar_one()
        assert PasswordHasher().verify(stored, user["password"])  # type: ignore[arg-type]
    finally:
        service.close()
    code, listed, _ = run(capsys, "list-keys", "--data-dir", data)
    assert [k["id"] for k in listed["keys"]] == [key_id]  # type: ignore[index]
    assert "secret" not in listed["keys"][0]  # type: ignore[index]
    code, disabled, _ = run(capsys, "disable-key", "--data-dir", data, "--key-id", key_id)
    assert code == 0 and disabled == {"id": key_id, "enabled": False}
    code, listed, _ = run(capsys, "list-keys", "--data-dir", data, "--user-id", "1")
    assert listed["keys"][0]["enabled"] is False  # type: ignore[index]
    code, users, _ = run(capsys, "list-users", "--data-dir", data)
    assert [u["email"] for u in users["users"]] == ["a@example.com"]  # type: ignore[index]


def test_errors_exit_1_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    code, _, err = run(capsys, "create-key", "--data-dir", data, "--user-id", "7")
    assert code == 1 and "No user 7" in err
    code, _, err = run(capsys, "disable-key", "--data-dir", data, "--key-id", "missing")
    assert code == 1 and "no API key" in err
    run(
        capsys,
        "create-user",
        "--data-dir",
        data,
        "--email",
        "a@example.com",
        "--password",
        "password1",
    )
    code, _, err = run(
        capsys,
        "create-key",
        "--data-dir",
        data,
        "--user-id",
        "1",
        "--permissions",
        "order,orderCancel",
    )
    assert code == 1 and "mutually exclusive" in err


def test_operator_account_actions_are_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from perpetua.services.audit import read_audit

    data = str(tmp_path / "data")
    run(capsys, "create-user", "--data-dir", data, "--email", "a@example.com")
    code, done, _ = run(
        capsys,
        "lock-user",
        "--data-dir",
        data,
        "--user-id",
        "1",
        "--operator",
        "ops",
        "--reason",
        "stolen laptop",
    )
    assert code == 0 and done == {"id": 1, "action": "locked"}
    code, _, err = run(
        capsys,
        "reset-2fa",
        "--data-dir",
        data,
        "--user-id",
        "9",
        "--operator",
        "ops",
        "--reason",
        "id checked",
    )
    assert code != 0 and "No user 9" in err
    service = AccountsService.open(tmp_path / "data")
    try:
        user = service.get_user(1)
        assert user is not None and not user.enabled
        entry = read_audit(service.engine, 1)[0]
        assert (entry.actor, entry.action, entry.detail) == (
            "operator:ops",
            "locked",
            {"reason": "stolen laptop"},
        )
    finally:
        service.close()
