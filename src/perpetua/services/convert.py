"""The convert desk's quotes: a price for (from, to, amount) from the spot books' depth, good
for ``QUOTE_TTL_NS``, executed by quote id as one core ``Convert`` command.

1. A quote walks the gateway's L2 books with the core's own pricing (``core.convert``: VWAP for
   the size, routed through USDT, less the desk's spread), so the amount quoted is what the core
   will check against its books when the quote is executed.
2. Refused with a clear reason: unknown or equal currencies, an asset whose pair is not Open
   (paused), a value under ``CONVERT_USD_MIN`` or over ``CONVERT_USD_MAX`` (valued at the USDT
   leg), books too thin for the size.
3. Executing: the quote must exist, belong to the caller, not be used and not be expired (on the
   venue's clock); it is then marked used and submitted as ``Convert`` carrying its expiry, which
   the core checks again against the command's own time (the authority: a quote the service let
   through a moment before expiry is refused if the sequencer stamps it after). The core refuses
   a quote id it has seen, so a reuse after the service forgot the quote is refused too.
4. Quotes are kept in memory, at most ``QUOTES_MAX``, expired ones dropped as new ones come: a
   restart forgets open quotes (they would expire within seconds anyway).
   With a ``sealer`` (the cluster's gateways, which share the server key) a quote is not kept:
   its id is the quote itself sealed with that key (Fernet: encrypted and authenticated), so
   whichever gateway a client's next request reaches can execute it, and a client cannot
   alter it. A gateway remembers the ids it executed until they expire; an id executed on
   another gateway is refused by the core (rule 3).
5. Sweep: every balance of a convertible currency worth less than ``SWEEP_USD_MAX`` becomes BMEX,
   one quote and one ``Convert`` per currency (each atomic; a sweep is not).
"""

import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple, Protocol

from cryptography.fernet import InvalidToken

from perpetua.core.convert import (
    QUOTE_CURRENCY,
    BookLevels,
    ConvertRoute,
    convert_output,
    route,
)
from perpetua.core.instruments import InstrumentSpec, spot_base_amount

__all__ = [
    "CONVERT_USD_MAX",
    "CONVERT_USD_MIN",
    "QUOTES_MAX",
    "QUOTE_TTL_NS",
    "SWEEP_USD_MAX",
    "ConvertDesk",
    "ConvertError",
    "Quote",
]

QUOTE_TTL_NS: Final = 10 * 10**9
QUOTES_MAX: Final = 100_000
USDT_MINOR: Final = 1_000_000
CONVERT_USD_MIN: Final = 1  # whole USD (USDT) at the USDT leg
CONVERT_USD_MAX: Final = 100_000
SWEEP_USD_MAX: Final = 10  # a balance worth less than this is "small"
SWEEP_TARGET: Final = "BMEx"
SEALED_ID_CHARS_MAX: Final = 400  # a sealed quote id is ~200 characters; longer is not ours
_SEALED = struct.Struct(">qqqqq")  # account, from amount, to amount, created, expires


class Sealer(Protocol):
    """Authenticated encryption with a key every gateway holds (``MultiFernet``)."""

    def encrypt(self, msg: bytes) -> bytes: ...

    def decrypt(self, msg: bytes | str, ttl: int | None = None) -> bytes: ...


