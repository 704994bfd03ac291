"""The second factor: TOTP, recovery codes and the check that accepts any of them.

1. TOTP is RFC 6238 (``services.totp``): the secret is stored encrypted under the server key;
   enrolment is two steps (a secret, then a current code confirms it); a code is never
   accepted twice: its step is recorded, and a step at or before the last accepted one is
   refused (the update is conditional, so two concurrent uses of one code cannot both pass).
2. Turning TOTP on answers ten recovery codes once; they are stored as SHA-256, one use each,
   and a used one sends a notice with the count left. Turning TOTP off needs a current code.
   Recovery codes stay while another second factor (a security key) remains.
3. ``check`` accepts a security key's assertion (``security_keys``' challenge), a TOTP code or
   a recovery code (it has a ``-``); a user with no second factor passes; a missing code is a
   401 ``TFARequired``; a wrong one raises ``FactorRefused`` for the caller to count.
4. Enabling or disabling TOTP rotates the caller's session and audits it in the same
   transaction, and mails a notice after the commit.
5. ``ok`` approves an act of a signed-in user (a key with ``withdraw``, a withdrawal): a TOTP
   code or a security key's assertion over the challenge of
   ``security_keys.confirm_options``, each single use. A recovery code does not approve an
   act: it only gets its owner signed in.
"""

from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from perpetua.services import passkeys, totp
from perpetua.services.audit import record
from perpetua.services.identity import notices, tokens
from perpetua.services.identity.context import ACTOR_USER, Context
from perpetua.services.identity.notices import Outcome
from perpetua.services.identity.values import (
    MSG_TFA_INVALID,
    MSG_TFA_REQUIRED,
    FactorRefused,
    IdentityError,
    Origin,
    SignedIn,
    bad,
)
from perpetua.store.schema import recovery_codes, users, webauthn_credentials

__all__ = [
    "accept_totp",
    "check",
    "clear",
    "confirm_enable_tfa",
    "disable_tfa",
    "ok",
    "request_enable_tfa",
    "store_recovery_codes",
]

NS_PER_S = 10**9


def check(
    ctx: Context,
    conn: Connection,
    row: Any,
    otp: str,
    origin: Origin,
    outcome: Outcome,
    passkey: tuple[str, bytes | None] = ("", None),
) -> int | None:
    """Rule 3 for the user of ``row``; the number of recovery codes left when one was used."""
    keys = _security_keys(conn, row.id)
    if not row.tfa_enabled and not keys:
        return None
    assertion, challenge = passkey
    if assertion and keys:
        _accept_passkey(ctx, conn, keys, assertion, challenge)
        return None
    code = (otp or "").strip() if isinstance(otp, str) else ""
    if not code:
        raise IdentityError(401, MSG_TFA_REQUIRED, "TFARequired")
    if "-" in code:
        return _use_recovery_code(ctx, conn, row, code, origin, outcome)
    if not accept_totp(ctx, conn, row, code):
        raise FactorRefused("totp")
    return None


def _security_keys(conn: Connection, user_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(webauthn_credentials).where(webauthn_credentials.c.user_id == user_id)
        ).all()
    )


def _use_recovery_code(
    ctx: Context, conn: Connection, row: Any, code: str, origin: Origin, outcome: Outcome
) -> int:
    used = conn.execute(
        delete(recovery_codes).where(
            recovery_codes.c.user_id == row.id,
            recovery_codes.c.code_hash == totp.recovery_digest(code),
        )
    ).rowcount
    if not used:
        raise FactorRefused("recovery code")
    left = int(
        conn.execute(
            select(func.count())
            .select_from(recovery_codes)
            .where(recovery_codes.c.user_id == row.id)
        ).scalar_one()
    )
    record(
        conn, ctx.clock_ns(), row.id, ACTOR_USER, "recovery_code_used", origin.ip, {"left": left}
    )
    outcome.mails.append(
        notices.notice(row, "recovery code used", f"A recovery code was used; {left} remain.")
    )
    return left


def _accept_passkey(
    ctx: Context, conn: Connection, keys: list[Any], assertion: str, challenge: bytes | None
) -> None:
    try:
        wanted = passkeys.credential_id_of(assertion)
    except ValueError:
        raise FactorRefused("webauthn") from None
    key = next((k for k in keys if k.id == wanted), None)
    if key is None or challenge is None:
        raise FactorRefused("webauthn")
    try:
        count = passkeys.verify_assertion(
            ctx.relying, assertion, challenge, key.public_key, key.sign_count
        )
    except ValueError:
        raise FactorRefused("webauthn") from None
    conn.execute(
        update(webauthn_credentials)
        .where(webauthn_credentials.c.id == key.id)
        .values(sign_count=count)
    )


