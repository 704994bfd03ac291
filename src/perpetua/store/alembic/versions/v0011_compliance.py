"""Compliance: ``kyc_profiles``, ``kyc_documents``, ``kyc_cases``, ``kyc_decisions``,
``kyc_applied``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kyc_profiles",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_level", sa.Integer(), nullable=False),
        sa.Column("residence", sa.String(length=8), nullable=False),
        sa.Column("citizenship", sa.String(length=64), nullable=False),
        sa.Column("incorporation", sa.String(length=8), nullable=False),
        sa.Column("risk", sa.String(length=8), nullable=False),
        sa.Column("sanctioned", sa.Boolean(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=True),
        sa.Column("approved_ns", sa.BigInteger(), nullable=False),
        sa.Column("review_due_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_kyc_profiles")),
    )
    op.create_table(
        "kyc_documents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kyc_documents")),
        sa.UniqueConstraint("user_id", "sha256", name=op.f("uq_kyc_documents_user_id_sha256")),
    )
    op.create_index(op.f("ix_kyc_documents_user_id"), "kyc_documents", ["user_id"])
    op.create_table(
        "kyc_cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("risk", sa.String(length=8), nullable=False),
        sa.Column("target_level", sa.Integer(), nullable=False),
        sa.Column("first_reviewer", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("opened_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kyc_cases")),
    )
    op.create_index(op.f("ix_kyc_cases_status"), "kyc_cases", ["status"])
    op.create_index(op.f("ix_kyc_cases_user_id"), "kyc_cases", ["user_id"])
    op.create_table(
        "kyc_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("reviewer", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kyc_decisions")),
    )
    op.create_index(op.f("ix_kyc_decisions_user_id"), "kyc_decisions", ["user_id"])
    op.create_table(
        "kyc_applied",
        sa.Column("account", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("restriction", sa.String(length=64), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_kyc_applied")),
    )


def downgrade() -> None:
    for table in ("kyc_applied", "kyc_decisions", "kyc_cases", "kyc_documents", "kyc_profiles"):
        op.drop_table(table)
