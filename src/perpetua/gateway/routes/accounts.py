"""Account routes: sign-up, email confirmation, sign-in and sessions, password reset and
change, email change, profile and preferences, TOTP, the audit trail.

BitMEX's names where BitMEX has the route (``POST /user/logout``, ``/user/confirmEmail``,
``/user/preferences``, and its former ``/user/requestEnableTFA``, ``/user/confirmEnableTFA``,
``/user/disableTFA``); Perpetua's own routes are listed in ``ACCOUNT_DOCS`` and served in the
swagger under the tag "Accounts".

1. Every answer is BitMEX-shaped; a rejection from the service (``IdentityError``) keeps its
   status and message; none reveals whether an email is registered.
2. Acts that change how an account is secured (password, email, TOTP, sessions, API keys)
   need a browser session, not an API key: a leaked trading key must not take the account.
3. A new session answers its CSRF token in the body and its id in the cookie only.
"""

import json
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

from perpetua.gateway.context import Context, check_access, client_ip
from perpetua.gateway.errors import ApiError, bad_request
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.sessions import clear_cookie, session_cookie, session_of
from perpetua.services.identity import (
    IdentityError,
    IdentityPort,
    Origin,
    Profile,
    SignedIn,
)
from perpetua.services.sessions import Session
from perpetua.wire.values import JsonRow, iso_ms

__all__ = [
    "ACCOUNT_DOCS",
    "SPECS",
    "ask",
    "credential_of",
    "identity_of",
    "origin_of",
    "require_session",
    "user_row",
]

MSG_NO_ACCOUNTS: Final = "Accounts are not available on this exchange (no accounts service)."
MSG_SESSION_NEEDED: Final = "This action needs a signed-in browser session, not an API key"
AUDIT_COUNT_DEFAULT: Final = 100
USER_AGENT_HEADER: Final = b"user-agent"


_T = TypeVar("_T")


def identity_of(ctx: Context) -> IdentityPort:
    identity = ctx.gw.identity
    if identity is None:
        raise ApiError(404, MSG_NO_ACCOUNTS)
    return identity


def origin_of(ctx: Context) -> Origin:
    client = ctx.scope.get("client")
    agent = ""
    for name, value in ctx.scope["headers"]:
        if name == USER_AGENT_HEADER:
            agent = value.decode("latin-1")
    return Origin(client[0] if client else "", agent)


def require_session(ctx: Context) -> Session:
    session = session_of(ctx.principal)
    if session is None:
        raise ApiError(403, MSG_SESSION_NEEDED)
    return session


async def ask(awaitable: Awaitable[_T]) -> _T:
    """Await an identity call; its ``IdentityError`` becomes the client's ``ApiError``."""
    try:
        return await awaitable
    except IdentityError as error:
        headers = {"retry-after": str(error.retry_after_s)} if error.retry_after_s else None
        raise ApiError(error.status, error.message, error.name, headers) from None


def _text(ctx: Context, name: str) -> str:
    return ctx.params.required_string(name)


def _session_answer(ctx: Context, signed: SignedIn, **extra: Any) -> JsonRow:
    ctx.headers["set-cookie"] = session_cookie(ctx.scope, signed.token)
    ctx.headers["cache-control"] = "no-store"
    return {
        "id": signed.user_id,
        "csrfToken": signed.session.csrf,
        "sessionId": signed.session.id,
        **extra,
    }


def user_row(profile: Profile) -> JsonRow:
    """BitMEX's ``User`` model filled from the account."""
    name = profile.account_name or f"user{profile.id}"
    return {
        "id": profile.id,
        "ownerId": profile.owner_id or profile.id,
        "firstname": "",
        "lastname": "",
        "username": name,
        "accountName": name,
        "isUser": True,
        "email": profile.email,
        "dateOfBirth": "",
        "phone": "",
        "created": iso_ms(profile.created_ns),
        "lastUpdated": iso_ms(profile.updated_ns),
        "preferences": profile.preferences,
        "TFAEnabled": "GA" if profile.tfa_enabled else "WebAuthn" if profile.security_keys else "",
        "affiliateID": "",
        "country": profile.country,
        "geoipCountry": "",
        "geoipRegion": "",
        "firstTradeTimestamp": None,
        "firstDepositTimestamp": None,
        "isElite": False,
        "typ": "subaccount" if profile.owner_id else "user",
    }


def _session_row(session: Session, current: str) -> JsonRow:
    return {
        "id": session.id,
        "ip": session.ip,
        "userAgent": session.user_agent,
        "created": iso_ms(session.created_ns),
        "lastSeen": iso_ms(session.last_seen_ns),
        "current": session.id == current,
    }


