"""Wallets: addresses, follower positions, chain deposits and withdrawals, address book,
per-account whitelist mode, per-network switches.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NET = 16
_ADDR = 128
_HASH = 80


def upgrade() -> None:
    op.create_table(
        "wallet_addresses",
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("network", sa.String(length=_NET), nullable=False),
        sa.Column("address", sa.String(length=_ADDR), nullable=False),
        sa.Column("derivation_index", sa.BigInteger(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "network", name=op.f("pk_wallet_addresses")),
        sa.UniqueConstraint("address", name=op.f("uq_wallet_addresses_address")),
    )
    op.create_table(
        "chain_cursors",
        sa.Column("network", sa.String(length=_NET), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("network", name=op.f("pk_chain_cursors")),
    )
    op.create_table(
        "chain_blocks",
        sa.Column("network", sa.String(length=_NET), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=_HASH), nullable=False),
        sa.PrimaryKeyConstraint("network", "number", name=op.f("pk_chain_blocks")),
    )
    op.create_table(
        "chain_deposits",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("network", sa.String(length=_NET), nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("tx", sa.String(length=_HASH), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=_ADDR), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=_HASH), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.String(length=220), nullable=False),
        sa.Column("seen_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_deposits")),
    )
    op.create_index(op.f("ix_chain_deposits_status"), "chain_deposits", ["status"])
    op.create_index(op.f("ix_chain_deposits_account"), "chain_deposits", ["account"])
    op.create_table(
        "chain_withdrawals",
        sa.Column("withdrawal_id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("network", sa.String(length=_NET), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=_ADDR), nullable=False),
        sa.Column("memo", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=True),
        sa.Column("token_expires_ns", sa.BigInteger(), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.String(length=_HASH), nullable=True),
        sa.Column("raw_tx", sa.Text(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("withdrawal_id", name=op.f("pk_chain_withdrawals")),
    )
    op.create_index(op.f("ix_chain_withdrawals_status"), "chain_withdrawals", ["status"])
    op.create_index(op.f("ix_chain_withdrawals_account"), "chain_withdrawals", ["account"])
    op.create_index(
        op.f("ix_chain_withdrawals_token_digest"), "chain_withdrawals", ["token_digest"]
    )
    op.create_table(
        "address_book",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("network", sa.String(length=_NET), nullable=False),
        sa.Column("address", sa.String(length=_ADDR), nullable=False),
        sa.Column("memo", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("usable_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_book")),
    )
    op.create_index(op.f("ix_address_book_account"), "address_book", ["account"])
    op.create_table(
        "wallet_settings",
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("whitelist", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_wallet_settings")),
    )
    op.create_table(
        "network_status",
        sa.Column("network", sa.String(length=_NET), nullable=False),
        sa.Column("deposits_enabled", sa.Boolean(), nullable=False),
        sa.Column("withdrawals_enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("network", name=op.f("pk_network_status")),
    )


def downgrade() -> None:
    for table in (
        "network_status",
        "wallet_settings",
        "address_book",
        "chain_withdrawals",
        "chain_deposits",
        "chain_blocks",
        "chain_cursors",
        "wallet_addresses",
    ):
        op.drop_table(table)
