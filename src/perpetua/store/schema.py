"""The SQL schema of the read models and of the accounts service (SQLAlchemy Core).

Units are the core's, never floats: prices in integer ticks of the row's instrument, sizes in
contracts (spot: position units), money in minor units of the row's currency (``XBt``, ``USDt``),
times in integer nanoseconds since the Unix epoch (``*_ns``). Enum columns hold the core's ints
(``perpetua.core.enums``: ``Side``, ``OrdType``, ``OrdStatus``, ``ExecType``...). The gateway
turns them into BitMEX's strings, decimals and ISO times; it has the instrument catalogue for
``price_of_ticks`` and ``home_notional``.

Ids are the core's ints (``order_id``, ``exec_id``, ``trd_match_id``) or, for wallet rows,
``transact_id`` = ``seq << TRANSACT_INDEX_BITS | position of the event in its command``; the
gateway formats them as BitMEX uuids.

This module is the reference the migrations are checked against (``tests/store``): a change here
needs a new Alembic revision under ``store/alembic/versions``.
"""

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from perpetua.wire.wallet import TRANSACT_INDEX_BITS  # one definition: the fold's

__all__ = [
    "ALL_TABLES",
    "announcements",
    "bank_orders",
    "CL_ORD_ID_LENGTH_MAX",
    "TRANSACT_INDEX_BITS",
    "account_tokens",
    "address_book",
    "api_keys",
    "audit_log",
    "communication_tokens",
    "chain_blocks",
    "chain_cursors",
    "chain_deposits",
    "chain_withdrawals",
    "executions",
    "funding",
    "insurance",
    "kyc_applied",
    "kyc_cases",
    "kyc_decisions",
    "kyc_documents",
    "kyc_profiles",
    "known_ips",
    "liquidations",
    "mail_queue",
    "metadata",
    "network_status",
    "orders",
    "positions",
    "projector_state",
    "recovery_codes",
    "sessions",
    "settlement",
    "sign_in_failures",
    "trade_bins",
    "trades",
    "transactions",
    "unstaking_requests",
    "users",
    "wallet_addresses",
    "wallet_settings",
    "wallets",
    "webauthn_credentials",
]

CL_ORD_ID_LENGTH_MAX = 36  # BitMEX's limit; the gateway rejects longer ones
SYMBOL_LENGTH_MAX = 32
CURRENCY_LENGTH_MAX = 16

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)


def _symbol(nullable: bool = False) -> Column[str]:
    return Column("symbol", String(SYMBOL_LENGTH_MAX), nullable=nullable)


def _currency() -> Column[str]:
    return Column("currency", String(CURRENCY_LENGTH_MAX), nullable=False)


def _order_columns() -> list[Column[Any]]:
    """The order fields an ``OrderEvent`` carries, shared by ``orders`` and ``executions``."""
    return [
        Column("account", BigInteger, nullable=False),
        _symbol(),
        Column("side", Integer, nullable=False),
        Column("ord_type", Integer, nullable=False),
        Column("time_in_force", Integer, nullable=False),
        Column("exec_inst", Integer, nullable=False),
        Column("order_qty", BigInteger, nullable=False),
        Column("price", BigInteger, nullable=True),
        Column("stop_px", BigInteger, nullable=True),
        Column("display_qty", BigInteger, nullable=True),
        Column("peg_price_type", Integer, nullable=False),
        Column("peg_offset", BigInteger, nullable=True),
        Column("contingency_type", Integer, nullable=False),
        Column("cl_ord_id", String(CL_ORD_ID_LENGTH_MAX), nullable=False),
        Column("cl_ord_link_id", String(CL_ORD_ID_LENGTH_MAX), nullable=False),
        Column("ord_status", Integer, nullable=False),
        Column("triggered", Boolean, nullable=False),
        Column("working", Boolean, nullable=False),
        Column("leaves_qty", BigInteger, nullable=False),
        Column("cum_qty", BigInteger, nullable=False),
        Column("cum_px_qty", BigInteger, nullable=False),
        Column("text", Text, nullable=False),
        Column("transact_ts_ns", BigInteger, nullable=False),
    ]


