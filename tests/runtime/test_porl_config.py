"""The ``[porl]`` table: defaults, reserve addresses, and clear errors for what is wrong."""

import pytest

from perpetua.runtime.config import ConfigError, PorlReserveConfig, parse_config

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
COLD = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_defaults_publish_liabilities_daily_without_reserves() -> None:
    porl = parse_config({}).porl
    assert (porl.venue, porl.daily, porl.rpc_url, porl.reserves) == ("perpetua", True, "", ())


def test_reserve_addresses_are_read() -> None:
    porl = parse_config({"porl": {
        "venue": "Acme", "daily": False, "rpc_url": "http://127.0.0.1:8545",
        "tokens": {"USDt": TOKEN},
        "reserve": [{"address": COLD, "kind": "cold", "currency": "Gwei"},
                    {"address": COLD, "kind": "hot", "currency": "USDt"}],
    }}).porl  # fmt: skip
    assert porl.reserves == (
        PorlReserveConfig(COLD, "cold", "Gwei"),
        PorlReserveConfig(COLD, "hot", "USDt"),
    )
    assert porl.tokens == {"USDt": TOKEN} and not porl.daily


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"dayly": True}, "porl.dayly"),
        ({"venue": ""}, "porl.venue"),
        ({"tokens": {"USDt": "nope"}}, "porl.tokens.USDt"),
        ({"rpc_url": "http://x", "reserve": [{"address": "0x12"}]}, "porl.reserve[0].address"),
        ({"rpc_url": "http://x", "reserve": [{"address": COLD, "kind": "warm"}]}, "kind"),
        ({"rpc_url": "http://x", "reserve": [{"address": COLD, "currency": "DOGE"}]}, "DOGE"),
        ({"reserve": [{"address": COLD}]}, "porl.rpc_url"),
    ],
)
def test_mistakes_are_named(table: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_config({"porl": table})
