"""Initial schema: read models (orders, executions, trades, trade_bins, transactions, wallets,
positions, funding, insurance, settlement, liquidations, projector_state) and accounts (users,
api_keys).

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-30

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "executions",
        sa.Column("exec_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("exec_type", sa.Integer(), nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("ord_type", sa.Integer(), nullable=False),
        sa.Column("time_in_force", sa.Integer(), nullable=False),
        sa.Column("exec_inst", sa.Integer(), nullable=False),
        sa.Column("order_qty", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=True),
        sa.Column("stop_px", sa.BigInteger(), nullable=True),
        sa.Column("display_qty", sa.BigInteger(), nullable=True),
        sa.Column("peg_price_type", sa.Integer(), nullable=False),
        sa.Column("peg_offset", sa.BigInteger(), nullable=True),
        sa.Column("contingency_type", sa.Integer(), nullable=False),
        sa.Column("cl_ord_id", sa.String(length=36), nullable=False),
        sa.Column("cl_ord_link_id", sa.String(length=36), nullable=False),
        sa.Column("ord_status", sa.Integer(), nullable=False),
        sa.Column("triggered", sa.Boolean(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("leaves_qty", sa.BigInteger(), nullable=False),
        sa.Column("cum_qty", sa.BigInteger(), nullable=False),
        sa.Column("cum_px_qty", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("transact_ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_qty", sa.BigInteger(), nullable=False),
        sa.Column("last_px", sa.BigInteger(), nullable=True),
        sa.Column("trd_match_id", sa.BigInteger(), nullable=False),
        sa.Column("exec_cost", sa.BigInteger(), nullable=False),
        sa.Column("exec_comm", sa.BigInteger(), nullable=False),
        sa.Column("fee_rate_ppm", sa.BigInteger(), nullable=False),
        sa.Column("liquidity", sa.Integer(), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("exec_id", name=op.f("pk_executions")),
    )
    op.create_index(
        op.f("ix_executions_account_cl_ord_id"),
        "executions",
        ["account", "cl_ord_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_executions_account_symbol_timestamp_ns"),
        "executions",
        ["account", "symbol", "timestamp_ns"],
        unique=False,
    )
    op.create_index(
        op.f("ix_executions_account_timestamp_ns"),
        "executions",
        ["account", "timestamp_ns"],
        unique=False,
    )
    op.create_index(op.f("ix_executions_order_id"), "executions", ["order_id"], unique=False)
    op.create_index(
        op.f("ix_executions_trd_match_id"), "executions", ["trd_match_id"], unique=False
    )

    op.create_table(
        "funding",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("funding_interval_ns", sa.BigInteger(), nullable=False),
        sa.Column("funding_rate_num", sa.BigInteger(), nullable=False),
        sa.Column("funding_rate_den", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "timestamp_ns", name=op.f("pk_funding")),
    )
    op.create_index(op.f("ix_funding_timestamp_ns"), "funding", ["timestamp_ns"], unique=False)

    op.create_table(
        "insurance",
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("wallet_balance", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("currency", "timestamp_ns", name=op.f("pk_insurance")),
    )
    op.create_index(op.f("ix_insurance_timestamp_ns"), "insurance", ["timestamp_ns"], unique=False)

    op.create_table(
        "liquidations",
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("leaves_qty", sa.BigInteger(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_liquidations")),
    )
    op.create_index(
        op.f("ix_liquidations_symbol_timestamp_ns"),
        "liquidations",
        ["symbol", "timestamp_ns"],
        unique=False,
    )

    op.create_table(
        "orders",
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("ord_type", sa.Integer(), nullable=False),
        sa.Column("time_in_force", sa.Integer(), nullable=False),
        sa.Column("exec_inst", sa.Integer(), nullable=False),
        sa.Column("order_qty", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=True),
        sa.Column("stop_px", sa.BigInteger(), nullable=True),
        sa.Column("display_qty", sa.BigInteger(), nullable=True),
        sa.Column("peg_price_type", sa.Integer(), nullable=False),
        sa.Column("peg_offset", sa.BigInteger(), nullable=True),
        sa.Column("contingency_type", sa.Integer(), nullable=False),
        sa.Column("cl_ord_id", sa.String(length=36), nullable=False),
        sa.Column("cl_ord_link_id", sa.String(length=36), nullable=False),
        sa.Column("ord_status", sa.Integer(), nullable=False),
        sa.Column("triggered", sa.Boolean(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("leaves_qty", sa.BigInteger(), nullable=False),
        sa.Column("cum_qty", sa.BigInteger(), nullable=False),
        sa.Column("cum_px_qty", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("transact_ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
    )
    op.create_index(
        op.f("ix_orders_account_cl_ord_id"), "orders", ["account", "cl_ord_id"], unique=False
    )
    op.create_index(
        op.f("ix_orders_account_ord_status"), "orders", ["account", "ord_status"], unique=False
    )
    op.create_index(
        op.f("ix_orders_account_symbol_timestamp_ns"),
        "orders",
        ["account", "symbol", "timestamp_ns"],
        unique=False,
    )
    op.create_index(
        op.f("ix_orders_account_timestamp_ns"), "orders", ["account", "timestamp_ns"], unique=False
    )

    op.create_table(
        "positions",
        sa.Column("account", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("current_qty", sa.BigInteger(), nullable=False),
        sa.Column("current_cost", sa.BigInteger(), nullable=False),
        sa.Column("realised_pnl", sa.BigInteger(), nullable=False),
        sa.Column("exec_realised_pnl", sa.BigInteger(), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "symbol", name=op.f("pk_positions")),
    )
    op.create_table(
        "projector_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projector_state")),
    )
    op.create_table(
        "settlement",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("settlement_type", sa.String(length=32), nullable=False),
        sa.Column("settled_price_num", sa.BigInteger(), nullable=False),
        sa.Column("settled_price_den", sa.BigInteger(), nullable=False),
        sa.Column("option_strike_price_num", sa.BigInteger(), nullable=True),
        sa.Column("option_underlying_price_num", sa.BigInteger(), nullable=True),
        sa.Column("option_price_den", sa.BigInteger(), nullable=True),
        sa.Column("bankrupt", sa.BigInteger(), nullable=False),
        sa.Column("tax_base", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate_ppm", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "timestamp_ns", name=op.f("pk_settlement")),
    )
    op.create_index(
        op.f("ix_settlement_timestamp_ns"), "settlement", ["timestamp_ns"], unique=False
    )

    op.create_table(
        "trade_bins",
        sa.Column("bin_size", sa.String(length=4), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("open", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("close", sa.BigInteger(), nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("turnover", sa.BigInteger(), nullable=False),
        sa.Column("px_qty_sum", sa.BigInteger(), nullable=False),
        sa.Column("last_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bin_size", "symbol", "timestamp_ns", name=op.f("pk_trade_bins")),
    )
    op.create_table(
        "trades",
        sa.Column("trd_match_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("tick_direction", sa.Integer(), nullable=False),
        sa.Column("gross_value", sa.BigInteger(), nullable=False),
        sa.Column("maker_account", sa.BigInteger(), nullable=False),
        sa.Column("taker_account", sa.BigInteger(), nullable=False),
        sa.Column("maker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("taker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("trd_match_id", name=op.f("pk_trades")),
    )
    op.create_index(
        op.f("ix_trades_symbol_timestamp_ns"), "trades", ["symbol", "timestamp_ns"], unique=False
    )
    op.create_index(op.f("ix_trades_timestamp_ns"), "trades", ["timestamp_ns"], unique=False)

    op.create_table(
        "transactions",
        sa.Column("transact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("transact_type", sa.String(length=32), nullable=False),
        sa.Column("transact_status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("wallet_balance", sa.BigInteger(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("tx", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("transact_ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("transact_id", name=op.f("pk_transactions")),
    )
    op.create_index(
        op.f("ix_transactions_account_currency_transact_id"),
        "transactions",
        ["account", "currency", "transact_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_transactions_account_timestamp_ns"),
        "transactions",
        ["account", "timestamp_ns"],
        unique=False,
    )
    op.create_index(
        op.f("ix_transactions_account_transact_type_ref"),
        "transactions",
        ["account", "transact_type", "ref"],
        unique=False,
    )

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "wallets",
        sa.Column("account", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("deposited", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn", sa.BigInteger(), nullable=False),
        sa.Column("transfer_in", sa.BigInteger(), nullable=False),
        sa.Column("transfer_out", sa.BigInteger(), nullable=False),
        sa.Column("pending_credit", sa.BigInteger(), nullable=False),
        sa.Column("pending_debit", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_debit", sa.BigInteger(), nullable=False),
        sa.Column("timestamp_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "currency", name=op.f("pk_wallets")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("cidr", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_user_id"), "api_keys", ["user_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_api_keys_user_id"), table_name="api_keys")

    op.drop_table("api_keys")
    op.drop_table("wallets")
    op.drop_table("users")
    op.drop_index(op.f("ix_transactions_account_transact_type_ref"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_account_timestamp_ns"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_account_currency_transact_id"), table_name="transactions")

    op.drop_table("transactions")
    op.drop_index(op.f("ix_trades_timestamp_ns"), table_name="trades")
    op.drop_index(op.f("ix_trades_symbol_timestamp_ns"), table_name="trades")

    op.drop_table("trades")
    op.drop_table("trade_bins")
    op.drop_index(op.f("ix_settlement_timestamp_ns"), table_name="settlement")

    op.drop_table("settlement")
    op.drop_table("projector_state")
    op.drop_table("positions")
    op.drop_index(op.f("ix_orders_account_timestamp_ns"), table_name="orders")
    op.drop_index(op.f("ix_orders_account_symbol_timestamp_ns"), table_name="orders")
    op.drop_index(op.f("ix_orders_account_ord_status"), table_name="orders")
    op.drop_index(op.f("ix_orders_account_cl_ord_id"), table_name="orders")

    op.drop_table("orders")
    op.drop_index(op.f("ix_liquidations_symbol_timestamp_ns"), table_name="liquidations")

    op.drop_table("liquidations")
    op.drop_index(op.f("ix_insurance_timestamp_ns"), table_name="insurance")

    op.drop_table("insurance")
    op.drop_index(op.f("ix_funding_timestamp_ns"), table_name="funding")

    op.drop_table("funding")
    op.drop_index(op.f("ix_executions_trd_match_id"), table_name="executions")
    op.drop_index(op.f("ix_executions_order_id"), table_name="executions")
    op.drop_index(op.f("ix_executions_account_timestamp_ns"), table_name="executions")
    op.drop_index(op.f("ix_executions_account_symbol_timestamp_ns"), table_name="executions")
    op.drop_index(op.f("ix_executions_account_cl_ord_id"), table_name="executions")

    op.drop_table("executions")
