"""``BotRunner``: runs the demo's bots on a few threads, each bot when it asked to run next.

Bots are spread round-robin over ``threads`` worker threads; a worker keeps a heap of
``(due time, bot)`` and runs the earliest when it is due. A step's errors are handled by what
they mean: back-pressure (429/503) and an unreachable server delay the bot; anything else is a
bug in the bot, logged with its traceback, and the bot is retried later (the exchange keeps
running). ``stop()`` wakes every worker and joins it; a step in flight finishes first (the HTTP
timeout bounds it).
"""

import heapq
import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from perpetua.demo.client import ApiBusy, ApiUnavailable

__all__ = ["Bot", "BotRunner"]

log = logging.getLogger("perpetua.demo")
RETRY_UNAVAILABLE_S = 1.0
RETRY_BUG_S = 5.0
JOIN_TIMEOUT_S = 15.0


class Bot(Protocol):
    name: str

    def step(self) -> float: ...


class BotRunner:
    def __init__(self, bots: Sequence[Bot], threads: int = 3) -> None:
        self.bots = tuple(bots)
        self.threads = max(1, min(threads, len(self.bots) or 1))
        self.steps = 0
        self.errors = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self.threads):
            mine = self.bots[number :: self.threads]
            worker = threading.Thread(
                target=self._work, args=(mine,), daemon=True, name=f"perpetua-demo-bots-{number}"
            )
            self._workers.append(worker)
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(JOIN_TIMEOUT_S)

    def _run_one(self, bot: Bot) -> float:
        try:
            return bot.step()
        except ApiBusy as error:
            return max(error.retry_after_s, 0.5)
        except ApiUnavailable as error:
            log.debug("%s: exchange unavailable: %s", bot.name, error)
            return RETRY_UNAVAILABLE_S
        except Exception:  # a bug in a bot must not take the exchange down with it
            self.errors += 1
            log.exception("demo bot %s failed a step; retrying in %s s", bot.name, RETRY_BUG_S)
            return RETRY_BUG_S

    def _work(self, bots: Sequence[Bot]) -> None:
        start = time.monotonic()
        heap = [(start + 0.01 * position, position) for position in range(len(bots))]
        heapq.heapify(heap)
        while heap and not self._stop.is_set():
            due, position = heap[0]
            wait = due - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
                continue
            heapq.heappop(heap)
            delay = self._run_one(bots[position])
            self.steps += 1
            heapq.heappush(heap, (time.monotonic() + max(0.0, delay), position))
