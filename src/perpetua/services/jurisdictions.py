"""Restricted jurisdictions: the operator's policy, and where an IP address is.

The policy names ISO 3166-1 alpha-2 countries ("US") and ISO 3166-2 subdivisions ("CA-QC"),
each checked against ``pycountry`` when the policy loads (an unknown code is a
``PolicyError``, never silently ignored). Four separate rules, each a blocked list:

- ``residence``: where a person lives (the KYC questionnaire);
- ``citizenship``: each nationality a person declares;
- ``incorporation``: where a business is incorporated;
- ``ip``: where a request comes from (a MaxMind-format database, ``GeoIp``).

A country code blocks the whole country; a subdivision code only that subdivision. Per-product
rules deny a product class (``Spot``, ``Derivatives``, ``TradFi``) to residents of listed
places while the rest stays open. The default policy is BitMEX's published list (``DEFAULT``);
a policy file (TOML, the same shape) replaces it::

    [residence]
    blocked = ["US", "CA-QC", "CU", ...]
    [citizenship]
    blocked = ["US"]
    [incorporation]
    blocked = [...]
    [ip]
    blocked = [...]
    [products]
    Derivatives = ["GB"]          # residents of GB: no new derivatives exposure
    TradFi = ["GB", "DE"]

``GeoIp`` answers (country, subdivision) for an address from the operator's database (a
GeoLite2/GeoIP2 City or Country file, or any MaxMind DB with the same ``country.iso_code`` and
``subdivisions[].iso_code`` fields), caching up to ``GEOIP_CACHE_MAX`` addresses; private and
unknown addresses have no location (``None``), which the policy allows.
"""

import ipaddress
import threading
import tomllib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import maxminddb
import pycountry

from perpetua.core.enums import ProductClass

__all__ = [
    "DEFAULT",
    "GEOIP_CACHE_MAX",
    "RULES",
    "GeoIp",
    "Location",
    "Policy",
    "PolicyError",
    "load_policy",
    "parse_place",
]

RULES: Final = ("residence", "citizenship", "incorporation", "ip")
GEOIP_CACHE_MAX: Final = 10_000
PRODUCT_CLASSES: Final = {
    "Spot": ProductClass.SPOT,
    "Derivatives": ProductClass.DERIVATIVES,
    "TradFi": ProductClass.TRADFI,
}

# BitMEX's restricted list: the United States, Québec, Cuba, Crimea and Sevastopol, Iran, Syria,
# North Korea, Sudan, the Donetsk, Luhansk, Kherson and Zaporizhzhia regions, and BitMEX's own
# office jurisdictions Bermuda, Hong Kong and the Seychelles.
BITMEX_RESTRICTED: Final = (
    "US",
    "CA-QC",
    "CU",
    "UA-43",  # Crimea
    "UA-40",  # Sevastopol
    "IR",
    "SY",
    "KP",
    "SD",
    "UA-14",  # Donetsk
    "UA-09",  # Luhansk
    "UA-65",  # Kherson
    "UA-23",  # Zaporizhzhia
    "BM",
    "HK",
    "SC",
)


# ISO 3166-2 code -> its country (pycountry's subdivisions, indexed once).
_SUBDIVISIONS: Final[dict[str, str]] = {
    str(sub.code): str(sub.country_code) for sub in pycountry.subdivisions
}


class PolicyError(ValueError):
    """The policy cannot be used; the message names the rule and the code."""


@dataclass(frozen=True, slots=True)
class Location:
    """A place: an ISO 3166-1 alpha-2 country and, when known, its ISO 3166-2 subdivision."""

    country: str
    subdivision: str = ""  # full code, e.g. "CA-QC"

    def codes(self) -> tuple[str, ...]:
        return (self.country, self.subdivision) if self.subdivision else (self.country,)

    def __str__(self) -> str:
        return self.subdivision or self.country


