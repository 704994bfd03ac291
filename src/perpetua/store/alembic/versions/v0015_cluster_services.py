"""Cluster mode's shared service state (decisions §28): the volume tiers' figures and runs,
and the published proofs of reserves and liabilities with their nonces, offline signatures
and operators' snapshot requests, so the leading sequencer's jobs and every gateway share them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "volume_figures",
        sa.Column("family", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("adv_usd", sa.BigInteger(), nullable=False),
        sa.Column("adv_usd_spot", sa.BigInteger(), nullable=False),
        sa.Column("adv_usd_contract", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("measured_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("family"),
    )
    op.create_table(
        "volume_runs",
        sa.Column("boundary_ns", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("measured_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("boundary_ns"),
    )
    op.create_table(
        "porl_publications",
        sa.Column("height", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("balances", sa.LargeBinary(), nullable=False),
        sa.Column("published_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("height"),
    )
    op.create_table(
        "porl_files",
        sa.Column("height", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("height", "name"),
    )
    op.create_table(
        "porl_nonces",
        sa.Column("account", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    op.create_table(
        "porl_signatures",
        sa.Column("height", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("height", "address"),
    )
    op.create_table(
        "porl_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_ns", sa.BigInteger(), nullable=False),
        sa.Column("claimed_ns", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("answer", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    for table in (
        "porl_requests", "porl_signatures", "porl_nonces", "porl_files", "porl_publications",
        "volume_runs", "volume_figures",
    ):  # fmt: skip
        op.drop_table(table)
