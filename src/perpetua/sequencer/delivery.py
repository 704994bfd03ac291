"""What submitters and subscribers get from the sequencer, and how it reaches them.

Errors are grouped by what the caller should do (style rule 17): `Overloaded` (retry later),
`SequencerStopped` (stop; `SequencerFailed` also means the process must restart), and
`CommandInvalid` (reject: the command itself cannot be journaled).

A waiter is how one submitter hears of its command: nobody (internal commands), a
``concurrent.futures.Future``, an ``asyncio.Future`` on some event loop, or a callback.
`settle` delivers a batch's outcomes on the committer thread, with one
``call_soon_threadsafe`` per event loop per batch rather than one per result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

from perpetua.core.commands import Command
from perpetua.core.events import Event

__all__ = [
    "NO_WAITER",
    "WAIT_ASYNC",
    "WAIT_CALLBACK",
    "WAIT_FUTURE",
    "WAIT_NONE",
    "Applied",
    "BatchSubscriber",
    "CommandInvalid",
    "CommandSubscriber",
    "Overloaded",
    "Result",
    "ResultCallback",
    "SequencerError",
    "SequencerFailed",
    "SequencerStopped",
    "Waiter",
    "settle",
]

_log = logging.getLogger(__name__)


# --- errors: grouped by what the caller does (style rule 17) ------------------------------


class SequencerError(Exception):
    """Base of the errors the sequencer raises to submitters."""


class Overloaded(SequencerError):
    """Retry later: the input queue is full; the command was not taken (HTTP 503)."""


class SequencerStopped(SequencerError):
    """Stop: the sequencer is stopping or stopped; the command was not taken."""


class SequencerFailed(SequencerStopped):
    """Stop, and restart the process: the journal failed or the engine hit a programmer error.

    Commands not yet resolved may or may not be durable; recovery will tell.
    """


class CommandInvalid(SequencerError):
    """Reject: the command cannot be journaled (a value MessagePack cannot hold); no seq used."""


# --- results -------------------------------------------------------------------------------


class Result(NamedTuple):
    """What a submitter gets once its command is durable."""

    seq: int
    ts_ns: int
    events: list[Event]  # shared with subscribers: never mutate


class Applied(NamedTuple):
    """One durable command as subscribers see it."""

    seq: int
    ts_ns: int
    command: Command  # as stamped and applied
    events: list[Event]


BatchSubscriber = Callable[[list[Applied]], None]  # one durable batch, in seq order
CommandSubscriber = Callable[[int, int, Command, list[Event]], None]  # seq, ts_ns, cmd, events
ResultCallback = Callable[[Result | BaseException], None]


# --- waiters: how a result reaches its submitter ---------------------------------------------

WAIT_NONE: Final = 0  # internal command: nobody waits
WAIT_FUTURE: Final = 1  # concurrent.futures.Future
WAIT_ASYNC: Final = 2  # (loop, asyncio.Future)
WAIT_CALLBACK: Final = 3  # ResultCallback, called on the committer thread

Waiter = tuple[int, object]
NO_WAITER: Final[Waiter] = (WAIT_NONE, None)


_AsyncOutcome = tuple["asyncio.Future[Result]", "Result | BaseException"]


def _settle_async(items: list[_AsyncOutcome]) -> None:
    """Runs on the submitter's event loop: settle the futures still wanted."""
    for future, outcome in items:
        if future.done():
            continue  # cancelled by its submitter (the command stands), or already refused
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def settle(waiters: Sequence[Waiter], outcomes: Sequence[Applied | Result | BaseException]) -> None:
    """Deliver outcomes to waiters; one call_soon_threadsafe per event loop per call.

    An Applied outcome becomes the waiter's Result here, only for waiters that exist (most
    commands of a busy exchange are waited for, internal ones never).
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[_AsyncOutcome]] = {}
    for (kind, target), given in zip(waiters, outcomes, strict=True):
        if kind == WAIT_NONE:
            continue
        outcome: Result | BaseException = (
            Result(given.seq, given.ts_ns, given.events) if type(given) is Applied else given  # type: ignore[assignment]
        )
        if kind == WAIT_FUTURE:
            future: concurrent.futures.Future[Result] = target  # type: ignore[assignment]
            try:
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
            except concurrent.futures.InvalidStateError:
                pass  # the submitter cancelled its Future; the command stands
        elif kind == WAIT_ASYNC:
            loop: asyncio.AbstractEventLoop
            async_future: asyncio.Future[Result]
            loop, async_future = target  # type: ignore[misc]
            by_loop.setdefault(loop, []).append((async_future, outcome))
        else:
            target(outcome)  # type: ignore[operator]
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_async, items)
        except RuntimeError:
            _log.debug("event loop closed before %d results could be delivered", len(items))
