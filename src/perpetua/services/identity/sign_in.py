"""Sign-in: password, throttle, second factor, then a new session.

1. An unknown email and a wrong password fail alike (``MSG_SIGN_IN_FAILED``, a 401), and an
   unknown email still pays one argon2 check (``ctx.dummy_hash``): neither the answer nor
   its time says whether an address is registered.
2. The throttle (``services.throttle``) counts failures per address and per email, before
   the password is checked: past the free ones the answer is a 429 with ``retry_after_s``,
   whatever the password. An address the account signed in from before (``known_ips``) is
   not held back by the per-email count, so an attacker cannot lock the owner out. Unknown
   emails are throttled alike.
3. A locked account (403) and an unconfirmed one (403) are told so only after the right
   password.
4. A user with a second factor (``second_factor``) must pass it; a wrong one counts as a
   failure, recorded outside the act's rolled-back transaction.
5. Success is one transaction: the new session, the throttle cleared, the new address
   remembered and its notice, the audit row. A hash made with older argon2 parameters is
   rehashed afterwards.
"""

from typing import Any

from sqlalchemy import Connection, select, update

from perpetua.services import throttle
from perpetua.services.audit import record
from perpetua.services.identity import notices, second_factor, tokens
from perpetua.services.identity.context import ACTOR_USER, Context
from perpetua.services.identity.notices import Outcome
from perpetua.services.identity.values import (
    MSG_SIGN_IN_FAILED,
    MSG_TFA_INVALID,
    FactorRefused,
    IdentityError,
    Origin,
    SignedIn,
)
from perpetua.store.schema import known_ips, users

__all__ = ["password_checked", "sign_in"]

NS_PER_S = 10**9


def password_checked(
    ctx: Context, email: str, password: str, origin: Origin
) -> tuple[Any, list[str], bool]:
    """The user row of a correct email and password (rules 1-3), the throttle keys and
    whether the address is known for the account."""
    address = email.strip().lower() if isinstance(email, str) else ""
    now = ctx.clock_ns()
    with ctx.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.email == address)).first()
        known = (
            row is not None
            and conn.execute(
                select(known_ips.c.ip).where(
                    known_ips.c.user_id == row.id, known_ips.c.ip == origin.ip
                )
            ).first()
            is not None
        )
    keys = [throttle.ip_key(origin.ip)]
    if not known:
        keys.append(throttle.email_key(address))
    with ctx.engine.connect() as conn:
        wait = throttle.wait_ns(conn, keys, now)
    if wait > 0:
        seconds = -(-wait // NS_PER_S)
        raise IdentityError(
            429,
            f"Too many sign-in attempts; try again in {seconds} s",
            "RateLimitError",
            retry_after_s=seconds,
        )
    good = ctx.hashing.verify(
        row.password_hash if row is not None else ctx.dummy_hash,
        password if isinstance(password, str) else "",
    )
    if row is None or not good:
        _failed(ctx, keys, row, origin, "password")
        raise IdentityError(401, MSG_SIGN_IN_FAILED)
    if not row.enabled:
        raise IdentityError(403, "This account is locked; contact the operator")
    if not row.email_confirmed:
        raise IdentityError(403, "Confirm your email address first (see the mail we sent)")
    return row, keys, known


def sign_in(
    ctx: Context, email: str, password: str, otp: str, origin: Origin, assertion: str = ""
) -> SignedIn:
    row, keys, known = password_checked(ctx, email, password, origin)
    challenge = tokens.take_challenge(ctx, row.id) if assertion else None
    outcome = Outcome()
    try:
        with ctx.engine.begin() as conn:
            left = second_factor.check(ctx, conn, row, otp, origin, outcome, (assertion, challenge))
            signed = _commit(ctx, conn, row, known, origin, outcome)
    except FactorRefused as refused:  # rule 4: counted outside the rolled-back transaction
        _failed(ctx, keys, row, origin, str(refused))
        raise IdentityError(401, MSG_TFA_INVALID) from None
    if ctx.hashing.needs_rehash(row.password_hash):
        with ctx.engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(password_hash=ctx.hashing.hash(password))
            )
    notices.send(ctx, outcome)
    return SignedIn(signed.token, signed.session, row.id, left)


def _commit(
    ctx: Context, conn: Connection, row: Any, known: bool, origin: Origin, outcome: Outcome
) -> SignedIn:
    """Rule 5, in the caller's transaction."""
    now = ctx.clock_ns()
    signed = ctx.new_session(conn, row.id, origin)
    throttle.clear(conn, [throttle.ip_key(origin.ip), throttle.email_key(row.email)])
    if not known:
        conn.execute(known_ips.insert().values(user_id=row.id, ip=origin.ip[:64], first_ns=now))
        outcome.mails.append(
            notices.notice(
                row,
                "sign-in from a new address",
                f"Your account was signed in from {origin.ip} ({origin.user_agent}).",
            )
        )
    record(
        conn,
        now,
        row.id,
        ACTOR_USER,
        "sign_in",
        origin.ip,
        {"session": signed.session.id[:12], "tfa": bool(row.tfa_enabled)},
    )
    return signed


def _failed(ctx: Context, keys: list[str], row: Any, origin: Origin, why: str) -> None:
    """A failed attempt: counted by the throttle and audited, in its own transaction."""
    with ctx.engine.begin() as conn:
        throttle.record_failure(conn, keys, ctx.clock_ns())
        record(
            conn,
            ctx.clock_ns(),
            row.id if row is not None else None,
            ACTOR_USER,
            "sign_in_failed",
            origin.ip,
            {"why": why},
        )