def accept_totp(ctx: Context, conn: Connection, row: Any, code: str) -> bool:
    """A current TOTP code of ``row``'s secret, not used before (rule 1); records its step."""
    if not row.tfa_secret_encrypted:
        return False
    secret = ctx.fernet.decrypt(row.tfa_secret_encrypted.encode()).decode()
    step = totp.accepted_step(secret, code, ctx.clock_ns() // NS_PER_S, row.tfa_last_step)
    if step is None:
        return False
    return bool(
        conn.execute(
            update(users)
            .where(users.c.id == row.id, users.c.tfa_last_step < step)
            .values(tfa_last_step=step)
        ).rowcount
    )


def ok(ctx: Context, user_id: int, code: str, assertion: str = "") -> bool:
    """A current second factor of ``user_id`` approving an act (rule 5), consumed: a TOTP
    code of a user with TOTP on, or an assertion of one of the user's security keys over
    their outstanding challenge."""
    challenge = tokens.take_challenge(ctx, user_id) if assertion else None
    with ctx.engine.begin() as conn:
        row = ctx.user_row(conn, user_id)
        if row is None:
            return False
        if assertion:
            try:
                _accept_passkey(ctx, conn, _security_keys(conn, user_id), assertion, challenge)
            except FactorRefused:
                return False
            return True
        return bool(row.tfa_enabled and accept_totp(ctx, conn, row, code or ""))


def store_recovery_codes(conn: Connection, user_id: int, codes: list[str]) -> None:
    conn.execute(
        recovery_codes.insert(),
        [{"user_id": user_id, "code_hash": totp.recovery_digest(c)} for c in codes],
    )


def clear(ctx: Context, conn: Connection, user_id: int, passkeys_too: bool = False) -> None:
    """TOTP off; with ``passkeys_too`` every security key too (an operator's reset). The
    recovery codes go when no second factor remains (rule 2)."""
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(tfa_enabled=False, tfa_secret_encrypted=None, updated_ns=ctx.clock_ns())
    )
    has_keys = (
        conn.execute(
            select(webauthn_credentials.c.id).where(webauthn_credentials.c.user_id == user_id)
        ).first()
        is not None
    )
    if passkeys_too:
        conn.execute(delete(webauthn_credentials).where(webauthn_credentials.c.user_id == user_id))
    if passkeys_too or not has_keys:  # codes stay while a security key remains
        conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))


def request_enable_tfa(ctx: Context, user_id: int) -> dict[str, str]:
    """Step one of enrolment: a new secret (stored encrypted), its otpauth URI and QR code."""
    with ctx.engine.begin() as conn:
        row = ctx.user_row(conn, user_id)
        if row.tfa_enabled:
            raise bad("Two-factor authentication is already enabled")
        secret = totp.new_secret()
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(tfa_secret_encrypted=ctx.fernet.encrypt(secret.encode()).decode())
        )
    return totp.provisioning(secret, row.email)


def confirm_enable_tfa(
    ctx: Context, user_id: int, code: str, session_id: str, origin: Origin
) -> tuple[list[str], SignedIn]:
    """Step two: a current code turns TOTP on; the recovery codes (shown once) and the
    rotated session (rules 2 and 4)."""
    outcome = Outcome()
    codes = totp.new_recovery_codes()
    with ctx.engine.begin() as conn:
        row = ctx.user_row(conn, user_id)
        if row.tfa_enabled or not row.tfa_secret_encrypted:
            raise bad("Request enrolment first (POST /user/requestEnableTFA)")
        if not accept_totp(ctx, conn, row, code or ""):
            raise bad(MSG_TFA_INVALID)
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(tfa_enabled=True, updated_ns=ctx.clock_ns())
        )
        conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
        store_recovery_codes(conn, user_id, codes)
        signed = ctx.rotate(conn, user_id, session_id, origin)
        record(conn, ctx.clock_ns(), user_id, ACTOR_USER, "tfa_enabled", origin.ip)
        outcome.mails.append(
            notices.notice(
                row,
                "two-factor authentication enabled",
                "TOTP two-factor authentication is now on.",
            )
        )
    notices.send(ctx, outcome)
    return codes, signed


def disable_tfa(ctx: Context, user_id: int, code: str, session_id: str, origin: Origin) -> SignedIn:
    """TOTP off with a current code (rules 2 and 4)."""
    outcome = Outcome()
    with ctx.engine.begin() as conn:
        row = ctx.user_row(conn, user_id)
        if not row.tfa_enabled:
            raise bad("Two-factor authentication is not enabled")
        if not accept_totp(ctx, conn, row, code or ""):
            raise bad(MSG_TFA_INVALID)
        clear(ctx, conn, user_id)
        signed = ctx.rotate(conn, user_id, session_id, origin)
        record(conn, ctx.clock_ns(), user_id, ACTOR_USER, "tfa_disabled", origin.ip)
        outcome.mails.append(
            notices.notice(
                row,
                "two-factor authentication disabled",
                "TOTP two-factor authentication is now off.",
            )
        )
    notices.send(ctx, outcome)
    return signed
