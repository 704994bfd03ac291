"""The daily snapshot: one proof per UTC day whatever the restarts; a check on a day that has
its proof does nothing; a new day publishes; a height already used waits quietly; the venue
runs the job."""

import asyncio
import datetime
import os
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
