"""Sign-up and email confirmation.

1. Sign-up answers the same whether or not the address is registered: a new address gets an
   account and a confirmation link; a registered one gets a notice (confirmed) or a fresh
   link (unconfirmed), within the unsolicited-mail budget (``notices.mail_allowed``).
2. A new user, its confirmation token and its audit row are one transaction: a crash between
   any two of them leaves no account. The password is checked and hashed before the
   transaction opens (no lock held across argon2).
3. A new user takes the next free account id (``accounts.next_user_id``); a concurrent
   sign-up that took the id or the address rolls this one back, and it retries at most
   ``USER_ID_RETRIES_MAX`` times, mailing only what the committed attempt decided.
4. ``confirm_email`` consumes a ``confirm`` token (the address is confirmed) or an ``email``
   token (the address changes, unless someone registered it meanwhile: then the token is
   refused like a bad one); the old address hears of a change.
"""

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from perpetua.services.accounts import USER_ID_RETRIES_MAX, next_user_id
from perpetua.services.audit import record
from perpetua.services.identity import notices, tokens
from perpetua.services.identity.context import ACTOR_USER, Context
from perpetua.services.identity.notices import Mail, Outcome
from perpetua.services.identity.values import MSG_TOKEN, Origin, bad, normalize_email
from perpetua.store.schema import users

__all__ = ["confirm_email", "register"]

SUBJECT_CONFIRM = "Perpetua: confirm your email"


def register(ctx: Context, email: str, password: str, origin: Origin) -> None:
    address = normalize_email(email)
    password_hash = ctx.password_hash(password, address)
    outcome = Outcome()
    for _attempt in range(USER_ID_RETRIES_MAX):
        try:
            with ctx.engine.begin() as conn:
                _register_in(ctx, conn, address, password_hash, origin, outcome)
            break
        except IntegrityError:  # a concurrent sign-up took the id or the address
            outcome.mails.clear()
    notices.send(ctx, outcome)


def _register_in(
    ctx: Context,
    conn: Connection,
    address: str,
    password_hash: str,
    origin: Origin,
    outcome: Outcome,
) -> None:
    now = ctx.clock_ns()
    row = conn.execute(select(users).where(users.c.email == address)).first()
    if row is not None:  # rule 1: same answer; the owner hears about it
        if not notices.mail_allowed(ctx, conn, row.id):
            return
        if row.email_confirmed:
            outcome.mails.append(
                notices.notice(
                    row,
                    "sign-up attempt",
                    "Someone tried to sign up with this address, "
                    "which already has an account. To recover it, ask for a password reset.",
                )
            )
        else:
            token = tokens.issue(ctx, conn, row.id, "confirm")
            outcome.mails.append(
                Mail(
                    row.email,
                    SUBJECT_CONFIRM,
                    notices.link(ctx, "confirmEmail", token),
                    row.anti_phishing,  # every mail carries the phrase if one is set
                )
            )
        return
    user_id = next_user_id(conn)
    conn.execute(
        users.insert().values(
            id=user_id,
            email=address,
            password_hash=password_hash,
            created_ns=now,
            enabled=True,
            email_confirmed=False,
            updated_ns=now,
        )
    )
    token = tokens.issue(ctx, conn, user_id, "confirm")
    record(conn, now, user_id, ACTOR_USER, "register", origin.ip)
    outcome.mails.append(Mail(address, SUBJECT_CONFIRM, notices.link(ctx, "confirmEmail", token)))


def confirm_email(ctx: Context, token: str, origin: Origin) -> None:
    outcome = Outcome()
    with ctx.engine.begin() as conn:
        user_id, purpose, data = tokens.consume(ctx, conn, token, ("confirm", "email"))
        row = ctx.user_row(conn, user_id)
        now = ctx.clock_ns()
        if purpose == "confirm":
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(email_confirmed=True, updated_ns=now)
            )
            record(conn, now, user_id, ACTOR_USER, "email_confirmed", origin.ip)
        else:
            if conn.execute(select(users.c.id).where(users.c.email == data)).first():
                raise bad(MSG_TOKEN)  # taken meanwhile
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(email=data, email_confirmed=True, updated_ns=now)
            )
            record(conn, now, user_id, ACTOR_USER, "email_changed", origin.ip)
            outcome.mails.append(
                notices.notice(row, "email changed", f"The account's email is now {data}.")
            )
    ctx.accounts.forget_cached_keys()
    notices.send(ctx, outcome)
