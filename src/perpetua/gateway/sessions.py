"""Cookie sessions at the gateway: the session cookie, its CSRF check, and the principal.

1. A request without an ``api-key`` header but with the session cookie is authenticated by the
   session (``IdentityPort.session``); it then passes the same permission checks and rate
   limits as a key (its principal holds ``order``; withdraw-class acts need a second factor).
2. The cookie is ``HttpOnly; Secure; SameSite=Lax; Path=/`` named ``__Host-perpetua_session``;
   only on plain HTTP to a loopback address is ``Secure`` dropped (browsers refuse Secure
   cookies over HTTP), and then the name loses its ``__Host-`` prefix, which requires Secure.
3. CSRF: every request made with the cookie whose verb is not GET, HEAD or OPTIONS must carry
   the session's token in ``x-csrf-token`` (synchronizer token, compared in constant time),
   else 403 and nothing happens. A signed (API key) request carries no ambient credential and
   needs no token.
"""

import hmac
import ipaddress
from typing import Final

from starlette.types import Scope

from perpetua.gateway.auth import Principal
from perpetua.gateway.errors import ApiError
from perpetua.gateway.ports import ApiKeyRecord
from perpetua.services.identity import IdentityPort
from perpetua.services.sessions import SESSION_ABSOLUTE_NS, Session

__all__ = [
    "COOKIE_NAMES",
    "MSG_CSRF",
    "clear_cookie",
    "session_cookie",
    "session_of",
    "session_principal",
]

COOKIE_SECURE: Final = "__Host-perpetua_session"
COOKIE_LOOPBACK: Final = "perpetua_session"
COOKIE_NAMES: Final = (COOKIE_SECURE, COOKIE_LOOPBACK)
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_PERMISSIONS: Final = ("order",)
MSG_CSRF: Final = "Invalid or missing CSRF token (x-csrf-token)"
COOKIE_HEADER_BYTES_MAX: Final = 8_192


def _plain_loopback(scope: Scope) -> bool:
    if scope.get("scheme") != "http":
        return False
    server = scope.get("server") or ("", 0)
    try:
        return ipaddress.ip_address(server[0]).is_loopback
    except ValueError:
        return server[0] == "localhost"


def session_cookie(scope: Scope, token: str) -> str:
    """The ``set-cookie`` value that starts a session (rule 2)."""
    max_age = SESSION_ABSOLUTE_NS // 10**9
    if _plain_loopback(scope):
        return f"{COOKIE_LOOPBACK}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    return f"{COOKIE_SECURE}={token}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age}"


def clear_cookie(scope: Scope) -> str:
    if _plain_loopback(scope):
        return f"{COOKIE_LOOPBACK}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    return f"{COOKIE_SECURE}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0"


def cookie_token(scope: Scope) -> str:
    """The session token from the request's cookie header ("" when none)."""
    for name, value in scope["headers"]:
        if name != b"cookie" or len(value) > COOKIE_HEADER_BYTES_MAX:
            continue
        for part in value.decode("latin-1").split(";"):
            key, _, token = part.strip().partition("=")
            if key in COOKIE_NAMES and token:
                return str(token)
    return ""


def _header(scope: Scope, wanted: bytes) -> str:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return ""


async def session_principal(identity: IdentityPort | None, scope: Scope) -> Principal | None:
    """The principal of a cookie session (rules 1 and 3), or ``None`` without a cookie."""
    if identity is None:
        return None
    token = cookie_token(scope)
    if not token:
        return None
    session = await identity.session(token)
    if session is None:
        raise ApiError(401, "Session expired or signed out; sign in again")
    if scope["method"] not in SAFE_METHODS:
        sent = _header(scope, b"x-csrf-token")
        if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise ApiError(403, MSG_CSRF)
    record = ApiKeyRecord(
        key_id="session",
        user_id=session.user_id,
        secret="",
        permissions=SESSION_PERMISSIONS,
        name="session",
    )
    return Principal(record, session)


def session_of(principal: Principal | None) -> Session | None:
    """The cookie session behind a principal (``None`` for an API key)."""
    if principal is None:
        return None
    return principal.session
