"""Feed configuration: simulated assets, their constituent venues, and the indices they make.

Units are in the names: ``*_ppm`` parts per million, ``*_ns`` nanoseconds. Prices are decimal
strings (exact), read with ``prices.parse_units``.

- ``AssetConfig``: one underlying's simulated true price: start price, annualised volatility,
  jump rate and typical jump size, trading hours (TradFi assets hold still when closed).
- ``VenueConfig``: a simulated constituent exchange: its index weight, a persistent basis, the
  noise of its prints around the true price, and how often and how long it stops printing.
- ``IndexConfig``: a composite index (``.BXBT``) over venues of one asset, published with
  ``decimals`` digits (the index instrument's tick), and optionally its 30-minute TWAP symbol.

``default_config()`` is the demo's market: every index the default catalogue's tradable
instruments reference, with realistic but lively parameters (stated once, here). The venues are
simulated; they are named after real exchanges only so the ``compositeIndex`` rows read like
BitMEX's.
"""

from dataclasses import dataclass, field

from perpetua.core.calendar import ALWAYS_OPEN, FX, METALS, US_EQUITY, TradingHours

__all__ = [
    "PROTECTION_WINDOW_NS",
    "PUBLISH_INTERVAL_NS",
    "TWAP_WINDOW_NS",
    "WALK_DECIMALS",
    "AssetConfig",
    "IndexConfig",
    "SimulatorConfig",
    "VenueConfig",
    "default_config",
]

NS_PER_S = 1_000_000_000
PUBLISH_INTERVAL_NS = 5 * NS_PER_S  # BitMEX computes and publishes indices every 5 s
PROTECTION_WINDOW_NS = 15 * 60 * NS_PER_S  # a venue silent this long is dropped (§7.8)
TWAP_WINDOW_NS = 30 * 60 * NS_PER_S  # .BXBT30M
WALK_DECIMALS = 8  # the true price walks in units of 1e-8 quote, finer than any index
PPM = 1_000_000


@dataclass(frozen=True, slots=True)
class AssetConfig:
    name: str  # "XBT"
    start_price: str  # decimal string, quote currency
    volatility_ppm: int  # annualised standard deviation of returns: 800_000 = 80%
    jumps_per_day: int = 0  # expected jumps per day (Poisson, drawn per step)
    jump_size_ppm: int = 0  # typical jump magnitude; each jump is 0.5x..1.5x of it, either sign
    hours: TradingHours = ALWAYS_OPEN

    def __post_init__(self) -> None:
        if not self.name or self.volatility_ppm < 0 or self.jumps_per_day < 0:
            raise ValueError(f"bad asset config {self!r}")
        if not 0 <= self.jump_size_ppm < PPM // 2:
            raise ValueError(f"{self.name}: jump_size_ppm must be in 0..499999")


@dataclass(frozen=True, slots=True)
class VenueConfig:
    name: str  # "Bitstamp"
    weight_ppm: int  # share of the index when every venue is fresh
    basis_ppm: int = 0  # persistent premium (+) or discount (-) of this venue's prints
    noise_ppm: int = 100  # standard deviation of a print around the venue's fair price
    outages_per_day: int = 0  # expected times per day the venue stops printing
    outage_minutes: tuple[int, int] = (5, 30)  # an outage lasts min..max minutes (uniform)

    def __post_init__(self) -> None:
        low, high = self.outage_minutes
        if self.weight_ppm <= 0 or self.noise_ppm < 0 or self.outages_per_day < 0:
            raise ValueError(f"bad venue config {self!r}")
        if not 0 < low <= high or abs(self.basis_ppm) >= PPM // 10:
            raise ValueError(f"{self.name}: bad outage minutes or basis")


