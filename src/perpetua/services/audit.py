"""The accounts audit trail: one ``audit_log`` row per security-relevant act.

Rows say who acted (``user``, ``operator:NAME``, ``system``), on which account, what
(``ACTIONS``), from which address, and a JSON detail that never holds a password, code, token
or secret. Rows are only ever inserted; the trail is read newest first.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, select

from perpetua.store.schema import audit_log

__all__ = ["ACTIONS", "AUDIT_ROWS_MAX", "AuditEntry", "read_audit", "record"]

AUDIT_ROWS_MAX: Final = 500  # per read
ACTIONS: Final = frozenset(
    {
        "register",
        "email_confirmed",
        "sign_in",
        "sign_in_failed",
        "sign_out",
        "session_revoked",
        "sessions_revoked",
        "password_reset_requested",
        "password_reset",
        "password_changed",
        "email_change_requested",
        "email_changed",
        "tfa_enabled",
        "tfa_disabled",
        "webauthn_removed",
        "device_registered",
        "recovery_code_used",
        "api_key_created",
        "api_key_enabled",
        "api_key_disabled",
        "api_key_deleted",
        "preferences_changed",
        "profile_changed",
        "subaccount_created",
        "subaccount_updated",
        "locked",
        "unlocked",
        "forced_sign_out",
        "tfa_reset",
    }
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    ts_ns: int
    user_id: int | None
    actor: str
    action: str
    ip: str
    detail: dict[str, Any]


def record(
    conn: Connection,
    ts_ns: int,
    user_id: int | None,
    actor: str,
    action: str,
    ip: str = "",
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Insert one row inside the caller's transaction (the act and its record commit
    together)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    conn.execute(
        audit_log.insert().values(
            ts_ns=ts_ns,
            user_id=user_id,
            actor=actor[:64],
            action=action,
            ip=ip[:64],
            detail=json.dumps(dict(detail or {}), sort_keys=True),
        )
    )


def read_audit(
    engine: Engine, user_id: int | None = None, limit: int = AUDIT_ROWS_MAX
) -> list[AuditEntry]:
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(min(limit, AUDIT_ROWS_MAX))
    if user_id is not None:
        stmt = stmt.where(audit_log.c.user_id == user_id)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        AuditEntry(r.ts_ns, r.user_id, r.actor, r.action, r.ip, json.loads(r.detail)) for r in rows
    ]
