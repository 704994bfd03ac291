"""Mailed tokens and WebAuthn challenges (``account_tokens``): issued, consumed, expired.

1. A token is ``TOKEN_BYTES`` random bytes (256 bits), mailed or answered once; the table
   keeps only its SHA-256, so a read of the database confirms, resets or changes nothing.
2. A token is single use: ``consume`` deletes it before checking its expiry, inside the
   caller's transaction (a failed act rolls the deletion back with it); a token of another
   purpose, an expired one and an unknown one are refused alike (``MSG_TOKEN``).
3. Lifetimes are ``TOKEN_TTL_NS`` by purpose: confirm 48 h, reset 30 min, email change
   1 h, WebAuthn challenge 5 min. A user holds at most ``TOKENS_PER_USER_MAX`` outstanding;
   the one expiring soonest goes first.
4. A user has at most one WebAuthn challenge: a new one replaces the old, and taking it
   deletes it even when the ceremony then fails.
"""

import secrets
from typing import Final

from sqlalchemy import Connection, delete, select

from perpetua.services import passkeys
from perpetua.services.identity.context import Context
from perpetua.services.identity.values import MSG_TOKEN, bad
from perpetua.services.sessions import token_digest
from perpetua.store.schema import account_tokens

__all__ = [
    "TOKENS_PER_USER_MAX",
    "TOKEN_BYTES",
    "TOKEN_TTL_NS",
    "consume",
    "issue",
    "new_challenge",
    "take_challenge",
]

TOKEN_TTL_NS: Final = {
    "confirm": 48 * 3600 * 10**9,
    "reset": 30 * 60 * 10**9,
    "email": 60 * 60 * 10**9,
    "webauthn": 5 * 60 * 10**9,
}
TOKEN_BYTES: Final = 32
TOKENS_PER_USER_MAX: Final = 10  # outstanding; the oldest go first
PURPOSE_WEBAUTHN: Final = "webauthn"


def issue(ctx: Context, conn: Connection, user_id: int, purpose: str, data: str = "") -> str:
    """A new token for ``purpose`` (rules 1 and 3), in ``conn``'s transaction."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = ctx.clock_ns()
    held = (
        conn.execute(
            select(account_tokens.c.id)
            .where(account_tokens.c.user_id == user_id)
            .order_by(account_tokens.c.expires_ns.desc())
        )
        .scalars()
        .all()
    )
    for old in held[TOKENS_PER_USER_MAX - 1 :]:
        conn.execute(delete(account_tokens).where(account_tokens.c.id == old))
    conn.execute(
        account_tokens.insert().values(
            id=token_digest(token),
            user_id=user_id,
            purpose=purpose,
            data=data,
            expires_ns=now + TOKEN_TTL_NS[purpose],
        )
    )
    return token


def consume(
    ctx: Context, conn: Connection, token: str, purposes: tuple[str, ...]
) -> tuple[int, str, str]:
    """``(user id, purpose, data)`` of a live token of one of ``purposes`` (rule 2)."""
    digest = token_digest(token) if isinstance(token, str) and token else ""
    row = conn.execute(select(account_tokens).where(account_tokens.c.id == digest)).first()
    if row is None or row.purpose not in purposes:
        raise bad(MSG_TOKEN)
    conn.execute(delete(account_tokens).where(account_tokens.c.id == digest))
    if row.expires_ns < ctx.clock_ns():
        raise bad(MSG_TOKEN)
    return int(row.user_id), str(row.purpose), str(row.data)


def take_challenge(ctx: Context, user_id: int) -> bytes | None:
    """The user's outstanding WebAuthn challenge, consumed (rule 4), in its own
    transaction."""
    now = ctx.clock_ns()
    with ctx.engine.begin() as conn:
        row = conn.execute(
            select(account_tokens)
            .where(
                account_tokens.c.user_id == user_id, account_tokens.c.purpose == PURPOSE_WEBAUTHN
            )
            .order_by(account_tokens.c.expires_ns.desc())
        ).first()
        conn.execute(
            delete(account_tokens).where(
                account_tokens.c.user_id == user_id, account_tokens.c.purpose == PURPOSE_WEBAUTHN
            )
        )
    if row is None or row.expires_ns < now:
        return None
    return passkeys.challenge_bytes(row.data)


def new_challenge(ctx: Context, conn: Connection, user_id: int) -> bytes:
    """A fresh WebAuthn challenge replacing any outstanding one (rule 4)."""
    challenge = passkeys.new_challenge()
    conn.execute(
        delete(account_tokens).where(
            account_tokens.c.user_id == user_id, account_tokens.c.purpose == PURPOSE_WEBAUTHN
        )
    )
    issue(ctx, conn, user_id, PURPOSE_WEBAUTHN, passkeys.challenge_text(challenge))
    return challenge
