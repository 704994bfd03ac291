"""Symbol parameters: case-insensitive symbols, bare series roots and ``ROOT:timeframe``.

A bare root (``XBT``) means the nearest-expiring contract of that root (its perpetual when it
has no future). ``XBT:perpetual`` and the other timeframes of ``/instrument/activeIntervals``
map to the matching instruments. An unknown symbol matches nothing (an empty table, as BitMEX).
The funding series' index rows (``.XBTUSDPI8H``, ``marketdata.rate_indices``) are symbols too.
"""

from perpetua.core.instruments import InstrumentKind, InstrumentSpec
from perpetua.marketdata.rate_indices import rate_index_specs

__all__ = ["TIMEFRAMES", "SymbolIndex"]

TIMEFRAMES = ("nearest", "daily", "weekly", "monthly", "quarterly", "biquarterly", "perpetual")
ONE_CACHE_MAX = 1_024


class SymbolIndex:
    def __init__(self, specs: dict[str, InstrumentSpec]) -> None:
        self.specs = specs
        self.by_upper = {symbol.upper(): symbol for symbol in specs}
        self.by_upper.update({s.upper(): s for s in rate_index_specs(specs.values())})
        self._one: dict[str, str] = {}  # exact names only (a miss is not cached)

    def add(self, spec: InstrumentSpec) -> None:
        """A future listed at runtime (``specs``, shared with the views, holds it already)."""
        self.by_upper[spec.symbol.upper()] = spec.symbol

    def _tradable(self, root: str) -> list[InstrumentSpec]:
        return [
            s
            for s in self.specs.values()
            if s.root_symbol.upper() == root
            and s.kind != InstrumentKind.INDEX
            and s.state == "Open"
        ]

    def _futures(self, root: str) -> list[InstrumentSpec]:
        return sorted(
            (s for s in self._tradable(root) if s.kind == InstrumentKind.FUTURE),
            key=lambda s: s.expiry_ns,
        )

    def interval(self, root: str, timeframe: str) -> list[str]:
        root = root.upper()
        if timeframe == "perpetual":
            return [s.symbol for s in self._tradable(root) if s.kind == InstrumentKind.PERPETUAL]
        futures = self._futures(root)
        if timeframe == "nearest":
            return [futures[0].symbol] if futures else []
        if timeframe == "quarterly":
            return [futures[0].symbol] if futures else []
        if timeframe == "biquarterly":
            return [futures[1].symbol] if len(futures) > 1 else []
        return []

    def resolve(self, text: str | None) -> list[str] | None:
        """Symbols matching ``text``; ``None`` when no symbol was given (all symbols)."""
        if text is None or text == "":
            return None
        upper = text.strip().upper()
        if upper in self.by_upper:
            return [self.by_upper[upper]]
        if ":" in upper:
            root, _, timeframe = upper.partition(":")
            if timeframe.lower() in TIMEFRAMES:
                return self.interval(root, timeframe.lower())
            return []
        futures = self._futures(upper)
        if futures:
            return [futures[0].symbol]
        perpetuals = [s.symbol for s in self._tradable(upper) if s.kind == InstrumentKind.PERPETUAL]
        return perpetuals[:1]

    def one(self, text: str) -> str | None:
        """The symbol ``text`` names (exact names memoised: every order asks)."""
        cached = self._one.get(text)
        if cached is not None:
            return cached
        found = self.resolve(text)
        result = found[0] if found else None
        if result is not None and result.upper() == text.strip().upper():
            if len(self._one) >= ONE_CACHE_MAX:
                self._one.clear()
            self._one[text] = result  # roots and timeframes move with time: not cached
        return result

    def active_intervals(self) -> dict[str, list[str]]:
        intervals: list[str] = []
        symbols: list[str] = []
        roots = sorted(
            {s.root_symbol for s in self.specs.values() if s.kind != InstrumentKind.INDEX}
        )
        for root in roots:
            for timeframe in TIMEFRAMES:
                for symbol in self.interval(root, timeframe):
                    intervals.append(f"{root}:{timeframe}")
                    symbols.append(symbol)
        return {"intervals": intervals, "symbols": symbols}
