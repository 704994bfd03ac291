"""The operator's own account restriction beside the one compliance applied
(``kyc_applied.operator``): the compliance sync merges the two, so a manual restriction
survives every sync.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kyc_applied") as batch:
        batch.add_column(
            sa.Column("operator", sa.String(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("kyc_applied") as batch:
        batch.drop_column("operator")
