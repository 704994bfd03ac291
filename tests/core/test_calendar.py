import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpetua.core.calendar import (
    ALWAYS_OPEN,
    FX,
    METALS,
    NS_PER_DAY,
    NS_PER_MINUTE,
    US_EQUITY,
    TradingHours,
    WeeklySession,
    civil_from_days,
    days_from_civil,
    is_open,
    next_close_ns,
    next_open_ns,
    utc_ns,
    weekday_of_day,
)
from perpetua.core.invariant import InvariantError

# 2026-11-30 is a Monday; the week below runs Monday 30 Nov .. Sunday 6 Dec 2026.
# SUN is the Sunday before that Monday (29 Nov), when the metals and FX weeks open.
MON, TUE, WED, THU, FRI, SAT = range(30, 36)
SUN = 29


def at(day: int, hour: int, minute: int = 0) -> int:
    """UTC ns of a day in the reference week (days above 30 roll into December)."""
    if day <= 30:
        return utc_ns(2026, 11, day, hour, minute)
    return utc_ns(2026, 12, day - 30, hour, minute)


def test_reference_week_weekdays() -> None:
    for weekday, day in enumerate(range(MON, SAT + 1)):
        assert weekday_of_day(at(day, 0) // NS_PER_DAY) == weekday
    assert weekday_of_day(at(SUN, 0) // NS_PER_DAY) == 6


@pytest.mark.parametrize(
    ("date", "days", "weekday"),
    [
        ((1970, 1, 1), 0, 3),
        ((1969, 12, 31), -1, 2),
        ((2000, 3, 1), 11_017, 2),
        ((2027, 3, 26), 20_903, 4),
        ((1900, 3, 1), -25_508, 3),
    ],
)
def test_civil_days(date: tuple[int, int, int], days: int, weekday: int) -> None:
    assert days_from_civil(*date) == days
    assert civil_from_days(days) == date
    assert weekday_of_day(days) == weekday


@given(st.dates(min_value=dt.date(1600, 1, 1), max_value=dt.date(2400, 12, 31)))
def test_civil_days_match_the_standard_library(date: dt.date) -> None:
    days = days_from_civil(date.year, date.month, date.day)
    assert days == (date - dt.date(1970, 1, 1)).days
    assert civil_from_days(days) == (date.year, date.month, date.day)
    assert weekday_of_day(days) == date.weekday()


def test_utc_ns() -> None:
    assert utc_ns(1970, 1, 1) == 0
    assert utc_ns(2027, 3, 26, 12) == 1_806_062_400 * 1_000_000_000
    with pytest.raises(InvariantError):
        utc_ns(2027, 3, 26, 24)


def test_us_equity_hours() -> None:
    assert not is_open(US_EQUITY, at(MON, 14, 29))
    assert not is_open(US_EQUITY, at(MON, 14, 30) - 1)
    assert is_open(US_EQUITY, at(MON, 14, 30))
    assert is_open(US_EQUITY, at(FRI, 21) - 1)
    assert not is_open(US_EQUITY, at(FRI, 21))
    assert not is_open(US_EQUITY, at(SAT, 15))
    assert not is_open(US_EQUITY, at(SUN, 15))
    assert next_open_ns(US_EQUITY, at(FRI, 21)) == at(MON, 14, 30) + 7 * NS_PER_DAY
    assert next_open_ns(US_EQUITY, at(TUE, 3)) == at(TUE, 14, 30)
    assert next_close_ns(US_EQUITY, at(MON, 15)) == at(MON, 21)
    assert next_close_ns(US_EQUITY, at(SAT, 15)) == at(SAT, 15)
    assert not US_EQUITY.always_open


def test_metals_hours_and_daily_break() -> None:
    assert not is_open(METALS, at(SUN, 22, 59))
    assert is_open(METALS, at(SUN, 23))
    assert is_open(METALS, at(MON, 0))
    assert is_open(METALS, at(MON, 21, 59))
    assert not is_open(METALS, at(MON, 22))
    assert not is_open(METALS, at(MON, 22, 59))
    assert is_open(METALS, at(MON, 23))
    assert is_open(METALS, at(FRI, 21, 59))
    assert not is_open(METALS, at(FRI, 22))
    assert not is_open(METALS, at(FRI, 23))
    assert not is_open(METALS, at(SAT, 12))
    # Sunday's session runs through midnight into Monday's.
    assert next_close_ns(METALS, at(SUN, 23, 30)) == at(MON, 22)
    assert next_open_ns(METALS, at(MON, 22, 10)) == at(MON, 23)
    assert next_open_ns(METALS, at(FRI, 22)) == at(SUN, 23) + 7 * NS_PER_DAY


def test_fx_hours_are_continuous() -> None:
    assert not is_open(FX, at(SUN, 21, 59))
    assert is_open(FX, at(SUN, 22))
    assert is_open(FX, at(WED, 3))
    assert not is_open(FX, at(FRI, 22))
    assert next_close_ns(FX, at(SUN, 22)) == at(FRI, 22)
    assert next_close_ns(FX, at(THU, 23, 59)) == at(FRI, 22)
    assert next_open_ns(FX, at(SAT, 1)) == at(SUN, 22) + 7 * NS_PER_DAY


def test_always_open() -> None:
    assert ALWAYS_OPEN.always_open
    for ts in (0, -1, at(SAT, 3), at(WED, 23, 59) + 59 * NS_PER_MINUTE):
        assert is_open(ALWAYS_OPEN, ts)
        assert next_open_ns(ALWAYS_OPEN, ts) == ts
    with pytest.raises(InvariantError, match="never closes"):
        next_close_ns(ALWAYS_OPEN, 0)


def test_holidays_close_the_whole_utc_day() -> None:
    monday = at(MON, 0) // NS_PER_DAY
    tuesday = monday + 1
    equity = TradingHours("equity with holiday", US_EQUITY.sessions, (monday,))
    assert not is_open(equity, at(MON, 15))
    assert next_open_ns(equity, at(MON - 3, 21)) == at(TUE, 14, 30)
    assert is_open(equity, at(TUE, 15))
    metals = TradingHours("metals with holiday", METALS.sessions, (tuesday,))
    assert is_open(metals, at(MON, 23, 30))
    assert next_close_ns(metals, at(MON, 23, 30)) == at(TUE, 0)
    assert next_open_ns(metals, at(TUE, 5)) == at(WED, 0)


@pytest.mark.parametrize(
    "sessions",
    [
        (),
        (WeeklySession(1, 0, 60), WeeklySession(0, 0, 60)),  # not ordered
        (WeeklySession(0, 0, 60), WeeklySession(0, 30, 90)),  # overlap
        (WeeklySession(0, 0, 60), WeeklySession(0, 60, 90)),  # touching: write as one
    ],
)
def test_bad_sessions_are_rejected(sessions: tuple[WeeklySession, ...]) -> None:
    with pytest.raises(InvariantError):
        TradingHours("bad", sessions)


@pytest.mark.parametrize(("weekday", "open_minute", "close_minute"), [(7, 0, 10), (-1, 0, 10),
                         (0, 10, 10), (0, 20, 10), (0, 0, 1441), (0, -1, 10)])  # fmt: skip
def test_bad_weekly_session(weekday: int, open_minute: int, close_minute: int) -> None:
    with pytest.raises(InvariantError):
        WeeklySession(weekday, open_minute, close_minute)


def test_bad_holidays_are_rejected() -> None:
    with pytest.raises(InvariantError, match="holidays"):
        TradingHours("bad", US_EQUITY.sessions, (5, 5))
    with pytest.raises(InvariantError, match="holidays"):
        TradingHours("bad", US_EQUITY.sessions, (6, 5))
    with pytest.raises(InvariantError, match="holidays"):
        TradingHours("bad", ALWAYS_OPEN.sessions, (5,))


HOLIDAY_DAYS = tuple(range(at(MON, 0) // NS_PER_DAY - 10, at(MON, 0) // NS_PER_DAY + 20, 4))
SCHEDULES = [
    US_EQUITY,
    METALS,
    FX,
    TradingHours("metals, holidays", METALS.sessions, HOLIDAY_DAYS),
    TradingHours("equity, holidays", US_EQUITY.sessions, HOLIDAY_DAYS),
    TradingHours("fx, holidays", FX.sessions, HOLIDAY_DAYS),
]
times = st.integers(min_value=at(MON, 0) - 30 * NS_PER_DAY, max_value=at(MON, 0) + 30 * NS_PER_DAY)
minute_times = times.map(lambda ts: ts - ts % NS_PER_MINUTE)


@pytest.mark.parametrize("hours", SCHEDULES, ids=lambda h: h.name)
@given(ts=st.one_of(times, minute_times), data=st.data())
def test_next_open_is_the_first_open_instant(
    hours: TradingHours, ts: int, data: st.DataObject
) -> None:
    opening = next_open_ns(hours, ts)
    assert opening >= ts
    assert is_open(hours, opening)
    assert (opening == ts) == is_open(hours, ts)
    if opening > ts:
        assert not is_open(hours, opening - 1)
        between = data.draw(st.integers(min_value=ts, max_value=opening - 1))
        assert not is_open(hours, between)
        assert next_open_ns(hours, between) == opening


@pytest.mark.parametrize("hours", SCHEDULES, ids=lambda h: h.name)
@given(ts=st.one_of(times, minute_times), data=st.data())
def test_next_close_is_the_first_closed_instant(
    hours: TradingHours, ts: int, data: st.DataObject
) -> None:
    closing = next_close_ns(hours, ts)
    assert closing >= ts
    assert not is_open(hours, closing)
    assert (closing > ts) == is_open(hours, ts)
    if closing > ts:
        assert is_open(hours, closing - 1)
        between = data.draw(st.integers(min_value=ts, max_value=closing - 1))
        assert is_open(hours, between)
        assert next_close_ns(hours, between) == closing


@pytest.mark.parametrize("hours", SCHEDULES, ids=lambda h: h.name)
@given(first=times, second=times)
def test_next_open_and_close_are_monotone(hours: TradingHours, first: int, second: int) -> None:
    early, late = min(first, second), max(first, second)
    assert next_open_ns(hours, early) <= next_open_ns(hours, late)
    assert next_close_ns(hours, early) <= next_close_ns(hours, late)
