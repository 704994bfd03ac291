"""The futures catalogue file: quarterly series beyond the core's built-in XBT inverse ones,
listed by commands so the journal (and so a replay) reproduces them.

Invariants:
1. ``load_catalogue(path)`` reads the TOML file (``catalogue.toml`` beside this module is the
   embedded default) into ``CatalogueEntry`` values of core data (``core.catalogue.FutureSeries``)
   or raises ``CatalogueError`` naming the series and the key: an unknown key, a missing one,
   a price or margin that is not an exact decimal on its grid. Nothing is half-read.
2. The core never reads the file: ``CatalogueLister`` (a ``PeriodicJob`` step, first run at
   start) submits a ``DefineFutureSeries`` for each series the venue does not know yet, then a
   ``ListFuture`` for each listed quarter not yet listed and not yet expired, and, for ``auto``
   series, each quarter whose scheduled listing time has come. The engine checks every field
   (``core.catalogue.series_problem``) and refuses a key defined before; a series already
   defined with other values is left as it is and logged (the journal's wins: it is what the
   market has traded on).
"""

import logging
import tomllib
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, Final, NamedTuple

from perpetua.core.catalogue import (
    FutureSeries,
    future_symbol,
    quarterly_expiry_ns,
    quarterly_listing_ns,
)
from perpetua.core.commands import Command, DefineFutureSeries, ListFuture
from perpetua.core.events import Event, Rejected
from perpetua.core.instruments import Payout
from perpetua.core.units import PPM
from perpetua.runtime.config import ConfigError

__all__ = [
    "CATALOGUE_CHECK_INTERVAL_S",
    "CatalogueEntry",
    "CatalogueError",
    "CatalogueLister",
    "default_catalogue_path",
    "define_command",
    "load_catalogue",
    "parse_catalogue",
]

log = logging.getLogger("perpetua.catalogue")

CATALOGUE_CHECK_INTERVAL_S: Final = 3_600.0  # auto listings are due at most once a quarter
AUTO_QUARTERS_AHEAD: Final = 3  # quarters looked at from now for scheduled listings
_PAYOUTS: Final = {"inverse": Payout.INVERSE, "linear": Payout.LINEAR, "quanto": Payout.QUANTO}
_REQUIRED: Final = (
    "key", "payout", "rootSymbol", "quoteCurrency", "settlCurrency", "referenceSymbol",
    "settlementIndex", "tickSize", "lotSize", "maxOrderQty", "maxPrice", "multiplier",
    "initMargin", "maintMargin", "riskLimit", "riskStep", "impactNotional",
)  # fmt: skip
_OPTIONAL: Final = (
    "positionCurrency", "underlyingToPositionMultiplier", "underlyingToSettleMultiplier",
    "quoteToSettleMultiplier", "listings", "auto",
)  # fmt: skip


class CatalogueError(ConfigError):
    """The catalogue file cannot be used; the message names the series and key (a
    ``ConfigError``: ``perpetua run`` reports it and exits)."""


class CatalogueEntry(NamedTuple):
    series: FutureSeries
    listings: tuple[tuple[int, int], ...]  # (year, quarter) to list
    auto: bool  # also list the next quarterlies as they come due


def default_catalogue_path() -> Path:
    return Path(str(resources.files("perpetua.runtime") / "catalogue.toml"))


def load_catalogue(path: Path) -> list[CatalogueEntry]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogueError(f"{path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{path}: not TOML: {error}") from None
    return parse_catalogue(document, str(path))