# --- sign-up, confirmation, sign-in ---


async def _gate(ctx: Context, action: str, account: int | None = None) -> None:
    """A restricted IP location refuses sign-up and sign-in (before any credential is read);
    with ``account`` (after a sign-in) a residence/IP mismatch is flagged for review."""
    if ctx.gw.compliance is not None:
        await check_access(ctx.gw.compliance, client_ip(ctx.scope), account, action)


async def post_register(ctx: Context) -> JsonRow:
    await _gate(ctx, "sign-up")
    await ask(
        identity_of(ctx).register(_text(ctx, "email"), _text(ctx, "password"), origin_of(ctx))
    )
    return {
        "success": True,
        "message": "If the address can receive mail, a confirmation message is on its way",
    }


async def post_confirm_email(ctx: Context) -> JsonRow:
    await ask(identity_of(ctx).confirm_email(_text(ctx, "token"), origin_of(ctx)))
    return {"success": True}


def credential_of(ctx: Context, name: str) -> str:
    """A WebAuthn credential (the browser's JSON, as text or as an object) re-encoded."""
    value = ctx.params.json_value(name)
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise bad_request(f"Invalid {name}: the credential JSON object")
    return json.dumps(value)


async def post_login(ctx: Context) -> JsonRow:
    await _gate(ctx, "sign-in")
    signed: SignedIn = await ask(
        identity_of(ctx).sign_in(
            _text(ctx, "email"),
            _text(ctx, "password"),
            ctx.params.string("otpToken") or "",
            origin_of(ctx),
            credential_of(ctx, "webauthn"),
        )
    )
    await _gate(ctx, "sign-in", signed.user_id)  # the location was allowed: flag a mismatch
    extra = (
        {}
        if signed.recovery_codes_left is None
        else {"recoveryCodesLeft": signed.recovery_codes_left}
    )
    return _session_answer(ctx, signed, **extra)


