"""What the core publishes for readers beside positions (core.indicators): the working orders'
margin with order changes (OrderMarginChanged) and the ADL quintiles with mark updates
(DeleverageRanked), so the gateway formats them and derives neither."""

from perpetua.core import liquidation, margin
from perpetua.core.commands import AmendOrder, CancelOrders, IndexPrice
from perpetua.core.enums import Side
from perpetua.core.events import DeleverageRanked, OrderMarginChanged, PositionChanged
from perpetua.core.instruments import contract_value
from perpetua.core.risk import orders_margin
from tests.core.test_risk import ETH, SPECS, USDT, Harness, P


def _of(events: list[object], kind: type) -> list[object]:
    return [e for e in events if type(e) is kind]


def _by_rule(h: Harness, account: int, buys: list[tuple[int, int]]) -> int:
    """The working buys' margin by ``risk.orders_margin`` from their (qty, price)."""
    spec = SPECS[ETH]
    pos = h.position(account, ETH)
    assert pos is not None
    figures = margin.position_figures(h.engine.state.markets[ETH], pos)
    value = sum(abs(contract_value(spec, qty, price)) for qty, price in buys)
    return orders_margin(pos.qty, pos.cost, value, 0, figures.init_ppm, spec.taker_fee_ppm)


def test_order_margin_is_published_with_every_order_change() -> None:
    h = Harness()
    h.fund(1, "USDt", 100_000 * USDT)
    h.index(".BETHT", 2000)
    placed = h.order(1, ETH, Side.BUY, 1000, 1990 * P)
    (event,) = _of(placed, OrderMarginChanged)
    assert isinstance(event, OrderMarginChanged)
    assert (event.account, event.symbol) == (1, ETH)
    assert event.order_margin == _by_rule(h, 1, [(1000, 1990 * P)]) > 0
    assert not _of(placed, PositionChanged)  # the position did not change
    (live,) = h.engine.state.account(1).orders.values()
    amended = h.apply(AmendOrder(0, 1, live.order_id, order_qty=3000))
    (event,) = _of(amended, OrderMarginChanged)
    assert isinstance(event, OrderMarginChanged)
    assert event.order_margin == _by_rule(h, 1, [(3000, 1990 * P)])
    cancelled = h.apply(CancelOrders(0, 1, (live.order_id,)))
    (event,) = _of(cancelled, OrderMarginChanged)
    assert isinstance(event, OrderMarginChanged) and event.order_margin == 0


def test_a_changed_position_carries_its_order_margin_instead() -> None:
    """A fill publishes the position whole: no OrderMarginChanged beside it, and its
    ``order_margin`` is what is left working."""
    h = Harness()
    h.fund(1, "USDt", 100_000 * USDT)
    h.fund(2, "USDt", 100_000 * USDT)
    h.index(".BETHT", 2000)
    h.order(1, ETH, Side.BUY, 3000, 2000 * P)
    filled = h.order(2, ETH, Side.SELL, 1000, 2000 * P)
    assert not [e for e in _of(filled, OrderMarginChanged) if e.account == 1]  # type: ignore[attr-defined]
    (mine,) = [e for e in _of(filled, PositionChanged) if e.account == 1]  # type: ignore[attr-defined]
    assert isinstance(mine, PositionChanged)
    assert mine.current_qty == 1000
    assert mine.order_margin == _by_rule(h, 1, [(2000, 2000 * P)]) > 0


def test_adl_quintiles_are_published_with_mark_updates_in_the_cores_queue_order() -> None:
    h = Harness()
    h.fund(9, "USDt", 10_000_000 * USDT)
    h.index(".BETHT", 2000)
    for account in range(1, 8):
        h.fund(account, "USDt", (100 + 50 * account) * USDT)
        h.order(9, ETH, Side.SELL, 1000 * account, 2000 * P)
        h.order(account, ETH, Side.BUY, 1000 * account, 2000 * P)
    marked = h.index(".BETHT", 2050)
    (ranked,) = _of(marked, DeleverageRanked)
    assert isinstance(ranked, DeleverageRanked) and ranked.symbol == ETH
    state = h.engine.state
    market = state.markets[ETH]
    longs = sorted(
        (-liquidation.adl_rank_of(state, market, market.positions[a]), a) for a in range(1, 8)
    )
    expected = [a for _r, a in longs] + [9]
    assert list(ranked.accounts) == expected
    # seven longs in fifths (ceil((7 - place) * 5 / 7)), the lone short first of its side
    assert list(ranked.quintiles) == [5, 5, 4, 3, 3, 2, 1, 5]
    assert not _of(h.order(1, ETH, Side.BUY, 1000, 1000 * P), DeleverageRanked)  # no mark move


def test_a_market_with_many_holders_is_reranked_at_most_once_a_period() -> None:
    """Over ``ADL_EAGER_HOLDERS_MAX`` holders: at most once per ``max(ADL_RERANK_NS, holders x
    ADL_RERANK_NS_PER_HOLDER)`` of market time (1,001 holders: once a second)."""
    h = Harness()
    seller = 5_000
    h.fund(seller, "USDt", 10**9 * USDT)
    h.index(".BETHT", 2000)
    longs = 1_000  # and one short: 1,001 holders
    h.order(seller, ETH, Side.SELL, 1000 * longs, 2000 * P)
    for account in range(1, longs + 1):
        h.fund(account, "USDt", 1_000 * USDT)
        h.order(account, ETH, Side.BUY, 1000, 2000 * P)
    second = 1_000_000_000
    start = h.ts + second
    first = h.apply(IndexPrice(start, ".BETHT", 2010, 1))
    (ranked,) = _of(first, DeleverageRanked)
    assert len(ranked.accounts) == longs + 1  # type: ignore[attr-defined]
    assert not _of(h.apply(IndexPrice(start + second // 2, ".BETHT", 2020, 1)), DeleverageRanked)
    assert _of(h.apply(IndexPrice(start + second, ".BETHT", 2030, 1)), DeleverageRanked)
