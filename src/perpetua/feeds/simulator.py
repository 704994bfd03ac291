"""The seeded index simulator: jumpy random walks, simulated constituent venues, composites.

Randomness is fine here (the feed is outside the core) but it is reproducible: every draw comes
from a ``random.Random`` seeded by ``(seed, asset)`` or ``(seed, index, venue)``, and the walk
steps on a fixed grid of absolute times (multiples of ``step_ns``, 5 s), so the same seed and
the same start give the same path however often ``advance`` is called and however late.
Adding an asset or a venue does not change the others' paths.

Model, per step of ``dt = step_ns`` (all integer arithmetic on exact decimal units):
- the true price ``S`` (units of 1e-8 quote) moves by ``S * r // 1e9`` with ``r`` in ppb:
  a normal draw of standard deviation ``volatility * sqrt(dt / 365 days)`` (Irwin-Hall: the sum
  of twelve uniform 20-bit integers, centred), plus, with probability ``jumps_per_day * dt /
  1 day``, a jump of ``0.5x..1.5x jump_size`` in either direction. ``S`` never goes below 1 unit;
- each venue prints ``S * (1 + basis + noise)`` floored to the index's decimals, ``noise`` a
  normal draw of ``noise_ppm``; with probability ``outages_per_day * dt / 1 day`` it instead
  goes silent for ``outage_minutes`` (uniform), printing nothing until the outage ends;
- TradFi assets (trading hours not 24x7) neither move nor print while their market is closed:
  their index holds still and reads ``CLOSED`` (not published; the core keeps the last index).

Readings (``advance``): at each call that crossed at least one grid time, one reading per index
at the last grid time crossed: ``LIVE`` (published) from ``composite.compose``, ``STALE`` (held,
not published) when every venue was silent for the protection window, or ``CLOSED``. The first
call also publishes every index once, open or not, so every market has an index from the start.
A call that is more than ``STEPS_PER_ADVANCE_MAX`` steps behind (a laptop asleep) simulates only
the last that many steps: the walk resumes where it stood.
"""

import random
from collections.abc import Mapping
from dataclasses import replace
from math import isqrt

from perpetua.core.calendar import TradingHours, is_open
from perpetua.feeds.composite import IndexStatus, VenuePrint, compose
from perpetua.feeds.config import (
    WALK_DECIMALS,
    AssetConfig,
    IndexConfig,
    SimulatorConfig,
    VenueConfig,
)
from perpetua.feeds.prices import parse_units, rescale
from perpetua.feeds.source import IndexReading

__all__ = ["STEPS_PER_ADVANCE_MAX", "AssetWalk", "IndexSimulator", "VenueSim", "step_sigma_ppb"]

PPB = 1_000_000_000
DAY_NS = 86_400 * 1_000_000_000
YEAR_NS = 365 * DAY_NS
MINUTE_NS = 60 * 1_000_000_000
STEPS_PER_ADVANCE_MAX = 17_280  # one day of 5 s steps
_UNIFORM_BITS = 20
_UNIFORMS = 12  # Irwin-Hall: the sum of 12 uniforms has the variance of one unit normal


def _normal_scaled(rng: random.Random) -> int:
    """A draw of ``N(0, 1) * 2**20`` (approximately), from integers only."""
    total = sum(rng.getrandbits(_UNIFORM_BITS) for _ in range(_UNIFORMS))
    return total - (_UNIFORMS << _UNIFORM_BITS) // 2


