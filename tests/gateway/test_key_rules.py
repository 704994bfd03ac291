"""Issue 10 items 2, 3 and the authentication parts of 9: every key rule holds on every
channel, a disabled key or user is refused everywhere within a second (open sessions closed
with an error frame and a close frame), ``api-nonce`` must increase, failed authentications
are limited per address, and an oversized body is refused before its signature is checked."""

import asyncio
import dataclasses
import json
import tempfile
import time
from typing import Any

import pytest
import websockets
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed

from perpetua.gateway.auth import KeyCache, sign
from perpetua.gateway.config import WS_ERRORS_MAX
from perpetua.gateway.params import BODY_BYTES_MAX
from perpetua.gateway.ratelimit import AUTH_FAILURES_PER_MINUTE
from perpetua.gateway.ws.revocation import REVOCATION_DELAY_S_MAX
from perpetua.services.accounts import AccountsService, ApiKeyRecord
from perpetua.store.schema import users
from tests.gateway.live import Live, live_gateway

ALICE = 1001


def _ws_auth(key: Any, expires: int | None = None, op: str = "authKeyExpires") -> str:
    exp = expires if expires is not None else int(time.time()) + 60
    return json.dumps(
        {"op": op, "args": [key.key_id, exp, sign(key.secret, "GET", "/realtime", str(exp))]}
    )


async def _reply(ws: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[no-any-return]


def test_websocket_login_applies_the_cidr_allow_list() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            fenced = live.accounts.create_api_key(ALICE, ["order"], cidr=["10.0.0.0/8"])
            rest = await live.signed("GET", "/position", fenced)
            assert rest.status_code == 403
            # op login
            async with websockets.connect(live.ws_base + "/realtime") as ws:
                await _reply(ws)
                await ws.send(_ws_auth(fenced))
                reply = await _reply(ws)
                assert reply["status"] == 403, reply
                await ws.send(json.dumps({"op": "subscribe", "args": ["order"]}))
                assert (await _reply(ws))["status"] == 401
                await ws.send(json.dumps({"op": "cancelAllAfter", "args": [60_000]}))
                assert (await _reply(ws))["status"] == 401
            # header login
            exp = str(int(time.time()) + 60)
            headers = {
                "api-key": fenced.key_id,
                "api-expires": exp,
                "api-signature": sign(fenced.secret, "GET", "/realtime", exp),
            }
            async with websockets.connect(
                live.ws_base + "/realtime?subscribe=order", additional_headers=headers
            ) as ws:
                await _reply(ws)
                replies = [await _reply(ws), await _reply(ws)]
                assert [r.get("status") for r in replies] == [403, 401], replies

    asyncio.run(main())


def test_websocket_signature_compare_tolerates_any_text() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            key = live.accounts.create_api_key(ALICE, ["order"])
            exp = int(time.time()) + 60
            async with websockets.connect(live.ws_base + "/realtime") as ws:
                await _reply(ws)
                await ws.send(
                    json.dumps({"op": "authKeyExpires", "args": [key.key_id, exp, "\u00e9" * 64]})
                )
                assert (await _reply(ws))["status"] == 401
                await ws.send(_ws_auth(key))
                assert (await _reply(ws))["success"] is True

    asyncio.run(main())


async def _disable_and_time(live: Live, key: Any, disable: Any) -> tuple[float, float, Any]:
    """Sign a socket in and subscribe it, disable with ``disable()``, and return (seconds
    until REST refuses, seconds until the socket is closed, the frames it got last)."""
    async with websockets.connect(live.ws_base + "/realtime") as ws:
        await _reply(ws)
        await ws.send(_ws_auth(key))
        assert (await _reply(ws))["success"] is True
        await ws.send(json.dumps({"op": "subscribe", "args": ["order"]}))
        assert (await _reply(ws))["success"] is True
        await _reply(ws)  # partial
        assert (await live.signed("GET", "/order", key)).status_code == 200
        start = time.monotonic()
        disable()
        rest_s = None
        frames: list[Any] = []
        close_s = None
        while close_s is None or rest_s is None:
            if rest_s is None:
                response = await live.signed("GET", "/order", key)
                if response.status_code == 403:
                    rest_s = time.monotonic() - start
            if close_s is None:
                try:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 0.05)))
                except TimeoutError:
                    pass
                except ConnectionClosed as closed:
                    close_s = time.monotonic() - start
                    frames.append(("close", closed.rcvd.code if closed.rcvd else None))
            if time.monotonic() - start > 5:
                break
            await asyncio.sleep(0.01)
        return rest_s or 99.0, close_s or 99.0, frames


def test_disabling_a_key_refuses_it_everywhere_within_a_second() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            key = live.accounts.create_api_key(ALICE, ["order"])

            def disable() -> None:
                live.accounts.add(dataclasses.replace(key, enabled=False))

            rest_s, close_s, frames = await _disable_and_time(live, key, disable)
            assert rest_s < REVOCATION_DELAY_S_MAX
            assert close_s < REVOCATION_DELAY_S_MAX
            assert frames[-2]["status"] == 403 and "disabled" in frames[-2]["error"]
            assert frames[-1] == ("close", 1008)

    asyncio.run(main())


