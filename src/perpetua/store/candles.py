"""Trade bins (OHLCV candles) kept current from prints, keyed by each bin's END time.

A print at ``ts_ns`` falls in the bin ending at ``(ts_ns // size + 1) * size`` for each size of
``BIN_SIZES_NS`` (1m, 5m, 1h, 1d; days end at 00:00 UTC). A new bin opens at the previous bin's
close, as BitMEX's do; high and low come from the bin's prints only. Bins without prints are not
stored. Prints arrive in time order (the sequencer's clock never goes back), so only the newest
bin of each (size, symbol) changes; it is cached here and loaded from SQL on first use.
"""

from dataclasses import asdict, dataclass

from sqlalchemy import Connection, select

from perpetua.store.limits import BIN_SIZES_NS
from perpetua.store.schema import trade_bins

__all__ = ["Bin", "CandleBook", "bin_end_ns"]


def bin_end_ns(ts_ns: int, size_ns: int) -> int:
    return (ts_ns // size_ns + 1) * size_ns


@dataclass(slots=True)
class Bin:
    bin_size: str
    symbol: str
    timestamp_ns: int
    open: int
    high: int
    low: int
    close: int
    trades: int = 0
    volume: int = 0
    turnover: int = 0
    px_qty_sum: int = 0
    last_size: int = 0

    def add(self, price: int, qty: int, gross_value: int) -> None:
        self.high = max(self.high, price) if self.trades else price
        self.low = min(self.low, price) if self.trades else price
        self.close = price
        self.trades += 1
        self.volume += qty
        self.turnover += gross_value
        self.px_qty_sum += price * qty
        self.last_size = qty


class CandleBook:
    """The newest bin per (size, symbol), and the bins changed since ``take_dirty``."""

    def __init__(self) -> None:
        self._newest: dict[tuple[str, str], Bin | None] = {}
        self._dirty: dict[tuple[str, str, int], Bin] = {}

    def reset(self) -> None:
        self._newest.clear()
        self._dirty.clear()

    def _load(self, conn: Connection, size: str, symbol: str) -> Bin | None:
        row = conn.execute(
            select(trade_bins)
            .where(trade_bins.c.bin_size == size, trade_bins.c.symbol == symbol)
            .order_by(trade_bins.c.timestamp_ns.desc())
            .limit(1)
        ).first()
        return None if row is None else Bin(**row._asdict())

    def add_print(
        self, conn: Connection, ts_ns: int, symbol: str, price: int, qty: int, gross_value: int
    ) -> None:
        for size, size_ns in BIN_SIZES_NS.items():
            key = (size, symbol)
            if key not in self._newest:
                self._newest[key] = self._load(conn, size, symbol)
            newest = self._newest[key]
            end = bin_end_ns(ts_ns, size_ns)
            if newest is None or newest.timestamp_ns < end:
                opening = price if newest is None else newest.close
                newest = Bin(size, symbol, end, opening, price, price, opening)
                self._newest[key] = newest
            elif newest.timestamp_ns > end:
                raise ValueError(
                    f"print at {ts_ns} on {symbol} is older than its {size} bin "
                    f"ending {newest.timestamp_ns}: time went backwards"
                )
            newest.add(price, qty, gross_value)
            self._dirty[(size, symbol, end)] = newest

    def take_dirty(self) -> list[dict[str, object]]:
        rows = [asdict(b) for b in self._dirty.values()]
        self._dirty.clear()
        return rows
