"""A real venue in-process (``open_venue``) with a user, an API key and a replayed market, for
the bot and copy-trading tests: signed REST calls through Starlette's TestClient (whose loop
runs the venue's background services), the market driven by the backtest's replay commands
submitted through the sequencer, and a wait until the bot service has acted on them."""

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from perpetua.core import audit
from perpetua.core.catalogue import by_symbol
from perpetua.core.commands import Command, Deposit, IndexPrice
from perpetua.core.instruments import InstrumentSpec, price_of_ticks
from perpetua.gateway.auth import sign
from perpetua.runtime.config import FeedsConfig, VenueConfig
from perpetua.runtime.venue import Venue, open_venue
from perpetua.sequencer import Result
from perpetua.services.backtest import REPLAY_MAKER, REPLAY_TAKER, funding_commands, replay_print
from perpetua.services.bot import Bot
from perpetua.services.bots import BotService

IDLE_TIMEOUT_S = 20.0
ALICE = 1
PASSWORD = "a long test password"


class Key:
    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self.secret = secret


class BotVenue:
    def __init__(self, venue: Venue, client: TestClient, key: Key) -> None:
        self.venue = venue
        self.client = client
        self.key = key
        self.specs: dict[str, InstrumentSpec] = by_symbol(tuple(venue.sequencer.engine.instruments))
        self.last_seq = 0

    @property
    def bots(self) -> BotService:
        assert self.venue.bots is not None
        return self.venue.bots

    def execute(self, command: Command) -> Result:
        result = self.venue.sequencer.execute(command, 10.0)
        self.last_seq = max(self.last_seq, result.seq)
        return result

    def signed(self, method: str, path: str, body: Any = None, key: Key | None = None) -> Any:
        key = key or self.key
        target = "/api/v1" + path
        data = json.dumps(body).encode() if body is not None else b""
        expires = str(int(time.time()) + 60)
        headers = {
            "api-key": key.key_id,
            "api-expires": expires,
            "api-signature": sign(key.secret, method, target, expires, data),
        }
        if data:
            headers["content-type"] = "application/json"
        return self.client.request(method, target, content=data, headers=headers)

    def fund_replay(self, symbol: str) -> None:
        spec = self.specs[symbol]
        for account in (REPLAY_MAKER + 1_000_000, REPLAY_TAKER + 1_000_000):
            for command in funding_commands(spec, account):
                self.execute(command)

    def print_at(self, symbol: str, price: int, bot: Bot | None) -> None:
        """One recorded trade at ``price`` ticks, replayed as the backtest does."""
        spec = self.specs[symbol]

        def step(command: Command) -> None:
            account = getattr(command, "account", None)
            if account in (REPLAY_MAKER, REPLAY_TAKER):
                command = command._replace(account=account + 1_000_000)
            self.execute(command)
            self.wait_idle()

        replay_print(spec, price, bot if bot is not None else _EMPTY_BOT(spec), step)

    def index(self, symbol: str, price: int) -> None:
        spec = self.specs[symbol]
        num, den = price_of_ticks(spec, price)
        self.execute(IndexPrice(0, spec.reference_symbol, num, den))

    def add_user(self, user: int, deposits: dict[str, int]) -> Key:
        self.venue.accounts.create_user(f"u{user}@example.com", PASSWORD, user)
        key = Key(*self.venue.accounts.issue_api_key(user, ["order"], [], "k"))
        for code, amount in deposits.items():
            self.execute(Deposit(0, user, code, amount, f"u{user}-{code}"))
        return key

    def wait_idle(self) -> None:
        deadline = time.monotonic() + IDLE_TIMEOUT_S
        calm = 0
        copy = self.venue.copy
        assert copy is not None
        while time.monotonic() < deadline:
            if (
                self.bots.last_seq >= self.last_seq
                and self.bots.idle()
                and copy.last_seq >= self.last_seq
                and copy.idle()
            ):
                calm += 1
                if calm >= 3:
                    return
            else:
                calm = 0
            time.sleep(0.01)
        raise AssertionError("the bot service did not settle")

    def audit(self) -> None:
        """Conservation and the engine's invariants, read with the sequencer quiet."""
        self.wait_idle()
        audit.audit(self.venue.sequencer.engine.state)


def _EMPTY_BOT(spec: InstrumentSpec) -> Bot:
    from perpetua.services.bot import Exits
    from perpetua.services.strategies import GridPlan

    return Bot(0, -1, spec, GridPlan(spec.symbol, "neutral", (1, 2), 0, 1), Exits())


@contextmanager
def bot_venue(tmp_path: Path, deposits: dict[str, int]) -> Iterator[BotVenue]:
    saved = os.umask(0o022)
    try:
        venue = open_venue(
            VenueConfig(
                data_dir=tmp_path / "data", operator_key="k", feeds=FeedsConfig(default="none")
            )
        )
    finally:
        os.umask(saved)
    venue.accounts.create_user("alice@example.com", PASSWORD, ALICE)
    key_id, secret = venue.accounts.issue_api_key(ALICE, ["order"], [], "bots")
    venue.start()
    try:
        with TestClient(venue.app) as client:
            harness = BotVenue(venue, client, Key(key_id, secret))
            for code, amount in deposits.items():
                harness.execute(Deposit(0, ALICE, code, amount, f"alice-{code}"))
            yield harness
    finally:
        venue.stop()
