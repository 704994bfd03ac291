"""Positions and a trader's track record, folded from fills: for copy trading's followers (their
equity) and leaders (their public history).

1. ``Positions`` keeps, per symbol, the signed size and its cost (the sum of the fills' contract
   values, as the core values them); a reducing fill realises its share of the cost; the last
   price marks what is open. Money in settlement minor units, BitMEX signs (a fee is positive).
2. ``TrackRecord`` folds a leader's fills in time order into: PnL (realised - fees - funding),
   ROI on the capital put in, the maximum drawdown of the realised equity curve, and round trips
   (a symbol's position from flat back to flat, or through zero): win rate (a trip's PnL net of
   its fees above zero) and average holding time.
"""

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from perpetua.core.enums import Side
from perpetua.core.instruments import InstrumentSpec, contract_value

__all__ = ["Positions", "TrackRecord", "TrackStats"]

PPM: Final = 1_000_000


def _trunc_div(num: int, den: int) -> int:
    quotient = abs(num) // abs(den)
    return quotient if (num >= 0) == (den > 0) else -quotient


class _Position:
    __slots__ = ("qty", "cost", "opened_ns", "trip_pnl")

    def __init__(self) -> None:
        self.qty = 0
        self.cost = 0
        self.opened_ns = 0
        self.trip_pnl = 0


class Positions:
    """Rule 1."""

    def __init__(self, specs: Mapping[str, InstrumentSpec]) -> None:
        self.specs = specs
        self.open: dict[str, _Position] = {}
        self.last_px: dict[str, int] = {}
        self.realised = 0
        self.fees = 0

    def fill(self, symbol: str, side: int, qty: int, price: int, fee: int, ts_ns: int) -> int:
        """Fold one fill; answers the PnL it realised (before fees)."""
        spec = self.specs[symbol]
        signed = qty if side == Side.BUY else -qty
        value = contract_value(spec, signed, price)
        position = self.open.setdefault(symbol, _Position())
        self.fees += fee
        self.last_px[symbol] = price
        if position.qty == 0 or (position.qty > 0) == (signed > 0):
            if position.qty == 0:
                position.opened_ns = ts_ns
                position.trip_pnl = 0
            position.qty += signed
            position.cost += value
            position.trip_pnl -= fee
            return 0
        closing = min(abs(signed), abs(position.qty))
        share = _trunc_div(position.cost * closing, abs(position.qty))
        closed_value = _trunc_div(value * closing, abs(signed))
        realised = -closed_value - share
        self.realised += realised
        position.cost -= share
        position.qty += signed
        position.trip_pnl += realised - fee
        if abs(signed) > closing:
            position.cost = value - closed_value
        return realised

    def qty(self, symbol: str) -> int:
        position = self.open.get(symbol)
        return 0 if position is None else position.qty

    def unrealised(self, marks: Mapping[str, int] | None = None) -> int:
        """At ``marks`` (ticks) where given, else at the last prices."""
        total = 0
        for symbol, position in self.open.items():
            last = marks.get(symbol) if marks else None
            if last is None:
                last = self.last_px.get(symbol)
            if position.qty and last is not None:
                total += contract_value(self.specs[symbol], position.qty, last) - position.cost
        return total


class TrackStats(NamedTuple):
    pnl: int  # settlement minor units: realised - fees - funding
    roi_ppm: int
    max_drawdown_ppm: int
    trips: int
    wins: int
    win_rate_ppm: int
    average_holding_ns: int


class TrackRecord:
    """Rule 2, over one settlement currency."""

    def __init__(self, specs: Mapping[str, InstrumentSpec], capital: int) -> None:
        self.positions = Positions(specs)
        self.capital = max(1, capital)
        self.funding = 0
        self.peak = self.capital
        self.max_drawdown_ppm = 0
        self.trips = 0
        self.wins = 0
        self.holding_ns = 0

    def fill(self, symbol: str, side: int, qty: int, price: int, fee: int, ts_ns: int) -> None:
        positions = self.positions
        before = positions.open.get(symbol)
        was_open = before is not None and before.qty != 0
        opened = before.opened_ns if before is not None else ts_ns
        positions.fill(symbol, side, qty, price, fee, ts_ns)
        after = positions.open[symbol]
        closed = was_open and (
            after.qty == 0 or (after.qty > 0) != ((before.qty if before else 0) > 0)
        )
        if closed:
            self.trips += 1
            self.holding_ns += ts_ns - opened
            if after.trip_pnl > 0:
                self.wins += 1
            if after.qty != 0:  # flipped: a new trip starts now
                after.opened_ns = ts_ns
                after.trip_pnl = 0
        self._mark()

    def funding_paid(self, amount: int) -> None:
        self.funding += amount
        self._mark()

    def pnl(self) -> int:
        return self.positions.realised - self.positions.fees - self.funding

    def _mark(self) -> None:
        equity = self.capital + self.pnl()
        self.peak = max(self.peak, equity)
        if self.peak > 0:
            drawdown = (self.peak - equity) * PPM // self.peak
            self.max_drawdown_ppm = max(self.max_drawdown_ppm, drawdown)

    def stats(self) -> TrackStats:
        trips = self.trips
        return TrackStats(
            self.pnl(),
            self.pnl() * PPM // self.capital,
            self.max_drawdown_ppm,
            trips,
            self.wins,
            self.wins * PPM // trips if trips else 0,
            self.holding_ns // trips if trips else 0,
        )

    def row(self) -> dict[str, Any]:
        s = self.stats()
        return {
            "pnl": s.pnl,
            "roiPpm": s.roi_ppm,
            "maxDrawdownPpm": s.max_drawdown_ppm,
            "trips": s.trips,
            "winRatePpm": s.win_rate_ppm,
            "averageHoldingMs": s.average_holding_ns // 1_000_000,
        }
