"""A projector on its own thread, fed by the sequencer's subscriber call.

``publish(seq, ts_ns, command, events)`` is the subscriber (``Sequencer.subscribe``); it never
raises. The worker takes up to ``PROJECT_COMMANDS_PER_TRANSACTION_MAX`` queued records per SQL
transaction, waiting up to ``PROJECT_LINGER_S`` after the first for more: under load that makes
at most about one transaction per linger (50 a second) instead of one per sequencer batch, each
of which paid its fixed cost with the GIL the event loop needs (docs/decisions.md §31); the read
models trail by about that much more.

With a ``data_dir`` (how ``perpetua run`` uses it) the thread never blocks the sequencer and
never loses a record for good:

* at start it catches up from the journal (``catch_up``): records queued but not committed
  before a crash were never projected (a failure here is logged and retried at the next hole);
* ``publish`` on a full queue drops the record; the next record after the hole is a gap, and
  a gap makes the worker catch up from the journal, then go on with the queue (records already
  projected are skipped by seq);
* a failed SQL transaction (database down) is retried after a pause that doubles up to
  ``RETRY_DELAY_MAX_S``, by catching up from the journal.

Without a ``data_dir`` (tests, tools) nothing can be re-derived: ``publish`` blocks while the
queue is full, and the first error stops the worker; ``flush`` and ``close`` raise it.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from perpetua.core.commands import Command
from perpetua.core.events import Event
from perpetua.store.catch_up import catch_up
from perpetua.store.limits import (
    PROJECT_COMMANDS_PER_TRANSACTION_MAX,
    PROJECT_LINGER_S,
    PROJECTOR_QUEUE_RECORDS_MAX,
)
from perpetua.store.projector import ProjectionError, ProjectionGap, Projector, Record

__all__ = ["RETRY_DELAY_MAX_S", "ProjectorThread"]

log = logging.getLogger(__name__)

RETRY_DELAY_MIN_S = 0.5
RETRY_DELAY_MAX_S = 30.0


class ProjectorThread:
    def __init__(
        self,
        projector: Projector,
        queue_max: int = PROJECTOR_QUEUE_RECORDS_MAX,
        data_dir: str | Path | None = None,
        engine_factory: Callable[[], Any] | None = None,
        linger_s: float = PROJECT_LINGER_S,
    ) -> None:
        self.projector = projector
        self.linger_s = linger_s
        self.data_dir = None if data_dir is None else Path(data_dir)
        self._engine_factory = engine_factory
        self._queue: queue.Queue[Record | None] = queue.Queue(maxsize=queue_max)
        self._error: BaseException | None = None
        self._dropping = False
        self.dropped = 0  # records dropped on a full queue (re-derived from the journal)
        self.catch_ups = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="projector", daemon=True)
        self._thread.start()

    def publish(self, seq: int, ts_ns: int, command: Command, events: Sequence[Event]) -> None:
        """The sequencer's subscriber: queue one record (see the module docstring)."""
        if self._error is not None:
            return
        record = (seq, ts_ns, command, events)
        if self.data_dir is None:
            self._queue.put(record)
            return
        try:
            self._queue.put_nowait(record)
            self._dropping = False
        except queue.Full:
            self.dropped += 1
            if not self._dropping:
                self._dropping = True
                log.warning(
                    "projector queue full at seq %d: dropping records; they will be "
                    "re-derived from the journal",
                    seq,
                    extra={"seq": seq},
                )

    __call__ = publish

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise ProjectionError("projector thread stopped") from self._error

    def flush(self) -> None:
        """Wait until everything queued so far is committed (or the worker failed)."""
        self._queue.join()
        self._raise_if_failed()

    def close(self) -> None:
        """Project what is queued, then stop the worker."""
        if self._thread.is_alive():
            self._stopping.set()
            self._queue.put(None)
            self._thread.join()
        self._raise_if_failed()

    def _catch_up(self) -> None:
        if self.data_dir is None:
            raise ProjectionError("no data dir to catch up from")
        if self._engine_factory is None:
            catch_up(self.projector, self.data_dir)
        else:
            catch_up(self.projector, self.data_dir, self._engine_factory)
        self.catch_ups += 1

    def _take(self) -> tuple[list[Record], int, bool]:
        """Up to a transaction's worth of records: (records, items taken, stop seen)."""
        first = self._queue.get()
        if first is None:
            return [], 1, True
        batch, taken = [first], 1
        deadline = time.monotonic() + self.linger_s
        while len(batch) < PROJECT_COMMANDS_PER_TRANSACTION_MAX:
            try:
                wait_s = deadline - time.monotonic()
                item = self._queue.get(timeout=wait_s) if wait_s > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            taken += 1
            if item is None:
                return batch, taken, True
            batch.append(item)
        return batch, taken, False

    def _project(self, batch: list[Record]) -> None:
        delay_s = RETRY_DELAY_MIN_S
        while True:
            try:
                self.projector.project(batch)
                return
            except ProjectionGap:
                if self.data_dir is None:
                    raise
                self._catch_up()
            except Exception:
                if self.data_dir is None or self._stopping.is_set():
                    raise
                log.exception("projector: transaction failed; retrying in %.1f s", delay_s)
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, RETRY_DELAY_MAX_S)
                try:
                    self._catch_up()
                except Exception:
                    log.exception("projector: catch-up from the journal failed")

    def _run(self) -> None:
        if self.data_dir is not None:
            try:
                self._catch_up()
            except Exception:  # the next hole in the stream retries it, with backoff
                log.exception("projector thread: start-up catch-up from the journal failed")
        stopping = False
        while not stopping:
            batch, taken, stopping = self._take()
            try:
                if batch and self._error is None:
                    self._project(batch)
            except BaseException as error:  # stop, and report through flush/close
                log.exception("projector thread: projection failed; stopping")
                self._error = error
            finally:
                for _ in range(taken):
                    self._queue.task_done()
