"""composite.compose: weights, the protection window, stale indices; prices helpers."""

import pytest

from perpetua.feeds import ConstituentStatus, IndexStatus, VenuePrint, compose
from perpetua.feeds.prices import format_units, parse_decimal, parse_units, rescale

WINDOW_NS = 900 * 10**9
NOW_NS = 10_000 * 10**9


def test_weighted_average_floored() -> None:
    prints = [
        VenuePrint("A", 500_000, 10_000_001, NOW_NS),
        VenuePrint("B", 500_000, 10_000_000, NOW_NS - 1),
    ]
    value = compose(prints, NOW_NS, WINDOW_NS)
    assert value.status == IndexStatus.LIVE and value.units == 10_000_000  # 10000000.5 floored
    assert [r.effective_weight_ppm for r in value.constituents] == [500_000, 500_000]


@pytest.mark.parametrize(
    ("age_ns", "status"),
    [
        (0, ConstituentStatus.FRESH),
        (WINDOW_NS - 1, ConstituentStatus.FRESH),
        (WINDOW_NS, ConstituentStatus.DROPPED),  # silent for the whole window: out
    ],
)
def test_protection_window_edge(age_ns: int, status: ConstituentStatus) -> None:
    prints = [VenuePrint("A", 250_000, 100, NOW_NS - age_ns), VenuePrint("B", 750_000, 200, NOW_NS)]
    value = compose(prints, NOW_NS, WINDOW_NS)
    assert value.constituents[0].status == status
    expected = 175 if status == ConstituentStatus.FRESH else 200
    assert value.units == expected


def test_never_printed_venue_has_no_weight() -> None:
    value = compose([VenuePrint("A", 1, 0, 0), VenuePrint("B", 3, 50, NOW_NS)], NOW_NS, WINDOW_NS)
    assert value.constituents[0].status == ConstituentStatus.NEVER
    assert value.units == 50 and value.constituents[1].effective_weight_ppm == 1_000_000


def test_all_dropped_is_stale_with_no_value() -> None:
    value = compose([VenuePrint("A", 1, 100, 0)], NOW_NS, WINDOW_NS)
    assert value.status == IndexStatus.STALE and value.units == 0
    with pytest.raises(ValueError):
        compose([], NOW_NS, 0)


def test_effective_weights_floor_and_sum_to_at_most_one_million() -> None:
    prints = [VenuePrint(n, 1, 100, NOW_NS) for n in "ABC"]
    weights = [r.effective_weight_ppm for r in compose(prints, NOW_NS, WINDOW_NS).constituents]
    assert weights == [333_333] * 3


def test_decimal_parsing_is_exact_and_strict() -> None:
    assert parse_decimal("97843.77") == (9_784_377, 2)
    assert parse_decimal("1.08000") == (108_000, 5)
    assert parse_units("1.5", 4) == 15_000
    assert parse_units("1.50", 1) == 15
    for bad in ("", "-1", "1e5", "1.2.3", "0", "0.000", "nan", " . "):
        with pytest.raises(ValueError):
            parse_decimal(bad)
    with pytest.raises(ValueError):
        parse_units("1.25", 1)  # finer than asked: rejected, not rounded
    assert rescale(123_456, 4, 2) == 1_234 and rescale(12, 0, 3) == 12_000
    assert format_units(108_003, 5) == "1.08003" and format_units(7, 0) == "7"
