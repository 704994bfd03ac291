"""The gateway as the sequencer's subscriber: a batch committed after the server's event loop
closed (a stopping ``perpetua run``: the queue drained, an idle tick) is dropped by the
gateway, and neither fails the sequencer nor keeps the batch from the read-model projector."""

import asyncio
from typing import Any

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit
from perpetua.core.engine import Engine
from perpetua.gateway import GatewayConfig
from perpetua.gateway.history import History
from perpetua.gateway.state import Gateway
from perpetua.sequencer.runner import NullJournal, Sequencer
from tests.gateway.harness import read_models


def _serve_once(gateway: Gateway) -> None:
    """Bind the gateway to a loop and stop it, as uvicorn's lifespan does; the loop closes."""

    async def lifespan() -> None:
        await gateway.start()
        await gateway.stop()

    asyncio.run(lifespan())


def test_a_batch_after_the_loop_closed_is_dropped_and_the_sequencer_goes_on() -> None:
    sequencer = Sequencer(Engine(default_catalogue()), NullJournal())
    projected: list[int] = []

    def projector(seq: int, ts_ns: int, command: Any, events: list[object]) -> None:
        projected.append(seq)

    sequencer.subscribe(projector)  # as open_venue: the projector, then the gateway
    with read_models() as models:
        gateway = Gateway(GatewayConfig(), sequencer, History.over(models.projector), None)
        _serve_once(gateway)
    assert gateway.loop is not None and gateway.loop.is_closed()
    with sequencer:
        first = sequencer.execute(Deposit(0, 1001, "XBt", 10**8, "after-close-1"))
        second = sequencer.execute(Deposit(0, 1001, "XBt", 10**8, "after-close-2"))
        assert sequencer.failure is None
    assert sequencer.failure is None
    assert {first.seq, second.seq} <= set(projected)