class ConvertError(Exception):
    """A refused quote or execution: ``status`` is the HTTP status, the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Quote(NamedTuple):
    quote_id: str
    account: int
    from_currency: str
    to_currency: str
    from_amount: int
    to_amount: int
    created_ns: int
    expires_ns: int


class ConvertDesk:
    def __init__(
        self,
        specs: Mapping[str, InstrumentSpec],
        now_ns: Callable[[], int],
        ttl_ns: int = QUOTE_TTL_NS,
        sealer: Sealer | None = None,
    ) -> None:
        """``sealer``: seal quotes into their ids instead of keeping them (rule 4)."""
        self.specs = dict(specs)
        self.now_ns = now_ns
        self.ttl_ns = ttl_ns
        self.sealer = sealer
        self.quotes: OrderedDict[str, Quote] = OrderedDict()
        self.used: set[str] = set()

    def currencies(self) -> list[str]:
        """Every currency with a USDT spot pair, and USDT itself."""
        found = [QUOTE_CURRENCY]
        for spec in self.specs.values():
            if route(list(self.specs.values()), spec.base_currency, QUOTE_CURRENCY).sell:
                found.append(spec.base_currency)
        return list(dict.fromkeys(found))

    def _legs(
        self, from_currency: str, to_currency: str, is_open: Callable[[str], bool]
    ) -> ConvertRoute:
        if from_currency == to_currency:
            raise ConvertError("Convert: from and to are the same currency")
        legs = route(list(self.specs.values()), from_currency, to_currency)
        if not legs.sell and not legs.buy:
            raise ConvertError(f"Convert: {from_currency} cannot be converted to {to_currency}")
        for symbol in legs:
            if symbol and not is_open(symbol):
                raise ConvertError(f"Convert: trading in {symbol} is paused")
        return legs

    def quote(
        self,
        account: int,
        from_currency: str,
        to_currency: str,
        amount: int,
        books: BookLevels,
        is_open: Callable[[str], bool],
        usd_min: int = CONVERT_USD_MIN,
    ) -> Quote:
        """A quote (rules 1, 2); ``usd_min``: the least value in whole USDT (0 for a sweep)."""
        if amount <= 0:
            raise ConvertError("Convert: amount must be a positive integer in minor units")
        legs = self._legs(from_currency, to_currency, is_open)
        usd = amount
        step = self.step(from_currency)
        if amount % step:
            raise ConvertError(f"Convert: amount must be a multiple of {step} {from_currency}")
        if legs.sell:
            value = convert_output(self.specs, ConvertRoute(legs.sell, ""), books, amount)
            if value is None:
                raise ConvertError("Convert: the order books are too thin for this size")
            usd = value
        if usd < usd_min * USDT_MINOR:
            raise ConvertError(f"Convert: amount too small (at least {usd_min} USDT)")
        if usd > CONVERT_USD_MAX * USDT_MINOR:
            raise ConvertError(f"Convert: amount too large (at most {CONVERT_USD_MAX} USDT)")
        out = convert_output(self.specs, legs, books, amount)
        if out is None:
            raise ConvertError("Convert: the order books are too thin for this size")
        now = self.now_ns()
        quote = Quote(
            secrets.token_hex(16),
            account,
            from_currency,
            to_currency,
            amount,
            out,
            now,
            now + self.ttl_ns,
        )
        if self.sealer is not None:
            return quote._replace(quote_id=self._seal(quote))
        self._keep(quote, now)
        return quote

    def _seal(self, quote: Quote) -> str:
        assert self.sealer is not None
        fields = _SEALED.pack(quote.account, quote.from_amount, quote.to_amount,
                              quote.created_ns, quote.expires_ns)  # fmt: skip
        names = f"{quote.from_currency}/{quote.to_currency}".encode()
        return self.sealer.encrypt(fields + names).decode("ascii")

    def _unseal(self, quote_id: str) -> Quote | None:
        """The quote sealed in ``quote_id``, or None when it is not one of ours (rule 4)."""
        assert self.sealer is not None
        if len(quote_id) > SEALED_ID_CHARS_MAX or not quote_id.isascii():
            return None
        try:
            plain = self.sealer.decrypt(quote_id.encode("ascii"))
        except (InvalidToken, ValueError):  # binascii.Error is a ValueError
            return None
        if len(plain) <= _SEALED.size:
            return None
        account, from_amount, to_amount, created, expires = _SEALED.unpack_from(plain)
        from_currency, _, to_currency = plain[_SEALED.size :].decode().partition("/")
        return Quote(quote_id, account, from_currency, to_currency, from_amount, to_amount,
                     created, expires)  # fmt: skip

    def _keep(self, quote: Quote, now: int) -> None:
        while self.quotes:
            oldest = next(iter(self.quotes.values()))
            if oldest.expires_ns >= now and len(self.quotes) < QUOTES_MAX:
                break
            self.quotes.popitem(last=False)
            self.used.discard(oldest.quote_id)
        self.quotes[quote.quote_id] = quote

    def take(self, account: int, quote_id: str) -> Quote:
        """The caller's live, unused quote, now marked used (rules 3, 4)."""
        if self.sealer is not None:
            return self._take_sealed(account, quote_id)
        quote = self.quotes.get(quote_id)
        if quote is None or quote.account != account:
            raise ConvertError("Convert: quote not found (or expired)", 404)
        if quote_id in self.used:
            raise ConvertError("Convert: the quote was already used")
        if self.now_ns() > quote.expires_ns:
            raise ConvertError("Convert: the quote has expired, ask for a new one")
        self.used.add(quote_id)
        return quote

    def _take_sealed(self, account: int, quote_id: str) -> Quote:
        quote = self._unseal(quote_id)
        if quote is None or quote.account != account:
            raise ConvertError("Convert: quote not found (or expired)", 404)
        now = self.now_ns()
        if now > quote.expires_ns:
            raise ConvertError("Convert: the quote has expired, ask for a new one")
        if quote_id in self.quotes:  # here: the ids this gateway executed, until they expire
            raise ConvertError("Convert: the quote was already used")
        self._keep(quote, now)
        return quote

    def step(self, currency: str) -> int:
        """The smallest convertible amount of ``currency`` (one spot position unit's worth)."""
        legs = route(list(self.specs.values()), currency, QUOTE_CURRENCY)
        return spot_base_amount(self.specs[legs.sell], 1) if legs.sell else 1

    def small_balances(
        self, balances: Mapping[str, int], books: BookLevels, is_open: Callable[[str], bool]
    ) -> dict[str, int]:
        """Currencies (not BMEX) whose balance is worth less than ``SWEEP_USD_MAX``, with it."""
        small: dict[str, int] = {}
        for currency, amount in sorted(balances.items()):
            if currency == SWEEP_TARGET or amount <= 0:
                continue
            try:
                legs = self._legs(currency, QUOTE_CURRENCY, is_open)
            except ConvertError:
                continue
            amount -= amount % self.step(currency)
            if amount <= 0:
                continue
            usd = amount if not legs.sell else convert_output(self.specs, legs, books, amount)
            if usd is not None and usd < SWEEP_USD_MAX * USDT_MINOR:
                small[currency] = amount
        return small
