"""The venue runs its background services (services.jobs) while it serves, and stops them
before the gateway: a service appended to ``venue.background`` before serving starts with the
server, sees the gateway running, and is stopped when the server stops."""

import asyncio
import os
from pathlib import Path

from starlette.testclient import TestClient

from perpetua.runtime.config import FeedsConfig, VenueConfig
from perpetua.runtime.venue import open_venue


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.events: list[str] = []

    async def run(self, stopping: asyncio.Event) -> None:
        self.events.append("started")
        await stopping.wait()
        self.events.append("stopped")


def test_background_services_run_while_the_venue_serves(tmp_path: Path) -> None:
    saved = os.umask(0o022)
    try:
        venue = open_venue(
            VenueConfig(
                data_dir=tmp_path / "data", operator_key="k", feeds=FeedsConfig(default="none")
            )
        )
    finally:
        os.umask(saved)
    service = Recorder()
    venue.background.append(service)
    venue.start()
    try:
        with TestClient(venue.app) as client:
            assert client.get("/api/v1/instrument/active").status_code == 200
            assert service.events == ["started"]
        assert service.events == ["started", "stopped"]
    finally:
        venue.stop()
