"""Each bot through a scripted price path with exact expected fills, on the venue's own engine
(``services.backtest``), with the ledger and position audit (conservation) after every print.

Prices are ticks of 0.5 USDT (40000 = 20,000 USDT); XBT_USDT sizes are units of 1e-6 XBT,
XBTUSDT contracts of 1e-6 XBT in lots of 1000. Fees: spot 0.1% maker, XBTUSDT 0.02% maker."""

from typing import Any

import pytest

from perpetua.core.catalogue import by_symbol, default_catalogue
from perpetua.core.enums import Side
from perpetua.services.backtest import BacktestResult, Print, equity_svg, parse_csv, run_backtest
from perpetua.services.bot import Exits
from perpetua.services.strategies import DcaPlan, GridPlan, grid_levels, grid_qty

CATALOGUE = default_catalogue()
SPECS = by_symbol(CATALOGUE)
T = 1_800_000_000_000_000_000
USDT = 1_000_000
LEVELS = (38000, 39000, 40000, 41000, 42000)
BUY, SELL = int(Side.BUY), int(Side.SELL)
NO_EXITS = Exits()


def _run(
    plan: GridPlan | DcaPlan,
    path: list[int],
    investment: int,
    exits: Exits = NO_EXITS,
    leverage_e2: int = 0,
    step_ns: int = 10**9,
    start_ns: int = T,
) -> BacktestResult:
    prints = [Print(start_ns + i * step_ns, p) for i, p in enumerate(path)]
    spec = SPECS[plan.symbol]
    return run_backtest(
        CATALOGUE, spec, plan, exits, {"USDt": investment}, leverage_e2, prints, True
    )


def _fills(result: BacktestResult) -> list[tuple[Any, ...]]:
    return [(f["cl_ord_id"], f["side"], f["qty"], f["price"], f["fee"]) for f in result.fills]


def test_grid_levels_arithmetic_geometric_and_too_dense() -> None:
    assert grid_levels(38000, 42000, 4, False) == LEVELS
    assert grid_levels(38000, 42000, 4, True) == (38000, 38963, 39950, 40962, 42000)
    assert grid_levels(38000, 38003, 4, False) == ()  # two levels on one tick
    assert grid_qty(SPECS["XBT_USDT"], "long", LEVELS, 40000, 1000 * USDT) == 12500


def test_spot_grid_buys_low_sells_high_through_a_scripted_path() -> None:
    plan = GridPlan("XBT_USDT", "long", LEVELS, 12500, 40000)
    result = _run(
        plan, [40000, 39500, 38900, 38000, 39000, 40100, 41000, 42000, 40000], 1000 * USDT
    )
    assert _fills(result) == [
        ("b1.i.0", BUY, 25000, 40000, 500000),  # the two sell-first intervals' units
        ("b1.g1.0", BUY, 12500, 39000, 243750),
        ("b1.g0.0", BUY, 12500, 38000, 237500),
        ("b1.g0.1", SELL, 12500, 39000, 243750),
        ("b1.g1.1", SELL, 12500, 40000, 250000),
        ("b1.g2.0", SELL, 12500, 41000, 256250),
        ("b1.g3.0", SELL, 12500, 42000, 262500),
        ("b1.g3.1", BUY, 12500, 41000, 256250),
        ("b1.g2.1", BUY, 12500, 40000, 250000),
    ]
    status = result.status
    assert status["realisedPnl"] == 31_250_000
    assert status["fees"] == 2_500_000
    assert status["equity"] == 1000 * USDT + status["pnl"] == 1_022_500_000


FUTURES_PATH = [40000, 39000, 38000, 41000, 42000, 40000]
FUTURES_TAIL = [
    ("b1.g1.0", BUY, 1000, 39000, 3900),
    ("b1.g0.0", BUY, 1000, 38000, 3800),
    ("b1.g0.1", SELL, 1000, 39000, 3900),
    ("b1.g1.1", SELL, 1000, 40000, 4000),
    ("b1.g2.0", SELL, 1000, 41000, 4100),
    ("b1.g3.0", SELL, 1000, 42000, 4200),
    ("b1.g3.1", BUY, 1000, 41000, 4100),
    ("b1.g2.1", BUY, 1000, 40000, 4000),
]


@pytest.mark.parametrize(
    ("direction", "initial", "position", "realised"),
    [
        ("long", [("b1.i.0", BUY, 2000, 40000, 8000)], 2000, 2_500_000),
        ("short", [("b1.i.0", SELL, 2000, 40000, 8000)], -2000, 1_500_000),
        ("neutral", [], 0, 2_000_000),  # four round trips of 0.001 XBT x 500 USDT
    ],
)
def test_futures_grid_long_short_neutral(
    direction: str, initial: list[tuple[Any, ...]], position: int, realised: int
) -> None:
    plan = GridPlan("XBTUSDT", direction, LEVELS, 1000, 40000)
    result = _run(plan, FUTURES_PATH, 1000 * USDT, leverage_e2=500)
    assert _fills(result) == initial + FUTURES_TAIL
    assert result.status["position"] == position
    assert result.status["realisedPnl"] == realised


