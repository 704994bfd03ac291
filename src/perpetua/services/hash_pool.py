"""Password hashing off the server process: argon2 runs in a few worker processes.

1. ``Hashing`` is what the identity flows use: ``hash``, ``verify`` and ``needs_rehash``,
   synchronous, called from a flow thread (never the event loop). ``InlineHashing`` does it in
   the calling thread (tests, the admin CLI); ``HashPool`` sends each hash or check to one of
   ``workers`` child processes and blocks its calling thread (not the GIL) until the answer.
2. Why processes, not threads (measured, ``bench/bench_accounts.py``, docs/decisions.md):
   a hashing thread of the server shares its GIL for the Python around each hash, its memory
   map (argon2 maps and unmaps 19 MiB per hash: page faults and TLB shootdowns on the cores
   running the event loop and the sequencer) and, when lowered in priority, it can be
   preempted while holding the GIL and stall the loop (priority inversion). A child process
   shares none of these, so it can run at a low CPU priority safely: by default
   ``SCHED_IDLE`` (Linux), in the server's session: a waking trading thread preempts a hash
   at once, and inside the server's scheduling group (an autogroup, or the service's cgroup)
   the worker weighs 3 against a trading thread's 1,024, so it runs on what trading leaves.
   With ``idle=False`` it runs at nice ``+HASH_NICE`` in a session of its own (a nice value
   only ranks tasks within one autogroup). ``cpus`` pins the workers (a venue that gives
   them a core of their own). Measured: docs/decisions.md §21.
3. Each worker is ``python -m perpetua.services.hash_pool`` (this module, nothing else of
   ours imported): one JSON line per request on its stdin, one per answer on its stdout, in
   order. Passwords cross only that pipe: never argv, the environment or a log.
4. At most ``workers`` hashes run at once; a caller waits for a free worker at most
   ``HASH_WAIT_S_MAX``, then gets ``HashUnavailable`` (the flow answers 503). A worker that
   dies is replaced and its caller gets ``HashUnavailable``; a worker never answers for
   another request than the one it was sent.
5. A password longer than ``PASSWORD_CHARS_MAX``, or one that is not valid Unicode text (a
   lone surrogate: JSON can carry one), never matches and is never sent: the strength rule
   (``passwords``) refuses both before anything is hashed, and a huge one must not cost the
   pool more than a normal one.
6. Stopping is the server's: a worker ignores SIGINT, and each runs in a process group of its
   own (with ``idle``, still in the server's session, so rule 2's scheduling group holds), so
   a terminal's Ctrl-C, sent to the server's foreground process group, never reaches it, even
   while its interpreter starts. The server ends its workers in ``close``: their stdin closes
   and each exits at the end of its input, without a ``KeyboardInterrupt`` traceback.
"""

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from typing import IO, Any, Final, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "HASH_CPU_MAX",
    "HASH_IDLE_DEFAULT",
    "HASH_NICE",
    "HASH_NICE_MAX",
    "HASH_WAIT_S_MAX",
    "HASH_WORKERS_DEFAULT",
    "HASH_WORKERS_MAX",
    "HashPool",
    "HashRefused",
    "HashUnavailable",
    "Hashing",
    "InlineHashing",
]

HASH_WORKERS_DEFAULT: Final = 1
HASH_WORKERS_MAX: Final = 64
HASH_NICE: Final = 10
HASH_NICE_MAX: Final = 19
HASH_IDLE_DEFAULT: Final = True
HASH_CPU_MAX: Final = 1_024  # CPU numbers a worker may be pinned to: 0 .. HASH_CPU_MAX - 1
HASH_WAIT_S_MAX: Final = 10.0
AUTOGROUP_PATH: Final = "/proc/self/autogroup"
WORKER_EXIT_WAIT_S: Final = 5.0
PASSWORD_CHARS_MAX: Final = 4_096  # 4x the longest password the strength rule allows


class HashUnavailable(Exception):
    """No worker answered in time, or one died (rule 4): the caller may retry later."""


class HashRefused(ValueError):
    """A live worker could not hash or check the input (a bug: rule 5 filters inputs)."""