def parse_place(text: str) -> Location:
    """A country ("CA") or subdivision ("CA-QC") code, checked against ISO 3166."""
    code = text.strip().upper()
    if "-" in code:
        sub = _SUBDIVISIONS.get(code)
        if sub is None:
            raise PolicyError(f"unknown ISO 3166-2 subdivision {text!r}")
        return Location(sub, code)
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise PolicyError(f"unknown ISO 3166-1 alpha-2 country {text!r}")
    return Location(code)


@dataclass(frozen=True, slots=True)
class Policy:
    """Blocked places per rule, and product classes denied per place."""

    blocked: Mapping[str, frozenset[str]]
    products: Mapping[str, frozenset[str]] = field(default_factory=dict)  # class -> places

    def blocks(self, rule: str, place: Location | None) -> bool:
        if place is None:
            return False
        listed = self.blocked.get(rule, frozenset())
        return any(code in listed for code in place.codes())

    def denied_products(self, places: Iterable[Location | None]) -> int:
        """``ProductClass`` bits denied to someone at any of ``places``."""
        bits = 0
        for name, listed in self.products.items():
            for place in places:
                if place is not None and any(code in listed for code in place.codes()):
                    bits |= PRODUCT_CLASSES[name]
        return bits


def _codes(where: str, values: Any) -> frozenset[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PolicyError(f"{where}: a list of ISO 3166 codes")
    try:
        return frozenset(str(parse_place(v)) for v in values)
    except PolicyError as error:
        raise PolicyError(f"{where}: {error}") from None


def policy_of(document: Mapping[str, Any]) -> Policy:
    unknown = set(document) - {*RULES, "products"}
    if unknown:
        raise PolicyError(f"unknown policy keys: {', '.join(sorted(unknown))}")
    blocked: dict[str, frozenset[str]] = {}
    for rule in RULES:
        table = document.get(rule, {})
        if not isinstance(table, dict) or set(table) - {"blocked"}:
            raise PolicyError(f"{rule}: a table with 'blocked'")
        blocked[rule] = _codes(f"{rule}.blocked", table.get("blocked", []))
    products = document.get("products", {})
    if not isinstance(products, dict) or set(products) - set(PRODUCT_CLASSES):
        raise PolicyError(f"products: keys among {', '.join(PRODUCT_CLASSES)}")
    return Policy(blocked, {k: _codes(f"products.{k}", v) for k, v in products.items()})


DEFAULT: Final = policy_of({rule: {"blocked": list(BITMEX_RESTRICTED)} for rule in RULES})


def load_policy(path: Path | None) -> Policy:
    """The policy file at ``path``, or ``DEFAULT`` when none is given."""
    if path is None:
        return DEFAULT
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyError(f"{path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{path}: not TOML: {error}") from None
    return policy_of(document)


class GeoIp:
    """Country and subdivision of an IP address from a MaxMind-format database, cached."""

    def __init__(self, path: Path | None, cache_max: int = GEOIP_CACHE_MAX) -> None:
        self._reader = maxminddb.open_database(str(path)) if path is not None else None
        self._cache: OrderedDict[str, Location | None] = OrderedDict()
        self._cache_max = cache_max
        self._lock = threading.Lock()
        self.lookups = 0  # database reads (cache misses), for tests and metrics

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def locate(self, ip: str) -> Location | None:
        if self._reader is None:
            return None
        with self._lock:
            if ip in self._cache:
                self._cache.move_to_end(ip)
                return self._cache[ip]
        found = self._read(ip)
        with self._lock:
            self._cache[ip] = found
            if len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        return found

    def _read(self, ip: str) -> Location | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if address.is_private or address.is_loopback or self._reader is None:
            return None
        self.lookups += 1
        record = self._reader.get(str(address))
        if not isinstance(record, dict):
            return None
        country = record.get("country")
        code = country.get("iso_code") if isinstance(country, dict) else None
        if not isinstance(code, str):
            return None
        subdivision = ""
        subs = record.get("subdivisions")
        if isinstance(subs, Sequence) and subs and isinstance(subs[0], dict):
            sub_code = subs[0].get("iso_code")
            if isinstance(sub_code, str):
                subdivision = f"{code}-{sub_code}"
        return Location(code.upper(), subdivision.upper())
