"""Position margin figures: the risk engine's PositionChanged fields on ``positions``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIGURES = (
    "leverage_e2",
    "risk_limit",
    "deposit",
    "pos_init",
    "pos_comm",
    "pos_margin",
    "pos_maint",
    "init_margin_ppm",
    "maint_margin_ppm",
)


def upgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        for name in _FIGURES:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("bankrupt_price", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("liquidation_price", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("order_margin", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        for name in (*_FIGURES, "bankrupt_price", "liquidation_price", "order_margin"):
            batch.drop_column(name)