async def post_logout(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    await ask(identity_of(ctx).sign_out(session.user_id, session.id, origin_of(ctx)))
    ctx.headers["set-cookie"] = clear_cookie(ctx.scope)
    return {"success": True}


async def post_logout_all(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    count = await ask(identity_of(ctx).revoke_sessions(session.user_id, "", origin_of(ctx)))
    ctx.headers["set-cookie"] = clear_cookie(ctx.scope)
    return {"success": True, "count": count}


async def get_sessions(ctx: Context) -> list[JsonRow]:
    session = require_session(ctx)
    found = await ask(identity_of(ctx).sessions(session.user_id))
    return [_session_row(s, session.id) for s in found]


async def delete_session(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    target = _text(ctx, "sessionId")
    if not await ask(identity_of(ctx).revoke_session(session.user_id, target, origin_of(ctx))):
        raise ApiError(404, "No such session")
    if target == session.id:
        ctx.headers["set-cookie"] = clear_cookie(ctx.scope)
    return {"success": True}


# --- passwords and email ---


async def post_request_password_reset(ctx: Context) -> JsonRow:
    await ask(identity_of(ctx).request_password_reset(_text(ctx, "email"), origin_of(ctx)))
    return {
        "success": True,
        "message": "If the address has an account, a reset message is on its way",
    }


async def post_reset_password(ctx: Context) -> JsonRow:
    await ask(
        identity_of(ctx).reset_password(_text(ctx, "token"), _text(ctx, "password"), origin_of(ctx))
    )
    return {"success": True}


async def post_change_password(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    signed = await ask(
        identity_of(ctx).change_password(
            session.user_id,
            _text(ctx, "oldPassword"),
            _text(ctx, "newPassword"),
            session.id,
            origin_of(ctx),
        )
    )
    return _session_answer(ctx, signed)


async def post_request_email_change(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    await ask(
        identity_of(ctx).request_email_change(
            session.user_id, _text(ctx, "email"), _text(ctx, "password"), origin_of(ctx)
        )
    )
    return {
        "success": True,
        "message": "Confirm the change with the token mailed to the new address",
    }


# --- profile ---


async def get_user(ctx: Context) -> JsonRow:
    identity = ctx.gw.identity
    profile = None if identity is None else await identity.profile(ctx.account)
    if profile is None:  # a key without a stored user (in-memory accounts)
        account = ctx.account
        return user_row(Profile(account, "", 0, 0, True, False, "", {}, "", False, None, ""))
    return user_row(profile)


async def post_preferences(ctx: Context) -> JsonRow:
    prefs = ctx.params.json_value("prefs")
    if not isinstance(prefs, dict):
        raise bad_request("prefs must be a JSON object")
    profile = await ask(
        identity_of(ctx).set_preferences(
            ctx.account, prefs, ctx.params.boolean("overwrite"), origin_of(ctx)
        )
    )
    return user_row(profile)


async def post_profile(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    profile = await ask(
        identity_of(ctx).set_profile(
            session.user_id,
            ctx.params.string("country"),
            ctx.params.string("antiPhishingPhrase"),
            origin_of(ctx),
        )
    )
    return user_row(profile)


async def get_audit_log(ctx: Context) -> list[JsonRow]:
    count = ctx.params.integer("count", AUDIT_COUNT_DEFAULT) or AUDIT_COUNT_DEFAULT
    if count <= 0:
        raise bad_request("Invalid count")
    entries = await ask(identity_of(ctx).audit(ctx.account, count))
    return [
        {
            "timestamp": iso_ms(e.ts_ns),
            "actor": e.actor,
            "action": e.action,
            "ip": e.ip,
            "detail": e.detail,
        }
        for e in entries
    ]


# --- TOTP ---


async def post_request_enable_tfa(ctx: Context) -> dict[str, str]:
    session = require_session(ctx)
    if (ctx.params.string("type") or "GA") != "GA":
        raise bad_request("Invalid type: only GA (TOTP) is offered")
    return await ask(identity_of(ctx).request_enable_tfa(session.user_id))


async def post_confirm_enable_tfa(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    codes, signed = await ask(
        identity_of(ctx).confirm_enable_tfa(
            session.user_id, _text(ctx, "token"), session.id, origin_of(ctx)
        )
    )
    return _session_answer(ctx, signed, recoveryCodes=codes)


async def post_disable_tfa(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    signed = await ask(
        identity_of(ctx).disable_tfa(
            session.user_id, _text(ctx, "token"), session.id, origin_of(ctx)
        )
    )
    return _session_answer(ctx, signed)


async def post_webauthn_login_options(ctx: Context) -> JsonRow:
    return await ask(
        identity_of(ctx).webauthn_login_options(
            _text(ctx, "email"), _text(ctx, "password"), origin_of(ctx)
        )
    )


async def post_webauthn_confirm_options(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    return await ask(identity_of(ctx).webauthn_confirm_options(session.user_id))


async def post_webauthn_register_options(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    return await ask(identity_of(ctx).webauthn_register_options(session.user_id))


async def post_webauthn_register(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    credential = credential_of(ctx, "credential")
    if not credential:
        raise bad_request("'credential' is a required arg.")
    codes, signed = await ask(
        identity_of(ctx).webauthn_register(
            session.user_id, credential, ctx.params.string("name") or "", session.id, origin_of(ctx)
        )
    )
    return _session_answer(ctx, signed, recoveryCodes=codes)


async def get_webauthn_keys(ctx: Context) -> list[JsonRow]:
    session = require_session(ctx)
    keys = await ask(identity_of(ctx).webauthn_keys(session.user_id))
    return [{"id": k.id, "name": k.name, "created": iso_ms(k.created_ns)} for k in keys]


async def delete_webauthn_key(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    signed = await ask(
        identity_of(ctx).webauthn_remove(
            session.user_id, _text(ctx, "id"), _text(ctx, "token"), session.id, origin_of(ctx)
        )
    )
    return _session_answer(ctx, signed)


async def post_communication_token(ctx: Context) -> list[JsonRow]:
    held = await ask(
        identity_of(ctx).register_device(
            ctx.account, _text(ctx, "token"), _text(ctx, "platformAgent"), origin_of(ctx)
        )
    )
    return [
        {"id": t.id, "userId": t.user_id, "deviceToken": t.device_token, "channel": t.channel}
        for t in held
    ]


SPECS = [
    Spec("/user", "GET", get_user, private=True),
    Spec("/user/communicationToken", "POST", post_communication_token, private=True),
    Spec("/user/register", "POST", post_register),
    Spec("/user/confirmEmail", "POST", post_confirm_email),
    Spec("/user/login", "POST", post_login),
    Spec("/user/logout", "POST", post_logout, private=True),
    Spec("/user/logoutAll", "POST", post_logout_all, private=True),
    Spec("/user/sessions", "GET", get_sessions, private=True),
    Spec("/user/sessions", "DELETE", delete_session, private=True),
    Spec("/user/requestPasswordReset", "POST", post_request_password_reset),
    Spec("/user/resetPassword", "POST", post_reset_password),
    Spec("/user/changePassword", "POST", post_change_password, private=True),
    Spec("/user/requestEmailChange", "POST", post_request_email_change, private=True),
    Spec("/user/preferences", "POST", post_preferences, private=True),
    Spec("/user/profile", "POST", post_profile, private=True),
    Spec("/user/auditLog", "GET", get_audit_log, private=True),
    Spec("/user/requestEnableTFA", "POST", post_request_enable_tfa, private=True),
    Spec("/user/confirmEnableTFA", "POST", post_confirm_enable_tfa, private=True),
    Spec("/user/disableTFA", "POST", post_disable_tfa, private=True),
    Spec("/user/webauthn/loginOptions", "POST", post_webauthn_login_options),
    Spec("/user/webauthn/registerOptions", "POST", post_webauthn_register_options, private=True),
    Spec("/user/webauthn/confirmOptions", "POST", post_webauthn_confirm_options, private=True),
    Spec("/user/webauthn/register", "POST", post_webauthn_register, private=True),
    Spec("/user/webauthn", "GET", get_webauthn_keys, private=True),
    Spec("/user/webauthn", "DELETE", delete_webauthn_key, private=True),
]

# Perpetua's own routes for the served swagger: path, verb, summary, (parameter, type,
# required) rows.
ACCOUNT_DOCS: Final[list[tuple[str, str, str, list[tuple[str, str, bool]]]]] = [
    (
        "/user/register",
        "post",
        "Sign up: the answer is the same whether or not the address is "
        "registered; a confirmation token is mailed.",
        [("email", "string", True), ("password", "string", True)],
    ),
    (
        "/user/login",
        "post",
        "Sign in: starts a browser session (HttpOnly cookie) and answers "
        "its CSRF token; otpToken is a TOTP or recovery code, webauthn a security key's "
        "assertion, when the account has a second factor.",
        [
            ("email", "string", True),
            ("password", "string", True),
            ("otpToken", "string", False),
            ("webauthn", "string", False),
        ],
    ),
    ("/user/logoutAll", "post", "End every session of the account.", []),
    ("/user/sessions", "get", "Active sessions: device, address, last seen.", []),
    ("/user/sessions", "delete", "End one session.", [("sessionId", "string", True)]),
    (
        "/user/requestPasswordReset",
        "post",
        "Mail a password reset token (same answer for any address).",
        [("email", "string", True)],
    ),
    (
        "/user/resetPassword",
        "post",
        "Set a new password with a mailed token; ends every session.",
        [("token", "string", True), ("password", "string", True)],
    ),
    (
        "/user/changePassword",
        "post",
        "Change the password (session only); ends the other sessions.",
        [("oldPassword", "string", True), ("newPassword", "string", True)],
    ),
    (
        "/user/requestEmailChange",
        "post",
        "Mail a token to a new address; confirm it with POST /user/confirmEmail.",
        [("email", "string", True), ("password", "string", True)],
    ),
    (
        "/user/profile",
        "post",
        "Country and anti-phishing phrase (shown in every mail).",
        [("country", "string", False), ("antiPhishingPhrase", "string", False)],
    ),
    (
        "/user/auditLog",
        "get",
        "The account's security events, newest first.",
        [("count", "integer", False)],
    ),
    (
        "/user/requestEnableTFA",
        "post",
        "Start TOTP enrolment: secret, otpauth URI, QR code.",
        [("type", "string", False)],
    ),
    (
        "/user/confirmEnableTFA",
        "post",
        "Confirm TOTP with a current code; answers ten one-time recovery codes (shown once).",
        [("token", "string", True)],
    ),
    ("/user/disableTFA", "post", "Turn TOTP off with a current code.", [("token", "string", True)]),
    (
        "/user/webauthn/registerOptions",
        "post",
        "Start adding a WebAuthn security key: "
        "PublicKeyCredentialCreationOptions (challenge valid 5 min, once).",
        [],
    ),
    (
        "/user/webauthn/register",
        "post",
        "Finish adding a security key with the browser's "
        "credential JSON; the first second factor also answers ten recovery codes.",
        [("credential", "string", True), ("name", "string", False)],
    ),
    ("/user/webauthn", "get", "Your registered security keys: id, name, created.", []),
    (
        "/user/webauthn",
        "delete",
        "Remove one security key, proven by a current TOTP or recovery code; rotates the "
        "session. Removing the last second factor also removes the recovery codes.",
        [("id", "string", True), ("token", "string", True)],
    ),
    (
        "/user/webauthn/confirmOptions",
        "post",
        "Signed in: PublicKeyCredentialRequestOptions to approve an act with a security key "
        "(POST /apiKey or /apiKey/enable of a key with withdraw: its webauthn parameter).",
        [],
    ),
    (
        "/user/webauthn/loginOptions",
        "post",
        "After a correct password: "
        "PublicKeyCredentialRequestOptions for POST /user/login's webauthn parameter.",
        [("email", "string", True), ("password", "string", True)],
    ),
]
