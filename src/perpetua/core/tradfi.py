"""TradFi market calendars: ``SetTradingCalendar`` gives a market its holidays and half-days.

A TradFi perpetual's weekly sessions are part of its spec (``catalogue``); the dated exceptions
(exchange holidays, early closes) change every year, so they arrive as a command, journaled like
any other, from ``exchange-calendars`` outside the core (``services.calendars``). The market's
``hours`` become the spec's sessions with these exceptions.

While a market is closed (outside its sessions, on a holiday, after a half-day's close):
1. new orders and amends are refused (``INSTRUMENT_OUTSIDE_TRADING_HOURS``); cancels work;
2. resting orders stay in the book untouched and can execute again from the reopening;
3. stops and other triggered orders do not trigger, whatever the mark does; they are checked
   again at the first index or order after the reopening;
4. funding keeps its 8-hour schedule: positions stay open and pay or receive at the usual times
   (the premium is sampled from the mark and index as they are: the feeds publish nothing while
   the market is closed, the simulated one told the calendar too, so they stay where the close
   left them);
5. liquidation still runs on mark moves (positions carry risk through a closure).

Checks (a bad calendar is refused and changes nothing): the market exists and is not open all
week; at most ``HOLIDAYS_MAX`` holidays and half-days, each list strictly increasing; a half-day
minute inside the day and no day both a holiday and a half-day.
"""

from perpetua.core.calendar import HOLIDAYS_MAX, MINUTES_PER_DAY, TradingHours
from perpetua.core.commands import SetTradingCalendar
from perpetua.core.events import Event, TradingCalendarChanged
from perpetua.core.placement import reject
from perpetua.core.reasons import Reason
from perpetua.core.state import State

__all__ = ["set_trading_calendar", "with_calendar"]


def _increasing(days: tuple[int, ...]) -> bool:
    return all(a < b for a, b in zip(days, days[1:], strict=False))


def _valid(cmd: SetTradingCalendar) -> bool:
    early = cmd.early_close_days
    return (
        len(cmd.holiday_days) <= HOLIDAYS_MAX
        and len(early) <= HOLIDAYS_MAX
        and len(early) == len(cmd.early_close_minutes)
        and _increasing(cmd.holiday_days)
        and _increasing(early)
        and all(0 < minute < MINUTES_PER_DAY for minute in cmd.early_close_minutes)
        and not set(early) & set(cmd.holiday_days)
    )


def with_calendar(
    hours: TradingHours,
    holiday_days: tuple[int, ...],
    early_close_days: tuple[int, ...],
    early_close_minutes: tuple[int, ...],
) -> TradingHours:
    """``hours``' weekly sessions with these dated exceptions (checked by the caller)."""
    early = tuple(zip(early_close_days, early_close_minutes, strict=True))
    return TradingHours(hours.name, hours.sessions, tuple(holiday_days), early)


def set_trading_calendar(state: State, cmd: SetTradingCalendar, out: list[Event]) -> None:
    market = state.markets.get(cmd.symbol)
    if market is None or market.spec.trading_hours.always_open or not _valid(cmd):
        reject(state, out, "SetTradingCalendar", 0, Reason.CALENDAR_INVALID)
        return
    market.hours = with_calendar(
        market.spec.trading_hours,
        cmd.holiday_days,
        cmd.early_close_days,
        cmd.early_close_minutes,
    )
    out.append(
        TradingCalendarChanged(
            state.ts_ns,
            cmd.symbol,
            tuple(cmd.holiday_days),
            tuple(cmd.early_close_days),
            tuple(cmd.early_close_minutes),
        )
    )
