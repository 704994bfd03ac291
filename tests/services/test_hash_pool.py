"""The password hash pool: real worker processes, their priority, a dead worker replaced,
answers that match hashing in the caller's thread, and a Ctrl-C that leaves the workers to
the server that stops them."""

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from perpetua.services.hash_pool import (
    PASSWORD_CHARS_MAX,
    HashPool,
    HashUnavailable,
    InlineHashing,
)
from perpetua.services.passwords import PasswordRejected, check_strength
from tests.runtime.sessions import ctrl_c, foreground_job

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "violet tractor umbrella 42"
SIGINT_WAIT_S = 20.0


@pytest.fixture
def pool() -> Iterator[HashPool]:
    hash_pool = HashPool(FAST, workers=2, nice=7, idle=False)
    yield hash_pool
    hash_pool.close()


def _worker_pids(pool: HashPool) -> list[int]:
    return [w.process.pid for w in pool._all]


def test_hashes_from_the_pool_verify_inline_and_back(pool: HashPool) -> None:
    inline = InlineHashing(FAST)
    made = pool.hash(PASSWORD)
    assert made.startswith("$argon2id$") and PASSWORD not in made
    assert inline.verify(made, PASSWORD) and not inline.verify(made, "wrong " + PASSWORD)
    theirs = inline.hash(PASSWORD)
    assert pool.verify(theirs, PASSWORD) and not pool.verify(theirs, "wrong")
    assert not pool.verify("not a hash", PASSWORD)
    assert not pool.needs_rehash(made)
    assert pool.needs_rehash(PasswordHasher(time_cost=1, memory_cost=512).hash(PASSWORD))


def test_workers_run_at_their_nice_value_with_no_password_in_argv(pool: HashPool) -> None:
    with ThreadPoolExecutor(4) as threads:  # both workers busy at least once
        hashes = list(threads.map(pool.hash, [PASSWORD] * 8))
    assert len(set(hashes)) == 8  # salted
    for pid in _worker_pids(pool):
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 7
        assert PASSWORD.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert os.getsid(pid) == pid  # its own session: its own scheduling group


def test_workers_run_at_sched_idle_on_the_cpus_given() -> None:
    """The default placement (rule 2): ``SCHED_IDLE``, so a waking trading thread preempts a
    hash at once; ``cpus`` pins the workers (a venue giving them a core of their own)."""
    cpu = min(os.sched_getaffinity(0))
    pool = HashPool(FAST, workers=1, cpus=(cpu,))
    try:
        assert pool.verify(pool.hash(PASSWORD), PASSWORD)  # the worker has set itself up
        [pid] = _worker_pids(pool)
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert os.sched_getaffinity(pid) == {cpu}
        assert os.getsid(pid) == os.getsid(0)  # in the server's scheduling group
    finally:
        pool.close()
    plain = HashPool(FAST, workers=1, idle=False)
    try:
        plain.hash(PASSWORD)
        [pid] = _worker_pids(plain)
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER
        assert os.sched_getaffinity(pid) == os.sched_getaffinity(0)
    finally:
        plain.close()


def test_a_dead_worker_is_replaced(pool: HashPool) -> None:
    pool.hash(PASSWORD)
    before = set(_worker_pids(pool))
    for pid in before:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    refused = 0
    for _ in range(4):
        try:
            assert pool.verify(pool.hash(PASSWORD), PASSWORD)
        except HashUnavailable:
            refused += 1
    assert refused == 2  # one call per dead worker, then fresh ones answer
    assert not before & set(_worker_pids(pool))
    assert pool.verify(pool.hash(PASSWORD), PASSWORD)


def test_overlong_or_unencodable_passwords_never_match_and_are_not_sent(pool: HashPool) -> None:
    long = "x" * (PASSWORD_CHARS_MAX + 1)
    made = InlineHashing(FAST).hash(long)
    assert not pool.verify(made, long)
    assert not InlineHashing(FAST).verify(made, long)
    workers = _worker_pids(pool)
    lone_surrogate = "violet tractor \ud800 umbrella"  # valid JSON, not UTF-8
    assert not pool.verify(made, lone_surrogate)
    with pytest.raises(PasswordRejected, match="Unicode"):
        check_strength(lone_surrogate)
    assert _worker_pids(pool) == workers  # nothing died


def test_closing_stops_every_worker() -> None:
    pool = HashPool(FAST, workers=1)
    pid = _worker_pids(pool)[0]
    pool.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_worker_ignores_sigint_and_keeps_answering() -> None:
    """Rule 6: a SIGINT that reaches a worker does not end it (the server stops it)."""
    pool = HashPool(FAST, workers=1)
    try:
        pool.hash(PASSWORD)  # the worker is up: past its start-up, waiting for a request
        [pid] = _worker_pids(pool)
        os.kill(pid, signal.SIGINT)
        assert pool.verify(pool.hash(PASSWORD), PASSWORD)
        assert _worker_pids(pool) == [pid]  # the same worker answered: none was replaced
        assert os.getpgid(pid) == pid and os.getsid(pid) == os.getsid(0)  # rule 6, rule 2
    finally:
        pool.close()


# The server side of a terminal's Ctrl-C: a pool in a process that catches the SIGINT sent to
# its whole process group, then hashes again and closes the pool.
OWNER_SCRIPT = f"""
import signal, time
from argon2 import PasswordHasher
from perpetua.services.hash_pool import HashPool
pool = HashPool(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1), workers=2)
try:
    pool.hash("warm")
    print(*(worker.process.pid for worker in pool._all), flush=True)
    time.sleep({SIGINT_WAIT_S})
except KeyboardInterrupt:
    pass
print("answered", pool.verify(pool.hash({PASSWORD!r}), {PASSWORD!r}), flush=True)
pool.close()
"""


def test_a_ctrl_c_to_the_servers_process_group_leaves_the_workers_to_the_server() -> None:
    """Rule 6, as a terminal does it: SIGINT to the server's whole foreground process group.
    The workers neither print a ``KeyboardInterrupt`` traceback nor die; the server's pool
    still answers, then ``close`` ends them."""
    with foreground_job(OWNER_SCRIPT) as owner:
        assert owner.stdout is not None
        workers = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(workers) == 2, owner.communicate(timeout=SIGINT_WAIT_S)
        out, err = ctrl_c(owner, SIGINT_WAIT_S)
    assert owner.returncode == 0 and "Traceback" not in err, err
    assert out.strip() == "answered True", err
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