def parse_catalogue(document: Mapping[str, Any], where: str = "catalogue") -> list[CatalogueEntry]:
    unknown = set(document) - {"series"}
    if unknown:
        raise CatalogueError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    rows = document.get("series", [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CatalogueError(f"{where}: series must be an array of tables ([[series]])")
    entries = [_entry(row, f"{where}: series {index + 1}") for index, row in enumerate(rows)]
    keys = [e.series.key for e in entries]
    if len(set(keys)) != len(keys):
        raise CatalogueError(f"{where}: a series key appears twice")
    return entries


def _entry(row: Mapping[str, Any], where: str) -> CatalogueEntry:
    if isinstance(row.get("key"), str):
        where = f"{where} ({row['key']})"
    for name in row:
        if name not in _REQUIRED and name not in _OPTIONAL:
            raise CatalogueError(f"{where}: unknown key {name!r}")
    for name in _REQUIRED:
        if name not in row:
            raise CatalogueError(f"{where}: {name} is required")
    payout = _PAYOUTS.get(str(row["payout"]))
    if payout is None:
        raise CatalogueError(f"{where}: payout must be one of {', '.join(_PAYOUTS)}")
    tick = _decimal(row, "tickSize", where)
    tick_fraction = Fraction(tick)
    max_price = _decimal(row, "maxPrice", where)
    if tick <= 0 or max_price != max_price.to_integral_value():
        raise CatalogueError(f"{where}: tickSize must be positive and maxPrice whole")
    series = FutureSeries(
        key=_text(row, "key", where),
        payout=payout,
        root=_text(row, "rootSymbol", where),
        quote=_text(row, "quoteCurrency", where),
        settl=_text(row, "settlCurrency", where),
        position_currency=_text(row, "positionCurrency", where, ""),
        reference=_text(row, "referenceSymbol", where),
        settlement_index=_text(row, "settlementIndex", where),
        tick_num=tick_fraction.numerator,
        tick_den=tick_fraction.denominator,
        lot_size=_int(row, "lotSize", where),
        max_order_qty=_int(row, "maxOrderQty", where),
        max_price=int(max_price),
        multiplier=_int(row, "multiplier", where),
        u2p=_int(row, "underlyingToPositionMultiplier", where, 0),
        u2s=_int(row, "underlyingToSettleMultiplier", where, 0),
        q2s=_int(row, "quoteToSettleMultiplier", where, 0),
        init_margin_ppm=_ppm(row, "initMargin", where),
        maint_margin_ppm=_ppm(row, "maintMargin", where),
        risk_limit=_int(row, "riskLimit", where),
        risk_step=_int(row, "riskStep", where),
        impact_notional=_int(row, "impactNotional", where),
    )
    listings = row.get("listings", [])
    if not isinstance(listings, list) or not all(
        isinstance(item, list) and len(item) == 2 and all(type(v) is int for v in item)
        for item in listings
    ):
        raise CatalogueError(f"{where}: listings must be [[year, quarter], ...]")
    if not all(2000 <= year <= 2099 and 1 <= quarter <= 4 for year, quarter in listings):
        raise CatalogueError(f"{where}: a listing's year is 2000..2099 and quarter 1..4")
    auto = row.get("auto", False)
    if type(auto) is not bool:
        raise CatalogueError(f"{where}: auto must be true or false")
    return CatalogueEntry(series, tuple((y, q) for y, q in listings), auto)


def _text(row: Mapping[str, Any], name: str, where: str, default: str | None = None) -> str:
    value = row.get(name, default)
    if not isinstance(value, str):
        raise CatalogueError(f"{where}: {name} must be a string")
    return value


def _int(row: Mapping[str, Any], name: str, where: str, default: int | None = None) -> int:
    value = row.get(name, default)
    if type(value) is not int:
        raise CatalogueError(f"{where}: {name} must be an integer")
    return value


def _decimal(row: Mapping[str, Any], name: str, where: str) -> Decimal:
    value = row.get(name)
    if not isinstance(value, str | int):
        raise CatalogueError(f'{where}: {name} must be a decimal string such as "0.5"')
    try:
        found = Decimal(str(value))
    except InvalidOperation:
        raise CatalogueError(f"{where}: {name} is not a decimal: {value!r}") from None
    if not found.is_finite():
        raise CatalogueError(f"{where}: {name} must be finite")
    return found


def _ppm(row: Mapping[str, Any], name: str, where: str) -> int:
    value = _decimal(row, name, where) * PPM
    if value != value.to_integral_value():
        raise CatalogueError(f"{where}: {name} has more than 6 decimals")
    return int(value)


def define_command(series: FutureSeries) -> DefineFutureSeries:
    return DefineFutureSeries(0, *series)


class CatalogueLister:
    """``step``: define what is missing, then list what is due (contract: the docstring, 2).
    ``known``: the series the venue has defined; ``listed``: the symbols it knows; ``submit``:
    a command through the sequencer, answering its events; ``now``: the exchange's time."""

    def __init__(
        self,
        entries: list[CatalogueEntry],
        known: Callable[[], Mapping[str, FutureSeries]],
        listed: Callable[[], Collection[str]],
        submit: Callable[[Command], Awaitable[Sequence[Event]]],
        now: Callable[[], int],
    ) -> None:
        self.entries = entries
        self.known = known
        self.listed = listed
        self.submit = submit
        self.now = now

    def due(self, now_ns: int) -> list[Command]:
        """The commands a step would submit now (definitions first)."""
        known = self.known()
        listed = self.listed()
        out: list[Command] = []
        for entry in self.entries:
            series = entry.series
            defined = known.get(series.key)
            if defined is None:
                out.append(define_command(series))
            elif defined != series:
                log.warning("catalogue: series %s differs from the defined one; kept", series.key)
        for entry in self.entries:
            key = entry.series.key
            quarters = set(entry.listings)
            if entry.auto:
                quarters.update(_scheduled(now_ns))
            for year, quarter in sorted(quarters):
                symbol = future_symbol(key, year, quarter)
                if symbol not in listed and quarterly_expiry_ns(year, quarter) > now_ns:
                    out.append(ListFuture(0, key, year, quarter))
        return out

    async def step(self) -> None:
        for command in self.due(self.now()):
            events = await self.submit(command)
            for event in events:
                if isinstance(event, Rejected):
                    log.warning("catalogue: %s refused (reason %s)", command, event.reason)


def _scheduled(now_ns: int) -> list[tuple[int, int]]:
    """Quarters whose scheduled listing has come and whose expiry has not."""
    year = 1970 + now_ns // (365 * 86_400 * 10**9)
    found = []
    for y in range(year - 1, year + 2):
        for q in range(1, 5):
            if quarterly_listing_ns(y, q) <= now_ns < quarterly_expiry_ns(y, q):
                found.append((y, q))
    return found[:AUTO_QUARTERS_AHEAD]