def step_sigma_ppb(volatility_ppm: int, step_ns: int) -> int:
    """The per-step standard deviation in ppb of an annualised volatility: vol * sqrt(dt/year)."""
    return volatility_ppm * isqrt(step_ns * PPB * PPB // YEAR_NS) // 1_000_000


def _per_step_ppb(per_day: int, step_ns: int) -> int:
    return per_day * step_ns * PPB // DAY_NS


class AssetWalk:
    """The true price of one asset in units of ``10**-WALK_DECIMALS``."""

    __slots__ = ("config", "jump_count", "jump_ppb", "rng", "sigma_ppb", "units")

    def __init__(
        self, config: AssetConfig, seed: int | str, step_ns: int, start_units: int | None = None
    ) -> None:
        self.config = config
        self.rng = random.Random(f"{seed}:asset:{config.name}")
        self.units = start_units or parse_units(config.start_price, WALK_DECIMALS)
        self.sigma_ppb = step_sigma_ppb(config.volatility_ppm, step_ns)
        self.jump_ppb = _per_step_ppb(config.jumps_per_day, step_ns)
        self.jump_count = 0

    def is_open(self, ts_ns: int) -> bool:
        hours = self.config.hours
        return hours.always_open or is_open(hours, ts_ns)

    def step(self) -> int:
        """Move one step; returns the move in ppb (jump included)."""
        rng = self.rng
        move_ppb = (_normal_scaled(rng) * self.sigma_ppb) >> _UNIFORM_BITS
        if rng.randrange(PPB) < self.jump_ppb:
            size_ppb = self.config.jump_size_ppm * 1_000 * (500 + rng.randrange(1_001)) // 1_000
            move_ppb += size_ppb if rng.getrandbits(1) else -size_ppb
            self.jump_count += 1
        self.units = max(1, self.units + self.units * move_ppb // PPB)
        return move_ppb


class VenueSim:
    """One simulated constituent venue of one index: its last print and its outages."""

    __slots__ = (
        "config",
        "decimals",
        "logged_ns",
        "outage_count",
        "outage_ppb",
        "rng",
        "silent_until_ns",
        "units",
    )

    def __init__(
        self, config: VenueConfig, index: IndexConfig, seed: int | str, step_ns: int
    ) -> None:
        self.config = config
        self.decimals = index.decimals
        self.rng = random.Random(f"{seed}:venue:{index.symbol}:{config.name}")
        self.outage_ppb = _per_step_ppb(config.outages_per_day, step_ns)
        self.units = 0
        self.logged_ns = 0
        self.silent_until_ns = 0
        self.outage_count = 0

    def halt(self, until_ns: int) -> None:
        """Stop printing until ``until_ns`` (tests and operators simulate an outage)."""
        self.silent_until_ns = max(self.silent_until_ns, until_ns)

    def print_at(self, ts_ns: int, true_units: int) -> None:
        cfg = self.config
        noise_ppb = (_normal_scaled(self.rng) * cfg.noise_ppm * 1_000) >> _UNIFORM_BITS
        fair = true_units * (PPB + cfg.basis_ppm * 1_000 + noise_ppb) // PPB
        self.units = max(1, rescale(fair, WALK_DECIMALS, self.decimals))
        self.logged_ns = ts_ns

    def step(self, ts_ns: int, true_units: int) -> None:
        if ts_ns < self.silent_until_ns:
            return
        rng = self.rng
        if rng.randrange(PPB) < self.outage_ppb:
            low, high = self.config.outage_minutes
            self.silent_until_ns = ts_ns + rng.randint(low, high) * MINUTE_NS
            self.outage_count += 1
            return
        self.print_at(ts_ns, true_units)

    def last_print(self) -> VenuePrint:
        return VenuePrint(self.config.name, self.config.weight_ppm, self.units, self.logged_ns)


class IndexSimulator:
    """An ``IndexSource`` over a ``SimulatorConfig``; see the module docstring."""

    def __init__(
        self,
        config: SimulatorConfig,
        seed: int | str,
        start_ns: int,
        start_prices: Mapping[str, int] | None = None,
    ) -> None:
        prices = start_prices or {}
        step = config.step_ns
        self.config = config
        self.walks = {a.name: AssetWalk(a, seed, step, prices.get(a.name)) for a in config.assets}
        self.venues = {
            i.symbol: [VenueSim(v, i, seed, step) for v in i.venues] for i in config.indices
        }
        for index in config.indices:
            for venue in self.venues[index.symbol]:
                venue.print_at(start_ns, self.walks[index.asset].units)
        self._step_time_ns = start_ns
        self._next_step_ns = (start_ns // step + 1) * step
        self._last_units: dict[str, int] = {}
        self._first = True

    def symbols(self) -> tuple[str, ...]:
        return tuple(i.symbol for i in self.config.indices)

    def prices(self) -> dict[str, int]:
        """Each asset's true price now, units of ``10**-WALK_DECIMALS`` (to resume later)."""
        return {name: walk.units for name, walk in self.walks.items()}

    def set_hours(self, asset: str, hours: TradingHours) -> None:
        """Give ``asset`` new trading hours (a calendar's holidays and half-days): it neither
        moves nor prints while they say closed. An unknown asset changes nothing."""
        walk = self.walks.get(asset)
        if walk is not None:
            walk.config = replace(walk.config, hours=hours)

    def halt_venue(self, symbol: str, venue: str, until_ns: int) -> None:
        for sim in self.venues[symbol]:
            if sim.config.name == venue:
                sim.halt(until_ns)
                return
        raise KeyError(f"{symbol} has no venue {venue!r}")

    def advance(self, now_ns: int) -> list[IndexReading]:
        step = self.config.step_ns
        if now_ns < self._next_step_ns and not self._first:
            return []
        if now_ns >= self._next_step_ns:
            due = (now_ns - self._next_step_ns) // step + 1
            if due > STEPS_PER_ADVANCE_MAX:
                self._next_step_ns += (due - STEPS_PER_ADVANCE_MAX) * step
                due = STEPS_PER_ADVANCE_MAX
            for _ in range(due):
                self._step(self._next_step_ns)
                self._step_time_ns = self._next_step_ns
                self._next_step_ns += step
        readings = [self._reading(index, self._step_time_ns) for index in self.config.indices]
        self._first = False
        return readings

    def _step(self, ts_ns: int) -> None:
        for walk in self.walks.values():
            if walk.is_open(ts_ns):
                walk.step()
        for index in self.config.indices:
            walk = self.walks[index.asset]
            if walk.is_open(ts_ns):
                for venue in self.venues[index.symbol]:
                    venue.step(ts_ns, walk.units)

    def _reading(self, index: IndexConfig, ts_ns: int) -> IndexReading:
        walk = self.walks[index.asset]
        prints = [v.last_print() for v in self.venues[index.symbol]]
        window = self.config.protection_window_ns
        last = self._last_units.get(index.symbol, 0)
        if not walk.is_open(ts_ns):
            # The market is shut: nothing goes stale, the constituents just do not trade. The
            # rows show the venues as they stood at their last prints.
            value = compose(prints, max(p.logged_ns for p in prints), window)
            units, rows, status = last or value.units, value.constituents, IndexStatus.CLOSED
            publish = last == 0 and units > 0
            if publish:
                self._last_units[index.symbol] = units
            return IndexReading(index.symbol, ts_ns, units, index.decimals, status, publish, rows)
        value = compose(prints, ts_ns, window)
        if value.status == IndexStatus.LIVE:
            units, rows, publish, status = value.units, value.constituents, True, value.status
        else:
            units, rows, publish, status = last, value.constituents, False, value.status
        if publish:
            self._last_units[index.symbol] = units
        return IndexReading(index.symbol, ts_ns, units, index.decimals, status, publish, rows)
