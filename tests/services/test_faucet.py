import pytest

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit
from perpetua.core.engine import Engine
from perpetua.core.events import DepositCredited, Rejected
from perpetua.services.faucet import FAUCET_DEFAULT_AMOUNT, faucet_command


def test_faucet_is_a_deposit_the_core_credits_once() -> None:
    command = faucet_command(7, "XBt", FAUCET_DEFAULT_AMOUNT["XBt"], "faucet-7-1")
    assert command == Deposit(0, 7, "XBt", 100_000_000, "faucet-7-1")
    engine = Engine(default_catalogue())
    credited = engine.apply(command._replace(ts_ns=1))
    assert any(isinstance(ev, DepositCredited) and ev.amount == 100_000_000 for ev in credited)
    again = engine.apply(command._replace(ts_ns=2))
    assert any(isinstance(ev, Rejected) for ev in again)


@pytest.mark.parametrize(
    ("user", "currency", "amount", "transfer"),
    [
        (1, "DOGE", 1, "t"),
        (1, "XBt", 0, "t"),
        (1, "XBt", 10**12, "t"),
        (0, "XBt", 1, "t"),
        (1, "XBt", 1, ""),
    ],
)
def test_bad_faucet_requests(user: int, currency: str, amount: int, transfer: str) -> None:
    with pytest.raises(ValueError):
        faucet_command(user, currency, amount, transfer)
