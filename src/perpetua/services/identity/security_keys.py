"""WebAuthn security keys as a second factor: add, sign in with, list, remove.

1. The relying party is the public URL's host and its origin the only one accepted
   (``services.passkeys``); every ceremony uses a fresh single-use challenge that lives 5
   minutes (``tokens``); a signature counter that goes back (a cloned key) is refused.
2. Sign-in options are answered only after the right password (``sign_in.password_checked``:
   throttled and uniform like any sign-in), so they reveal no account's keys.
3. At most ``passkeys.CREDENTIALS_PER_USER_MAX`` keys per account. The first second factor
   brings ten recovery codes (answered once), as TOTP does.
4. A key is removed only with a TOTP or recovery code (a lost key cannot sign its own
   removal); the last second factor takes the recovery codes with it. Adding and removing
   rotate the caller's session and audit the act in one transaction; a notice follows.
5. A signed-in user approves an act that needs a current second factor (a key with
   ``withdraw``: ``second_factor.ok``) with an assertion over a challenge from
   ``confirm_options``: the same single-use, 5-minute challenge as sign-in's.
"""

from typing import Any

from sqlalchemy import Connection, delete, func, select

from perpetua.services import passkeys, totp
from perpetua.services.audit import record
from perpetua.services.identity import notices, second_factor, tokens
from perpetua.services.identity.context import ACTOR_USER, Context
from perpetua.services.identity.notices import Outcome
from perpetua.services.identity.sign_in import password_checked
from perpetua.services.identity.values import (
    MSG_TFA_INVALID,
    MSG_TFA_REQUIRED,
    FactorRefused,
    IdentityError,
    Origin,
    SecurityKey,
    SignedIn,
    bad,
)
from perpetua.store.schema import recovery_codes, webauthn_credentials

__all__ = ["confirm_options", "keys", "login_options", "register", "register_options", "remove"]

KEY_NAME_LENGTH_MAX = 64
KEY_ID_SHOWN_CHARS = 16


def _key_ids(conn: Connection, user_id: int) -> list[str]:
    return list(
        conn.execute(
            select(webauthn_credentials.c.id).where(webauthn_credentials.c.user_id == user_id)
        ).scalars()
    )


def login_options(ctx: Context, email: str, password: str, origin: Origin) -> dict[str, Any]:
    """Rule 2: the options to sign in with one of the account's keys."""
    row, _keys, _known = password_checked(ctx, email, password, origin)
    return confirm_options(ctx, row.id)


def confirm_options(ctx: Context, user_id: int) -> dict[str, Any]:
    """Rule 5: the options for a signed-in user to approve an act with one of their keys
    (and, after the password, to sign in with one: rule 2)."""
    with ctx.engine.begin() as conn:
        ids = _key_ids(conn, user_id)
        if not ids:
            raise bad("No security key is registered for this account")
        challenge = tokens.new_challenge(ctx, conn, user_id)
    return passkeys.authentication_options(ctx.relying, challenge, ids)


def register_options(ctx: Context, user_id: int) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        row = ctx.user_row(conn, user_id)
        ids = _key_ids(conn, user_id)
        if len(ids) >= passkeys.CREDENTIALS_PER_USER_MAX:
            raise bad(f"At most {passkeys.CREDENTIALS_PER_USER_MAX} security keys")
        challenge = tokens.new_challenge(ctx, conn, user_id)
    return passkeys.registration_options(ctx.relying, user_id, row.email, challenge, ids)


def register(
    ctx: Context, user_id: int, credential: str, name: str, session_id: str, origin: Origin
) -> tuple[list[str], SignedIn]:
    """Add a key from the browser's credential (rules 1, 3, 4): the recovery codes when it
    is the first second factor, and the rotated session."""
    challenge = tokens.take_challenge(ctx, user_id)
    if challenge is None:
        raise bad("Start with POST /user/webauthn/registerOptions (or it expired)")
    try:
        key_id, public_key, count = passkeys.verify_attestation(ctx.relying, credential, challenge)
    except ValueError as error:
        raise bad(str(error)) from None
    outcome = Outcome()
    with ctx.engine.begin() as conn:
        row = ctx.user_row(conn, user_id)
        conn.execute(
            webauthn_credentials.insert().values(
                id=key_id,
                user_id=user_id,
                public_key=public_key,
                sign_count=count,
                name=(name or "security key")[:KEY_NAME_LENGTH_MAX],
                created_ns=ctx.clock_ns(),
            )
        )
        codes: list[str] = []
        held = conn.execute(
            select(func.count())
            .select_from(recovery_codes)
            .where(recovery_codes.c.user_id == user_id)
        ).scalar_one()
        if not held:  # the first second factor: recovery codes come with it
            codes = totp.new_recovery_codes()
            second_factor.store_recovery_codes(conn, user_id, codes)
        signed = ctx.rotate(conn, user_id, session_id, origin)
        record(
            conn,
            ctx.clock_ns(),
            user_id,
            ACTOR_USER,
            "tfa_enabled",
            origin.ip,
            {"kind": "webauthn", "key": key_id[:KEY_ID_SHOWN_CHARS]},
        )
        outcome.mails.append(
            notices.notice(
                row,
                "security key added",
                f"A security key ({name or 'unnamed'}) was added as a second factor.",
            )
        )
    notices.send(ctx, outcome)
    return codes, signed


def keys(ctx: Context, user_id: int) -> list[SecurityKey]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(webauthn_credentials)
            .where(webauthn_credentials.c.user_id == user_id)
            .order_by(webauthn_credentials.c.created_ns)
        ).all()
    return [SecurityKey(r.id, r.name, r.created_ns) for r in rows]


def remove(
    ctx: Context, user_id: int, key_id: str, code: str, session_id: str, origin: Origin
) -> SignedIn:
    """Remove one key, proven by a TOTP or recovery code (rule 4)."""
    outcome = Outcome()
    with ctx.engine.begin() as conn:
        row = ctx.user_row(conn, user_id)
        key = conn.execute(
            select(webauthn_credentials).where(
                webauthn_credentials.c.id == key_id,
                webauthn_credentials.c.user_id == user_id,
            )
        ).first()
        if key is None:
            raise IdentityError(404, "No such security key")
        if not (code or "").strip():
            raise IdentityError(401, MSG_TFA_REQUIRED, "TFARequired")
        try:
            second_factor.check(ctx, conn, row, code, origin, outcome)
        except FactorRefused:
            raise bad(MSG_TFA_INVALID) from None
        conn.execute(delete(webauthn_credentials).where(webauthn_credentials.c.id == key_id))
        if not _key_ids(conn, user_id) and not row.tfa_enabled:
            conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
        signed = ctx.rotate(conn, user_id, session_id, origin)
        record(
            conn,
            ctx.clock_ns(),
            user_id,
            ACTOR_USER,
            "webauthn_removed",
            origin.ip,
            {"key": key_id[:KEY_ID_SHOWN_CHARS]},
        )
        outcome.mails.append(
            notices.notice(row, "security key removed", f"The security key {key.name} was removed.")
        )
    notices.send(ctx, outcome)
    return signed
