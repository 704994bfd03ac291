"""The seeded simulator: reproducible paths, jumps and venue drop-outs as documented."""

from perpetua.core.calendar import utc_ns
from perpetua.feeds import (
    PROTECTION_WINDOW_NS,
    PUBLISH_INTERVAL_NS,
    AssetConfig,
    ConstituentStatus,
    IndexConfig,
    IndexSimulator,
    IndexStatus,
    SimulatorConfig,
    VenueConfig,
    default_config,
)
from perpetua.feeds.simulator import STEPS_PER_ADVANCE_MAX, step_sigma_ppb

START_NS = utc_ns(2026, 11, 30, 15, 0)  # a Monday, 15:00 UTC: every market is open
STEP_NS = PUBLISH_INTERVAL_NS
MINUTE_NS = 60 * 10**9


def _path(
    seed: object, steps: int, config: SimulatorConfig | None = None, stride: int = 1
) -> list[tuple[str, int, str]]:
    sim = IndexSimulator(config or default_config(), seed, START_NS)  # type: ignore[arg-type]
    out = [(r.symbol, r.units, r.status.value) for r in sim.advance(START_NS)]
    for k in range(stride, steps + 1, stride):
        out.extend((r.symbol, r.units, r.status.value) for r in sim.advance(START_NS + k * STEP_NS))
    return out


def _one_asset(
    volatility_ppm: int = 0,
    jumps_per_day: int = 0,
    jump_size_ppm: int = 0,
    venues: tuple[VenueConfig, ...] | None = None,
) -> SimulatorConfig:
    asset = AssetConfig("XBT", "100000", volatility_ppm, jumps_per_day, jump_size_ppm)
    venues = venues or (
        VenueConfig("A", 500_000, noise_ppm=0),
        VenueConfig("B", 300_000, noise_ppm=0),
        VenueConfig("C", 200_000, noise_ppm=0),
    )
    return SimulatorConfig((asset,), (IndexConfig(".BXBT", "XBT", 2, venues),))


def test_same_seed_same_path_different_seed_different_path() -> None:
    first = _path(7, 500)
    assert first == _path(7, 500)
    assert first != _path(8, 500)


def test_path_does_not_depend_on_how_often_it_is_advanced() -> None:
    """The walk steps on the 5 s grid: polling every step or every 7th step lands on the same
    values at the common times."""
    fine = IndexSimulator(default_config(), 3, START_NS)
    coarse = IndexSimulator(default_config(), 3, START_NS)
    fine.advance(START_NS)
    coarse.advance(START_NS)
    for k in range(1, 7 * 40 + 1):
        fine_readings = fine.advance(START_NS + k * STEP_NS)
        if k % 7 == 0:
            assert coarse.advance(START_NS + k * STEP_NS) == fine_readings


def test_first_advance_publishes_every_index_then_once_per_step() -> None:
    sim = IndexSimulator(default_config(), 1, START_NS)
    first = sim.advance(START_NS)
    assert {r.symbol for r in first} == set(sim.symbols()) and all(r.publish for r in first)
    assert sim.advance(START_NS + STEP_NS - 1) == []
    again = sim.advance(START_NS + STEP_NS)
    assert len(again) == len(first) and all(r.ts_ns == START_NS + STEP_NS for r in again)


def test_no_volatility_no_jumps_holds_still() -> None:
    sim = IndexSimulator(_one_asset(), 1, START_NS)
    values = {r.units for k in range(200) for r in sim.advance(START_NS + k * STEP_NS)}
    assert values == {10_000_000}  # 100000.00 exactly, every venue prints it


def test_volatility_scales_as_documented() -> None:
    # 80% a year over 5 s: 0.8 * sqrt(5 / 31_536_000) = 0.0318%
    assert step_sigma_ppb(800_000, STEP_NS) == 318_545
    sim = IndexSimulator(_one_asset(volatility_ppm=800_000), 11, START_NS)
    walk = sim.walks["XBT"]
    moves = [walk.step() for _ in range(20_000)]
    variance = sum(m * m for m in moves) // len(moves)
    assert 0.9 < variance**0.5 / 318_536 < 1.1


def test_jumps_are_rare_and_sized_as_configured() -> None:
    """With no diffusion every move is a jump: about jumps_per_day per simulated day, each
    0.5x..1.5x of jump_size_ppm, up or down."""
    sim = IndexSimulator(_one_asset(jumps_per_day=100, jump_size_ppm=10_000), 5, START_NS)
    walk = sim.walks["XBT"]
    days = 5
    moves = [walk.step() for _ in range(days * 17_280)]
    jumps = [m for m in moves if m]
    assert walk.jump_count == len(jumps)
    assert 400 < len(jumps) < 600  # 500 expected
    assert all(5_000_000 <= abs(m) <= 15_000_000 for m in jumps)
    assert any(m > 0 for m in jumps) and any(m < 0 for m in jumps)


