"""A load client for cluster tests and benchmarks: commands submitted over NATS to whoever
leads, every outcome recorded, and the checks made against the stream afterwards."""

import asyncio
import time
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client

from perpetua.core.audit import audit
from perpetua.core.commands import Command, Deposit, PlaceOrder
from perpetua.sequencer import default_engine, encode_command
from perpetua.transport.replica import Replica, fetch_into, last_stream_seq
from perpetua.transport.stream import ClusterNames
from perpetua.transport.submit import OK, UNKNOWN, SubmitClient
from tests.sequencer.workload import Advance, Generator


@dataclass
class Outcomes:
    acked: dict[int, Command] = field(default_factory=dict)  # seq -> command as submitted
    unknown: list[Command] = field(default_factory=list)
    refused: int = 0
    latencies_s: list[float] = field(default_factory=list)
    last_ok_at: float = 0.0


def identity(command: Command) -> tuple[object, ...]:
    """A command as submitted, without the stamp the leader gives it."""
    return tuple(command[1:])


def unique_key(command: Command) -> str:
    if isinstance(command, Deposit):
        return f"d:{command.transfer_id}"
    if isinstance(command, PlaceOrder):
        return f"o:{command.account}:{command.cl_ord_id}"
    return repr(identity(command))


class Load:
    """``workers`` coroutines submitting the generator's commands until stopped."""

    def __init__(self, nc: Client, names: ClusterNames, seed: int, request_timeout_s: float = 3.0):
        self.client = SubmitClient(nc, names, request_timeout_s=request_timeout_s)
        self.generator = Generator(seed)
        self.setup = self.generator.setup()
        self.outcomes = Outcomes()
        self.stopping = asyncio.Event()
        self.serial = 0

    def next_command(self) -> Command:
        if self.setup:
            step = self.setup.pop(0)
            assert not isinstance(step, Advance)
            return step
        return self.generator.place()

    async def one(self, command: Command) -> None:
        self.serial += 1
        key = f"load-{self.serial}"
        started = time.perf_counter()
        code, seq, _ts, _message = await self.client.submit(key, encode_command(command))
        if code == OK:
            self.outcomes.acked[seq] = command
            self.outcomes.latencies_s.append(time.perf_counter() - started)
            self.outcomes.last_ok_at = time.monotonic()
        elif code == UNKNOWN:
            self.outcomes.unknown.append(command)
        else:
            self.outcomes.refused += 1

    async def worker(self) -> None:
        while not self.stopping.is_set():
            await self.one(self.next_command())

    async def run(self, workers: int) -> None:
        while self.setup:  # funding first, in order
            await self.one(self.next_command())
        await asyncio.gather(*(self.worker() for _ in range(workers)))


def check_stream(replica_records: dict[int, Command], outcomes: Outcomes) -> None:
    """No acknowledged command lost (each is in the stream at its seq), none applied twice."""
    for seq, command in outcomes.acked.items():
        assert seq in replica_records, f"acknowledged seq {seq} missing from the stream"
        assert identity(replica_records[seq]) == identity(command), f"seq {seq} differs"
    seen: set[str] = set()
    for command in replica_records.values():
        if isinstance(command, Deposit | PlaceOrder):
            key = unique_key(command)
            assert key not in seen, f"{key} applied twice"
            seen.add(key)


async def records_of(
    servers: tuple[str, ...], names: ClusterNames
) -> tuple[Replica, dict[int, Command]]:
    """A fresh replica of the whole stream, audited, and every record it applied."""
    nc = await nats.connect(list(servers))
    records: dict[int, Command] = {}
    try:
        js = nc.jetstream(timeout=5)
        replica = Replica(default_engine(), checkpoint_every=1_000)
        for applied in await fetch_into(js, names, replica, await last_stream_seq(js, names)):
            records[applied.seq] = applied.command
    finally:
        await nc.close()
    audit(replica.engine.state)
    return replica, records
