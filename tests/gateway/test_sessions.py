"""The session cookie's attributes, reading it back, and the CSRF rule on a cookie request."""

import asyncio
from typing import Any

import pytest

from perpetua.gateway.errors import ApiError
from perpetua.gateway.sessions import (
    MSG_CSRF,
    clear_cookie,
    cookie_token,
    origin_allowed,
    session_cookie,
    session_of,
    session_principal,
)
from perpetua.services.sessions import Session

SESSION = Session("digest", 7, "csrf-token", 1, 1, "127.0.0.1", "ua")


def scope(
    scheme: str = "http",
    host: str = "127.0.0.1",
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> dict[str, Any]:
    return {"scheme": scheme, "server": (host, 8000), "method": method, "headers": headers or []}


@pytest.mark.parametrize(
    "scheme, host, name, secure",
    [
        ("http", "127.0.0.1", "perpetua_session", False),
        ("http", "::1", "perpetua_session", False),
        ("http", "localhost", "perpetua_session", False),
        ("https", "127.0.0.1", "__Host-perpetua_session", True),
        ("http", "10.0.0.5", "__Host-perpetua_session", True),  # behind a TLS proxy
        ("https", "exchange.example", "__Host-perpetua_session", True),
    ],
)
def test_cookie_attributes(scheme: str, host: str, name: str, secure: bool) -> None:
    cookie = session_cookie(scope(scheme, host), "tok")
    assert cookie.startswith(f"{name}=tok; Path=/; HttpOnly;")
    assert "SameSite=Lax" in cookie and ("; Secure;" in cookie) == secure
    assert clear_cookie(scope(scheme, host)).startswith(f"{name}=;")
    assert "Max-Age=0" in clear_cookie(scope(scheme, host))


@pytest.mark.parametrize(
    "header, token",
    [
        (b"perpetua_session=abc", "abc"),
        (b"other=1; __Host-perpetua_session=xyz; more=2", "xyz"),
        (b"perpetua_session=", ""),
        (b"nothing=here", ""),
    ],
)
def test_cookie_token(header: bytes, token: str) -> None:
    assert cookie_token(scope(headers=[(b"cookie", header)])) == token


class FakeIdentity:
    async def session(self, token: str) -> Session | None:
        return SESSION if token == "good" else None


@pytest.mark.parametrize(
    "method, csrf, outcome",
    [
        ("GET", None, "ok"),
        ("HEAD", None, "ok"),
        ("POST", None, 403),
        ("POST", b"wrong", 403),
        ("DELETE", b"csrf-token", "ok"),
        ("PUT", b"csrf-token", "ok"),
    ],
)
def test_csrf_on_cookie_requests(method: str, csrf: bytes | None, outcome: Any) -> None:
    headers = [(b"cookie", b"perpetua_session=good")]
    if csrf is not None:
        headers.append((b"x-csrf-token", csrf))
    call = session_principal(FakeIdentity(), scope(method=method, headers=headers))  # type: ignore[arg-type]
    if outcome == "ok":
        principal = asyncio.run(call)
        assert principal is not None and principal.account == 7
        assert session_of(principal) == SESSION
    else:
        with pytest.raises(ApiError) as caught:
            asyncio.run(call)
        assert (caught.value.status, caught.value.message) == (403, MSG_CSRF)


def test_unknown_or_absent_cookie() -> None:
    with pytest.raises(ApiError) as caught:
        asyncio.run(
            session_principal(
                FakeIdentity(),
                scope(  # type: ignore[arg-type]
                    headers=[(b"cookie", b"perpetua_session=stale")]
                ),
            )
        )
    assert caught.value.status == 401
    assert asyncio.run(session_principal(FakeIdentity(), scope())) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "scheme, host, origin, public_url, allowed",
    [
        ("ws", "127.0.0.1:8000", "http://127.0.0.1:8000", "", True),
        ("ws", "localhost:8000", "http://LOCALHOST:8000", "", True),
        ("wss", "exchange.example", "https://exchange.example", "", True),
        ("ws", "exchange.example", "https://exchange.example", "", True),  # behind a TLS proxy
        ("ws", "10.0.0.5:8000", "https://exchange.example", "https://exchange.example/", True),
        ("ws", "127.0.0.1:8000", "http://127.0.0.1:8001", "", False),
        ("ws", "127.0.0.1:8000", "http://evil.example", "", False),
        ("ws", "127.0.0.1:8000", "null", "", False),
        ("ws", "127.0.0.1:8000", "", "", False),
        ("ws", "127.0.0.1:8000", "file:///etc", "", False),
        ("ws", "127.0.0.1:8000", "http://127.0.0.1:99999", "", False),
        ("ws", "exchange.example", "http://exchange.example.evil", "", False),
    ],
)
def test_websocket_origin(
    scheme: str, host: str, origin: str, public_url: str, allowed: bool
) -> None:
    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])
    assert origin_allowed(scope(scheme, headers=headers), public_url) is allowed