class Hashing(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    def close(self) -> None: ...


def _unsendable(password: str) -> bool:
    """Rule 5: too long, or not encodable as UTF-8 (argon2 hashes the UTF-8 bytes)."""
    if len(password) > PASSWORD_CHARS_MAX:
        return True
    try:
        password.encode()
    except UnicodeEncodeError:
        return True
    return False


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return bool(hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


class InlineHashing:
    """``Hashing`` in the calling thread (argon2-cffi releases the GIL inside the hash)."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        return not _unsendable(password) and _verify(self.hasher, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return bool(self.hasher.check_needs_rehash(password_hash))

    def close(self) -> None:
        """Nothing to release: the hashes ran in their callers' threads."""


class _Worker:
    """One child process and its pipes; used by one caller at a time (the pool's queue)."""

    def __init__(
        self, hasher: PasswordHasher, nice: int, idle: bool, cpus: tuple[int, ...]
    ) -> None:
        params = hasher.time_cost, hasher.memory_cost, hasher.parallelism, nice, int(idle)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                __name__,
                *(str(p) for p in params),
                ",".join(str(c) for c in cpus) or "-",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            start_new_session=not idle,  # rule 2: at nice, its own scheduling group
            process_group=0 if idle else None,  # rule 6: out of the terminal's Ctrl-C
        )

    def ask(self, request: list[str]) -> Any:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(request).encode() + b"\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise EOFError("hash worker exited")
        status, value = json.loads(line)
        if status != "ok":
            raise HashRefused(f"hash worker refused: {value}")
        return value

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(WORKER_EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class HashPool:
    """``Hashing`` in ``workers`` child processes at nice ``+nice`` (rules 1-5)."""

    def __init__(
        self,
        hasher: PasswordHasher,
        workers: int = HASH_WORKERS_DEFAULT,
        nice: int = HASH_NICE,
        idle: bool = HASH_IDLE_DEFAULT,
        cpus: tuple[int, ...] = (),
    ) -> None:
        if not 1 <= workers <= HASH_WORKERS_MAX:
            raise ValueError(f"hash workers: 1 to {HASH_WORKERS_MAX}")
        self.hasher = hasher
        self.nice = nice
        self.idle = idle
        self.cpus = cpus
        self._idle: queue.Queue[_Worker] = queue.Queue(workers)
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(workers):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        worker = _Worker(self.hasher, self.nice, self.idle, self.cpus)
        with self._lock:
            self._all.append(worker)
        return worker

    def _ask(self, request: list[str]) -> Any:
        try:
            worker = self._idle.get(timeout=HASH_WAIT_S_MAX)
        except queue.Empty:
            raise HashUnavailable("no password hash worker free") from None
        try:
            return worker.ask(request)
        except (OSError, EOFError, json.JSONDecodeError) as error:
            worker.stop()
            with self._lock:
                self._all.remove(worker)
            if self._closed:
                raise HashUnavailable("the hash pool is closed") from None
            worker = self._start()
            raise HashUnavailable(f"password hash worker failed: {type(error).__name__}") from None
        finally:
            self._idle.put(worker)

    def hash(self, password: str) -> str:
        return str(self._ask(["hash", password]))

    def verify(self, password_hash: str, password: str) -> bool:
        return not _unsendable(password) and bool(self._ask(["verify", password_hash, password]))

    def needs_rehash(self, password_hash: str) -> bool:
        return bool(self.hasher.check_needs_rehash(password_hash))

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            worker.stop()


def _serve(argv: list[str], requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker: lower its own priority, then answer each request line in order."""
    time_cost, memory_kib, parallelism, nice, idle = (int(a) for a in argv[:5])
    with contextlib.suppress(OSError):
        os.nice(nice)
    if idle:
        with contextlib.suppress(OSError, AttributeError):  # Linux only
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    if argv[5] != "-":
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {int(c) for c in argv[5].split(",")})
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    for line in requests:
        op, *args = json.loads(line)
        try:
            if op == "hash":
                answer: list[Any] = ["ok", hasher.hash(args[0])]
            elif op == "verify":
                answer = ["ok", _verify(hasher, args[0], args[1])]
            else:
                answer = ["error", f"unknown op {op!r}"]
        except Exception as error:  # noqa: BLE001 - the caller decides; the worker stays up
            answer = ["error", type(error).__name__]
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # rule 6: the server stops its workers
    _serve(sys.argv[1:], sys.stdin.buffer, sys.stdout.buffer)
