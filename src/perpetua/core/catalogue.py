"""The default instrument catalogue, BitMEX's ADV fee tiers, and quarterly futures listing.

Invariants:
- ``default_catalogue()`` returns the same tuple on every call, in a fixed order, and each
  spec's ``index`` is its position (the engine uses it for L2 level ids). Symbols are unique.
- Every tradable spec's ``reference_symbol`` (and a future's ``settlement_index_symbol``) names
  an index in the catalogue.
- ``FEE_TIERS`` is ordered by ``adv_usd_min`` ascending, starts at 0, and never raises a fee as
  the volume rises. Rates are ppm of the execution value: 0.0175% = 175, -0.003% = -30.

Values follow BitMEX where the reference gives them (XBTUSD, ETHUSDT, fee tiers, settlement
fee); the rest are realistic choices stated here once:
- ticks: XBTUSD and the XBT futures 0.1 (BitMEX's current tick), XBTUSDT 0.5, ETHUSDT 0.05
  (BitMEX's: the published ETHUSDT bankruptcy and liquidation prices are on it), ETHUSD 0.05,
  XBT_USDT 0.5, ETH_USDT 0.01, BMEX_USDT 0.001, SPYUSDT 0.01, XAUUSDT 0.1, EURUSDT 0.00001;
- perpetuals fund every 8 hours; futures expire on the last Friday of the quarter's month at
  12:00 UTC and settle on the 30-minute TWAP index with a 0.05% settlement fee;
- the crypto derivatives use the ADV fee tiers (base rates = tier 0); spot and TradFi use
  their own flat rates; indices carry state "Unlisted" like BitMEX's index rows.

There is no rounding here: every figure is an exact integer.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import NamedTuple

from perpetua.core.calendar import (
    ALWAYS_OPEN,
    FX,
    METALS,
    NS_PER_DAY,
    NS_PER_HOUR,
    US_EQUITY,
    TradingHours,
    days_from_civil,
    utc_ns,
    weekday_of_day,
)
from perpetua.core.instruments import InstrumentKind, InstrumentSpec, Payout
from perpetua.core.invariant import InvariantError, fail, invariant

__all__ = [
    "BUILTIN_SERIES",
    "FutureSeries",
    "series_problem",
    "CATALOGUE_LISTING_NS",
    "FEE_MAKER_REBATE_CAP_PPM",
    "FEE_TAKER_FLOOR_PPM",
    "FEE_TIERS",
    "FUNDING_INTERVAL_NS",
    "MONTH_CODES",
    "QUARTER_MONTH_CODES",
    "FeeTier",
    "by_symbol",
    "default_catalogue",
    "fee_tier_for_adv",
    "future_symbol",
    "listing_time_ns",
    "quarterly_expiry_ns",
    "quarterly_future",
    "quarterly_listing_ns",
]


class FeeTier(NamedTuple):
    """One row of the 30-day ADV fee table: volume in whole USD, rates in ppm."""

    adv_usd_min: int
    taker_fee_ppm: int
    maker_fee_ppm: int


# BitMEX's tier table since 2023-01-17 (reference §7.11).
FEE_TIERS: tuple[FeeTier, ...] = (
    FeeTier(0, 750, 200),
    FeeTier(1_000_000, 500, 100),
    FeeTier(5_000_000, 400, 0),
    FeeTier(10_000_000, 350, 0),
    FeeTier(25_000_000, 300, 0),
    FeeTier(50_000_000, 250, 0),
    FeeTier(100_000_000, 240, -30),
    FeeTier(250_000_000, 230, -50),
    FeeTier(500_000_000, 220, -80),
    FeeTier(1_000_000_000, 175, -100),
)
FEE_TAKER_FLOOR_PPM = 175  # lowest taker fee after staking and VIP discounts
FEE_MAKER_REBATE_CAP_PPM = -125  # largest maker rebate after discounts

MONTH_CODES = "FGHJKMNQUVXZ"  # January .. December
QUARTER_MONTH_CODES = "HMUZ"  # March, June, September, December

FUNDING_INTERVAL_NS = 8 * NS_PER_HOUR
CATALOGUE_LISTING_NS = utc_ns(2026, 1, 1)  # listing time of every default instrument

_FRIDAY = 4
_EXPIRY_HOUR = 12
_BAND_PPM = 50_000  # 5% protective band for market orders and limit collars
_XBT = 100_000_000  # XBt per XBT
_USDT = 1_000_000  # USDt per USDT


def fee_tier_for_adv(adv_usd: int) -> int:
    """Index into ``FEE_TIERS`` of the highest tier whose minimum ``adv_usd`` reaches."""
    invariant(adv_usd >= 0, f"ADV must be non-negative: {adv_usd}")
    tier = 0
    for position, row in enumerate(FEE_TIERS):
        if adv_usd >= row.adv_usd_min:
            tier = position
    return tier


class _Market(NamedTuple):
    """Identity, currencies and hours of an instrument."""

    symbol: str
    root: str
    quote: str
    settl: str = ""
    position_currency: str = ""
    base: str = ""
    reference: str = ""
    hours: TradingHours = ALWAYS_OPEN
    state: str = "Open"


class _Contract(NamedTuple):
    """Grid and multipliers; ``max_price`` in whole quote units."""

    tick_num: int
    tick_den: int
    lot_size: int
    max_order_qty: int
    max_price: int
    multiplier: int
    u2p: int | None = None
    u2s: int | None = None
    q2s: int | None = None


class _Risk(NamedTuple):
    init_margin_ppm: int
    maint_margin_ppm: int
    risk_limit: int
    risk_step: int
    impact_notional: int


class _Fees(NamedTuple):
    maker_fee_ppm: int
    taker_fee_ppm: int
    uses_fee_tiers: bool


class _Schedule(NamedTuple):
    """Funding (perpetuals) or expiry and settlement (futures); empty for spot and indices."""

    funding_symbols: tuple[str, str, str] = ("", "", "")
    funding_interval_ns: int = 0
    listing_ns: int = CATALOGUE_LISTING_NS
    expiry_ns: int = 0
    settlement_index_symbol: str = ""
    settlement_fee_ppm: int = 0


_TIERED = _Fees(FEE_TIERS[0].maker_fee_ppm, FEE_TIERS[0].taker_fee_ppm, uses_fee_tiers=True)
_SPOT_FEES = _Fees(1000, 1000, uses_fee_tiers=False)
_TRADFI_FEES = _Fees(0, 500, uses_fee_tiers=False)
_NO_RISK = _Risk(0, 0, 0, 0, 0)
_NO_FEES = _Fees(0, 0, uses_fee_tiers=False)
_NO_SCHEDULE = _Schedule()
_TYP_OF_KIND = {
    InstrumentKind.PERPETUAL: "FFWCSX",
    InstrumentKind.FUTURE: "FFCCSX",
    InstrumentKind.SPOT: "IFXXXP",
    InstrumentKind.INDEX: "MRCXXX",
}


def _max_price_ticks(c: _Contract) -> int:
    invariant((c.max_price * c.tick_den) % c.tick_num == 0, "max price must be on the grid")
    return c.max_price * c.tick_den // c.tick_num


def _make(
    kind: InstrumentKind,
    payout: Payout,
    m: _Market,
    c: _Contract,
    risk: _Risk = _NO_RISK,
    fees: _Fees = _NO_FEES,
    schedule: _Schedule = _NO_SCHEDULE,
) -> InstrumentSpec:
    """Every field in one place; ``index`` is assigned by ``default_catalogue``."""
    s = schedule
    return InstrumentSpec(
        symbol=m.symbol, root_symbol=m.root, typ=_TYP_OF_KIND[kind], kind=kind, payout=payout,
        state=m.state, underlying=m.root, quote_currency=m.quote, settl_currency=m.settl,
        position_currency=m.position_currency, base_currency=m.base,
        tick_num=c.tick_num, tick_den=c.tick_den, lot_size=c.lot_size,
        max_order_qty=c.max_order_qty, max_price_ticks=_max_price_ticks(c),
        multiplier=c.multiplier, underlying_to_position_multiplier=c.u2p,
        underlying_to_settle_multiplier=c.u2s, quote_to_settle_multiplier=c.q2s,
        is_inverse=payout == Payout.INVERSE, is_quanto=payout == Payout.QUANTO,
        init_margin_ppm=risk.init_margin_ppm, maint_margin_ppm=risk.maint_margin_ppm,
        risk_limit=risk.risk_limit, risk_step=risk.risk_step,
        maker_fee_ppm=fees.maker_fee_ppm, taker_fee_ppm=fees.taker_fee_ppm,
        settlement_fee_ppm=s.settlement_fee_ppm, uses_fee_tiers=fees.uses_fee_tiers,
        funding_interval_ns=s.funding_interval_ns, funding_base_symbol=s.funding_symbols[0],
        funding_quote_symbol=s.funding_symbols[1], funding_premium_symbol=s.funding_symbols[2],
        listing_ns=s.listing_ns, expiry_ns=s.expiry_ns, settle_ns=s.expiry_ns,
        reference_symbol=m.reference, settlement_index_symbol=s.settlement_index_symbol,
        trading_hours=m.hours, impact_notional=risk.impact_notional,
        price_band_ppm=0 if kind == InstrumentKind.INDEX else _BAND_PPM, index=0,
    )  # fmt: skip


def _funding(base: str, quote: str, premium: str) -> _Schedule:
    return _Schedule(
        funding_symbols=(base, quote, premium), funding_interval_ns=FUNDING_INTERVAL_NS
    )


def _index(
    symbol: str, root: str, quote: str, tick_den: int = 100, hours: TradingHours = ALWAYS_OPEN
) -> InstrumentSpec:
    market = _Market(symbol, root, quote, hours=hours, state="Unlisted")
    contract = _Contract(1, tick_den, lot_size=1, max_order_qty=0, max_price=1_000_000,
                         multiplier=0)  # fmt: skip
    return _make(InstrumentKind.INDEX, Payout.NONE, market, contract)


_XBT_INVERSE = _Contract(1, 10, lot_size=100, max_order_qty=10_000_000, max_price=1_000_000,
                         multiplier=-_XBT, u2s=-_XBT)  # fmt: skip
_XBT_INVERSE_RISK = _Risk(10_000, 5_000, 200 * _XBT, 150 * _XBT, impact_notional=10 * _XBT)
_SETTLEMENT_FEE_PPM = 500  # 0.05% of the position value at settlement


class FutureSeries(NamedTuple):
    """A quarterly futures series as plain data: what every contract of it shares. The built-in
    ``XBT`` inverse series is code (``BUILTIN_SERIES``); others come from the runtime's catalogue
    file as ``DefineFutureSeries`` commands, so a replay defines them again from the journal.

    ``key`` is the symbols' stem (``XBTUSDT`` lists ``XBTUSDTH27``); ``max_price`` is in whole
    quote units; multipliers of 0 mean "not given" (BitMEX's null)."""

    key: str
    payout: Payout
    root: str
    quote: str
    settl: str
    position_currency: str
    reference: str  # the index the mark follows
    settlement_index: str  # the 30-minute TWAP it settles on
    tick_num: int
    tick_den: int
    lot_size: int
    max_order_qty: int
    max_price: int
    multiplier: int
    u2p: int
    u2s: int
    q2s: int
    init_margin_ppm: int
    maint_margin_ppm: int
    risk_limit: int
    risk_step: int
    impact_notional: int


def _or_none(value: int) -> int | None:
    return value if value else None


BUILTIN_SERIES: dict[str, FutureSeries] = {
    "XBT": FutureSeries(
        "XBT", Payout.INVERSE, "XBT", "USD", "XBt", "USD", ".BXBT", ".BXBT30M",
        _XBT_INVERSE.tick_num, _XBT_INVERSE.tick_den, _XBT_INVERSE.lot_size,
        _XBT_INVERSE.max_order_qty, _XBT_INVERSE.max_price, _XBT_INVERSE.multiplier, 0,
        -_XBT, 0, *_XBT_INVERSE_RISK,
    ),
}  # fmt: skip
SERIES_KEY_LENGTH_MAX = 12
SERIES_PAYOUTS = (Payout.INVERSE, Payout.LINEAR, Payout.QUANTO)


def series_problem(series: FutureSeries, index_symbols: frozenset[str]) -> str:
    """Why ``series`` cannot be defined ("" if it can): a clear reason per rule."""
    key = series.key
    if not (0 < len(key) <= SERIES_KEY_LENGTH_MAX and key.isascii() and key.isalnum()):
        return "key must be 1-12 letters or digits"
    if key != key.upper() or key in BUILTIN_SERIES:
        return "key must be upper case and not a built-in series"
    if series.payout not in SERIES_PAYOUTS:
        return "payout must be inverse, linear or quanto"
    if series.reference not in index_symbols or series.settlement_index not in index_symbols:
        return "reference and settlement index must be indices of the catalogue"
    if min(series.tick_num, series.tick_den, series.lot_size, series.max_order_qty) <= 0:
        return "tick, lot and maximum order quantity must be positive"
    if series.max_price <= 0 or (series.max_price * series.tick_den) % series.tick_num:
        return "maximum price must be positive and on the tick grid"
    if series.multiplier == 0 or (series.multiplier < 0) != (series.payout == Payout.INVERSE):
        return "multiplier must be non-zero, negative exactly for inverse"
    if not 0 < series.maint_margin_ppm < series.init_margin_ppm <= 1_000_000:
        return "margins must satisfy 0 < maintenance < initial <= 1"
    if min(series.risk_limit, series.risk_step, series.impact_notional) <= 0:
        return "risk limit, risk step and impact notional must be positive"
    try:  # every instrument rule (multipliers against currencies, the grid): build one
        quarterly_future(key, 2000, 1, listing_ns=0, series={key: series})
    except InvariantError as error:
        return str(error)
    return ""


def future_symbol(root: str, year: int, quarter: int) -> str:
    """BitMEX symbol of a quarterly: root + month code + two-digit year (XBTH27)."""
    invariant(1 <= quarter <= 4 and 2000 <= year <= 2099, f"bad quarter {year}Q{quarter}")
    return f"{root}{QUARTER_MONTH_CODES[quarter - 1]}{year % 100:02d}"


def quarterly_expiry_ns(year: int, quarter: int) -> int:
    """12:00 UTC on the last Friday of the quarter's last month (2027Q1 -> 2027-03-26 12:00)."""
    invariant(1 <= quarter <= 4, f"quarter out of range: {quarter}")
    month = quarter * 3
    first_of_next_month = days_from_civil(year + month // 12, month % 12 + 1, 1)
    last_day = first_of_next_month - 1
    last_friday = last_day - (weekday_of_day(last_day) - _FRIDAY) % 7
    return last_friday * NS_PER_DAY + _EXPIRY_HOUR * NS_PER_HOUR


def quarterly_listing_ns(year: int, quarter: int) -> int:
    """Scheduled listing: the expiry of the quarterly two quarters earlier (a 6-month life)."""
    invariant(1 <= quarter <= 4, f"quarter out of range: {quarter}")
    earlier = year * 4 + (quarter - 1) - 2
    return quarterly_expiry_ns(earlier // 4, earlier % 4 + 1)


def listing_time_ns(year: int, quarter: int, now_ns: int) -> int:
    """When a quarterly listed at ``now_ns`` counts as listed: its scheduled listing, or now if
    it is listed early (``ListFuture`` before the schedule)."""
    return min(now_ns, quarterly_listing_ns(year, quarter))


def quarterly_future(
    root: str,
    year: int,
    quarter: int,
    *,
    listing_ns: int,
    index: int = 0,
    series: Mapping[str, FutureSeries] | None = None,
) -> InstrumentSpec:
    """The dated future of the series ``root`` (a built-in one, or one of ``series``: those the
    engine defined from the catalogue file) expiring in ``year`` Q``quarter``; a pure
    function."""
    template = BUILTIN_SERIES.get(root)
    if template is None and series is not None:
        template = series.get(root)
    if template is None:
        fail(f"no quarterly futures on root {root!r}")
    t = template
    schedule = _Schedule(
        listing_ns=listing_ns,
        expiry_ns=quarterly_expiry_ns(year, quarter),
        settlement_index_symbol=t.settlement_index,
        settlement_fee_ppm=_SETTLEMENT_FEE_PPM,
    )
    market = _Market(future_symbol(root, year, quarter), t.root, t.quote, t.settl,
                     t.position_currency, reference=t.reference)  # fmt: skip
    contract = _Contract(
        t.tick_num, t.tick_den, t.lot_size, t.max_order_qty, t.max_price, t.multiplier,
        _or_none(t.u2p), _or_none(t.u2s), _or_none(t.q2s),
    )  # fmt: skip
    risk = _Risk(t.init_margin_ppm, t.maint_margin_ppm, t.risk_limit, t.risk_step,
                 t.impact_notional)  # fmt: skip
    spec = _make(InstrumentKind.FUTURE, t.payout, market, contract, risk, _TIERED, schedule)
    return replace(spec, index=index)


def _crypto_perpetuals() -> list[InstrumentSpec]:
    perpetual, inverse = InstrumentKind.PERPETUAL, Payout.INVERSE
    linear, quanto = Payout.LINEAR, Payout.QUANTO
    return [
        _make(perpetual, inverse, _Market("XBTUSD", "XBT", "USD", "XBt", "USD", reference=".BXBT"),
              _XBT_INVERSE, _XBT_INVERSE_RISK, _TIERED,
              _funding(".XBTBON8H", ".USDBON8H", ".XBTUSDPI8H")),
        _make(perpetual, linear,
              _Market("XBTUSDT", "XBT", "USDT", "USDt", "XBT", reference=".BXBTT"),
              _Contract(1, 2, 1000, 1_000_000_000, 10_000_000, 1, u2p=1_000_000, q2s=_USDT),
              _Risk(10_000, 5_000, 1_000_000 * _USDT, 500_000 * _USDT, 100_000 * _USDT),
              _TIERED, _funding(".XBTBON8H", ".USDTBON8H", ".XBTUSDTPI8H")),
        _make(perpetual, quanto, _Market("ETHUSD", "ETH", "USD", "XBt", "", reference=".BETH"),
              _Contract(1, 20, 1, 10_000_000, 1_000_000, 100),
              _Risk(20_000, 10_000, 50 * _XBT, 50 * _XBT, 10 * _XBT),
              _TIERED, _funding(".ETHBON8H", ".USDBON8H", ".ETHUSDPI8H")),
        _make(perpetual, linear,
              _Market("ETHUSDT", "ETH", "USDT", "USDt", "ETH", reference=".BETHT"),
              _Contract(1, 20, 1000, 100_000_000, 1_000_000, 10, u2p=100_000, q2s=_USDT),
              _Risk(20_000, 10_000, 500_000 * _USDT, 250_000 * _USDT, 100_000 * _USDT),
              _TIERED, _funding(".ETHBON8H", ".USDTBON8H", ".ETHUSDTPI8H")),
    ]  # fmt: skip


def _spot_pairs() -> list[InstrumentSpec]:
    def market(symbol: str, root: str, base: str, reference: str) -> _Market:
        return _Market(symbol, root, "USDT", "USDt", root, base=base, reference=reference)

    spot = InstrumentKind.SPOT
    return [
        _make(spot, Payout.SPOT, market("XBT_USDT", "XBT", "XBt", ".BXBTT"),
              _Contract(1, 2, 100, 1_000_000_000, 10_000_000, 1, u2p=1_000_000, q2s=_USDT),
              fees=_SPOT_FEES),
        _make(spot, Payout.SPOT, market("ETH_USDT", "ETH", "Gwei", ".BETHT"),
              _Contract(1, 100, 10, 100_000_000, 1_000_000, 100, u2p=10_000, q2s=_USDT),
              fees=_SPOT_FEES),
        _make(spot, Payout.SPOT, market("BMEX_USDT", "BMEX", "BMEx", ".BBMEXT"),
              _Contract(1, 1000, 100, 1_000_000_000, 10_000, 10_000, u2p=100, q2s=_USDT),
              fees=_SPOT_FEES),
    ]  # fmt: skip


def _tradfi_perpetual(
    root: str, hours: TradingHours, contract: _Contract, margin_ppm: tuple[int, int]
) -> InstrumentSpec:
    symbol = f"{root}USDT"
    market = _Market(symbol, root, "USDT", "USDt", root, reference=f".B{root}T", hours=hours)
    risk = _Risk(margin_ppm[0], margin_ppm[1], 100_000 * _USDT, 50_000 * _USDT, 10_000 * _USDT)
    funding = _funding(f".{root}BON8H", ".USDTBON8H", f".{symbol}PI8H")
    return _make(
        InstrumentKind.PERPETUAL, Payout.LINEAR, market, contract, risk, _TRADFI_FEES, funding
    )


def _tradfi_perpetuals() -> list[InstrumentSpec]:
    return [
        _tradfi_perpetual("SPY", US_EQUITY, _Contract(1, 100, 1000, 100_000_000, 100_000, 1000,
                          u2p=1000, q2s=_USDT), (50_000, 25_000)),
        _tradfi_perpetual("XAU", METALS, _Contract(1, 10, 100, 10_000_000, 100_000, 1000,
                          u2p=1000, q2s=_USDT), (20_000, 10_000)),
        _tradfi_perpetual("EUR", FX, _Contract(1, 100_000, 1000, 100_000_000, 10, _USDT,
                          u2p=1, q2s=_USDT), (10_000, 5_000)),
    ]  # fmt: skip


def _indices() -> list[InstrumentSpec]:
    return [
        _index(".BXBT", "XBT", "USD"),
        _index(".BXBTT", "XBT", "USDT"),
        _index(".BXBT30M", "XBT", "USD"),
        _index(".BETH", "ETH", "USD"),
        _index(".BETHT", "ETH", "USDT"),
        _index(".BETH30M", "ETH", "USD"),
        _index(".BBMEXT", "BMEX", "USDT", tick_den=10_000),
        _index(".BSPYT", "SPY", "USDT", hours=US_EQUITY),
        _index(".BXAUT", "XAU", "USDT", hours=METALS),
        _index(".BEURT", "EUR", "USDT", tick_den=100_000, hours=FX),
        _index(".BXBTT30M", "XBT", "USDT"),  # the USDT futures' settlement TWAPs
        _index(".BETHT30M", "ETH", "USDT"),
    ]


def _build_catalogue() -> tuple[InstrumentSpec, ...]:
    futures = [
        quarterly_future("XBT", 2027, 1, listing_ns=CATALOGUE_LISTING_NS),
        quarterly_future("XBT", 2027, 2, listing_ns=CATALOGUE_LISTING_NS),
    ]
    specs = _crypto_perpetuals() + futures + _spot_pairs() + _tradfi_perpetuals() + _indices()
    catalogue = tuple(replace(spec, index=position) for position, spec in enumerate(specs))
    _check_references(by_symbol(catalogue))
    return catalogue


def by_symbol(specs: tuple[InstrumentSpec, ...]) -> dict[str, InstrumentSpec]:
    """Specs keyed by symbol, in catalogue order; duplicate symbols are a programmer error."""
    table = {spec.symbol: spec for spec in specs}
    invariant(len(table) == len(specs), "duplicate symbols in catalogue")
    return table


def _check_references(table: dict[str, InstrumentSpec]) -> None:
    for spec in table.values():
        names = (spec.reference_symbol, spec.settlement_index_symbol)
        for name in names if spec.is_tradable_kind else ():
            target = table.get(name) if name else None
            invariant(
                name == "" or (target is not None and target.kind == InstrumentKind.INDEX),
                f"{spec.symbol}: {name!r} is not an index in the catalogue",
            )


_CATALOGUE = _build_catalogue()


def default_catalogue() -> tuple[InstrumentSpec, ...]:
    """The default instruments in their fixed order; ``index`` equals the position."""
    return _CATALOGUE
