"""The gateway served by a real uvicorn server inside the test's own event loop, with a probe
that measures how long the loop is kept busy (its lag), and signed-request helpers.

Client and server share the loop, so a request that keeps the server busy shows up as a gap
between the probe's wake-ups; the client side of each request is cheap by construction."""

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, IndexPrice
from perpetua.core.engine import Engine
from perpetua.gateway import GatewayConfig, MemoryAccounts, create_app
from perpetua.gateway.auth import sign
from perpetua.gateway.history import History
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.gateway.server import uvicorn_config
from perpetua.store import Projector, ProjectorThread, default_url, migrate, open_engine
from tests.gateway.fakes import InlineSequencer

PROBE_INTERVAL_S = 0.002


class LagProbe:
    """Wakes every ``PROBE_INTERVAL_S``; ``worst_s`` is the most CPU time the loop's thread
    spent between two wake-ups since the last ``reset``: how long one callback kept the loop
    busy. CPU time, not wall time, so a machine shared with other busy processes (which
    deschedule this one) does not count against the code under test."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.thread_time()
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            now = time.thread_time()
            self.worst_s = max(self.worst_s, now - last)
            last = now

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def reset(self) -> None:
        self.worst_s = 0.0


class Live:
    def __init__(self, base: str, sequencer: InlineSequencer, accounts: Any, app: Any) -> None:
        self.base = base
        self.ws_base = base.replace("http://", "ws://")
        self.sequencer = sequencer
        self.accounts = accounts
        self.app = app
        self.http = httpx.AsyncClient(base_url=base, timeout=30)
        self.probe = LagProbe()

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def deposit(self, account: int, currency: str, amount: int) -> None:
        self.sequencer.execute(
            Deposit(0, account, currency, amount, f"live-{account}-{time.time_ns()}")
        )

    def index(self, symbol: str, num: int, den: int = 1) -> None:
        self.sequencer.execute(IndexPrice(0, symbol, num, den))

    async def signed(
        self,
        method: str,
        target: str,
        key: Any,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """``target``: the path with query after ``/api/v1``, exactly as signed."""
        path = "/api/v1" + target
        expires = str(int(time.time()) + 60)
        sent = {
            "api-key": key.key_id,
            "api-expires": expires,
            "api-signature": sign(key.secret, method, path, expires, body),
        }
        if body:
            sent["content-type"] = content_type
        sent.update(headers or {})
        return await self.http.request(method, path, content=body, headers=sent)


@contextlib.asynccontextmanager
async def live_gateway(
    rate_limits: bool = False,
    server: dict[str, Any] | None = None,
    accounts: Any = None,
    **config: Any,
) -> AsyncIterator[Live]:
    """The app on 127.0.0.1 (a free port) under uvicorn, in this loop. ``server``: extra
    ``uvicorn_config`` arguments; ``accounts``: the key store (default in memory)."""
    engine = Engine(default_catalogue())
    sequencer = InlineSequencer(engine)
    accounts = accounts if accounts is not None else MemoryAccounts()
    cfg = GatewayConfig(
        operator_key="operator-secret",
        bin_roll_interval_s=0.05,
        rate_limits=RateLimitConfig(enabled=rate_limits),
        **config,
    )
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="perpetua-lv-"))
        url = default_url(directory)
        migrate(url)
        db = open_engine(url)
        stack.callback(db.dispose)
        projector = ProjectorThread(Projector(db))
        stack.callback(projector.close)
        sequencer.subscribe(projector.publish)
        app = create_app(cfg, sequencer, History.over(projector.projector), accounts)
        # the server settings ``perpetua run`` and ``demo`` use (gateway/server.py)
        uv = uvicorn.Server(
            uvicorn_config(app, "127.0.0.1", 0, "warning", loop="asyncio", **(server or {}))
        )
        uv.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        serving = asyncio.create_task(uv.serve())
        while not uv.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        port = uv.servers[0].sockets[0].getsockname()[1]
        live = Live(f"http://127.0.0.1:{port}", sequencer, accounts, app)
        live.probe.start()
        try:
            yield live
        finally:
            if live.probe.task is not None:
                live.probe.task.cancel()
            await live.http.aclose()
            uv.should_exit = True
            await serving
