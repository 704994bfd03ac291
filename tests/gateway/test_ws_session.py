"""End to end: the WebSocket signs in with the browser session cookie (``authSession``) under the
REST pipeline's session rules, against the real ``perpetua run`` process: accepted from the
venue's own page, refused from a foreign page (cross-site WebSocket hijacking), refused once
the session is idle or past its lifetime, and an open socket closed when its session is
revoked, signed out or expires."""

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from perpetua.gateway.sessions import MSG_SESSION_ENDED
from perpetua.services.sessions import SESSION_ABSOLUTE_NS, SESSION_IDLE_NS, token_digest
from perpetua.store.database import DATABASE_FILE_NAME
from tests.gateway.test_accounts_e2e import Server, ok, running_server, sign_in, sign_up

pytestmark = pytest.mark.slow  # a real server process

CLOSED_WITHIN_S = 15.0  # the sweep closes within 2 s; generous for a loaded machine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("data")) as started:
        yield started


def cookie_of(client: httpx.Client) -> str:
    return next(c.value for c in client.cookies.jar if c.name == "perpetua_session") or ""


@contextmanager
def socket(
    server: Server, cookie: str = "", origin: str | None = None
) -> Iterator[ClientConnection]:
    headers = {"Cookie": f"perpetua_session={cookie}"} if cookie else {}
    if origin is not None:
        headers["Origin"] = origin
    url = server.base.replace("http", "ws") + "/realtime"
    with connect(url, additional_headers=headers, open_timeout=20) as ws:
        assert json.loads(ws.recv(timeout=20))["info"].startswith("Welcome")
        yield ws


def ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(message))
    answer: dict[str, Any] = json.loads(ws.recv(timeout=20))
    return answer


def signed_in(server: Server, email: str) -> httpx.Client:
    client = server.client()
    sign_up(server, client, email)
    sign_in(client, email)
    return client


def closed_by_venue(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """The frames the venue sends until it closes the socket, and the close code."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + CLOSED_WITHIN_S
    try:
        while time.monotonic() < deadline:
            frames.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        pass
    return frames, None


def test_the_cookie_signs_a_socket_in_only_when_asked(server: Server) -> None:
    browser = signed_in(server, "ws-cookie@example.com")
    user = ok(browser.get("/user"))
    with socket(server, cookie_of(browser), server.base) as ws:
        refused = ask(ws, {"op": "subscribe", "args": ["margin"]})
        assert refused["status"] == 401  # the cookie is never used unasked
        assert ask(ws, {"op": "authSession"}) == {"success": True, "request": {"op": "authSession"}}
        assert ask(ws, {"op": "subscribe", "args": ["margin"]})["success"] is True
        partial = json.loads(ws.recv(timeout=20))
        assert (partial["table"], partial["action"]) == ("margin", "partial")
        assert all(row["account"] == user["id"] for row in partial["data"])
        assert ask(ws, {"op": "authSession"})["error"] == "Already authenticated."
    with socket(server) as ws:  # no cookie at all
        assert ask(ws, {"op": "authSession"})["status"] == 401


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", None])
def test_a_cookie_from_a_foreign_page_is_refused_at_the_handshake(
    server: Server, origin: str | None
) -> None:
    browser = signed_in(server, f"ws-origin-{len(origin or '')}@example.com")
    with pytest.raises(InvalidStatus) as refused, socket(server, cookie_of(browser), origin):
        pass
    assert refused.value.response.status_code == 403
    with socket(server, "", origin) as ws:  # the public feed stays open to any page
        assert ask(ws, {"op": "subscribe", "args": ["instrument:XBTUSD"]})["success"] is True


@pytest.mark.parametrize(
    "column, age_ns", [("last_seen_ns", SESSION_IDLE_NS), ("created_ns", SESSION_ABSOLUTE_NS)]
)
def test_an_expired_session_is_refused_and_its_open_socket_closed(
    server: Server, column: str, age_ns: int
) -> None:
    browser = signed_in(server, f"ws-expiry-{column}@example.com")
    cookie = cookie_of(browser)
    with socket(server, cookie, server.base) as ws:
        assert ask(ws, {"op": "authSession"})["success"] is True
        with sqlite3.connect(server.data_dir / DATABASE_FILE_NAME) as db:
            db.execute(
                f"UPDATE sessions SET {column} = ? WHERE id = ?",  # noqa: S608 (a fixed column)
                (time.time_ns() - age_ns - 60 * 10**9, token_digest(cookie)),
            )
        frames, code = closed_by_venue(ws)
        assert code == 1008
        assert frames[-1]["status"] == 401 and frames[-1]["error"] == MSG_SESSION_ENDED
    with socket(server, cookie, server.base) as ws:
        assert ask(ws, {"op": "authSession"})["error"] == MSG_SESSION_ENDED


def test_revoking_or_signing_out_closes_the_session_s_socket(server: Server) -> None:
    browser = signed_in(server, "ws-revoke@example.com")
    phone = server.client()
    sign_in(phone, "ws-revoke@example.com")
    with socket(server, cookie_of(browser), server.base) as ws:
        assert ask(ws, {"op": "authSession"})["success"] is True
        rows = ok(phone.get("/user/sessions"))
        other = next(row["id"] for row in rows if not row["current"])
        ok(phone.request("DELETE", "/user/sessions", json={"sessionId": other}))
        frames, code = closed_by_venue(ws)
        assert code == 1008 and frames[-1]["error"] == MSG_SESSION_ENDED
    with socket(server, cookie_of(phone), server.base) as ws:
        assert ask(ws, {"op": "authSession"})["success"] is True
        ok(phone.post("/user/logout", json={}))
        frames, code = closed_by_venue(ws)
        assert code == 1008 and frames[-1]["error"] == MSG_SESSION_ENDED
