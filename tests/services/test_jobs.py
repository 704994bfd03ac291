"""services.jobs: periodic jobs and the supervisor that runs the venue's background services."""

import asyncio

import pytest

from perpetua.services import jobs
from perpetua.services.jobs import Background, PeriodicJob


def test_periodic_job_runs_at_once_then_every_interval_and_stops_promptly() -> None:
    calls: list[float] = []

    async def step() -> None:
        calls.append(asyncio.get_running_loop().time())

    async def main() -> float:
        job = PeriodicJob("tick", 0.05, step)
        background = Background([job])
        background.start()
        await asyncio.sleep(0.22)
        began = asyncio.get_running_loop().time()
        await background.stop()
        return asyncio.get_running_loop().time() - began

    stop_took = asyncio.run(main())
    assert 3 <= len(calls) <= 6
    assert stop_took < 1.0  # the job waits on the stop event, not the whole interval


def test_a_failing_step_is_counted_and_the_next_still_runs() -> None:
    outcomes = iter([ValueError("rpc down"), None, None])

    async def step() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    async def main() -> PeriodicJob:
        job = PeriodicJob("flaky", 1.0, step)
        assert not await job.run_once()
        assert job.status().last_error == "ValueError: rpc down"
        assert await job.run_once()
        return job

    status = asyncio.run(main()).status()
    assert (status.runs, status.failures, status.last_error) == (2, 1, None)
    assert status.last_duration_s is not None


def test_delay_first_waits_one_interval() -> None:
    calls: list[int] = []

    async def step() -> None:
        calls.append(1)

    async def main() -> None:
        background = Background([PeriodicJob("later", 10.0, step, delay_first=True)])
        background.start()
        await asyncio.sleep(0.05)
        await background.stop()

    asyncio.run(main())
    assert calls == []


class Crashing:
    """Raises on its first run, then works until stopped."""

    name = "crashing"

    def __init__(self) -> None:
        self.starts = 0

    async def run(self, stopping: asyncio.Event) -> None:
        self.starts += 1
        if self.starts == 1:
            raise RuntimeError("first run fails")
        await stopping.wait()


class Stubborn:
    """Ignores the stop event: the supervisor cancels it after the grace period."""

    name = "stubborn"

    def __init__(self) -> None:
        self.cancelled = False

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def test_a_service_that_raises_is_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "RESTART_DELAY_S", 0.01)
    service = Crashing()

    async def main() -> None:
        background = Background([service])
        background.start()
        await asyncio.sleep(0.2)
        await background.stop()

    asyncio.run(main())
    assert service.starts == 2


def test_a_service_that_ignores_stop_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "STOP_GRACE_S", 0.05)
    service = Stubborn()

    async def main() -> None:
        background = Background([service])
        background.start()
        await asyncio.sleep(0.01)
        await background.stop()

    asyncio.run(main())
    assert service.cancelled


def test_limits_are_named_and_enforced() -> None:
    async def step() -> None:
        return None

    with pytest.raises(ValueError, match="below"):
        PeriodicJob("busy", jobs.INTERVAL_MIN_S / 2, step)
    with pytest.raises(ValueError, match="named twice: a"):
        Background([PeriodicJob("a", 1.0, step), PeriodicJob("a", 2.0, step)])
