"""Background services: the venue's long-running work beside the request handlers.

Wallet followers, signers, the daily proof snapshot, KYC reviews, staking rewards and user bots
all run here, on the server's event loop, under one contract:

1. A service is a `BackgroundService`: a ``name`` and ``run(stopping)``, a coroutine that works
   until ``stopping`` is set and then returns promptly. Blocking work (SQL, chain RPC, file
   writes) goes to a thread (``asyncio.to_thread``): no service may stall the event loop.
2. `Background` starts every service after the gateway and stops them before it, in reverse
   order, waiting at most ``STOP_GRACE_S`` for each before cancelling it; a service that
   raises is logged with its traceback and restarted after ``RESTART_DELAY_S`` (it must be
   safe to restart: its state is the journal's or the database's, never only in memory).
3. `PeriodicJob` is the common case: call ``step`` every ``interval_s`` seconds (the first call
   at once unless ``delay_first``). A failing step is logged and counted, and the next one runs
   at the next interval; a step that takes longer than the interval delays the next one, never
   overlaps it. ``status()`` tells operators when it last ran, how long it took, and its last
   error.
4. Changes to exchange state still go through the sequencer as commands (a job submits them);
   a job never writes core state itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = [
    "RESTART_DELAY_S",
    "STOP_GRACE_S",
    "Background",
    "BackgroundService",
    "JobStatus",
    "PeriodicJob",
]

log = logging.getLogger("perpetua.jobs")

STOP_GRACE_S: Final = 5.0  # a service has this long to return after ``stopping`` is set
RESTART_DELAY_S: Final = 1.0  # a service that raised runs again after this pause
INTERVAL_MIN_S: Final = 0.01  # no job runs more often than this


class BackgroundService(Protocol):
    """Long-running work of the venue (contract: the module docstring, 1)."""

    @property
    def name(self) -> str: ...

    async def run(self, stopping: asyncio.Event) -> None: ...


@dataclass(frozen=True, slots=True)
class JobStatus:
    name: str
    runs: int
    failures: int
    last_started: float | None  # unix seconds
    last_duration_s: float | None
    last_error: str | None


class PeriodicJob:
    """``step`` every ``interval_s`` seconds (contract: the module docstring, 3)."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        step: Callable[[], Awaitable[object]],
        *,
        delay_first: bool = False,
    ) -> None:
        if not interval_s >= INTERVAL_MIN_S:
            raise ValueError(f"job {name}: interval {interval_s} s is below {INTERVAL_MIN_S} s")
        self._name = name
        self.interval_s = interval_s
        self.step = step
        self.delay_first = delay_first
        self._runs = 0
        self._failures = 0
        self._last_started: float | None = None
        self._last_duration: float | None = None
        self._last_error: str | None = None

    @property
    def name(self) -> str:
        return self._name

    async def run_once(self) -> bool:
        """One step now; False when it raised (logged and counted)."""
        self._last_started = time.time()
        began = time.perf_counter()
        self._runs += 1
        try:
            await self.step()
        except Exception as error:  # a failing step must not end the job (3)
            self._failures += 1
            self._last_error = f"{type(error).__name__}: {error}"
            log.exception("job %s failed", self._name)
            return False
        finally:
            self._last_duration = time.perf_counter() - began
        self._last_error = None
        return True

    async def run(self, stopping: asyncio.Event) -> None:
        if self.delay_first and await _wait(stopping, self.interval_s):
            return
        while not stopping.is_set():
            await self.run_once()
            if await _wait(stopping, self.interval_s):
                return

    def status(self) -> JobStatus:
        return JobStatus(
            self._name,
            self._runs,
            self._failures,
            self._last_started,
            self._last_duration,
            self._last_error,
        )


async def _wait(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stopping``; True when stopping."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


class Background:
    """Runs a venue's services on the running event loop (contract: the module docstring, 2)."""

    def __init__(self, services: Sequence[BackgroundService] = ()) -> None:
        names = [service.name for service in services]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"background services named twice: {', '.join(duplicated)}")
        self.services = list(services)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start every service (on the running loop); idempotent."""
        if self._tasks:
            return
        self._stopping = asyncio.Event()
        for service in self.services:
            task = asyncio.get_running_loop().create_task(
                self._supervise(service), name=f"service:{service.name}"
            )
            self._tasks.append(task)

    async def _supervise(self, service: BackgroundService) -> None:
        while not self._stopping.is_set():
            try:
                await service.run(self._stopping)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "service %s failed; restarting in %s s", service.name, RESTART_DELAY_S
                )
                if await _wait(self._stopping, RESTART_DELAY_S):
                    return

    async def stop(self) -> None:
        """Ask every service to stop; wait, in reverse order, then cancel stragglers."""
        self._stopping.set()
        for task in reversed(self._tasks):
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=STOP_GRACE_S)
            except TimeoutError:
                log.warning("%s did not stop in %s s; cancelled", task.get_name(), STOP_GRACE_S)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
