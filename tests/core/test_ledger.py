"""The ledger's cells: one place per (account, currency), the same answers and image as before."""

import pytest

from perpetua.core.events import Event, Transfer
from perpetua.core.invariant import InvariantError
from perpetua.core.ledger import CLEARING, EXTERNAL, FEES, Ledger, TransferCode


def _ledger() -> Ledger:
    ledger = Ledger()
    for currency in ("XBt", "USDt"):
        ledger.open_currency(currency)
    return ledger


def test_move_between_cells_is_a_transfer_between_their_accounts() -> None:
    by_ids, by_cells = _ledger(), _ledger()
    out_ids: list[Event] = []
    out_cells: list[Event] = []
    by_ids.transfer(out_ids, 5, EXTERNAL, 7, "XBt", 1_000, TransferCode.DEPOSIT, 1)
    by_ids.transfer(out_ids, 6, 7, FEES, "XBt", 30, TransferCode.TRADE_FEE, 2)
    external, user, fees = (by_cells.cell(a, "XBt") for a in (EXTERNAL, 7, FEES))
    by_cells.move(out_cells, 5, external, user, 1_000, TransferCode.DEPOSIT, 1)
    by_cells.move(out_cells, 6, user, fees, 30, TransferCode.TRADE_FEE, 2)
    assert out_ids == out_cells
    assert out_cells[1] == Transfer(6, 7, FEES, "XBt", 30, TransferCode.TRADE_FEE, 2)
    for ledger in (by_ids, by_cells):
        assert ledger.balance(7, "XBt") == 970
        assert ledger.balance(FEES, "XBt") == 30
        assert ledger.balance(EXTERNAL, "XBt") == -1_000
        assert ledger.available(7, "XBt") == 970
        assert ledger.balance(7, "USDt") == 0  # another currency's cell is another cell
        assert list(ledger.balances_changed) == [(7, "XBt")]  # user accounts only
    assert by_ids.snapshot() == by_cells.snapshot()


def test_the_image_keeps_its_format_and_leaves_zero_rows_out() -> None:
    ledger = _ledger()
    out: list[Event] = []
    ledger.transfer(out, 1, EXTERNAL, 3, "USDt", 500, TransferCode.DEPOSIT, 1)
    ledger.transfer(out, 1, EXTERNAL, 4, "USDt", 80, TransferCode.DEPOSIT, 2)
    ledger.transfer(out, 1, 4, CLEARING, "USDt", 80, TransferCode.REALISED_PNL, 3)
    ledger.hold(3, "USDt", 120)
    image = ledger.snapshot()
    assert image == {
        "balances": {
            "USDt": [(CLEARING, 80), (EXTERNAL, -580), (3, 500)],
            "XBt": [],
        },
        "held": {"USDt": [(3, 120)], "XBt": []},
    }
    restored = Ledger()
    restored.restore(image)
    assert restored.snapshot() == image
    assert restored.available(3, "USDt") == 380
    assert restored.cell(3, "USDt") is restored.cell(3, "USDt")


def test_the_cold_views_are_copies() -> None:
    ledger = _ledger()
    ledger.transfer([], 1, EXTERNAL, 3, "XBt", 500, TransferCode.DEPOSIT, 1)
    ledger.hold(3, "XBt", 200)
    view = ledger.balances
    view["XBt"][3] = 0
    ledger.held["XBt"][3] = 0
    assert ledger.balance(3, "XBt") == 500
    assert ledger.held_amount(3, "XBt") == 200
    assert ledger.held == {"XBt": {3: 200}, "USDt": {}}


@pytest.mark.parametrize(
    "case",
    ["same cell", "two currencies", "zero", "above 64 bits", "below holds", "user negative"],
)
def test_a_bad_move_fails_and_moves_nothing(case: str) -> None:
    ledger = _ledger()
    ledger.transfer([], 1, EXTERNAL, 3, "XBt", 500, TransferCode.DEPOSIT, 1)
    ledger.hold(3, "XBt", 200)
    before = ledger.snapshot()
    user, fees = ledger.cell(3, "XBt"), ledger.cell(FEES, "XBt")
    debit, credit, amount = {
        "same cell": (user, user, 1),
        "two currencies": (user, ledger.cell(FEES, "USDt"), 1),
        "zero": (user, fees, 0),
        "above 64 bits": (ledger.cell(EXTERNAL, "XBt"), fees, 1 << 63),
        "below holds": (user, fees, 301),
        "user negative": (ledger.cell(4, "XBt"), fees, 1),
    }[case]
    out: list[Event] = []
    with pytest.raises(InvariantError):
        ledger.move(out, 2, debit, credit, amount, TransferCode.TRADE_FEE, 9)
    assert out == []
    assert ledger.snapshot() == before
