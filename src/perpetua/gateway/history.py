"""History reads from the read models (``perpetua.store``), with read-your-writes.

REST history (``/order``, ``/execution``, ``/execution/tradeHistory``, ``/user/walletHistory``,
``/user/walletSummary``, ``/trade``, ``/funding``, ``/settlement``, ``/insurance``,
``/liquidation``) is served from SQL, never from bounded memory: the gateway always has read
models (one history path; ``perpetua run --no-store`` keeps them in a temporary file).
The projector trails the sequencer by tens of ms (it gathers records for up to the store's
``PROJECT_LINGER_S`` before a transaction, and keeps up under load: decisions §31): a read
first waits until the projector has committed the last seq that touched what it reads (the
caller's account, or the table), so a client that placed an order sees it in ``GET /order`` at
once. The wait is bounded (``HISTORY_WAIT_S_MAX``); past it the read is served as the store
has it.

Queries run in a worker thread (``asyncio.to_thread``): SQL never blocks the event loop.
``QueryError`` (a bad filter, count or start) becomes a 400 in BitMEX's shape.
"""

import asyncio
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import DataError

from perpetua.gateway.errors import bad_request
from perpetua.store import Projector
from perpetua.store.filters import QueryError

__all__ = ["HISTORY_POLL_S", "HISTORY_WAIT_S_MAX", "History"]

HISTORY_WAIT_S_MAX = 2.0
HISTORY_POLL_S = 0.002

P = ParamSpec("P")
T = TypeVar("T")


class History:
    """SQL reads over the read models; ``progress()`` is the projector's last committed seq."""

    def __init__(self, engine: SqlEngine, progress: Callable[[], int]) -> None:
        self.engine = engine
        self.progress = progress
        self.waits_timed_out = 0

    @classmethod
    def over(cls, projector: Projector) -> "History":
        """Reads of ``projector``'s database, caught up by its ``last_seq``."""
        return cls(projector.engine, lambda: int(projector.last_seq))

    async def caught_up(self, seq: int) -> bool:
        """Wait until the read models hold ``seq``; False if that took too long."""
        if seq <= 0 or self.progress() >= seq:
            return True
        deadline = time.monotonic() + HISTORY_WAIT_S_MAX
        while self.progress() < seq:
            if time.monotonic() > deadline:
                self.waits_timed_out += 1
                return False
            await asyncio.sleep(HISTORY_POLL_S)
        return True

    def _run(
        self, query: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self.engine.connect() as conn:
            return query(conn, *args, **kwargs)

    async def read(
        self,
        seq: int,
        query: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``query(conn, *args, **kwargs)`` once the read models hold ``seq``."""
        await self.caught_up(seq)

        def run() -> T:
            return self._run(query, *args, **kwargs)

        try:
            return await asyncio.to_thread(run)
        except QueryError as error:
            raise bad_request(str(error)) from None
        except (OverflowError, DataError):  # a filter value beyond the columns' 64 bits
            raise bad_request("Invalid filter: value out of range") from None

    def read_now(
        self, query: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A synchronous read (start-up only, before serving)."""
        return self._run(query, *args, **kwargs)
