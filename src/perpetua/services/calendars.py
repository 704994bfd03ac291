"""TradFi calendars: holidays and half-days from ``exchange-calendars``, turned into the plain
``SetTradingCalendar`` commands the core reads (the core imports no third-party package).

The venue's definitions (``VENUE_CALENDARS``):
1. SPYUSDT follows the New York Stock Exchange (``XNYS``): every weekday that is not an XNYS
   session is a holiday; a session that closes before the regular 16:00 New York time is a
   half-day, closing at its UTC close minute (13:00 New York = 18:00 UTC in winter).
2. XAUUSDT follows CME Globex's holidays (``CMES``): every weekday that is not a CMES session is
   a holiday (metals' early closes are not applied: the venue's metals session already ends at
   22:00 UTC).
3. EURUSDT (spot FX trades through exchange holidays) closes on 25 December and 1 January only.
The weekly sessions stay the catalogue's (fixed UTC: ``core.calendar``'s stated simplification).

A calendar covers ``HORIZON_PAST_DAYS`` before to ``HORIZON_DAYS`` after the day it is built; the
job rebuilds it daily and submits it only when it changed, so the journal holds one command per
market per day at most and replay needs neither the library nor a clock.
"""

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import Any, Final

from perpetua.core.calendar import NS_PER_DAY, days_from_civil
from perpetua.core.commands import Command, SetTradingCalendar

__all__ = [
    "CALENDAR_CHECK_INTERVAL_S",
    "HORIZON_DAYS",
    "HORIZON_PAST_DAYS",
    "VENUE_CALENDARS",
    "CalendarJob",
    "build_calendar",
]

CALENDAR_CHECK_INTERVAL_S: Final = 3_600.0  # the job looks for a new UTC day this often
HORIZON_DAYS: Final = 400
HORIZON_PAST_DAYS: Final = 7
VENUE_CALENDARS: Final = {"SPYUSDT": "XNYS", "XAUUSDT": "CMES", "EURUSDT": "FX"}
_FX_HOLIDAYS: Final = ((12, 25), (1, 1))
_EARLY_CLOSES: Final = frozenset({"XNYS"})


_EPOCH_ORDINAL: Final = 719163  # datetime.date(1970, 1, 1).toordinal()


def _date(day: int) -> datetime.date:
    return datetime.date.fromordinal(day + _EPOCH_ORDINAL)


def _month_day(day: int) -> tuple[int, int]:
    date = _date(day)
    return date.month, date.day


def _day(value: Any) -> int:
    return days_from_civil(value.year, value.month, value.day)


def _weekdays(first: int, last: int) -> list[int]:
    return [d for d in range(first, last + 1) if (d + 3) % 7 < 5]  # 1970-01-01 was a Thursday


def _exchange(code: str, first: int, last: int) -> tuple[list[int], list[tuple[int, int]]]:
    import exchange_calendars  # noqa: PLC0415 - pandas-heavy: loaded only when a job builds

    start, end = _date(first), _date(last)
    calendar = exchange_calendars.get_calendar(code, start=str(start), end=str(end))
    schedule = calendar.schedule
    sessions = {_day(label): row for label, row in schedule.iterrows()}
    holidays = [d for d in _weekdays(first, last) if d not in sessions]
    early: list[tuple[int, int]] = []
    if code in _EARLY_CLOSES:
        early_days = {_day(label) for label in calendar.early_closes}
        for day in sorted(early_days & set(sessions)):
            close = sessions[day]["close"]
            early.append((day, close.hour * 60 + close.minute))
    return holidays, early


def build_calendar(symbol: str, today_ns: int) -> SetTradingCalendar:
    """The venue's calendar of ``symbol`` around ``today_ns`` (module docstring)."""
    today = today_ns // NS_PER_DAY
    first, last = today - HORIZON_PAST_DAYS, today + HORIZON_DAYS
    code = VENUE_CALENDARS[symbol]
    if code == "FX":
        holidays = [d for d in range(first, last + 1) if _month_day(d) in _FX_HOLIDAYS]
        early: list[tuple[int, int]] = []
    else:
        holidays, early = _exchange(code, first, last)
    return SetTradingCalendar(
        0,
        symbol,
        tuple(holidays),
        tuple(day for day, _ in early),
        tuple(minute for _, minute in early),
    )


class CalendarJob:
    """A ``PeriodicJob`` step: rebuild each TradFi calendar once per UTC day and submit it when
    it changed (the first run after a start always submits: the service keeps no state)."""

    def __init__(
        self,
        submit: Callable[[Command], Awaitable[Any]],
        now_ns: Callable[[], int],
        build: Callable[[str, int], SetTradingCalendar] = build_calendar,
        on_calendar: Callable[[SetTradingCalendar], None] = lambda command: None,
    ) -> None:
        """``on_calendar``: also told each new calendar (the simulated feed stops on holidays)."""
        self.submit = submit
        self.on_calendar = on_calendar
        self.now_ns = now_ns
        self.build = build
        self.built_day = -1
        self.sent: dict[str, SetTradingCalendar] = {}

    async def step(self) -> None:
        today = self.now_ns() // NS_PER_DAY
        if today == self.built_day:
            return
        for symbol in VENUE_CALENDARS:
            command = await asyncio.to_thread(self.build, symbol, self.now_ns())
            if self.sent.get(symbol) != command:
                await self.submit(command)
                self.on_calendar(command)
                self.sent[symbol] = command
        self.built_day = today
