"""Users' trading bots and copy trading in a cluster (decisions §29): `LeaderTrading` runs
them on the leading sequencer, `GatewayTrading` serves their routes on every gateway.

Leader (`LeaderTrading.run`, one call per leadership, from `cluster_leader.LeaderServices`):
    1. A fresh `BotService` and `CopyService` over this leadership's `Sequencer` (in-process
       submits, no NATS hop), sub-accounts and their rows in the shared PostgreSQL database.
       A new leadership never reuses the last one's objects: their memory may be behind.
    2. Fed by the sequencer's durable batches, subscribed first; then its durable seq ``d``
       is read (the committer marks a batch durable before it reads its subscribers, so
       every batch after ``d`` reaches the services). They are seeded from the projector's
       read models in one REPEATABLE READ transaction whose stored offset ``p`` is at least
       ``d`` (waited for): everything up to ``p`` is in the rows read, everything after it
       comes in the batches (those at or below ``p`` are skipped), so every event is folded
       exactly once and none is missed.
    3. Why that means no fill is acted on twice across a failover: the new leader took the
       lease at stream seq ``S`` and everything the old leader made durable is at or below
       ``S`` (the fence refuses anything later), and ``p >= d >= S``. So before the new
       leader acts, every order the old one placed is folded: a follower's copy of leader fill
       ``e`` is ``c<follow>.<e>`` (placed once per clOrdID, `copytrading` rule 3), a bot's
       order ``b<bot>.<role>.<generation>`` (placed when the account never had it, `bot`
       rule 2). A fill whose copy the old leader never placed is copied now (`missed`, within
       ``MIRROR_LATE_NS_MAX``). The core also refuses a clOrdID the account has open or ended
       recently (``CL_ORD_ID_DUPLICATE``): a second line, not the first.
    4. Profit share: ``WalletTransfer`` id ``ps<follow>-<high-water mark>``; a leader that died
       after the transfer and before storing the new mark leaves the old mark, the new leader
       sends the same id, the core answers "duplicate" and the mark catches up: paid once.
    5. A deposed leader that has not noticed yet cannot append what its services submit (the
       journal's fence); its services stop before it steps down.
    6. Routes arrive as requests on ``<prefix>.services.call`` (subscribed only while the
       services run); what changes goes to every gateway on ``<prefix>.services.mirror``: a
       bot's detail or a relationship's row on each change (``notify``: the owner's WebSocket
       table gets it), the whole set every ``MIRROR_EVERY_S`` (the live PnL; a gateway that
       started late), copy-trading notices.
Gateway (`GatewayTrading`): `ClusterBots` and `ClusterCopy` are the routes' ports. Reads
(``/bot``, ``/bot/status``, ``/copy/follow``, the WebSocket partials) answer from the mirror;
acts (create, stop, resume, lead, follow, unfollow) are requests to the leader; validation
(``required``, ``validate_follow``), backtests and the leaderboard's track records run here, on
local services that never act (last prices from this gateway's replica, leaders and followers
from the mirror, track records from the read models). No leader subscribed: retried for
``NO_LEADER_WAIT_S``, then 503 (nothing done). An act whose reply was lost (the leader died):
503 "may or may not have been applied".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from sqlalchemy import Connection, Engine, select

from perpetua.core.events import Trade
from perpetua.core.instruments import InstrumentSpec
from perpetua.gateway.errors import ApiError
from perpetua.sequencer import Applied, Sequencer
from perpetua.services.bots import BotService
from perpetua.services.copytrading import ACTIVE, PROFIT_SHARE_INTERVAL_S, CopyService, Leader
from perpetua.services.jobs import PeriodicJob
from perpetua.services.keyring import Keyring
from perpetua.store import queries
from perpetua.store.schema import trades
from perpetua.transport.stream import ClusterNames

__all__ = [
    "MIRROR_EVERY_S",
    "ClusterBots",
    "ClusterCopy",
    "GatewayTrading",
    "LeaderTrading",
    "call_subject",
    "mirror_subject",
]

log = logging.getLogger("perpetua.cluster.trading")

MIRROR_EVERY_S: Final = 1.0  # the whole set of bots and relationships, to every gateway
SEED_WAIT_S: Final = 0.1  # polling the projector's offset until it reaches the anchor seq
# While the projector is behind (or down) the services wait, without a timeout: acting before
# the seed would act on fills twice (rule 3). The wait says so in the log this often.
SEED_PROGRESS_EVERY_S: Final = 5.0
CALL_TIMEOUT_S: Final = 30.0  # an act: a create submits two commands and makes a sub-account
NO_LEADER_WAIT_S: Final = 8.0  # as a gateway's submit: then 503, nothing done
NO_LEADER_RETRY_S: Final = 0.2
MSG_NO_LEADER: Final = "no sequencer runs the bots right now; try again"
MSG_UNKNOWN: Final = (
    "the leader changed with this request in flight; it may or may not have been applied:"
    " look at your bots or copy relationships before sending it again"
)
DETAIL_KEYS: Final = ("plan", "exits", "orders", "fills")  # a bot's detail, not its row

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def call_subject(names: ClusterNames) -> str:
    return f"{names.prefix}.services.call"


def mirror_subject(names: ClusterNames) -> str:
    return f"{names.prefix}.services.mirror"


def _leader_json(leader: Leader) -> dict[str, Any]:
    return {
        "account": leader.account, "owner": leader.owner, "name": leader.name,
        "symbols": list(leader.symbols), "leverageCapE2": leader.leverage_cap_e2,
        "sharePpm": leader.share_ppm, "active": leader.active,
    }  # fmt: skip


def _leader_of(row: Mapping[str, Any]) -> Leader:
    return Leader(
        int(row["account"]), int(row["owner"]), str(row["name"]), tuple(row["symbols"]),
        int(row["leverageCapE2"]), int(row["sharePpm"]), bool(row["active"]),
    )  # fmt: skip


class _SubaccountHost:
    """What `Keyring.add_subaccount` uses of an identity: the database and the time. The
    leader makes the sub-accounts of bots and copy relationships; sign-in stays on gateways."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.accounts: Any = None

    def now_ns(self) -> int:
        return time.time_ns()

    def second_factor_ok(self, user_id: int, code: str, assertion: str = "") -> bool:
        return False

    def notice_in(self, conn: Connection, user_id: int, subject: str, body: str) -> Any:
        raise NotImplementedError("the leader sends no account notices")


