"""BMEX unstaking requests, each with its latest status: ``unstaking_requests``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unstaking_requests",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("release_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_unstaking_requests")),
    )
    op.create_index(
        op.f("ix_unstaking_requests_account_timestamp_ns"),
        "unstaking_requests",
        ["account", "timestamp_ns"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_unstaking_requests_account_timestamp_ns"), table_name="unstaking_requests"
    )
    op.drop_table("unstaking_requests")
