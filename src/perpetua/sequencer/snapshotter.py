"""The snapshotter: a thread that writes, verifies and prunes snapshots for the sequencer.

The sequencer's writer images the engine between batches (``engine.snapshot()`` and
``state_hash()`` at the last applied seq); its committer hands the job over only once that seq is
durable. Here, off the writer's and committer's paths, the job is:

    1. encoded and written atomically (`recovery.write_engine_snapshot`);
    2. verified: read back (crc) and restored into a scratch engine whose ``state_hash()`` must
       equal the one recorded; the scratch engine comes from the factory recovery opened the
       data dir with (the base catalogue: the image brings the futures listed at run time,
       which a recovered engine's instruments already hold);
    3. only then are older snapshots pruned (``snapshots_kept`` verified ones stay) and journal
       segments wholly below the oldest snapshot file left are deleted.

Crash safety: a crash at any step leaves either the previous snapshots and journal untouched, or
a complete, synced new snapshot (write_snapshot renames atomically and syncs the directory); the
journal is never pruned past a snapshot that has not restored. A failed snapshot (disk full,
say) loses nothing: it is logged at ERROR and the journal keeps everything.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from perpetua.core.engine import Engine
from perpetua.core.invariant import invariant
from perpetua.sequencer.journal import prune_before
from perpetua.sequencer.recovery import verify_snapshot, write_engine_snapshot
from perpetua.sequencer.snapshot import list_snapshots, prune_snapshots

__all__ = ["SnapshotJob", "Snapshotter"]

_log = logging.getLogger(__name__)


class SnapshotJob(NamedTuple):
    seq: int  # the last seq the image includes; durable before the job is put
    state_hash: str
    image: dict[str, object]
    requests: list[concurrent.futures.Future[Path]]  # resolved with the path once verified


class Snapshotter:
    """One thread taking SnapshotJobs in order; ``put(None)`` ends it after the jobs before."""

    def __init__(
        self,
        snapshot_dir: Path,
        journal_dir: Path | None,  # None: never prune the journal
        engine_factory: Callable[[], Engine],  # a fresh engine to restore into (verification)
        snapshots_kept: int,
        last_seq: int | None,
    ) -> None:
        invariant(snapshots_kept >= 1, "snapshots_kept must be >= 1")
        self.snapshot_dir = snapshot_dir
        self._journal_dir = journal_dir
        self._engine_factory = engine_factory
        self._snapshots_kept = snapshots_kept
        self._jobs: collections.deque[SnapshotJob | None] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._pending = 0  # jobs put and not yet finished
        self.last_seq = last_seq  # of the last snapshot written and verified
        self.thread = threading.Thread(
            target=self._main, name="perpetua-sequencer-snapshotter", daemon=True
        )

    @property
    def busy(self) -> bool:
        """Whether a job is waiting or being written (periodic snapshots skip their turn)."""
        return self._pending > 0

    def put(self, job: SnapshotJob | None) -> None:
        with self._ready:
            if job is not None:
                self._pending += 1
            self._jobs.append(job)
            self._ready.notify()

    def _main(self) -> None:
        while True:  # bounded by the owner, which ends the stream with None
            with self._ready:
                while not self._jobs:
                    self._ready.wait()
                job = self._jobs.popleft()
            if job is None:
                return
            try:
                path = self._write(job)
            except Exception as error:  # a failed snapshot loses nothing: say so loudly
                _log.error(
                    "snapshot at seq %d failed: %r", job.seq, error, exc_info=error,
                    extra={"seq": job.seq},
                )  # fmt: skip
                for request in job.requests:
                    request.set_exception(error)
            else:
                for request in job.requests:
                    request.set_result(path)
            finally:
                with self._ready:
                    self._pending -= 1

    def _write(self, job: SnapshotJob) -> Path:
        """Write, verify by restoring, then prune snapshots and the journal they cover."""
        path = write_engine_snapshot(self.snapshot_dir, job.seq, job.state_hash, job.image)
        verify_snapshot(path, self._engine_factory)
        self.last_seq = job.seq
        prune_snapshots(self.snapshot_dir, self._snapshots_kept)
        # Every snapshot file left (damaged ones too) bounds the pruning, so recovery can fall
        # back from any of them to the journal after it.
        remaining = list_snapshots(self.snapshot_dir)
        if self._journal_dir is not None and remaining:
            prune_before(self._journal_dir, remaining[0].seq + 1)
        _log.info(
            "snapshot at seq %d written and verified: %s", job.seq, path, extra={"seq": job.seq}
        )
        return path
