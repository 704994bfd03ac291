"""Kill -9 an exchange process at random moments and check that nothing acknowledged was lost.

One cycle: start `engine_server` over a data dir; drive commands at it from a client that
records every acknowledgement (request -> seq, order id); SIGKILL the server after a random
delay; recover the data dir in this process and check:

- every acknowledged command is present: its seq <= the recovered last seq, the journal record
  at that seq (while not pruned) is that very command, and its effect is in the state (a
  deposit's transfer id is credited; a placed order's id was handed out);
- nothing unacknowledged is half-applied: the recovered state passes the full audit;
- per-currency totals are conserved: they equal the sum of the deposits the state credited,
  each one whole (the workload moves money only by deposits, trades and withdrawal holds,
  never out of the exchange), and every credited deposit is one the client sent;
- the restarted server recovers to the same seq and state hash as this process did.

SIGKILL ends the process, not the machine: the page cache survives, so this checks the
sequencer's ordering (acknowledge only after commit) and recovery, not the disk's honesty.

    python -m tests.sim.crash --cycles 300 [--seed 1] [--data-dir D]   # prints JSON
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import msgspec

from perpetua.core.audit import conservation_totals
from perpetua.core.commands import (
    CancelAll,
    CancelOrders,
    Command,
    Deposit,
    IndexPrice,
    PlaceOrder,
    WithdrawalCancel,
    WithdrawalRequest,
)
from perpetua.core.enums import Side, TimeInForce
from perpetua.sequencer import decode_command, encode_command, iter_records, recover

SERVER = Path(__file__).resolve().parent / "engine_server.py"
REPO_ROOT = SERVER.parents[2]
FRAME_HEADER = struct.Struct("<I")
WINDOW_REQUESTS_MAX = 64  # requests in flight from the client
READY_TIMEOUT_S = 30.0
ACCOUNTS = 20
CURRENCIES = ("XBt", "USDt")

_encode = msgspec.msgpack.Encoder().encode
_decode_reply = msgspec.msgpack.Decoder(tuple[int, int, str | None, int]).decode


class Ack(msgspec.Struct, frozen=True):
    seq: int
    command: Command
    order_id: int


@dataclass
class Workload:
    """Commands with unique ids, so each acknowledgement can be found in the state."""

    rng: random.Random
    serial: int = 0
    withdrawals: list[str] = field(default_factory=list)
    deposits: dict[str, tuple[str, int]] = field(default_factory=dict)  # every one sent

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}-{self.rng.getrandbits(32):08x}"

    def next(self) -> Command:
        rng = self.rng
        account = rng.randint(1, ACCOUNTS)
        roll = rng.randrange(100)
        if roll < 20:
            deposit = Deposit(
                0, account, rng.choice(CURRENCIES), rng.randint(1, 10**9), self._id("d")
            )
            self.deposits[deposit.transfer_id] = (deposit.currency, deposit.amount)
            return deposit
        if roll < 65:
            side = rng.choice((Side.BUY, Side.SELL))
            price = 500_000 + side * -rng.randint(-20, 200)
            tif = TimeInForce.IMMEDIATE_OR_CANCEL if roll > 60 else None
            return PlaceOrder(
                0,
                account,
                "XBTUSD",
                side,
                100 * rng.randint(1, 5),
                price=price,
                time_in_force=tif,
                cl_ord_id=self._id("o"),
            )
        if roll < 80:
            return CancelOrders(0, account, (rng.randint(1, 5_000),))
        if roll < 84:
            return CancelAll(0, account)
        if roll < 92:
            withdrawal_id = self._id("w")
            self.withdrawals.append(withdrawal_id)
            return WithdrawalRequest(0, account, "XBt", rng.randint(1, 10**6), 10, withdrawal_id)
        if roll < 95 and self.withdrawals:
            return WithdrawalCancel(0, rng.choice(self.withdrawals))
        return IndexPrice(0, ".BXBT", 50_000 + rng.randint(-500, 500), 1)


class Server:
    def __init__(self, data_dir: Path, snapshot_interval: int) -> None:
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                [str(REPO_ROOT / "src"), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
            ),
        )
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), "--data-dir", str(data_dir),
             "--snapshot-interval", str(snapshot_interval), "--segment-bytes", str(64 * 1024)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        line = self._ready_line()
        _, port, last_seq, state_hash = line.split()
        self.port = int(port)
        self.last_seq = int(last_seq)
        self.state_hash = state_hash

    def _ready_line(self) -> str:
        assert self.process.stdout is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(self.process.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(READY_TIMEOUT_S)
        if not found or not found[0].startswith("READY"):
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
            raise AssertionError(f"engine server did not start: {found!r}\n{err}")
        return found[0]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def drive(port: int, workload: Workload, acks: list[Ack], stop_at: float) -> int:
    """Send commands until the connection drops (the server was killed) or stop_at passes;
    record every acknowledgement. Returns the number of requests sent."""
    sent: dict[int, Command] = {}
    request_id = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = conn.makefile("rb")
        try:
            while time.monotonic() < stop_at:
                while len(sent) < WINDOW_REQUESTS_MAX:
                    request_id += 1
                    command = workload.next()
                    body = _encode([request_id, encode_command(command)])
                    conn.sendall(FRAME_HEADER.pack(len(body)) + body)
                    sent[request_id] = command
                header = stream.read(FRAME_HEADER.size)
                if len(header) < FRAME_HEADER.size:
                    break
                (length,) = FRAME_HEADER.unpack(header)
                reply_id, seq, error, order_id = _decode_reply(stream.read(length))
                command = sent.pop(reply_id)
                if error is None:
                    acks.append(Ack(seq, command, order_id))
        except (ConnectionError, OSError):
            pass
    return request_id


class Recovered(NamedTuple):
    last_seq: int
    state_hash: str
    torn_tail_cut: bool
    totals: dict[str, int]  # conservation totals per currency
    credited: list[str]  # transfer ids of the deposits credited


def check(data_dir: Path, acks: list[Ack]) -> Recovered:
    """Recover the data dir and check every acknowledgement against it."""
    engine, info = recover(data_dir)  # audits: nothing half-applied
    state = engine.state
    journal = _journal(data_dir)
    for ack in acks:
        assert ack.seq <= info.last_seq, f"acknowledged seq {ack.seq} lost ({info.last_seq})"
        journaled = journal.get(ack.seq)  # None once pruned below a snapshot
        if journaled is not None:
            assert journaled._replace(ts_ns=0) == ack.command, f"seq {ack.seq} holds another"
        command = ack.command
        if isinstance(command, Deposit):
            assert state.deposits.get(command.transfer_id) == command.account
        elif isinstance(command, PlaceOrder) and ack.order_id:
            assert 0 < ack.order_id < state.next_order_id
    return Recovered(
        info.last_seq,
        engine.state_hash(),
        info.torn_tail is not None,
        conservation_totals(state),
        list(state.deposits),
    )


def _first_seq(data_dir: Path) -> int:
    names = sorted((data_dir / "journal").glob("journal-*.log"))
    return int(names[0].name[len("journal-") : -len(".log")])


def _journal(data_dir: Path) -> dict[int, Command]:
    records = iter_records(data_dir / "journal", _first_seq(data_dir))
    return {seq: decode_command(payload) for seq, payload in records}


def run_cycles(
    data_dir: Path,
    cycles: int,
    seed: int,
    drive_s_max: float = 0.4,
    snapshot_interval: int = 400,
    progress_every: int = 0,
) -> dict[str, object]:
    rng = random.Random(seed)
    workload = Workload(rng)
    acks: list[Ack] = []
    started = time.monotonic()
    sent_total = 0
    torn_tails = 0
    last_seq, state_hash = 0, ""
    for cycle in range(cycles):
        server = Server(data_dir, snapshot_interval)
        assert (server.last_seq, server.state_hash) == (last_seq, state_hash) or cycle == 0, (
            f"cycle {cycle}: server recovered {server.last_seq}/{server.state_hash},"
            f" this process {last_seq}/{state_hash}"
        )
        kill_at = time.monotonic() + rng.uniform(0.02, drive_s_max)
        killer = threading.Timer(kill_at - time.monotonic(), server.kill)
        killer.start()
        sent_total += drive(server.port, workload, acks, kill_at + 5.0)
        killer.join()
        recovered = check(data_dir, acks)
        last_seq, state_hash = recovered.last_seq, recovered.state_hash
        torn_tails += recovered.torn_tail_cut
        expected = {currency: 0 for currency in recovered.totals}
        for transfer_id in recovered.credited:
            currency, amount = workload.deposits[transfer_id]  # KeyError: never sent
            expected[currency] += amount
        assert recovered.totals == expected, f"{recovered.totals} != deposits {expected}"
        if progress_every and (cycle + 1) % progress_every == 0:
            print(
                f"{cycle + 1}/{cycles} cycles, {len(acks)} acknowledged, seq {last_seq}",
                file=sys.stderr,
                flush=True,
            )
    return {
        "cycles": cycles,
        "seed": seed,
        "requests_sent": sent_total,
        "acknowledged": len(acks),
        "last_seq": last_seq,
        "torn_tails_cut": torn_tails,
        "seconds": round(time.monotonic() - started, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="perpetua-crash-") as scratch:
        data_dir = args.data_dir or Path(scratch)
        report = run_cycles(data_dir, args.cycles, args.seed, progress_every=10)
    print(json.dumps({"bench": "crash_kill9", **report}))


if __name__ == "__main__":
    main()