@pytest.mark.parametrize("what", ["key", "user"])
def test_disabling_in_the_accounts_service_from_another_process(what: str) -> None:
    """The admin CLI writes SQL from another process: a second service on the same database
    stands for it; the serving one and the gateway only see the change through their caches."""

    async def main(directory: str) -> None:
        serving = AccountsService.open(directory)
        admin = AccountsService.open(directory)
        user = admin.create_user("alice@example.com", "correct horse battery", ALICE)
        key_id, secret = admin.create_api_key(user.id, permissions=["order"])
        key = serving.lookup_api_key(key_id)
        assert key is not None and key.secret == secret
        async with live_gateway(accounts=serving) as live:

            def disable() -> None:
                if what == "key":
                    admin.set_api_key_enabled(key_id, False)
                else:  # the admin CLI's lock-user writes the row from its process
                    with admin.engine.begin() as conn:
                        conn.execute(
                            update(users).where(users.c.id == user.id).values(enabled=False)
                        )

            rest_s, close_s, frames = await _disable_and_time(live, key, disable)
            assert rest_s < REVOCATION_DELAY_S_MAX, rest_s
            assert close_s < REVOCATION_DELAY_S_MAX, close_s
            assert frames[-1] == ("close", 1008)

    with tempfile.TemporaryDirectory(prefix="perpetua-keys-") as directory:
        asyncio.run(main(directory))


def test_api_nonce_must_strictly_increase() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            key = live.accounts.create_api_key(ALICE, ["order"])
            nonce = 1_000_000

            async def with_nonce(value: int) -> int:
                path = "/api/v1/position"
                response = await live.http.get(
                    path,
                    headers={
                        "api-key": key.key_id,
                        "api-nonce": str(value),
                        "api-signature": sign(key.secret, "GET", path, str(value)),
                    },
                )
                return response.status_code

            assert await with_nonce(nonce) == 200
            assert await with_nonce(nonce) == 401  # a replay
            assert await with_nonce(nonce - 1) == 401
            assert await with_nonce(nonce + 1) == 200
            async with websockets.connect(live.ws_base + "/realtime") as ws:
                await _reply(ws)
                await ws.send(_ws_auth(key, nonce + 1, op="authKey"))
                assert (await _reply(ws))["status"] == 401
                await ws.send(_ws_auth(key, nonce + 2, op="authKey"))
                assert (await _reply(ws))["success"] is True
            # the handshake's api-nonce header follows the same rule
            for value, ok in ((nonce + 2, False), (nonce + 3, True)):
                headers = {
                    "api-key": key.key_id,
                    "api-nonce": str(value),
                    "api-signature": sign(key.secret, "GET", "/realtime", str(value)),
                }
                async with websockets.connect(
                    live.ws_base + "/realtime?subscribe=order", additional_headers=headers
                ) as ws:
                    await _reply(ws)
                    reply = await _reply(ws)
                    assert (reply.get("success") is True) == ok, reply

    asyncio.run(main())


def test_failed_authentications_are_limited_per_address() -> None:
    async def main() -> None:
        async with live_gateway(rate_limits=True) as live:
            key = live.accounts.create_api_key(ALICE, ["order"])
            bad = dataclasses.replace(key, secret="wrong")
            statuses = [
                (await live.signed("GET", "/position", bad)).status_code
                for _ in range(AUTH_FAILURES_PER_MINUTE + 5)
            ]
            assert statuses[:AUTH_FAILURES_PER_MINUTE] == [401] * AUTH_FAILURES_PER_MINUTE
            assert statuses[-1] == 429
            # the right key from the same address waits too; the WebSocket login as well
            assert (await live.signed("GET", "/position", key)).status_code == 429
            async with websockets.connect(live.ws_base + "/realtime") as ws:
                await _reply(ws)
                await ws.send(_ws_auth(key))
                assert (await _reply(ws))["status"] == 429
            # anonymous public reads are not affected
            assert (await live.http.get("/api/v1/instrument/active")).status_code == 200

    asyncio.run(main())


def test_an_oversized_signed_body_is_413_before_the_signature_is_checked() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            key = live.accounts.create_api_key(ALICE, ["order"])
            body = b'{"text": "' + b"x" * BODY_BYTES_MAX + b'"}'
            path = "/api/v1/order"
            response = await live.http.post(
                path,
                content=body,
                headers={
                    "api-key": key.key_id,
                    "api-expires": str(int(time.time()) + 60),
                    "api-signature": "0" * 64,
                    "content-type": "application/json",
                },
            )
            assert response.status_code == 413, response.text

    asyncio.run(main())


def test_too_many_errors_close_the_socket_with_a_close_frame() -> None:
    async def main() -> None:
        async with live_gateway() as live, websockets.connect(live.ws_base + "/realtime") as ws:
            await _reply(ws)
            for _ in range(WS_ERRORS_MAX + 1):
                await ws.send("{not json")
            frames = 0
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    assert (await _reply(ws))["status"] == 400
                    frames += 1
            assert frames == WS_ERRORS_MAX + 1
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    asyncio.run(main())


def test_a_burst_after_expiry_costs_one_key_lookup() -> None:
    """The key cache lives 0.35 s (for the 1 s revocation bound); concurrent requests of one
    key share the lookup that refreshes it, and a requester that goes away cancels nothing."""
    calls: list[str] = []

    class SlowAccounts:
        in_memory = False  # a blocking lookup, as SQL is: run in a worker thread

        def lookup_api_key(self, key_id: str) -> ApiKeyRecord | None:
            calls.append(key_id)
            time.sleep(0.05)
            return ApiKeyRecord(key_id, ALICE, "s", ("order",))

    async def main() -> None:
        cache = KeyCache(SlowAccounts())
        first = asyncio.ensure_future(cache.get("k"))
        await asyncio.sleep(0)
        first.cancel()
        records = await asyncio.gather(*(cache.get("k") for _ in range(20)))
        assert {r.user_id for r in records} == {ALICE}
        assert calls == ["k"]

    asyncio.run(main())
