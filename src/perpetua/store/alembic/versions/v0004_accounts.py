"""Accounts: confirmed email, profile, TOTP and sub-account columns on ``users``; browser
``sessions``, mailed ``account_tokens``, ``recovery_codes``, ``known_ips``,
``sign_in_failures`` and the ``audit_log``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_USER_COLUMNS = (
    ("email_confirmed", sa.Boolean(), False, "0"),
    ("country", sa.String(length=3), False, ""),
    ("preferences", sa.Text(), False, "{}"),
    ("anti_phishing", sa.String(length=64), False, ""),
    ("tfa_secret_encrypted", sa.Text(), True, None),
    ("tfa_enabled", sa.Boolean(), False, "0"),
    ("tfa_last_step", sa.BigInteger(), False, "0"),
    ("owner_id", sa.BigInteger(), True, None),
    ("account_name", sa.String(length=64), False, ""),
    ("updated_ns", sa.BigInteger(), False, "0"),
)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        for name, kind, nullable, default in _USER_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=nullable, server_default=default))
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ns", sa.BigInteger(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"])
    op.create_table(
        "account_tokens",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("expires_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
    )
    op.create_index(op.f("ix_account_tokens_user_id"), "account_tokens", ["user_id"])
    op.create_table(
        "recovery_codes",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "code_hash", name=op.f("pk_recovery_codes")),
    )
    op.create_table(
        "known_ips",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("first_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_known_ips_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "ip", name=op.f("pk_known_ips")),
    )
    op.create_table(
        "sign_in_failures",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_failures")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_user_id_ts_ns"), "audit_log", ["user_id", "ts_ns"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "sign_in_failures",
        "known_ips",
        "recovery_codes",
        "account_tokens",
        "sessions",
    ):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        for name, *_rest in reversed(_USER_COLUMNS):
            batch.drop_column(name)