def test_jump_moves_the_index_by_its_size() -> None:
    config = _one_asset(jumps_per_day=17_280 * 1000, jump_size_ppm=10_000)  # a jump every step
    sim = IndexSimulator(config, 2, START_NS)
    before = sim.advance(START_NS)[0].units
    after = sim.advance(START_NS + STEP_NS)[0].units
    assert 0.005 <= abs(after - before) / before <= 0.015


def test_a_silent_venue_is_dropped_after_the_protection_window_and_weights_renormalise() -> None:
    sim = IndexSimulator(_one_asset(volatility_ppm=500_000), 9, START_NS)
    sim.advance(START_NS)
    sim.halt_venue(".BXBT", "A", START_NS + 40 * MINUTE_NS)
    inside = START_NS + PROTECTION_WINDOW_NS - STEP_NS  # silent for less than 15 minutes
    rows = {r.venue: r for r in sim.advance(inside)[0].constituents}
    assert rows["A"].status == ConstituentStatus.FRESH and rows["A"].effective_weight_ppm == 500_000
    assert rows["A"].logged_ns == START_NS  # still its first print
    reading = sim.advance(START_NS + PROTECTION_WINDOW_NS)[0]
    rows = {r.venue: r for r in reading.constituents}
    assert rows["A"].status == ConstituentStatus.DROPPED and rows["A"].effective_weight_ppm == 0
    assert rows["B"].effective_weight_ppm == 600_000 and rows["C"].effective_weight_ppm == 400_000
    expected = (rows["B"].units * 300_000 + rows["C"].units * 200_000) // 500_000
    assert reading.units == expected and reading.status == IndexStatus.LIVE and reading.publish
    back = sim.advance(START_NS + 41 * MINUTE_NS)[0]  # printing again: back in
    assert {r.status for r in back.constituents} == {ConstituentStatus.FRESH}


def test_every_venue_silent_makes_the_index_stale_held_and_unpublished() -> None:
    sim = IndexSimulator(_one_asset(volatility_ppm=500_000), 9, START_NS)
    sim.advance(START_NS)
    last = sim.advance(START_NS + STEP_NS)[0]
    for venue in ("A", "B", "C"):
        sim.halt_venue(".BXBT", venue, START_NS + 60 * MINUTE_NS)
    stale = sim.advance(START_NS + 20 * MINUTE_NS)[0]
    assert stale.status == IndexStatus.STALE and not stale.publish
    assert stale.units == last.units  # held
    recovered = sim.advance(START_NS + 61 * MINUTE_NS)[0]
    assert recovered.status == IndexStatus.LIVE and recovered.publish


def test_random_outages_happen_at_the_configured_rate() -> None:
    venues = (
        VenueConfig("A", 500_000, outages_per_day=24, outage_minutes=(20, 20)),
        VenueConfig("B", 500_000),
    )
    sim = IndexSimulator(_one_asset(volatility_ppm=100_000, venues=venues), 4, START_NS)
    statuses = []
    for k in range(2 * 17_280):  # two days
        reading = sim.advance(START_NS + k * STEP_NS)
        if reading:
            statuses.append({r.venue: r.status for r in reading[0].constituents}["A"])
    venue_a = sim.venues[".BXBT"][0]
    assert 30 <= venue_a.outage_count <= 60  # ~40 expected, fewer while already silent
    assert ConstituentStatus.DROPPED in statuses  # 20-minute outages outlast the window


def test_resume_from_saved_prices() -> None:
    sim = IndexSimulator(default_config(), 1, START_NS)
    for k in range(100):
        sim.advance(START_NS + k * STEP_NS)
    saved = sim.prices()
    resumed = IndexSimulator(default_config(), 1, START_NS + 100 * STEP_NS, saved)
    assert resumed.prices() == saved


def test_a_long_pause_catches_up_a_bounded_number_of_steps() -> None:
    sim = IndexSimulator(_one_asset(volatility_ppm=500_000), 1, START_NS)
    sim.advance(START_NS)
    readings = sim.advance(START_NS + 3 * STEPS_PER_ADVANCE_MAX * STEP_NS)
    assert readings[0].ts_ns == START_NS + 3 * STEPS_PER_ADVANCE_MAX * STEP_NS