class LeaderTrading:
    """Leader side (module docstring 1-6); ``run`` once per leadership, ``close`` at exit."""

    def __init__(self, servers: tuple[str, ...], names: ClusterNames, node: str, url: str) -> None:
        self.servers = servers
        self.names = names
        self.node = node
        self.url = url
        self.engine: Engine | None = None
        self.nc: Client | None = None
        self.bots: BotService | None = None  # this leadership's (None between leaderships)
        self.copy: CopyService | None = None
        self.seeded_at = 0  # the read models' offset this leadership seeded from
        self._outbox: asyncio.Queue[bytes] | None = None
        self._preparing = asyncio.Lock()

    def _open(self) -> Engine:
        if self.engine is None:
            from perpetua.store import migrate_once, open_engine

            migrate_once(self.url)
            self.engine = open_engine(self.url)
        return self.engine

    async def prepare(self) -> None:
        """The NATS connection and the database (migrated), once per process; called when the
        process starts (`cluster._sequencer`), so a standby's first leadership does not wait
        for them, and again by ``run`` (a no-op once done)."""
        from perpetua.transport.node import connect

        async with self._preparing:
            if self.nc is None:
                self.nc = await connect(self.servers, f"services-{self.node}")
            if self.engine is None:
                await asyncio.to_thread(self._open)

    async def run(
        self,
        sequencer: Sequencer,
        instruments: tuple[InstrumentSpec, ...],
        stopping: asyncio.Event,
    ) -> None:
        await self.prepare()
        nc, engine = self.nc, self.engine
        assert nc is not None and engine is not None
        subaccounts = Keyring(_SubaccountHost(engine))
        bots = BotService(engine, instruments, sequencer, subaccounts)
        copy = CopyService(engine, instruments, sequencer, subaccounts, notifier=self)

        def on_batch(batch: list[Applied]) -> None:  # committer thread (2)
            bots.on_batch(batch)
            copy.on_batch(batch)

        sequencer.subscribe_batches(on_batch)
        # read after subscribing: the committer marks a batch durable before it reads its
        # subscribers, so every batch past this seq is delivered to on_batch (2)
        durable = sequencer.stats().durable_seq
        seeded = await asyncio.to_thread(self._seed, bots, copy, durable, stopping)
        if seeded is None:
            return
        self.seeded_at = seeded
        self.bots, self.copy = bots, copy
        self._outbox = asyncio.Queue()
        bots.listeners.append(self._bot_changed)
        copy.listeners.append(self._follow_changed)
        calls = await nc.subscribe(call_subject(self.names), cb=self._on_call)
        log.warning(
            "bots and copy trading started: %d bots, %d copy relationships, seeded at seq %d"
            " (durable when subscribed: %d)",
            len(bots.records), len(copy.follows), seeded, durable,
        )  # fmt: skip
        settle = PeriodicJob("copy-profit-share", PROFIT_SHARE_INTERVAL_S, copy.settle_job)
        try:
            await asyncio.gather(
                bots.run(stopping), copy.run(stopping), settle.run(stopping),
                self._mirror(stopping), self._publish(stopping),
            )  # fmt: skip
        finally:
            with contextlib.suppress(nats.errors.Error):
                await calls.unsubscribe()
            self.bots = self.copy = None

    def _seed(
        self, bots: BotService, copy: CopyService, at_least: int, stopping: asyncio.Event
    ) -> int | None:
        """Rule 2: seed both at the projector's offset once it is ``at_least``; that offset."""
        assert self.engine is not None
        waited = time.monotonic()
        told = waited
        while not stopping.is_set():  # bounded by stopping
            conn = self.engine.connect().execution_options(isolation_level="REPEATABLE READ")
            try:
                with conn.begin():
                    offset = queries.last_projected_seq(conn)  # the first read fixes the moment
                    if offset >= at_least:
                        bots.seed(self.engine, offset, pinned=conn)
                        copy.seed(self.engine, offset, pinned=conn)
                        log.warning(
                            "bots seeded at seq %d after %.2f s", offset, time.monotonic() - waited
                        )
                        return offset
            finally:
                conn.close()
            now = time.monotonic()
            if now - told >= SEED_PROGRESS_EVERY_S:
                told = now
                log.warning(
                    "bots and copy trading wait for the projector: it is at seq %d, they need "
                    "%d (%.0f s so far; a projector that is down stops them here)",
                    offset, at_least, now - waited,
                )  # fmt: skip
            time.sleep(SEED_WAIT_S)
        return None

    # --- the mirror (6) -----------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(_encode(message))

    def _bot_changed(self, owner: int, row: dict[str, Any]) -> None:
        bots = self.bots
        if bots is not None:
            detail = bots.detail(owner, int(row["botId"]))
            self._send({"kind": "bot", "owner": owner, "detail": detail, "notify": True})

    def _follow_changed(self, owner: int, row: dict[str, Any]) -> None:
        self._send({"kind": "follow", "owner": owner, "row": row, "notify": True})

    def notify(self, account: int, title: str, body: str, kind: Any = "info") -> None:
        """Copy trading's notices (`copytrading.Notifier`), to the owner on every gateway."""
        self._send({"kind": "notice", "account": account, "title": title, "body": body,
                    "level": str(kind)})  # fmt: skip

    def everything(self) -> dict[str, Any]:
        bots, copy = self.bots, self.copy
        if bots is None or copy is None:
            return {"kind": "all", "bots": [], "follows": [], "leaders": []}
        return {
            "kind": "all",
            "bots": [
                {"owner": r.owner, "detail": bots.detail(r.owner, r.bot_id)}
                for r in bots.records.values()
            ],
            "follows": [
                {"owner": f.owner, "row": copy.follow_row(f)} for f in copy.follows.values()
            ],
            "leaders": [_leader_json(leader) for leader in copy.leaders.values()],
        }

    async def _mirror(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():  # bounded by stopping
            self._send(self.everything())
            await _wait(stopping, MIRROR_EVERY_S)

    async def _publish(self, stopping: asyncio.Event) -> None:
        outbox, nc = self._outbox, self.nc
        assert outbox is not None and nc is not None
        while not stopping.is_set() or not outbox.empty():  # bounded by stopping
            try:
                data = await asyncio.wait_for(outbox.get(), MIRROR_EVERY_S)
            except TimeoutError:
                continue
            try:
                await nc.publish(mirror_subject(self.names), data)
            except nats.errors.Error as error:
                log.warning("mirror not published: %r", error)

    # --- requests (6) -------------------------------------------------------------------------

    async def _on_call(self, message: Msg) -> None:
        asyncio.get_running_loop().create_task(self._answer(message))

    async def _answer(self, message: Msg) -> None:
        try:
            request = _decode(message.data)
            reply: dict[str, Any] = {"ok": await self._call(str(request["op"]), request["args"])}
        except ValueError as error:  # BotError, CopyError: a 400, nothing changed
            reply = {"error": str(error)}
        except Exception as error:
            log.exception("services call failed")
            reply = {"fail": f"{type(error).__name__}: {error}"}
        with contextlib.suppress(nats.errors.Error):
            await message.respond(_encode(reply))

    async def _call(self, op: str, args: dict[str, Any]) -> Any:
        bots, copy = self.bots, self.copy
        if bots is None or copy is None:
            raise RuntimeError("the services are stopping")
        if op == "bot.create":
            row = await bots.create(int(args["owner"]), args["params"], str(args["ip"]))
            return {"row": row, "detail": bots.detail(int(args["owner"]), int(row["botId"]))}
        if op == "bot.stop":
            row = await bots.stop(int(args["owner"]), int(args["botId"]), bool(args["close"]))
            return {"row": row, "detail": bots.detail(int(args["owner"]), int(row["botId"]))}
        if op == "bot.resume":
            row = await bots.resume(int(args["owner"]), int(args["botId"]))
            return {"row": row, "detail": bots.detail(int(args["owner"]), int(row["botId"]))}
        if op == "copy.leader":
            owner = int(args["owner"])
            row = await copy.set_leader(owner, int(args["account"]), args["params"])
            return {"row": row, "leader": _leader_json(copy.leaders[int(args["account"])])}
        if op == "copy.follow":
            return {"row": await copy.follow(int(args["owner"]), args["params"], str(args["ip"]))}
        if op == "copy.unfollow":
            owner, follow_id = int(args["owner"]), int(args["followId"])
            return {"row": await copy.unfollow(owner, follow_id, bool(args["close"]))}
        raise ValueError(f"unknown call {op}")

    async def disconnect(self) -> None:
        nc, self.nc = self.nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    def close(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.dispose()


# --- gateways ---------------------------------------------------------------------------------


class GatewayTrading:
    """Gateway side: the mirror, the requests, and the two ports (module docstring)."""

    def __init__(self, nc_owner: Any, names: ClusterNames, sql: Engine) -> None:
        """``nc_owner``: the gateway's `ClusterCommandPort` (its NATS client and loop thread)."""
        self.port = nc_owner
        self.names = names
        self.sql = sql
        self.details: dict[int, tuple[int, dict[str, Any]]] = {}  # bot id -> (owner, detail)
        self.follows: dict[int, tuple[int, dict[str, Any]]] = {}  # follow id -> (owner, row)
        self.leaders: dict[int, Leader] = {}
        self.bots = ClusterBots(self)
        self.copy = ClusterCopy(self)
        self.notify: Callable[[int, str, str, Any], None] | None = None
        self.loop: Callable[[], asyncio.AbstractEventLoop | None] = lambda: None
        self._subscription: Subscription | None = None

    def attach(self, gateway: Any) -> None:
        """After ``create_app``: the local services' instruments and last prices, the
        notices, and the mirror's subscription (on the port's loop)."""
        specs = list(gateway.market.specs.values())
        self.bots.local = BotService(self.sql, specs, self.port)
        self.bots.local.read_models = self.sql
        self.copy.local = CopyService(self.sql, specs, self.port)
        self.copy.local.read_models = self.sql  # track records
        self.copy.local.leaders = self.leaders
        self.bots.local.last_px.update(_last_prices(self.sql, [s.symbol for s in specs]))
        self.port.subscribe_batches(self._on_batch)
        self.notify = gateway.notifications.notify
        self.loop = lambda: gateway.loop
        self.port.thread.call(self._subscribe())

    async def _subscribe(self) -> None:
        self._subscription = await self.port.nc.subscribe(
            mirror_subject(self.names), cb=self._on_mirror
        )

    def _on_batch(self, batch: Sequence[Applied]) -> None:
        last_px = self.bots.local.last_px if self.bots.local is not None else None
        if last_px is None:
            return
        for applied in batch:
            for event in applied.events:
                if type(event) is Trade:
                    last_px[event.symbol] = event.price

    async def _on_mirror(self, message: Msg) -> None:
        self.take(_decode(message.data))

    def take(self, message: dict[str, Any]) -> None:
        """One mirror message (from the port's loop, or a reply on the server's)."""
        kind = message.get("kind")
        if kind == "all":
            self.details = {int(b["detail"]["botId"]): (int(b["owner"]), b["detail"])
                            for b in message["bots"]}  # fmt: skip
            self.follows = {int(f["row"]["followId"]): (int(f["owner"]), f["row"])
                            for f in message["follows"]}  # fmt: skip
            self.leaders.clear()
            self.leaders.update({int(r["account"]): _leader_of(r) for r in message["leaders"]})
        elif kind == "bot":
            owner, detail = int(message["owner"]), message["detail"]
            self.details[int(detail["botId"])] = (owner, detail)
            if message.get("notify"):
                self._tell(self.bots.listeners, owner, _row_of(detail))
        elif kind == "follow":
            owner, row = int(message["owner"]), message["row"]
            self.follows[int(row["followId"])] = (owner, row)
            if message.get("notify"):
                self._tell(self.copy.listeners, owner, row)
        elif kind == "leader":
            leader = _leader_of(message["leader"])
            self.leaders[leader.account] = leader
        elif kind == "notice" and self.notify is not None:
            notify = self.notify
            args = (int(message["account"]), str(message["title"]), str(message["body"]),
                    str(message["level"]))  # fmt: skip
            loop = self.loop()
            if loop is None:
                notify(*args)
            else:
                loop.call_soon_threadsafe(notify, *args)

    def _tell(
        self, listeners: list[Callable[[int, dict[str, Any]], None]], owner: int, row: Any
    ) -> None:
        loop = self.loop()
        for listener in listeners:
            if loop is None:
                listener(owner, row)
            else:
                loop.call_soon_threadsafe(listener, owner, row)

    async def _request(self, op: str, args: dict[str, Any], timeout_s: float) -> Any:
        """On the port's loop: the leader's answer; ValueError for a refusal (400)."""
        nc = self.port.nc
        data = _encode({"op": op, "args": args})
        deadline = time.monotonic() + NO_LEADER_WAIT_S
        while True:  # bounded by the deadline
            try:
                message = await nc.request(call_subject(self.names), data, timeout=timeout_s)
                break
            except nats.errors.NoRespondersError as error:
                if time.monotonic() > deadline:
                    raise ApiError(503, MSG_NO_LEADER) from error
                await asyncio.sleep(NO_LEADER_RETRY_S)
            except nats.errors.TimeoutError as error:
                raise ApiError(503, MSG_UNKNOWN) from error
        reply = _decode(message.data)
        if "error" in reply:
            raise ValueError(reply["error"])
        if "fail" in reply:
            raise ApiError(503, f"the leader could not do it: {reply['fail']}")
        return reply["ok"]

    async def call(self, op: str, args: dict[str, Any]) -> Any:
        """From the server's loop."""
        future = asyncio.run_coroutine_threadsafe(
            self._request(op, args, CALL_TIMEOUT_S), self.port.thread.loop
        )
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                self.port.thread.call(subscription.unsubscribe(), 5)


def _row_of(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if k not in DETAIL_KEYS}


def _last_prices(sql: Engine, symbols: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    with sql.connect() as conn:
        for symbol in symbols:
            row = conn.execute(
                select(trades.c.price)
                .where(trades.c.symbol == symbol)
                .order_by(trades.c.trd_match_id.desc())
                .limit(1)
            ).first()
            if row is not None:
                found[symbol] = int(row.price)
    return found


class ClusterBots:
    """`gateway.ports.BotsPort` on a cluster gateway."""

    def __init__(self, trading: GatewayTrading) -> None:
        self.trading = trading
        self.listeners: list[Callable[[int, dict[str, Any]], None]] = []
        self.local: BotService | None = None  # validation and backtests; never acts

    def _local(self) -> BotService:
        if self.local is None:
            raise ApiError(503, MSG_NO_LEADER)
        return self.local

    def rows(self, owner: int) -> list[dict[str, Any]]:
        return [
            _row_of(detail)
            for bot_id, (held_by, detail) in sorted(self.trading.details.items())
            if held_by == owner
        ]

    def detail(self, owner: int, bot_id: int) -> dict[str, Any]:
        held = self.trading.details.get(bot_id)
        if held is None or held[0] != owner:
            raise ValueError("botId: no such bot")
        return held[1]

    def required(self, params: Mapping[str, Any]) -> tuple[str, int]:
        return self._local().required(params)

    async def _act(self, op: str, owner: int, args: dict[str, Any]) -> dict[str, Any]:
        answer = await self.trading.call(op, {"owner": owner, **args})
        detail = answer["detail"]
        self.trading.details[int(detail["botId"])] = (owner, detail)
        return dict(answer["row"])

    async def create(self, owner: int, params: Mapping[str, Any], ip: str = "") -> dict[str, Any]:
        return await self._act("bot.create", owner, {"params": dict(params), "ip": ip})

    async def stop(self, owner: int, bot_id: int, close: bool) -> dict[str, Any]:
        return await self._act("bot.stop", owner, {"botId": bot_id, "close": close})

    async def resume(self, owner: int, bot_id: int) -> dict[str, Any]:
        return await self._act("bot.resume", owner, {"botId": bot_id})

    async def backtest(self, params: Mapping[str, Any], csv_text: str | None) -> dict[str, Any]:
        return await self._local().backtest(params, csv_text)


class ClusterCopy:
    """`gateway.ports.CopyPort` on a cluster gateway."""

    def __init__(self, trading: GatewayTrading) -> None:
        self.trading = trading
        self.listeners: list[Callable[[int, dict[str, Any]], None]] = []
        self.local: CopyService | None = None  # validation over the mirrored leaders

    def leader_name(self, account: int) -> str:
        leader = self.trading.leaders.get(account)
        return leader.name if leader is not None else ""

    def leader_rows(self) -> list[dict[str, Any]]:
        """Track records from the read models here (blocking: the routes call it in a thread),
        followers and assets under copy from the mirror: no load on the leader's process."""
        if self.local is None:
            raise ApiError(503, MSG_NO_LEADER)
        follows = [row for _, row in list(self.trading.follows.values())]
        rows = []
        for leader in list(self.trading.leaders.values()):
            if not leader.active:
                continue
            equities = [
                int(r["equity"])
                for r in follows
                if r["leader"] == leader.account and r["state"] == ACTIVE
            ]
            rows.append(self.local.leader_row(leader, self.local.track_record(leader), equities))
        return rows

    def follow_rows(self, owner: int) -> list[dict[str, Any]]:
        return [
            row for _, (held_by, row) in sorted(self.trading.follows.items()) if held_by == owner
        ]

    def validate_follow(self, owner: int, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.local is None:
            raise ApiError(503, MSG_NO_LEADER)
        return self.local.validate_follow(owner, params)

    async def set_leader(
        self, owner: int, account: int, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        answer = await self.trading.call(
            "copy.leader", {"owner": owner, "account": account, "params": dict(params)}
        )
        self.trading.take({"kind": "leader", "leader": answer["leader"]})
        return dict(answer["row"])

    async def follow(self, owner: int, params: Mapping[str, Any], ip: str = "") -> dict[str, Any]:
        answer = await self.trading.call(
            "copy.follow", {"owner": owner, "params": dict(params), "ip": ip}
        )
        row = dict(answer["row"])
        self.trading.follows[int(row["followId"])] = (owner, row)
        return row

    async def unfollow(self, owner: int, follow_id: int, close: bool) -> dict[str, Any]:
        answer = await self.trading.call(
            "copy.unfollow", {"owner": owner, "followId": follow_id, "close": close}
        )
        row = dict(answer["row"])
        self.trading.follows[int(row["followId"])] = (owner, row)
        return row


async def _wait(event: asyncio.Event, timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout_s)
