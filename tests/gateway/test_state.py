"""The gateway as the sequencer's subscriber: a batch committed after the server's event loop
closed (a stopping ``perpetua run``: the queue drained, an idle tick) is dropped by the
gateway, and neither fails the sequencer nor keeps the batch from the read-model projector;
without read models the views are seeded from the recovered engine."""

import asyncio
from types import SimpleNamespace
from typing import Any

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, IndexPrice, PlaceOrder
from perpetua.core.engine import Engine
from perpetua.core.enums import Side
from perpetua.gateway import GatewayConfig
from perpetua.gateway.bootstrap import engine_seed, seed_views
from perpetua.gateway.private import PrivateViews
from perpetua.gateway.state import Gateway
from perpetua.marketdata.hub import MarketData
from perpetua.sequencer.runner import NullJournal, Sequencer


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

    sequencer.subscribe(projector)  # as serve.open_exchange: the projector, then the gateway
    gateway = Gateway(GatewayConfig(), sequencer, None, None)
    _serve_once(gateway)
    assert gateway.loop is not None and gateway.loop.is_closed()
    with sequencer:
        first = sequencer.execute(Deposit(0, 1001, "XBt", 10**8, "after-close-1"))
        second = sequencer.execute(Deposit(0, 1001, "XBt", 10**8, "after-close-2"))
        assert sequencer.failure is None
    assert sequencer.failure is None
    assert {first.seq, second.seq} <= set(projected)


def test_without_read_models_the_views_are_seeded_from_the_engine() -> None:
    """No store: wallets and positions (with their opening fees) come from the recovered
    engine's ledger and positions."""
    engine = Engine(default_catalogue())
    for account in (7, 8):
        engine.apply(Deposit(1, account, "XBt", 10**8, f"d{account}"))
    engine.apply(IndexPrice(2, ".BXBT", 60_000, 1))
    engine.apply(PlaceOrder(3, 8, "XBTUSD", Side.SELL, 1000, price=600_000))
    engine.apply(PlaceOrder(4, 7, "XBTUSD", Side.BUY, 1000, price=600_000))
    market = MarketData(default_catalogue())
    gw = SimpleNamespace(market=market, history=None, private=PrivateViews(market), last_seq=0,
                         add_instrument=lambda spec: None)
    seed_views(gw, engine_seed(engine, 4))
    held = engine.state.markets["XBTUSD"].positions[7]
    assert gw.private.wallet_row(7, "XBt")["amount"] == engine.state.ledger.balance(7, "XBt")
    seeded = gw.private.position_event(7, "XBTUSD")
    assert (seeded.current_qty, seeded.current_cost) == (1000, held.cost)
    assert seeded.open_comm == held.open_comm != 0
    assert gw.last_seq == 4
