"""The CSV replay feed: parsing, errors with line numbers, playing against the clock."""

from pathlib import Path

import pytest

from perpetua.core.calendar import utc_ns
from perpetua.core.commands import IndexPrice
from perpetua.feeds import ReplayFormatError, ReplaySource, load_replay, parse_replay, to_command

SAMPLE = """\
# a recorded morning
timestamp,symbol,price
2026-11-30T00:00:00Z,.BXBT,97843.77
2026-11-30T00:00:05.000Z,.BXBT,97845.1
1795996805,.BETH,3401.50

2026-11-30T00:00:10+00:00,.BXBT,97850
"""
T0 = utc_ns(2026, 11, 30)
S = 10**9


def test_parse_keeps_prices_exact_and_accepts_iso_and_unix_times() -> None:
    rows = parse_replay(SAMPLE.splitlines())
    assert [(r.ts_ns - T0, r.symbol, r.units, r.decimals) for r in rows] == [
        (0, ".BXBT", 9_784_377, 2),
        (5 * S, ".BXBT", 978_451, 1),
        (5 * S, ".BETH", 340_150, 2),
        (10 * S, ".BXBT", 97_850, 0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header"),
        ("time,symbol,price\n", "header"),
        ("timestamp,symbol,price\nyesterday,.BXBT,1\n", "line 2: bad timestamp"),
        ("timestamp,symbol,price\n2026-11-30T00:00:00Z,XBTUSD,1\n", "not an index symbol"),
        ("timestamp,symbol,price\n2026-11-30T00:00:00Z,.BXBT,-1\n", "line 2"),
        ("timestamp,symbol,price\n2026-11-30T00:00:00Z,.BXBT\n", "expected 3 fields"),
        (
            "timestamp,symbol,price\n2026-11-30T00:00:01Z,.BXBT,1\n2026-11-30T00:00:00Z,.BXBT,1\n",
            "line 3: timestamp goes backwards",
        ),
    ],
)
def test_bad_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ReplayFormatError, match=message):
        parse_replay(text.splitlines())


def test_rows_play_as_the_clock_passes_them_latest_per_symbol(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_text(SAMPLE)
    source = ReplaySource(load_replay(path))
    assert source.symbols() == (".BETH", ".BXBT") and source.first_ns == T0
    assert source.advance(T0 - 1) == []
    first = source.advance(T0)
    assert [to_command(r) for r in first] == [IndexPrice(0, ".BXBT", 9_784_377, 100)]
    both = {r.symbol: r for r in source.advance(T0 + 9 * S)}
    assert to_command(both[".BXBT"]) == IndexPrice(0, ".BXBT", 978_451, 10)
    assert to_command(both[".BETH"]) == IndexPrice(0, ".BETH", 340_150, 100)
    assert [r.units for r in source.advance(T0 + 60 * S)] == [97_850]
    assert source.done and source.advance(T0 + 120 * S) == []


def test_offset_shifts_a_recorded_day_and_skip_to_resumes() -> None:
    rows = parse_replay(SAMPLE.splitlines())
    source = ReplaySource(rows, offset_ns=3600 * S)
    assert source.advance(T0 + 10 * S) == []
    source.skip_to(T0 + 3600 * S + 6 * S)  # resumed after the first three rows
    assert [r.units for r in source.advance(T0 + 3600 * S + 10 * S)] == [97_850]
