"""An asyncio event loop on its own daemon thread, for threads that must talk NATS.

Invariants
    - `LoopThread.call` runs a coroutine on the loop and waits for it from another thread; it
      must never be called from the loop's own thread (it would wait for itself), which raises
      RuntimeError, not a hang.
    - ``stop()`` stops the loop and joins the thread; idempotent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")
LOOP_JOIN_TIMEOUT_S: Final = 10.0


class LoopThread:
    """A running event loop on a thread named ``name``."""

    def __init__(self, name: str = "perpetua-nats") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run ``coroutine`` on the loop; its result, or its exception, here."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.call on its own loop would wait for itself")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(LOOP_JOIN_TIMEOUT_S)
        self.loop.close()
