"""Cookie sessions at the gateway: the session cookie, its CSRF check, and the principal.

1. A request without an ``api-key`` header but with the session cookie is authenticated by the
   session (``IdentityPort.session``); it then passes the same permission checks and rate
   limits as a key. Its principal holds ``order`` and ``withdraw`` (the account's owner, as on
   BitMEX's site): every withdraw-class act also demands a current TOTP code
   (``services.wallets``: a withdrawal, a saved address, the whitelist switch), and a
   withdrawal the token mailed to the owner.
2. The cookie is ``HttpOnly; Secure; SameSite=Lax; Path=/`` named ``__Host-perpetua_session``;
   only on plain HTTP to a loopback address is ``Secure`` dropped (browsers refuse Secure
   cookies over HTTP), and then the name loses its ``__Host-`` prefix, which requires Secure.
3. CSRF: every request made with the cookie whose verb is not GET, HEAD or OPTIONS must carry
   the session's token in ``x-csrf-token`` (synchronizer token, compared in constant time),
   else 403 and nothing happens. A signed (API key) request carries no ambient credential and
   needs no token.
4. WebSocket (``/realtime``): the cookie rides along on any page's socket, so a handshake that
   carries it must come from the venue's own pages: its ``Origin`` must name the host the
   browser connected to (the ``Host`` header) or the venue's public URL, else the handshake is
   refused (403) before anything is sent, whatever the socket would have asked for
   (cross-site WebSocket hijacking; CSRF tokens do not apply to a socket). A socket then signs
   in with the cookie only when it asks (``authSession``), under rule 1's session rules.
"""

import hmac
import ipaddress
from typing import Final
from urllib.parse import urlsplit

from starlette.types import Scope

from perpetua.gateway.auth import Principal
from perpetua.gateway.errors import ApiError
from perpetua.gateway.ports import ApiKeyRecord
from perpetua.services.identity import IdentityPort
from perpetua.services.sessions import SESSION_ABSOLUTE_NS, Session

__all__ = [
    "COOKIE_NAMES",
    "MSG_CSRF",
    "MSG_FOREIGN_ORIGIN",
    "MSG_SESSION_ENDED",
    "cookie_token",
    "origin_allowed",
    "principal_of",
    "clear_cookie",
    "session_cookie",
    "session_of",
    "session_principal",
]

COOKIE_SECURE: Final = "__Host-perpetua_session"
COOKIE_LOOPBACK: Final = "perpetua_session"
COOKIE_NAMES: Final = (COOKIE_SECURE, COOKIE_LOOPBACK)
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_PERMISSIONS: Final = ("order", "withdraw")
SESSION_KEY_ID: Final = "session"  # the key id a session's principal carries (no such key)
MSG_CSRF: Final = "Invalid or missing CSRF token (x-csrf-token)"
MSG_SESSION_ENDED: Final = "Session expired or signed out; sign in again"
MSG_FOREIGN_ORIGIN: Final = "The session cookie is accepted only from the venue's own pages"
ORIGIN_CHARS_MAX: Final = 2_048
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


def _netloc(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError:
        return ""
    return f"{parts.hostname.lower()}:{port}"


def origin_allowed(scope: Scope, public_url: str = "") -> bool:
    """Rule 4: the handshake's ``Origin`` is the venue's own (its ``Host``, or ``public_url``).
    No ``Origin``, ``null`` or anything unparsable is foreign."""
    origin = _header(scope, b"origin")
    if not origin or len(origin) > ORIGIN_CHARS_MAX:
        return False
    seen = _netloc(origin)
    if not seen:
        return False
    host = _header(scope, b"host")
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    own = {_netloc(f"{scheme}://{host}")} if host else set()
    # behind a TLS proxy the socket is plain: the browser's https Origin names port 443
    if host and scheme == "http":
        own.add(_netloc(f"https://{host}"))
    if public_url:
        own.add(_netloc(public_url))
    own.discard("")
    return seen in own


async def session_principal(identity: IdentityPort | None, scope: Scope) -> Principal | None:
    """The principal of a cookie session (rules 1 and 3), or ``None`` without a cookie."""
    if identity is None:
        return None
    token = cookie_token(scope)
    if not token:
        return None
    session = await identity.session(token)
    if session is None:
        raise ApiError(401, MSG_SESSION_ENDED)
    if scope["method"] not in SAFE_METHODS:
        sent = _header(scope, b"x-csrf-token")
        if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise ApiError(403, MSG_CSRF)
    return principal_of(session)


def principal_of(session: Session) -> Principal:
    """The principal a live cookie session acts as (rule 1)."""
    record = ApiKeyRecord(
        key_id=SESSION_KEY_ID,
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
