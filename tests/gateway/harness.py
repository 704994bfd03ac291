"""In-process harness: the real core and sequencer (journal off), the gateway app, signed
requests through Starlette's TestClient."""

import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from starlette.testclient import TestClient

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, IndexPrice
from perpetua.core.engine import Engine
from perpetua.gateway import GatewayConfig, MemoryAccounts, create_app
from perpetua.gateway.auth import sign
from perpetua.gateway.history import History
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.store import Projector, ProjectorThread, default_url, migrate, open_engine
from perpetua.wire.values import encode_json
from tests.gateway.fakes import InlineSequencer

OPERATOR_KEY = "operator-secret"
ALICE = 1001
BOB = 1002


class Harness:
    def __init__(
        self, client: TestClient, sequencer: InlineSequencer, accounts: MemoryAccounts
    ) -> None:
        self.client = client
        self.sequencer = sequencer
        self.accounts = accounts
        self.alice = accounts.create_api_key(
            ALICE, ["order"], key_id="alice-key", secret="alice-secret"
        )
        self.bob = accounts.create_api_key(BOB, ["order"], key_id="bob-key", secret="bob-secret")
        self.reader = accounts.create_api_key(ALICE, [], key_id="read-key", secret="read-secret")

    @property
    def gateway(self) -> Any:
        return self.client.app.state.gateway  # type: ignore[attr-defined]

    def deposit(self, account: int, currency: str, amount: int) -> None:
        self.sequencer.execute(
            Deposit(0, account, currency, amount, f"t-{account}-{amount}-{time.time_ns()}")
        )

    def index(self, symbol: str, num: int, den: int = 1) -> None:
        self.sequencer.execute(IndexPrice(0, symbol, num, den))

    def signed(
        self,
        method: str,
        path: str,
        key: Any = None,
        params: dict[str, Any] | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        content_type: str = "application/json",
        expires: int | None = None,
    ) -> Any:
        key = key or self.alice
        target = "/api/v1" + path
        if params:
            from urllib.parse import urlencode

            target += "?" + urlencode(params)
        data = (
            raw_body if raw_body is not None else (encode_json(body) if body is not None else b"")
        )
        exp = str(expires if expires is not None else int(time.time()) + 60)
        headers = {
            "api-key": key.key_id,
            "api-expires": exp,
            "api-signature": sign(key.secret, method, target, exp, data),
        }
        if data:
            headers["content-type"] = content_type
        return self.client.request(method, target, content=data, headers=headers)


@contextmanager
def read_models() -> Iterator[Any]:
    """A migrated SQLite read-model database in a temp dir and a projector thread on it."""
    with tempfile.TemporaryDirectory(prefix="perpetua-gw-") as directory:
        url = default_url(directory)
        migrate(url)
        engine = open_engine(url)
        projector = ProjectorThread(Projector(engine))
        try:
            yield projector
        finally:
            projector.close()
            engine.dispose()


@contextmanager
def harness(rate_limits: bool = False, **config: Any) -> Iterator[Harness]:
    """The gateway over the real core; a projector writes SQLite read models from the same
    stream and history routes read them (as in every venue)."""
    engine = Engine(default_catalogue())
    sequencer = InlineSequencer(engine)
    accounts = MemoryAccounts()
    cfg = GatewayConfig(
        operator_key=OPERATOR_KEY,
        bin_roll_interval_s=0.05,
        rate_limits=RateLimitConfig(enabled=rate_limits),
        **config,
    )
    with ExitStack() as stack:
        projector = stack.enter_context(read_models())
        sequencer.subscribe(projector.publish)
        app = create_app(cfg, sequencer, History.over(projector.projector), accounts)
        try:
            with TestClient(app, client=("127.0.0.1", 50000)) as client:
                yield Harness(client, sequencer, accounts)
        finally:
            sequencer.stop()
