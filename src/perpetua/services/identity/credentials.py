"""Changing what proves an account: password reset, password change, email change.

1. A reset request answers the same for any address; a mail goes only to an enabled account,
   within the unsolicited-mail budget (``notices.mail_allowed``), with a ``reset`` token
   (30 minutes, single use: ``tokens``).
2. A reset sets a new password that passes the strength rule, confirms the address (the mail
   proved it) and ends every session, in one transaction; a weak password rolls the token's
   use back with it, so the owner can try again with the same token.
3. A change of password or email needs the current password; a password change ends every
   session and starts a new one for the caller in the same transaction.
4. An email change mails a token to the new address only if no account holds it, and a
   notice to the old address either way: a taken address gets the same answer and no token.
   The change happens when the token is confirmed (``registration.confirm_email``).
5. Every act is audited in its transaction and noticed to the account after the commit.
"""

from sqlalchemy import select, update

from perpetua.services.audit import record
from perpetua.services.identity import notices, tokens
from perpetua.services.identity.context import ACTOR_USER, Context
from perpetua.services.identity.notices import Mail, Outcome
from perpetua.services.identity.values import IdentityError, Origin, SignedIn, normalize_email
from perpetua.services.sessions import SessionStore
from perpetua.store.schema import users

__all__ = ["change_password", "request_email_change", "request_reset", "reset_password"]

MSG_BAD_PASSWORD = "Invalid password"


def request_reset(ctx: Context, email: str, origin: Origin) -> None:
    """Rule 1."""
    address = email.strip().lower() if isinstance(email, str) else ""
    outcome = Outcome()
    with ctx.engine.begin() as conn:
        row = conn.execute(select(users).where(users.c.email == address)).first()
        if row is not None and row.enabled and notices.mail_allowed(ctx, conn, row.id):
            token = tokens.issue(ctx, conn, row.id, "reset")
            record(
                conn,
                ctx.clock_ns(),
                row.id,
                ACTOR_USER,
                "password_reset_requested",
                origin.ip,
            )
            outcome.mails.append(
                Mail(
                    row.email,
                    "Perpetua: reset your password",
                    notices.link(ctx, "resetPassword", token) + f"\n\nRequested from {origin.ip}.",
                    row.anti_phishing,
                )
            )
    notices.send(ctx, outcome)


def reset_password(ctx: Context, token: str, password: str, origin: Origin) -> None:
    """Rule 2."""
    outcome = Outcome()
    with ctx.engine.begin() as conn:
        user_id, _purpose, _data = tokens.consume(ctx, conn, token, ("reset",))
        row = ctx.user_row(conn, user_id)
        password_hash = ctx.password_hash(password, row.email)
        now = ctx.clock_ns()
        # the mail proved the address: a reset also confirms it
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, email_confirmed=True, updated_ns=now)
        )
        SessionStore.revoke_all(conn, user_id)
        record(conn, now, user_id, ACTOR_USER, "password_reset", origin.ip)
        outcome.mails.append(
            notices.notice(row, "password reset", "Your password was reset; every session ended.")
        )
    notices.send(ctx, outcome)


def change_password(
    ctx: Context, user_id: int, old: str, new: str, session_id: str, origin: Origin
) -> SignedIn:
    """Rule 3: the caller's new session."""
    outcome = Outcome()
    with ctx.engine.connect() as conn:
        row = ctx.user_row(conn, user_id)
    if row is None or not ctx.hashing.verify(row.password_hash, old):
        raise IdentityError(401, MSG_BAD_PASSWORD)
    password_hash = ctx.password_hash(new, row.email)
    with ctx.engine.begin() as conn:
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, updated_ns=ctx.clock_ns())
        )
        SessionStore.revoke_all(conn, user_id)
        signed = ctx.new_session(conn, user_id, origin)
        record(conn, ctx.clock_ns(), user_id, ACTOR_USER, "password_changed", origin.ip)
        outcome.mails.append(notices.notice(row, "password changed", "Your password was changed."))
    notices.send(ctx, outcome)
    return signed


def request_email_change(
    ctx: Context, user_id: int, new_email: str, password: str, origin: Origin
) -> None:
    """Rule 4."""
    address = normalize_email(new_email)
    with ctx.engine.connect() as conn:
        row = ctx.user_row(conn, user_id)
    if row is None or not ctx.hashing.verify(row.password_hash, password):
        raise IdentityError(401, MSG_BAD_PASSWORD)
    outcome = Outcome()
    with ctx.engine.begin() as conn:
        taken = conn.execute(select(users.c.id).where(users.c.email == address)).first()
        if taken is None:  # a taken address gets the same answer and no token
            token = tokens.issue(ctx, conn, user_id, "email", address)
            outcome.mails.append(
                Mail(
                    address,
                    "Perpetua: confirm your new email",
                    notices.link(ctx, "confirmEmail", token),
                    row.anti_phishing,
                )
            )
        record(conn, ctx.clock_ns(), user_id, ACTOR_USER, "email_change_requested", origin.ip)
        outcome.mails.append(
            notices.notice(
                row, "email change requested", f"A change of email to {address} was requested."
            )
        )
    notices.send(ctx, outcome)
