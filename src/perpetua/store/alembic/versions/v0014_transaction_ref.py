"""``transactions.ref`` as wide as a deposit's transfer id (``chain_deposits.transfer_id``):
a chain deposit's id is ``network:tx:log_index`` (73 characters on Ethereum), which PostgreSQL
refused in a 64-character column and stopped the projector (SQLite does not check lengths).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.alter_column(
            "ref", existing_type=sa.String(length=64), type_=sa.String(length=220),
            existing_nullable=False,
        )  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.alter_column(
            "ref", existing_type=sa.String(length=220), type_=sa.String(length=64),
            existing_nullable=False,
        )  # fmt: skip
