"""The daily snapshot: one proof per UTC day whatever the restarts; a check on a day that has
its proof does nothing; a new day publishes; a height already used waits quietly; the venue
runs the job."""

import asyncio
import datetime
import os
import time
from pathlib import Path

from perpetua.core.commands import Deposit
from perpetua.runtime.config import FeedsConfig, VenueConfig
from perpetua.runtime.venue import open_venue
from perpetua.sequencer.runner import Sequencer
from perpetua.services.porl.service import ProofService, daily_job
from perpetua.services.server_key import load_server_key


def test_one_proof_per_day(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    sequencer = Sequencer.open(data_dir)
    with sequencer:
        sequencer.execute(Deposit(0, 1, "XBt", 1_000, "d1"))
        service = ProofService(data_dir, load_server_key(data_dir), sequencer)
        day = [datetime.date(2000, 1, 1)]
        job = daily_job(service, today=lambda: day[0])
        assert asyncio.run(job.run_once()) and len(service.snapshots()) == 1
        day[0] = service.published_on()  # type: ignore[assignment]
        assert asyncio.run(job.run_once()) and len(service.snapshots()) == 1
        day[0] = day[0] + datetime.timedelta(days=1)
        # nothing ran since: the same seq, the same height; the job waits without failing
        assert asyncio.run(job.run_once()) and len(service.snapshots()) == 1
        sequencer.execute(Deposit(0, 2, "XBt", 5, "d2"))
        assert asyncio.run(job.run_once()) and len(service.snapshots()) == 2
        assert [m["liabilities"][0]["total"] for m in service.snapshots()] == [1_000, 1_005]


def test_the_venue_runs_the_daily_job(tmp_path: Path) -> None:
    saved = os.umask(0o022)
    try:
        config = VenueConfig(data_dir=tmp_path / "d", feeds=FeedsConfig(default="none"))
        venue = open_venue(config)
    finally:
        os.umask(saved)
    try:
        assert "porl-snapshot" in [service.name for service in venue.background]
    finally:
        venue.stop()


def test_a_proof_of_a_fresh_venue_is_dated_now_not_1970(tmp_path: Path) -> None:
    """An engine that has stamped nothing has time 0; its proof takes the snapshot's time (a
    1970 date also made the daily job think no proof of today existed)."""
    data_dir = tmp_path / "data"
    sequencer = Sequencer.open(data_dir)
    with sequencer:
        now_ns = 1_796_000_000_123_456_789  # 2026-11-30T00:53:20.123456Z
        service = ProofService(
            data_dir, load_server_key(data_dir), sequencer, clock_ns=lambda: now_ns
        )
        manifest = service.take_snapshot()
        assert manifest["created"] == "2026-11-30T00:53:20.123456Z"
        assert service.published_on() == datetime.date(2026, 11, 30)
        sequencer.execute(Deposit(0, 1, "XBt", 1_000, "d1"))
        later = service.take_snapshot()  # the engine's own time from the first stamp on
        stamped = datetime.datetime.fromisoformat(later["created"].replace("Z", "+00:00"))
        assert abs(stamped.timestamp() - time.time()) < 600
