"""Bank-transfer on-ramp orders in the shared database, so every gateway of a cluster serves
the on-ramp (services.onramp rule 4).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bank_orders",
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_s", sa.Float(), nullable=False),
        sa.Column("approvals", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("reference"),
    )
    op.create_index(op.f("ix_bank_orders_account"), "bank_orders", ["account"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_bank_orders_account"), table_name="bank_orders")
    op.drop_table("bank_orders")
