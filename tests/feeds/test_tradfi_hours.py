"""TradFi underlyings follow their trading hours: the index holds still outside them, and the
perpetual takes no orders (the core's INSTRUMENT_OUTSIDE_TRADING_HOURS) but keeps funding.

Documented behaviour of a TradFi perpetual (SPYUSDT, XAUUSDT, EURUSDT) outside its hours:
- the simulator neither moves nor publishes its index (``CLOSED``); the core keeps the last one;
- new orders are rejected with ``INSTRUMENT_OUTSIDE_TRADING_HOURS``; resting orders stay;
- funding still happens at 04:00, 12:00 and 20:00 UTC on the held index (the core does not
  pause it), so open positions pay or receive as usual;
- at the next open the walk resumes from the price it held.
"""

from perpetua.core.calendar import utc_ns
from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, IndexPrice, PlaceOrder, Tick
from perpetua.core.engine import Engine
from perpetua.core.enums import OrdType, Side
from perpetua.core.events import Funding, OrderEvent, Rejected, Trade
from perpetua.core.reasons import Reason
from perpetua.feeds import IndexSimulator, IndexStatus, default_config, to_command

STEP_NS = 5 * 10**9
FRIDAY_20H = utc_ns(2026, 11, 27, 20, 0)
FRIDAY_CLOSE = utc_ns(2026, 11, 27, 21, 0)  # US equity session ends 21:00 UTC
MONDAY_OPEN = utc_ns(2026, 11, 30, 14, 30)


def _spy_simulator(start_ns: int, seed: int = 1) -> IndexSimulator:
    return IndexSimulator(default_config().only({".BSPYT"}), seed, start_ns)


def test_equity_index_moves_in_session_and_holds_still_over_the_weekend() -> None:
    sim = _spy_simulator(FRIDAY_20H)
    sim.advance(FRIDAY_20H)
    in_session = [sim.advance(FRIDAY_20H + k * STEP_NS)[0] for k in range(1, 720)]
    assert all(r.status == IndexStatus.LIVE and r.publish for r in in_session)
    assert len({r.units for r in in_session}) > 50
    held = in_session[-1].units
    weekend = [sim.advance(t)[0] for t in range(FRIDAY_CLOSE, MONDAY_OPEN, 600 * STEP_NS)]
    assert all(r.status == IndexStatus.CLOSED and not r.publish for r in weekend)
    assert {r.units for r in weekend} == {held}
    walk_before = sim.walks["SPY"].units
    opening = sim.advance(MONDAY_OPEN)[0]
    assert opening.status == IndexStatus.LIVE and opening.publish
    # the walk resumed from the held price: one step away from it, not from the start price
    assert abs(sim.walks["SPY"].units - walk_before) * 100 < walk_before


def test_a_closed_market_publishes_its_index_once_at_start() -> None:
    saturday = utc_ns(2026, 11, 28, 12, 0)
    sim = _spy_simulator(saturday)
    first = sim.advance(saturday)[0]
    assert first.status == IndexStatus.CLOSED and first.publish
    assert abs(first.units - 60_000) < 60  # 600.00, give or take the venues' noise
    assert not any(r.publish for r in sim.advance(saturday + STEP_NS))


def test_metals_and_fx_follow_their_own_hours() -> None:
    config = default_config().only({".BXAUT", ".BEURT"})
    sim = IndexSimulator(config, 2, FRIDAY_20H)
    sim.advance(FRIDAY_20H)
    # 22:30 Friday: metals shut for the weekend, FX too (Fri 22:00 close)
    late = {r.symbol: r.status for r in sim.advance(utc_ns(2026, 11, 27, 22, 30))}
    assert late == {".BXAUT": IndexStatus.CLOSED, ".BEURT": IndexStatus.CLOSED}
    # Sunday 22:30: FX has reopened (22:00), metals not yet (23:00)
    sunday = {r.symbol: r.status for r in sim.advance(utc_ns(2026, 11, 29, 22, 30))}
    assert sunday == {".BXAUT": IndexStatus.CLOSED, ".BEURT": IndexStatus.LIVE}


def _apply_all(engine: Engine, sim: IndexSimulator, start_ns: int, end_ns: int) -> list[int]:
    """Publish into the engine what the simulator publishes; the values published."""
    published = []
    for t in range(start_ns, end_ns, STEP_NS):
        for reading in sim.advance(t):
            if reading.publish:
                engine.apply(to_command(reading)._replace(ts_ns=t))
                published.append(reading.units)
    return published


def test_the_perpetual_outside_hours_rejects_orders_keeps_resting_ones_and_funds() -> None:
    engine = Engine(default_catalogue())
    sim = _spy_simulator(FRIDAY_20H - 3600 * 10**9)
    t = FRIDAY_20H - 1800 * 10**9
    price = _apply_all(engine, sim, FRIDAY_20H - 3600 * 10**9, t)[-1]  # ticks of 0.01
    for account in (5, 6):
        engine.apply(Deposit(t, account, "USDt", 10**12, f"d{account}"))
    engine.apply(PlaceOrder(t, 5, "SPYUSDT", Side.BUY, 1000, OrdType.LIMIT, price=price))
    fill = engine.apply(PlaceOrder(t, 6, "SPYUSDT", Side.SELL, 1000, OrdType.LIMIT, price=price))
    assert any(type(e) is Trade for e in fill)
    resting = engine.apply(
        PlaceOrder(t, 5, "SPYUSDT", Side.BUY, 1000, OrdType.LIMIT, price=price // 2)
    )
    assert any(type(e) is OrderEvent for e in resting) and not any(
        type(e) is Rejected for e in resting
    )
    # the close passes; over the weekend nothing is published for .BSPYT
    published = _apply_all(engine, sim, t, FRIDAY_CLOSE + 3600 * 10**9)
    assert published
    assert (
        _apply_all(engine, sim, FRIDAY_CLOSE + 3600 * 10**9, FRIDAY_CLOSE + 4 * 3600 * 10**9) == []
    )
    saturday = utc_ns(2026, 11, 28, 4, 0) + 1
    funding = engine.apply(Tick(saturday))
    assert any(type(e) is Funding and e.symbol == "SPYUSDT" for e in funding)
    refused = engine.apply(
        PlaceOrder(saturday, 6, "SPYUSDT", Side.SELL, 1000, OrdType.LIMIT, price=price // 2)
    )
    assert [e.reason for e in refused if type(e) is Rejected] == [
        Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS
    ]
    # the resting bid was not touched: no trade happened while closed
    assert not any(type(e) is Trade for e in refused)


def test_index_price_commands_carry_exact_decimals() -> None:
    sim = _spy_simulator(FRIDAY_20H)
    reading = sim.advance(FRIDAY_20H)[0]
    assert to_command(reading) == IndexPrice(0, ".BSPYT", reading.units, 100)
