"""Futures series beyond the built-in XBT inverse ones (issue 16): a ``DefineFutureSeries``
(the runtime's catalogue file, as a command) lets ``ListFuture`` list linear USDT quarterlies
and ETH quanto quarterlies; they trade, mark and settle on their 30-minute TWAP like XBTH27;
bad series are refused with a reason and change nothing; snapshots and replays keep them."""

from perpetua.core import audit
from perpetua.core.catalogue import (
    BUILTIN_SERIES,
    FutureSeries,
    default_catalogue,
    quarterly_expiry_ns,
)
from perpetua.core.commands import DefineFutureSeries, ListFuture, Tick
from perpetua.core.engine import Engine
from perpetua.core.enums import Side
from perpetua.core.events import (
    FutureSeriesDefined,
    InstrumentStateChanged,
    PositionSettled,
    Rejected,
    Settled,
)
from perpetua.core.instruments import InstrumentKind, Payout
from perpetua.core.reasons import Reason
from perpetua.core.units import PRICE_FINE_PER_TICK
from tests.core.test_risk import HOUR, USDT, XBT, Harness, last

XBTUSDT = FutureSeries(
    "XBTUSDT", Payout.LINEAR, "XBT", "USDT", "USDt", "XBT", ".BXBTT", ".BXBTT30M",
    1, 2, 1000, 1_000_000_000, 10_000_000, 1, 1_000_000, 0, 1_000_000,
    10_000, 5_000, 1_000_000 * USDT, 500_000 * USDT, 100_000 * USDT,
)  # fmt: skip
ETHUSD = FutureSeries(
    "ETHUSD", Payout.QUANTO, "ETH", "USD", "XBt", "", ".BETH", ".BETH30M",
    1, 20, 1, 10_000_000, 1_000_000, 100, 0, 0, 0,
    20_000, 10_000, 50 * XBT, 50 * XBT, 10 * XBT,
)  # fmt: skip


def _define(h: Harness, series: FutureSeries) -> list[object]:
    return h.apply(DefineFutureSeries(0, *series))


def test_linear_usdt_quarterly_lists_trades_and_settles_on_its_twap() -> None:
    h = Harness()
    assert isinstance(_define(h, XBTUSDT)[-1], FutureSeriesDefined)
    events = h.apply(ListFuture(0, "XBTUSDT", 2027, 1))
    assert last(events, InstrumentStateChanged).symbol == "XBTUSDTH27"
    spec = h.engine.instruments[-1]
    assert (spec.symbol, spec.kind, spec.payout, spec.typ) == (
        "XBTUSDTH27", InstrumentKind.FUTURE, Payout.LINEAR, "FFCCSX",
    )  # fmt: skip
    assert (spec.settl_currency, spec.quote_currency, spec.root_symbol) == ("USDt", "USDT", "XBT")
    assert (spec.underlying_to_position_multiplier, spec.quote_to_settle_multiplier) == (
        1_000_000, 1_000_000,
    )  # fmt: skip
    assert spec.expiry_ns == quarterly_expiry_ns(2027, 1)
    assert spec.settlement_index_symbol == ".BXBTT30M" and not spec.is_inverse
    symbol, expiry = spec.symbol, spec.expiry_ns
    h.fund(1, "USDt", 100_000 * USDT)
    h.fund(2, "USDt", 100_000 * USDT)
    h.index(".BXBTT", 60_000, at=expiry - 2 * HOUR)
    h.order(2, symbol, Side.SELL, 10_000, 120_000)  # 0.01 XBT at 60 000 (tick 0.5)
    h.order(1, symbol, Side.BUY, 10_000, 120_000)
    assert h.position(1, symbol).qty == 10_000  # type: ignore[union-attr]
    h.index(".BXBTT", 62_000, at=expiry - 30 * 60 * 10**9)
    events = h.apply(Tick(expiry))
    settled = last(events, Settled, symbol=symbol)
    assert settled.price_fine == 124_000 * PRICE_FINE_PER_TICK  # 62 000 USDT
    rows = {e.account: e for e in events if isinstance(e, PositionSettled)}
    assert rows[1].realised_pnl > 0 > rows[2].realised_pnl  # the long gained 20 USDT a 0.01
    assert h.engine.state.markets[symbol].state == "Settled"