def test_dca_price_trigger_safety_orders_take_profit_and_next_cycle() -> None:
    # base 1000 at 40000; safety 1 at -2% (39200), safety 2 at -4% with volume x2; TP +1%
    plan = DcaPlan(
        "XBT_USDT", BUY, "price", 1000, 1000, 2, 20000, 1_000_000, 2_000_000, 10000, 0, 40000, T
    )
    result = _run(plan, [40000, 39200, 39700, 40100, 39900, 41000], 2000 * USDT)
    assert _fills(result) == [
        ("b1.c0b.0", BUY, 1000, 40000, 20000),
        ("b1.c0s1.0", BUY, 1000, 39200, 19600),
        ("b1.c0t.2000", SELL, 2000, 39996, 39996),  # average 39600 + 1%, rounded up
        ("b1.c1b.0", BUY, 1000, 39996, 19998),  # cycle 1 starts at the take-profit's price
        ("b1.c1t.1000", SELL, 1000, 40396, 20198),
    ]
    assert result.status["position"] == 0
    assert result.status["realisedPnl"] == 596_000


def test_dca_short_on_a_perpetual() -> None:
    plan = DcaPlan(
        "XBTUSDT", SELL, "price", 1000, 1000, 2, 20000, 1_000_000, 2_000_000, 10000, 0, 40000, T
    )
    result = _run(plan, [40000, 40800, 40300, 39800, 40000], 2000 * USDT, leverage_e2=1000)
    assert _fills(result) == [
        ("b1.c0b.0", SELL, 1000, 40000, 4000),
        ("b1.c0s1.0", SELL, 1000, 40800, 4080),
        ("b1.c0t.2000", BUY, 2000, 39996, 8000),  # average 40400 - 1%
        ("b1.c1b.0", SELL, 1000, 39996, 4000),
    ]


def test_dca_interval_trigger_buys_on_schedule() -> None:
    plan = DcaPlan(
        "XBT_USDT",
        BUY,
        "interval",
        1000,
        1000,
        2,
        0,
        1_000_000,
        1_000_000,
        20000,
        60 * 10**9,
        40000,
        T,
    )
    result = _run(
        plan, [40000, 39000, 39800, 39000, 38000, 39000, 40000], 2000 * USDT, step_ns=40 * 10**9
    )
    fills = _fills(result)
    assert [f[0] for f in fills] == ["b1.c0n0.0", "b1.c0n1.0", "b1.c0n2.0", "b1.c0n2.0"]
    assert sum(f[2] for f in fills) == 3000  # at most maxSafetyOrders + 1 orders a cycle
    assert result.status["position"] == 3000


def test_exit_rules_stop_price_take_profit_end_time() -> None:
    plan = GridPlan("XBT_USDT", "long", LEVELS, 12500, 40000)
    stop = _run(plan, [40000, 39000, 38000, 36900, 35000], 1000 * USDT, Exits(stop_low_px=37000))
    assert stop.status["state"] == "stopped" and "stop price" in stop.status["reason"]
    assert _fills(stop)[-1] == ("b1.x.0", SELL, 50000, 36900, 922500)  # closed at the print
    assert stop.status["position"] == 0
    take = _run(
        plan, [40000, 39000, 40000, 41000, 42000, 40000], 1000 * USDT, Exits(take_profit=20 * USDT)
    )
    assert take.status["state"] == "stopped" and take.status["reason"].startswith("take-profit")
    assert take.status["pnl"] == 23_487_500
    end = _run(plan, [40000, 39000, 40000, 41000], 1000 * USDT, Exits(end_ns=T + 2 * 10**9))
    assert end.status["reason"] == "end time reached"
    assert _fills(end)[-1] == ("b1.x.1", SELL, 37500, 40000, 750000)  # retried once it traded
    assert end.status["position"] == 0


def test_funding_is_charged_at_the_funding_time() -> None:
    funding_ns = 1_800_043_200_000_000_000  # 04:00 UTC
    plan = GridPlan("XBTUSDT", "long", LEVELS, 1000, 40000)
    result = _run(
        plan,
        [40000, 40000, 40000, 40000],
        1000 * USDT,
        leverage_e2=500,
        step_ns=60 * 10**9,
        start_ns=funding_ns - 120 * 10**9,
    )
    assert result.status["funding"] == 4000  # 0.002 XBT x 20,000 USDT x 0.01%
    assert [v for _, v in result.equity] == [999_992_000, 999_992_000, 999_988_000, 999_988_000]


def test_csv_input_and_equity_plot() -> None:
    spec = SPECS["XBT_USDT"]
    prints = parse_csv(
        spec, "timestamp,price\n2026-12-04T00:00:00Z,20000\n2026-12-04T00:00:01Z,19500.5\n"
    )
    assert [p.price for p in prints] == [40000, 39001]
    t = 1_764_806_400 * 10**9  # 2025-12-04, in ns
    with pytest.raises(ValueError, match="tick grid"):
        parse_csv(spec, f"{t},20000.3\n")
    with pytest.raises(ValueError, match="go back"):
        parse_csv(spec, f"{t + 1},20000\n{t},20000\n")
    # seconds read as ns (1970) or a date out of range: the row is named, nothing runs
    with pytest.raises(ValueError, match="row 2: timestamp '1764806400' is outside"):
        parse_csv(spec, f"{t},20000\n1764806400,20000\n")
    with pytest.raises(ValueError, match="row 1: timestamp '1969-12-31T00:00:00Z'"):
        parse_csv(spec, "1969-12-31T00:00:00Z,20000\n")
    assert equity_svg([(1, 5), (2, 7)]).startswith("<svg")
