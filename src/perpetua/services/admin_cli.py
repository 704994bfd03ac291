"""``perpetua admin``: users and API keys of a data dir, from the command line.

    perpetua admin create-user --data-dir D --email E [--password P] [--user-id N]
    perpetua admin create-key  --data-dir D --user-id N [--permissions order,withdraw]
                               [--cidr 10.0.0.0/8,192.168.1.0/24] [--name NAME]
    perpetua admin list-keys   --data-dir D [--user-id N]
    perpetua admin disable-key --data-dir D --key-id K
    perpetua admin list-users  --data-dir D
    perpetua admin lock-user | unlock-user | sign-out-user | reset-2fa --data-dir D
                               --user-id N --operator NAME --reason TEXT

Every subcommand takes ``--db-url`` for a database other than the data dir's SQLite file
(PostgreSQL in cluster mode), migrates it to head, and answers one JSON document (``cli.py``
prints it). ``create-user`` without ``--password`` generates one and shows it once;
``create-key`` shows the secret once. The account actions (lock, unlock, force sign-out, reset
2FA after the operator re-checked the owner's identity) are recorded in the audit trail with
who and why, and mail the owner through the data dir's mail setting (``services.identity``).
Test funds are not credited here: the faucet is a ``Deposit`` command
(``services.faucet.faucet_command``) that the running exchange submits.
"""

import argparse
import secrets
from pathlib import Path

from perpetua.services.accounts import AccountsError, AccountsService

__all__ = ["ADMIN_COMMANDS", "AdminError", "add_admin_parser", "run_admin"]

GENERATED_PASSWORD_BYTES = 18  # 24 characters of base64url

ADMIN_COMMANDS: dict[str, str] = {
    "create-user": "create a user (its id is its trading account id)",
    "create-key": "create an API key for a user; prints the key id and its secret once",
    "list-keys": "list API keys (without secrets)",
    "disable-key": "disable an API key",
    "list-users": "list users",
    "lock-user": "lock an account (ends its sessions; its keys stop working)",
    "unlock-user": "unlock an account",
    "sign-out-user": "end every session of an account",
    "reset-2fa": "turn TOTP off after re-checking the owner's identity (ends its sessions)",
}
_ACCOUNT_ACTIONS = {
    "lock-user": "locked",
    "unlock-user": "unlocked",
    "sign-out-user": "forced_sign_out",
    "reset-2fa": "tfa_reset",
}


class AdminError(Exception):
    """The admin command could not do what was asked; the message says why."""


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_admin_parser(
    subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]", help_text: str
) -> None:
    admin = subparsers.add_parser("admin", help=help_text, description=help_text)
    actions = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    for name, text in ADMIN_COMMANDS.items():
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("--data-dir", type=Path, required=True, help="the exchange's data dir")
        sub.add_argument(
            "--db-url", default=None, help="database URL (default: SQLite file in the data dir)"
        )
        if name == "create-user":
            sub.add_argument("--email", required=True)
            sub.add_argument("--password", default=None, help="default: generate one")
            sub.add_argument(
                "--user-id", type=int, default=None, help="account id (default: the next free one)"
            )
        elif name == "create-key":
            sub.add_argument("--user-id", type=int, required=True)
            sub.add_argument(
                "--permissions",
                type=_comma_list,
                default=[],
                help="comma list of order, orderCancel, withdraw (read is implied)",
            )
            sub.add_argument(
                "--cidr",
                type=_comma_list,
                action="extend",
                default=[],
                help="allowed client networks, comma list or repeated",
            )
            sub.add_argument("--name", default="")
        elif name == "list-keys":
            sub.add_argument("--user-id", type=int, default=None)
        elif name == "disable-key":
            sub.add_argument("--key-id", required=True)
        elif name in _ACCOUNT_ACTIONS:
            sub.add_argument("--user-id", type=int, required=True)
            sub.add_argument("--operator", required=True, help="who acts (for the audit trail)")
            sub.add_argument("--reason", required=True, help="why (for the audit trail)")


def _create_user(service: AccountsService, args: argparse.Namespace) -> dict[str, object]:
    password = args.password or secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    user = service.create_user(args.email, password, user_id=args.user_id)
    report: dict[str, object] = {"id": user.id, "email": user.email}
    if args.password is None:
        report["password"] = password
    return report


def _create_key(service: AccountsService, args: argparse.Namespace) -> dict[str, object]:
    key_id, secret = service.create_api_key(args.user_id, args.name, args.permissions, args.cidr)
    record = service.lookup_api_key(key_id)
    if record is None:
        raise AdminError(f"key {key_id} vanished after creation")
    return {
        "id": key_id,
        "secret": secret,
        "userId": record.user_id,
        "name": record.name,
        "permissions": list(record.permissions),
        "cidr": list(record.cidr),
    }


def _list_keys(service: AccountsService, args: argparse.Namespace) -> dict[str, object]:
    return {
        "keys": [
            {
                "id": k.key_id,
                "userId": k.user_id,
                "name": k.name,
                "permissions": list(k.permissions),
                "cidr": list(k.cidr),
                "enabled": k.enabled,
                "created_ns": k.created_ns,
            }
            for k in service.list_api_keys(args.user_id)
        ]
    }


def _disable_key(service: AccountsService, args: argparse.Namespace) -> dict[str, object]:
    if not service.set_api_key_enabled(args.key_id, False):
        raise AdminError(f"no API key {args.key_id}")
    return {"id": args.key_id, "enabled": False}


def _list_users(service: AccountsService, _args: argparse.Namespace) -> dict[str, object]:
    return {
        "users": [
            {"id": u.id, "email": u.email, "enabled": u.enabled, "created_ns": u.created_ns}
            for u in service.list_users()
        ]
    }


def _account_action(service: AccountsService, args: argparse.Namespace) -> dict[str, object]:
    from perpetua.services.identity import IdentityError, open_identity

    identity, outbox, _queue = open_identity(service, args.data_dir)
    try:
        identity.operator_action(
            args.user_id, _ACCOUNT_ACTIONS[args.admin_command], args.operator, args.reason
        )
    except IdentityError as error:
        raise AdminError(error.message) from None
    finally:
        identity.close()
        if outbox is not None:
            outbox.stop()
    return {"id": args.user_id, "action": _ACCOUNT_ACTIONS[args.admin_command]}


_HANDLERS = {
    "create-user": _create_user,
    "create-key": _create_key,
    "list-keys": _list_keys,
    "disable-key": _disable_key,
    "list-users": _list_users,
    **{name: _account_action for name in _ACCOUNT_ACTIONS},
}


def run_admin(args: argparse.Namespace) -> dict[str, object]:
    """Run one ``perpetua admin`` action; ``AdminError`` when it cannot be done."""
    service = AccountsService.open(args.data_dir, args.db_url)
    try:
        return _HANDLERS[args.admin_command](service, args)
    except AccountsError as error:
        raise AdminError(str(error)) from None
    finally:
        service.close()
