"""The leader's bots and copy trading wait for the projector before they act (decisions §29
rule 2), with no timeout; the wait says in the log what it waits for."""

import asyncio
import logging
import threading

import pytest

from perpetua.runtime import cluster_trading
from perpetua.runtime.cluster_trading import LeaderTrading
from perpetua.transport.stream import ClusterNames
from tests.store.databases import postgres_schema_url


def test_a_projector_behind_the_anchor_is_waited_for_and_said(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cluster_trading, "SEED_PROGRESS_EVERY_S", 0.2)
    with postgres_schema_url() as url:  # cluster mode's read models are PostgreSQL's
        _wait_and_stop(LeaderTrading((), ClusterNames("seedwait"), "s1", url), caplog)


def _wait_and_stop(trading: LeaderTrading, caplog: pytest.LogCaptureFixture) -> None:
    engine = trading._open()  # the read models, migrated, with nothing projected yet
    stopping = asyncio.Event()
    seeded: list[int | None] = []
    never = object()  # not reached: the projector never gets to the anchor
    waiter = threading.Thread(
        target=lambda: seeded.append(trading._seed(never, never, 5, stopping))  # type: ignore[arg-type]
    )
    with caplog.at_level(logging.WARNING, logger=cluster_trading.log.name):
        waiter.start()
        threading.Event().wait(0.7)
        assert waiter.is_alive()  # no timeout: acting before the seed would act twice
        stopping.set()
        waiter.join(5)
    assert seeded == [None]
    engine.dispose()
    said = [r.getMessage() for r in caplog.records if "wait for the projector" in r.getMessage()]
    assert said and "it is at seq -1, they need 5" in said[0]
