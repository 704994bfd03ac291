"""TradFi calendars from exchange-calendars (services.calendars): XNYS holidays and half-days
for SPY, CME holidays for metals, the venue's FX days; the job submits once per day and only a
changed calendar."""

import asyncio
from typing import Any

from perpetua.core.calendar import days_from_civil, utc_ns
from perpetua.core.commands import SetTradingCalendar
from perpetua.services.calendars import CalendarJob, build_calendar

NOW = utc_ns(2026, 11, 2, 12)


def test_xnys_holidays_and_half_days_for_spy() -> None:
    spy = build_calendar("SPYUSDT", NOW)
    assert days_from_civil(2026, 11, 26) in spy.holiday_days  # Thanksgiving
    assert days_from_civil(2026, 12, 25) in spy.holiday_days
    assert days_from_civil(2027, 1, 1) in spy.holiday_days
    assert days_from_civil(2026, 11, 27) not in spy.holiday_days
    early = dict(zip(spy.early_close_days, spy.early_close_minutes, strict=True))
    assert early[days_from_civil(2026, 11, 27)] == 18 * 60  # 13:00 New York
    assert early[days_from_civil(2026, 12, 24)] == 18 * 60
    assert days_from_civil(2026, 11, 28) not in spy.holiday_days  # a Saturday: not listed


def test_metals_and_fx_calendars() -> None:
    xau = build_calendar("XAUUSDT", NOW)
    assert days_from_civil(2026, 12, 25) in xau.holiday_days and not xau.early_close_days
    eur = build_calendar("EURUSDT", NOW)
    assert days_from_civil(2026, 12, 25) in eur.holiday_days
    assert days_from_civil(2027, 1, 1) in eur.holiday_days
    assert days_from_civil(2026, 11, 26) not in eur.holiday_days


def test_the_job_submits_once_a_day_and_only_changes() -> None:
    sent: list[Any] = []
    now = [NOW]

    async def submit(command: Any) -> None:
        sent.append(command)

    def build(symbol: str, ts: int) -> SetTradingCalendar:
        return SetTradingCalendar(0, symbol, (1,) if symbol != "EURUSDT" else (ts // 10**15,))

    job = CalendarJob(submit, lambda: now[0], build)
    asyncio.run(job.step())
    assert [c.symbol for c in sent] == ["SPYUSDT", "XAUUSDT", "EURUSDT"]
    asyncio.run(job.step())
    assert len(sent) == 3  # same day: nothing rebuilt
    now[0] += 86_400 * 10**9
    asyncio.run(job.step())
    assert len(sent) in (3, 4)  # only a calendar that changed goes again


def test_the_simulated_feed_stops_on_a_calendar_holiday() -> None:
    from perpetua.core.calendar import US_EQUITY, TradingHours
    from perpetua.feeds.config import default_config
    from perpetua.feeds.simulator import IndexSimulator

    start = utc_ns(2026, 3, 2, 15)  # Monday, in session
    simulator = IndexSimulator(default_config().only({".BSPYT"}), 1, start, {})
    walk = simulator.walks["SPY"]
    holiday = days_from_civil(2026, 3, 3)
    assert walk.is_open(utc_ns(2026, 3, 3, 15))
    simulator.set_hours("SPY", TradingHours(US_EQUITY.name, US_EQUITY.sessions, (holiday,)))
    assert not walk.is_open(utc_ns(2026, 3, 3, 15))
    assert walk.is_open(utc_ns(2026, 3, 4, 15))