# Latest state of every order, upserted by order_id. created_ns is the first event's time;
# timestamp_ns the latest. avgPx = cum_px_qty / cum_qty ticks.
orders = Table(
    "orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    *_order_columns(),
    Column("created_ns", BigInteger, nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index(None, "account", "timestamp_ns"),
    Index(None, "account", "symbol", "timestamp_ns"),
    Index(None, "account", "cl_ord_id"),
    Index(None, "account", "ord_status"),
)

# One row per OrderEvent (New, Trade, Canceled, Replaced, Restated, Expired, Triggered, Funding,
# Settlement). last_px in ticks; exec_cost and exec_comm in settlement minor units, BitMEX signs.
executions = Table(
    "executions",
    metadata,
    Column("exec_id", BigInteger, primary_key=True, autoincrement=False),
    Column("order_id", BigInteger, nullable=False),
    Column("exec_type", Integer, nullable=False),
    *_order_columns(),
    Column("last_qty", BigInteger, nullable=False),
    Column("last_px", BigInteger, nullable=True),
    Column("trd_match_id", BigInteger, nullable=False),
    Column("exec_cost", BigInteger, nullable=False),
    Column("exec_comm", BigInteger, nullable=False),
    Column("fee_rate_ppm", BigInteger, nullable=False),
    Column("liquidity", Integer, nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index(None, "account", "timestamp_ns"),
    Index(None, "account", "symbol", "timestamp_ns"),
    Index(None, "order_id"),
    Index(None, "account", "cl_ord_id"),
    Index(None, "trd_match_id"),
)

# Public prints. tick_direction: 1 PlusTick, 2 ZeroPlusTick, -1 MinusTick, -2 ZeroMinusTick.
# The maker/taker columns are private (for audits), never sent on the public API.
trades = Table(
    "trades",
    metadata,
    Column("trd_match_id", BigInteger, primary_key=True, autoincrement=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    _symbol(),
    Column("side", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("tick_direction", Integer, nullable=False),
    Column("gross_value", BigInteger, nullable=False),
    Column("maker_account", BigInteger, nullable=False),
    Column("taker_account", BigInteger, nullable=False),
    Column("maker_order_id", BigInteger, nullable=False),
    Column("taker_order_id", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index(None, "symbol", "timestamp_ns"),
    Index(None, "timestamp_ns"),
)

# OHLCV per bin_size ('1m', '5m', '1h', '1d') and symbol, keyed by the bin's END time: a trade
# at t falls in the bin ending at (t // size + 1) * size. open is the previous bin's close (the
# first trade's price for a symbol's first bin), as BitMEX does; vwap = px_qty_sum / volume
# ticks; turnover in settlement minor units.
trade_bins = Table(
    "trade_bins",
    metadata,
    Column("bin_size", String(4), primary_key=True),
    Column("symbol", String(SYMBOL_LENGTH_MAX), primary_key=True),
    Column("timestamp_ns", BigInteger, primary_key=True, autoincrement=False),
    Column("open", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    Column("low", BigInteger, nullable=False),
    Column("close", BigInteger, nullable=False),
    Column("trades", BigInteger, nullable=False),
    Column("volume", BigInteger, nullable=False),
    Column("turnover", BigInteger, nullable=False),
    Column("px_qty_sum", BigInteger, nullable=False),
    Column("last_size", BigInteger, nullable=False),
)

# Wallet history (BitMEX walletHistory / transact). See projector.py for the mapping from
# Transfer codes; amount is signed (what the row moved), wallet_balance the balance after it.
transactions = Table(
    "transactions",
    metadata,
    Column("transact_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account", BigInteger, nullable=False),
    _currency(),
    Column("transact_type", String(32), nullable=False),
    Column("transact_status", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("wallet_balance", BigInteger, nullable=False),
    Column("ref", String(220), nullable=False),  # a deposit's transfer id
    Column("network", String(32), nullable=False),
    Column("address", Text, nullable=False),
    Column("tx", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("transact_ts_ns", BigInteger, nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index(None, "account", "currency", "transact_id"),
    Index(None, "account", "timestamp_ns"),
    Index(None, "account", "transact_type", "ref"),
)

# Balances per ledger account and currency, from Transfer events; system accounts (negative
# ids) included. amount = wallet balance; pending_debit = withdrawals held and not completed.
wallets = Table(
    "wallets",
    metadata,
    Column("account", BigInteger, primary_key=True, autoincrement=False),
    Column("currency", String(CURRENCY_LENGTH_MAX), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("deposited", BigInteger, nullable=False),
    Column("withdrawn", BigInteger, nullable=False),
    Column("transfer_in", BigInteger, nullable=False),
    Column("transfer_out", BigInteger, nullable=False),
    Column("pending_credit", BigInteger, nullable=False),
    Column("pending_debit", BigInteger, nullable=False),
    Column("confirmed_debit", BigInteger, nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
)

# Latest PositionChanged per account and symbol, margin figures included: the fold of the
# position's events, which is what the gateway's position view holds (it starts from here).
positions = Table(
    "positions",
    metadata,
    Column("account", BigInteger, primary_key=True, autoincrement=False),
    Column("symbol", String(SYMBOL_LENGTH_MAX), primary_key=True),
    Column("current_qty", BigInteger, nullable=False),
    Column("current_cost", BigInteger, nullable=False),
    Column("realised_pnl", BigInteger, nullable=False),
    Column("exec_realised_pnl", BigInteger, nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    # The risk engine's figures (revision 0002): leverage in hundredths (0: cross), margins in
    # settlement minor units, rates in ppm, prices in ticks (NULL: none).
    *(
        Column(name, BigInteger, nullable=False, server_default="0")
        for name in (
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
    ),
    Column("bankrupt_price", BigInteger, nullable=True),
    Column("liquidation_price", BigInteger, nullable=True),
    Column("order_margin", BigInteger, nullable=False, server_default="0"),
    # Fees paid to open what is held (revision 0003), for breakEvenPrice.
    Column("open_comm", BigInteger, nullable=False, server_default="0"),
)

# One row per funding time and perpetual: rate = funding_rate_num / funding_rate_den (exact),
# fundingRateDaily = rate * 1 day / funding_interval_ns.
funding = Table(
    "funding",
    metadata,
    Column("symbol", String(SYMBOL_LENGTH_MAX), primary_key=True),
    Column("timestamp_ns", BigInteger, primary_key=True, autoincrement=False),
    Column("funding_interval_ns", BigInteger, nullable=False),
    Column("funding_rate_num", BigInteger, nullable=False),
    Column("funding_rate_den", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index(None, "timestamp_ns"),
)

# Insurance fund balance per currency after every command that changed it.
insurance = Table(
    "insurance",
    metadata,
    Column("currency", String(CURRENCY_LENGTH_MAX), primary_key=True),
    Column("timestamp_ns", BigInteger, primary_key=True, autoincrement=False),
    Column("wallet_balance", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index(None, "timestamp_ns"),
)

# Futures settlement (and later other settlement types). Prices are exact rationals (a TWAP of
# the index need not sit on the tick grid); bankrupt and tax_base in settlement minor units.
settlement = Table(
    "settlement",
    metadata,
    Column("symbol", String(SYMBOL_LENGTH_MAX), primary_key=True),
    Column("timestamp_ns", BigInteger, primary_key=True, autoincrement=False),
    Column("settlement_type", String(32), nullable=False),
    Column("settled_price_num", BigInteger, nullable=False),
    Column("settled_price_den", BigInteger, nullable=False),
    Column("option_strike_price_num", BigInteger, nullable=True),
    Column("option_underlying_price_num", BigInteger, nullable=True),
    Column("option_price_den", BigInteger, nullable=True),
    Column("bankrupt", BigInteger, nullable=False),
    Column("tax_base", BigInteger, nullable=False),
    Column("tax_rate_ppm", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index(None, "timestamp_ns"),
)

# The liquidation engine's orders (public `liquidation` table): working ones have
# working = true; finished ones keep their last state with working = false.
liquidations = Table(
    "liquidations",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    _symbol(),
    Column("side", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("leaves_qty", BigInteger, nullable=False),
    Column("working", Boolean, nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index(None, "symbol", "timestamp_ns"),
)

# One row (id = 1): the last command sequence number whose events are in the tables above.
projector_state = Table(
    "projector_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)

# --- accounts service ---------------------------------------------------------------------------

# id is the core account id (>= 1).
users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False),
    # since revision 0004 (accounts): a confirmed address, profile, second factor, sub-accounts
    Column("email_confirmed", Boolean, nullable=False, server_default="0"),
    Column("country", String(3), nullable=False, server_default=""),
    Column("preferences", Text, nullable=False, server_default="{}"),  # a JSON object
    Column("anti_phishing", String(64), nullable=False, server_default=""),
    Column("tfa_secret_encrypted", Text, nullable=True),  # Fernet token under the server key
    Column("tfa_enabled", Boolean, nullable=False, server_default="0"),
    Column("tfa_last_step", BigInteger, nullable=False, server_default="0"),
    Column("owner_id", BigInteger, nullable=True),  # a sub-account's main account
    Column("account_name", String(64), nullable=False, server_default=""),
    Column("updated_ns", BigInteger, nullable=False, server_default="0"),
)

# Browser sessions: ``id`` is the SHA-256 (hex) of the opaque cookie value, so the table alone
# cannot sign anyone in; ``csrf`` is the session's synchronizer token.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("last_seen_ns", BigInteger, nullable=False),
    Column("ip", String(64), nullable=False),
    Column("user_agent", String(256), nullable=False),
    Index(None, "user_id"),
)

# Single-use mailed tokens (confirm email, reset password, change email), stored as SHA-256.
account_tokens = Table(
    "account_tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("data", Text, nullable=False),
    Column("expires_ns", BigInteger, nullable=False),
    Index(None, "user_id"),
)

# TOTP recovery codes, SHA-256 of each; a used code is deleted.
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", BigInteger, ForeignKey("users.id"), primary_key=True),
    Column("code_hash", String(64), primary_key=True),
)

# WebAuthn security keys (since revision 0005): the credential id (base64url), its COSE public
# key (base64url) and the authenticator's signature counter.
webauthn_credentials = Table(
    "webauthn_credentials",
    metadata,
    Column("id", String(1400), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Index(None, "user_id"),
)

# Addresses a user signed in from (new-address notices; the per-account throttle spares them).
known_ips = Table(
    "known_ips",
    metadata,
    Column("user_id", BigInteger, ForeignKey("users.id"), primary_key=True),
    Column("ip", String(64), primary_key=True),
    Column("first_ns", BigInteger, nullable=False),
)

# Mobile clients' push tokens (since revision 0010; services.devices).
communication_tokens = Table(
    "communication_tokens",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("device_token", String(512), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Index(None, "user_id"),
)

# Mail to users that the relay refused, waiting for a retry (since revision 0007;
# services.mail_queue): ``sealed`` is a Fernet token of the whole message under the server key.
mail_queue = Table(
    "mail_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sealed", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("queued_ns", BigInteger, nullable=False),
    Column("next_ns", BigInteger, nullable=False),
    Column("last_error", String(200), nullable=False),
    Index(None, "next_ns"),
)

# Sign-in failures per throttle key (``e:`` + SHA-256 of the email, ``ip:`` + address).
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_ns", BigInteger, nullable=False),
)

# Every security-relevant act: who (``actor``: "user", "operator:NAME", "system"), on which
# account, what, from where, and a JSON detail without secrets.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ns", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=True),
    Column("actor", String(64), nullable=False),
    Column("action", String(48), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Index(None, "user_id", "ts_ns"),
)

# secret_encrypted is a Fernet token of the secret under the server key; permissions and cidr
# are JSON lists of strings.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("secret_encrypted", Text, nullable=False),
    Column("permissions", JSON, nullable=False),
    Column("cidr", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Index(None, "user_id"),
)

# The operator's site announcements (PublishAnnouncement): id is the publishing command's seq;
# a withdrawn one (WithdrawAnnouncement) is deleted.
announcements = Table(
    "announcements",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    Column("title", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("urgent", Boolean, nullable=False),
)

# BMEX unstaking requests (UnstakeRequest, UnstakeCancel, the release at the end of the cooling
# off): one row per request, its latest status and when it got it (timestamp_ns). The engine
# keeps only the pending ones; the gateway seeds the ended ones from here at start, so
# ``GET /user/unstakingRequests`` answers the same after a restart.
unstaking_requests = Table(
    "unstaking_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("account", BigInteger, nullable=False),
    _currency(),
    Column("amount", BigInteger, nullable=False),
    Column("release_ns", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
    Index(None, "account", "timestamp_ns"),
)

# --- wallets (services.wallets; docs/wallets.md) -----------------------------------------------
# Addresses, block positions, deposits seen on chain and withdrawals on their way out. Money is
# in the exchange's minor units; chain hashes and addresses as the chain writes them.
NETWORK_LENGTH_MAX = 16
ADDRESS_LENGTH_MAX = 128
HASH_LENGTH_MAX = 80

wallet_addresses = Table(
    "wallet_addresses",
    metadata,
    Column("account", BigInteger, primary_key=True),
    Column("network", String(NETWORK_LENGTH_MAX), primary_key=True),
    Column("address", String(ADDRESS_LENGTH_MAX), nullable=False, unique=True),
    Column("derivation_index", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
)

# The follower's position per network, and the hashes of recent blocks it read (reorgs).
chain_cursors = Table(
    "chain_cursors",
    metadata,
    Column("network", String(NETWORK_LENGTH_MAX), primary_key=True),
    Column("block_number", BigInteger, nullable=False),
)
chain_blocks = Table(
    "chain_blocks",
    metadata,
    Column("network", String(NETWORK_LENGTH_MAX), primary_key=True),
    Column("number", BigInteger, primary_key=True),
    Column("hash", String(HASH_LENGTH_MAX), nullable=False),
)

# One row per (network, tx, log index): status Pending | Held | Refused | Credited | Reversed |
# Orphaned | BelowMinimum; transfer_id is the core Deposit's id of the current credit
# (credits counts them: a transfer re-included after a reorg is credited under a new id).
chain_deposits = Table(
    "chain_deposits",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("network", String(NETWORK_LENGTH_MAX), nullable=False),
    Column("account", BigInteger, nullable=False),
    _currency(),
    Column("amount", BigInteger, nullable=False),
    Column("tx", String(HASH_LENGTH_MAX), nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("address", String(ADDRESS_LENGTH_MAX), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", String(HASH_LENGTH_MAX), nullable=False),
    Column("status", String(16), nullable=False),
    Column("credits", Integer, nullable=False),
    Column("transfer_id", String(220), nullable=False),
    Column("seen_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Index(None, "status"),
    Index(None, "account"),
)

# A withdrawal from request to chain (services.wallets.withdrawals has the transitions).
chain_withdrawals = Table(
    "chain_withdrawals",
    metadata,
    Column("withdrawal_id", String(64), primary_key=True),
    Column("account", BigInteger, nullable=False),
    Column("network", String(NETWORK_LENGTH_MAX), nullable=False),
    _currency(),
    Column("amount", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("address", String(ADDRESS_LENGTH_MAX), nullable=False),
    Column("memo", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(24), nullable=False),
    Column("token_digest", String(64), nullable=True),
    Column("token_expires_ns", BigInteger, nullable=False),
    Column("approved_by", String(64), nullable=False),
    Column("nonce", BigInteger, nullable=True),
    Column("tx_hash", String(HASH_LENGTH_MAX), nullable=True),
    Column("raw_tx", Text, nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Index(None, "status"),
    Index(None, "account"),
    Index(None, "token_digest"),
)

# The address book (BitMEX ``Address``): usable_ns is when a new entry may first be used.
address_book = Table(
    "address_book",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", BigInteger, nullable=False),
    _currency(),
    Column("network", String(NETWORK_LENGTH_MAX), nullable=False),
    Column("address", String(ADDRESS_LENGTH_MAX), nullable=False),
    Column("memo", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("usable_ns", BigInteger, nullable=False),
    Index(None, "account"),
)

wallet_settings = Table(
    "wallet_settings",
    metadata,
    Column("account", BigInteger, primary_key=True),
    Column("whitelist", Boolean, nullable=False),
)

# The operator's switches per network (absent: both enabled).
network_status = Table(
    "network_status",
    metadata,
    Column("network", String(NETWORK_LENGTH_MAX), primary_key=True),
    Column("deposits_enabled", Boolean, nullable=False),
    Column("withdrawals_enabled", Boolean, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)

# Trading bots (services.bots): the plan a user set, fixed at creation (JSON of integers and
# strings: ticks, lots, minor units), and where the bot is in its life. Everything a bot did is
# in the journal (its sub-account's orders); this is only what it was asked to do.
bots = Table(
    "bots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("account", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("params", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Index(None, "owner_id"),
)

# Copy trading (services.copytrading): a lead trader's public profile, and each follower's copy
# relationship (its own sub-account, the allocation, the copy rules, the profit-share
# high-water mark). Money moves only by core commands; these rows hold settings.
copy_leaders = Table(
    "copy_leaders",
    metadata,
    Column("account", BigInteger, primary_key=True, autoincrement=False),
    Column("owner_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("symbols", JSON, nullable=False),
    Column("leverage_cap_e2", Integer, nullable=False),
    Column("profit_share_ppm", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
)

copy_follows = Table(
    "copy_follows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("account", BigInteger, nullable=False),
    Column("leader", BigInteger, nullable=False),
    Column("params", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("high_water", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Index(None, "owner_id"),
    Index(None, "leader"),
)

# --- compliance (services.compliance, docs/compliance.md) ---------------------------------------

# One per user (main account): KYC level and the place codes the jurisdiction rules need;
# every other personal field is ``sealed`` (Fernet JSON under the server key). Erasure
# deletes the row.
kyc_profiles = Table(
    "kyc_profiles",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),  # individual | business
    Column("level", Integer, nullable=False),
    # none | draft | pending | approved | rejected | more_info | closed
    Column("status", String(16), nullable=False),
    Column("requested_level", Integer, nullable=False),
    Column("residence", String(8), nullable=False),  # ISO 3166 code
    Column("citizenship", String(64), nullable=False),  # comma-separated alpha-2 codes
    Column("incorporation", String(8), nullable=False),  # business: ISO 3166 code
    Column("risk", String(8), nullable=False),  # normal | high
    Column("sanctioned", Boolean, nullable=False),  # a confirmed sanctions hit: frozen
    Column("sealed", Text, nullable=True),
    Column("approved_ns", BigInteger, nullable=False),
    Column("review_due_ns", BigInteger, nullable=False),  # 0: none
    Column("updated_ns", BigInteger, nullable=False),
)

# Uploaded documents: AES-GCM ciphertext under a per-file key, the key wrapped by the server key.
kyc_documents = Table(
    "kyc_documents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("label", String(100), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("expires_ns", BigInteger, nullable=False),
    UniqueConstraint("user_id", "sha256"),
    Index(None, "user_id"),
)

# The review queue: one case per application, sanctions hit or location mismatch.
kyc_cases = Table(
    "kyc_cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # kyc | sanctions | location | periodic
    Column("status", String(16), nullable=False),
    Column("risk", String(8), nullable=False),
    Column("target_level", Integer, nullable=False),
    Column("first_reviewer", String(64), nullable=False),  # four-eyes: the first approval
    Column("detail", Text, nullable=True),  # JSON; personal fields removed on erasure
    Column("opened_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Index(None, "status"),
    Index(None, "user_id"),
)

# Append-only: every review decision, who, when and why. Erasure keeps the row and removes
# its personal ``detail``.
kyc_decisions = Table(
    "kyc_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("reviewer", String(64), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=True),
    Column("ts_ns", BigInteger, nullable=False),
    Index(None, "user_id"),
)

# The restriction the compliance sync last submitted per account (core.restrictions).
kyc_applied = Table(
    "kyc_applied",
    metadata,
    Column("account", BigInteger, primary_key=True, autoincrement=False),
    Column("restriction", String(64), nullable=False),  # what compliance last submitted
    Column("operator", String(64), nullable=False, server_default=""),  # the operator's own
    Column("updated_ns", BigInteger, nullable=False),
)

# Cluster mode's shared service state (runtime.cluster_leader, decisions §28): what the
# leading sequencer's jobs write and every gateway reads.

# The volume tiers' last measurement (services.volume): one row per family (its owner's
# account), replaced whole at each boundary; ``measured_ns`` the boundary it was measured at.
volume_figures = Table(
    "volume_figures",
    metadata,
    Column("family", BigInteger, primary_key=True, autoincrement=False),
    Column("adv_usd", BigInteger, nullable=False),
    Column("adv_usd_spot", BigInteger, nullable=False),
    Column("adv_usd_contract", BigInteger, nullable=False),
    Column("tier", Integer, nullable=False),
    Column("measured_ns", BigInteger, nullable=False),
)

# One row per boundary the volume tiers measured (services.volume): when the last was.
volume_runs = Table(
    "volume_runs",
    metadata,
    Column("boundary_ns", BigInteger, primary_key=True, autoincrement=False),
    Column("measured_at_ns", BigInteger, nullable=False),
    Column("changes", Integer, nullable=False),
)

# Published proofs of reserves and liabilities (services.porl.shared): write-once by height
# (the primary key), the sealed per-account balances in the same row.
porl_publications = Table(
    "porl_publications",
    metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("manifest", Text, nullable=False),
    Column("balances", LargeBinary, nullable=False),  # Fernet under the server key
    Column("published_ns", BigInteger, nullable=False),
)

porl_files = Table(
    "porl_files",
    metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# Each account's lifetime nonce (services.porl.nonces), Fernet under the server key.
porl_nonces = Table(
    "porl_nonces",
    metadata,
    Column("account", BigInteger, primary_key=True, autoincrement=False),
    Column("sealed", Text, nullable=False),
)

# Offline signatures of reserve addresses, per height (services.porl.reserves).
porl_signatures = Table(
    "porl_signatures",
    metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("address", String(64), primary_key=True),
    Column("signature", String(200), nullable=False),
)

# Snapshots an operator asked a gateway for, taken by the leading sequencer's proof job:
# ``state`` pending -> taking (claimed by one leader) -> done or failed, ``answer`` JSON.
porl_requests = Table(
    "porl_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("height", BigInteger, nullable=True),
    Column("state", String(16), nullable=False),
    Column("requested_ns", BigInteger, nullable=False),
    Column("claimed_ns", BigInteger, nullable=False, server_default="0"),
    Column("answer", Text, nullable=False, server_default=""),
)

# Bank-transfer on-ramp orders (services.onramp rule 4) on a cluster's gateways: one row an
# order, changed under its row lock; ``approvals`` a JSON list of the approvers' names.
bank_orders = Table(
    "bank_orders",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("account", BigInteger, nullable=False, index=True),
    Column("currency", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_s", Float, nullable=False),
    Column("approvals", Text, nullable=False),
)

ALL_TABLES = tuple(metadata.sorted_tables)