@dataclass(frozen=True, slots=True)
class IndexConfig:
    symbol: str  # ".BXBT"
    asset: str  # "XBT"
    decimals: int  # digits published: the index instrument's tick is 10**-decimals
    venues: tuple[VenueConfig, ...]
    twap_symbol: str = ""  # ".BXBT30M": the board keeps its 30-minute TWAP

    def __post_init__(self) -> None:
        names = [v.name for v in self.venues]
        if not self.symbol.startswith(".") or not self.venues or len(set(names)) != len(names):
            raise ValueError(f"bad index config {self.symbol!r}")
        if not 0 <= self.decimals <= WALK_DECIMALS:
            raise ValueError(f"{self.symbol}: decimals must be in 0..{WALK_DECIMALS}")


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    assets: tuple[AssetConfig, ...]
    indices: tuple[IndexConfig, ...]
    step_ns: int = PUBLISH_INTERVAL_NS
    protection_window_ns: int = PROTECTION_WINDOW_NS
    asset_by_name: dict[str, AssetConfig] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {a.name: a for a in self.assets}
        if len(by_name) != len(self.assets) or self.step_ns <= 0:
            raise ValueError("asset names must be unique and step_ns positive")
        symbols = [i.symbol for i in self.indices]
        if len(set(symbols)) != len(symbols):
            raise ValueError("index symbols must be unique")
        for index in self.indices:
            if index.asset not in by_name:
                raise ValueError(f"{index.symbol}: unknown asset {index.asset!r}")
        object.__setattr__(self, "asset_by_name", by_name)

    def only(self, symbols: set[str]) -> "SimulatorConfig":
        """The same config restricted to the indices in ``symbols`` (and their assets)."""
        indices = tuple(i for i in self.indices if i.symbol in symbols)
        assets = tuple(a for a in self.assets if any(i.asset == a.name for i in indices))
        return SimulatorConfig(assets, indices, self.step_ns, self.protection_window_ns)


def _venues(
    *rows: tuple[str, int, int], outages_per_day: int = 2, outage_minutes: tuple[int, int] = (5, 40)
) -> tuple[VenueConfig, ...]:
    return tuple(
        VenueConfig(
            name,
            weight,
            basis,
            noise_ppm=80,
            outages_per_day=outages_per_day,
            outage_minutes=outage_minutes,
        )
        for name, weight, basis in rows
    )


def _tradfi_venues(*rows: tuple[str, int, int]) -> tuple[VenueConfig, ...]:
    return _venues(*rows, outages_per_day=1, outage_minutes=(2, 20))


_USD_VENUES = _venues(
    ("Bitstamp", 250_000, 0),
    ("Coinbase", 350_000, 50),
    ("Kraken", 250_000, -30),
    ("Gemini", 150_000, 20),
)
_USDT_VENUES = _venues(
    ("Binance", 400_000, 100),
    ("OKX", 250_000, 80),
    ("Bybit", 200_000, 120),
    ("Bitget", 150_000, 60),
)


def default_config() -> SimulatorConfig:
    """The demo's assets and indices (annual volatility, jumps per day and size as stated)."""
    assets = (
        AssetConfig("XBT", "95000", 800_000, jumps_per_day=6, jump_size_ppm=8_000),
        AssetConfig("ETH", "3200", 1_000_000, jumps_per_day=6, jump_size_ppm=10_000),
        AssetConfig("BMEX", "0.25", 1_500_000, jumps_per_day=8, jump_size_ppm=20_000),
        AssetConfig("SPY", "600", 200_000, jumps_per_day=2, jump_size_ppm=5_000, hours=US_EQUITY),
        AssetConfig("XAU", "2650", 150_000, jumps_per_day=1, jump_size_ppm=5_000, hours=METALS),
        AssetConfig("EUR", "1.08", 80_000, jumps_per_day=1, jump_size_ppm=3_000, hours=FX),
    )
    indices = (
        IndexConfig(".BXBT", "XBT", 2, _USD_VENUES, twap_symbol=".BXBT30M"),
        IndexConfig(".BXBTT", "XBT", 2, _USDT_VENUES, twap_symbol=".BXBTT30M"),
        IndexConfig(".BETH", "ETH", 2, _USD_VENUES, twap_symbol=".BETH30M"),
        IndexConfig(".BETHT", "ETH", 2, _USDT_VENUES, twap_symbol=".BETHT30M"),
        IndexConfig(
            ".BBMEXT",
            "BMEX",
            4,
            _venues(("Gate", 400_000, 0), ("KuCoin", 350_000, 200), ("MEXC", 250_000, -200)),
        ),
        IndexConfig(
            ".BSPYT",
            "SPY",
            2,
            _tradfi_venues(
                ("NYSE Arca", 500_000, 0), ("Nasdaq", 300_000, 10), ("Cboe BZX", 200_000, -10)
            ),
        ),
        IndexConfig(
            ".BXAUT",
            "XAU",
            2,
            _tradfi_venues(("COMEX", 500_000, 0), ("LBMA", 300_000, 20), ("OANDA", 200_000, -20)),
        ),
        IndexConfig(
            ".BEURT",
            "EUR",
            5,
            _tradfi_venues(("EBS", 500_000, 0), ("Refinitiv", 300_000, 5), ("OANDA", 200_000, -5)),
        ),
    )
    return SimulatorConfig(assets, indices)
