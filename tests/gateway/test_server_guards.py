"""Issue 10 items 6 and 7: forwarded headers are believed only from listed proxies; slow
request heads are cut off, oversized heads refused, and one address holds a bounded number of
connections. The server is the one ``perpetua run`` and ``perpetua demo`` start
(``gateway.server.uvicorn_config``), on a real socket."""

import asyncio
import inspect
import json
import time
from typing import Any

import pytest
import websockets

from perpetua.demo import app as demo_app
from perpetua.gateway.auth import sign
from perpetua.gateway.server import HEAD_BYTES_MAX, GuardedHttpProtocol
from perpetua.runtime.config import ServerConfig
from perpetua.runtime.server import server_config
from tests.gateway.live import Live, live_gateway

ALICE = 1001
HEAD_TIMEOUT_S = 0.5  # the tests' own; the served default is server.HEAD_TIMEOUT_S


async def _fenced_status(live: Live, forwarded: str) -> int:
    key = live.accounts.create_api_key(ALICE, ["order"], cidr=["10.0.0.0/8"])
    response = await live.signed("GET", "/position", key, headers={"x-forwarded-for": forwarded})
    return response.status_code


def test_forwarded_for_is_ignored_unless_the_proxy_is_listed() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            assert await _fenced_status(live, "10.1.2.3") == 403
            # nor does it dodge the per-IP WebSocket connection limit: all come from 127.0.0.1
            remaining = []
            for n in range(3):
                async with websockets.connect(
                    live.ws_base + "/realtime",
                    additional_headers={"x-forwarded-for": f"10.0.0.{n}"},
                ) as ws:
                    remaining.append(json.loads(await ws.recv())["limit"]["remaining"])
            assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == 3
        async with live_gateway(server={"forwarded_allow_ips": ["127.0.0.1"]}) as live:
            assert await _fenced_status(live, "10.1.2.3") == 200
            assert await _fenced_status(live, "192.168.1.1") == 403

    asyncio.run(main())


def test_run_and_demo_serve_through_the_guarded_config() -> None:
    config = server_config(object(), ServerConfig())
    assert issubclass(config.http, GuardedHttpProtocol)  # type: ignore[arg-type]
    assert config.proxy_headers is False  # uvicorn's default trusts 127.0.0.1
    trusting = server_config(object(), ServerConfig(forwarded_allow_ips=("10.0.0.1",)))
    assert trusting.proxy_headers is True and trusting.forwarded_allow_ips == ["10.0.0.1"]
    # ``perpetua demo`` serves through the same function
    assert "server_config(" in inspect.getsource(demo_app)
    assert "uvicorn.Config(" not in inspect.getsource(demo_app)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1024), seconds) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def test_a_slow_request_head_is_closed() -> None:
    async def main() -> None:
        async with live_gateway(server={"head_timeout_s": HEAD_TIMEOUT_S}) as live:
            port = int(live.base.rsplit(":", 1)[1])
            streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
            for n, (_, writer) in enumerate(streams):
                if n % 2:
                    writer.write(b"GET /api/v1/instrument HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            start = time.monotonic()
            closed = await asyncio.gather(*(_closed_within(r, 5) for r, _ in streams))
            assert all(closed)
            assert time.monotonic() - start < HEAD_TIMEOUT_S + 2
            # a kept-alive connection whose next head stalls is closed as well
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api/v1/instrument/active HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(
                [
                    line
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ][0].split(b":")[1]
            )
            await reader.readexactly(length)
            writer.write(b"GET /api/v1/instrument HTTP/1.1\r\nHo")
            assert await _closed_within(reader, 5)
            # a normal request is unaffected by a slow body-less client elsewhere
            assert (await live.http.get("/api/v1/instrument/active")).status_code == 200

    asyncio.run(main())


def test_an_oversized_head_is_431() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            port = int(live.base.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /api/v1/trade?filter="
                + b"x" * HEAD_BYTES_MAX
                + b" HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            answer = await asyncio.wait_for(reader.read(), 5)
            assert answer.startswith(b"HTTP/1.1 431")

    asyncio.run(main())


def test_connections_per_address_are_capped() -> None:
    async def main() -> None:
        cap = 6
        async with live_gateway(server={"connections_per_ip_max": cap}) as live:
            port = int(live.base.rsplit(":", 1)[1])
            sockets: list[Any] = [
                await websockets.connect(live.ws_base + "/realtime") for _ in range(2)
            ]
            streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(cap - 2)]
            await asyncio.sleep(0.1)
            reader, _ = await asyncio.open_connection("127.0.0.1", port)
            assert await _closed_within(reader, 2)  # one too many: closed at once
            streams[0][1].close()
            await sockets[0].close()
            await asyncio.sleep(0.2)
            response = await live.http.get("/api/v1/instrument/active")
            assert response.status_code == 200  # room again
            for socket in sockets[1:]:
                await socket.close()

    asyncio.run(main())


def test_signed_websocket_still_works_through_the_guard() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            key = live.accounts.create_api_key(ALICE, ["order"])
            exp = str(int(time.time()) + 60)
            async with websockets.connect(
                live.ws_base + "/realtime",
                additional_headers={
                    "api-key": key.key_id,
                    "api-expires": exp,
                    "api-signature": sign(key.secret, "GET", "/realtime", exp),
                },
            ) as ws:
                await ws.recv()
                await ws.send(json.dumps({"op": "subscribe", "args": ["order"]}))
                assert json.loads(await ws.recv())["success"] is True

    asyncio.run(main())


def test_demo_takes_forwarded_allow_ips_like_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import perpetua.demo
    from perpetua import cli

    seen: list[Any] = []
    monkeypatch.setattr(perpetua.demo, "run_demo", lambda options: seen.append(options) or 0)
    assert cli.main(["demo", "--forwarded-allow-ips", "10.0.0.1, 10.0.0.2"]) == 0
    assert cli.main(["demo"]) == 0
    assert [o.forwarded_allow_ips for o in seen] == [("10.0.0.1", "10.0.0.2"), ()]
    source = inspect.getsource(demo_app)
    assert "forwarded_allow_ips=options.forwarded_allow_ips" in source