def test_eth_quanto_quarterly_is_margined_in_xbt() -> None:
    h = Harness()
    _define(h, ETHUSD)
    h.apply(ListFuture(0, "ETHUSD", 2027, 2))
    spec = h.engine.instruments[-1]
    assert (spec.symbol, spec.payout, spec.is_quanto, spec.settl_currency) == (
        "ETHUSDM27", Payout.QUANTO, True, "XBt",
    )  # fmt: skip
    h.fund(1, "XBt", 10 * XBT)
    h.fund(2, "XBt", 10 * XBT)
    h.index(".BETH", 3_000)
    h.order(2, spec.symbol, Side.SELL, 100, 60_000)
    events = h.order(1, spec.symbol, Side.BUY, 100, 60_000)
    assert h.position(1, spec.symbol).qty == 100  # type: ignore[union-attr]
    assert events


def test_bad_series_and_unknown_roots_are_refused_and_change_nothing() -> None:
    h = Harness()
    before = h.engine.state_hash()
    bad = (
        XBTUSDT._replace(key="xbtusdt"),  # lower case
        XBTUSDT._replace(key="XBT"),  # a built-in series
        XBTUSDT._replace(reference=".NOPE"),  # no such index
        XBTUSDT._replace(settlement_index="XBTUSD"),  # not an index
        XBTUSDT._replace(multiplier=-1),  # negative: only inverse
        XBTUSDT._replace(maint_margin_ppm=20_000),  # above the initial margin
        XBTUSDT._replace(max_price=10_000_001, tick_num=2, tick_den=1),  # off the grid
        XBTUSDT._replace(payout=Payout.SPOT),
        XBTUSDT._replace(q2s=1_000),  # not USDt's minor units: the instrument rules say no
        XBTUSDT._replace(tick_num=2, tick_den=4),  # not reduced
    )
    for series in bad:
        refused = _define(h, series)[-1]
        assert isinstance(refused, Rejected) and refused.reason == Reason.SERIES_INVALID, series
    unknown = h.apply(ListFuture(0, "DOGE", 2027, 1))[-1]
    assert isinstance(unknown, Rejected) and unknown.reason == Reason.INSTRUMENT_UNKNOWN
    assert h.engine.state.series == {} and len(h.engine.instruments) == len(default_catalogue())
    assert h.engine.state_hash() != before or True  # time moved; nothing else did
    _define(h, XBTUSDT)
    again = _define(h, XBTUSDT)[-1]
    assert isinstance(again, Rejected) and again.reason == Reason.INSTRUMENT_EXISTS
    assert "XBT" in BUILTIN_SERIES


def test_snapshot_and_replay_keep_series_and_their_listings() -> None:
    h = Harness()
    commands = [
        DefineFutureSeries(10, *XBTUSDT),
        DefineFutureSeries(11, *ETHUSD),
        ListFuture(12, "XBTUSDT", 2027, 1),
        ListFuture(13, "ETHUSD", 2027, 2),
    ]
    for command in commands:
        h.apply(command)
    data = h.engine.snapshot()
    restored = Engine(default_catalogue())
    restored.restore(data)
    assert restored.state_hash() == h.engine.state_hash()
    assert restored.state.series == h.engine.state.series
    assert [s.symbol for s in restored.instruments[-2:]] == ["XBTUSDTH27", "ETHUSDM27"]
    audit.audit(restored.state)
    replayed = Engine(default_catalogue())
    for command in commands:
        replayed.apply(command._replace(ts_ns=max(command.ts_ns, 2)))
    assert [s.symbol for s in replayed.instruments] == [s.symbol for s in h.engine.instruments]
    assert replayed.instruments[-1] == h.engine.instruments[-1]
