"""A minimal in-process sequencer with the real one's surface (``submit_async``, ``execute``,
``subscribe`` with ``list[Applied]``), applying commands to the real core inline. It lets the
gateway tests run while ``perpetua.sequencer.runner`` changes underneath; ``overloaded`` makes
it refuse orders and amends like a full queue."""

import threading
import time
from typing import Any, NamedTuple

from perpetua.core.commands import AmendOrder, Batch, PlaceOrder
from perpetua.core.engine import Engine
from perpetua.gateway.ports import Overloaded


class Applied(NamedTuple):
    seq: int
    ts_ns: int
    command: Any
    events: list[object]


class Result(NamedTuple):
    seq: int
    ts_ns: int
    events: list[object]


class InlineSequencer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seq = 0
        self.ts_ns = 0
        self.subscribers: list[Any] = []
        self.overloaded = False
        self.lock = threading.Lock()

    def subscribe_batches(self, callback: Any) -> None:
        self.subscribers.append(callback)

    def subscribe(self, callback: Any) -> None:
        """Per command, as the real sequencer's ``subscribe`` (the projector uses it)."""

        def per_command(batch: list[Applied]) -> None:
            for applied in batch:
                callback(applied.seq, applied.ts_ns, applied.command, applied.events)

        self.subscribers.append(per_command)

    def execute(self, command: Any, timeout_s: float | None = None) -> Result:
        if self.overloaded and isinstance(command, PlaceOrder | AmendOrder | Batch):
            raise Overloaded("queue full")
        with self.lock:
            self.seq += 1
            # a command may ask for its time (tests: funding times, expiries); else wall time
            self.ts_ns = max(self.ts_ns + 1, command.ts_ns or time.time_ns())
            stamped = command._replace(ts_ns=self.ts_ns)
            events = self.engine.apply(stamped)
            applied = Applied(self.seq, self.ts_ns, stamped, events)
            for callback in self.subscribers:
                callback([applied])
            return Result(self.seq, self.ts_ns, events)

    async def submit_async(self, command: Any) -> Result:
        return self.execute(command)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
