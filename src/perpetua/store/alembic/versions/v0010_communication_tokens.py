"""Mobile clients' push tokens: ``communication_tokens``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "communication_tokens",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("device_token", sa.String(length=512), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_communication_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communication_tokens")),
    )
    op.create_index(op.f("ix_communication_tokens_user_id"), "communication_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("communication_tokens")
