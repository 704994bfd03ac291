"""A small exchange process for crash tests: a Sequencer over a data dir behind a local TCP port.

A test harness until the HTTP gateway exists. Frames are ``u32 length (little-endian) |
MessagePack``. A request is ``[request_id, command_record]`` where ``command_record`` is
``codec.encode_command(command)``; the reply, sent only once the command is durable, is
``[request_id, seq, error, order_id]``: ``error`` is None or a short text ("overloaded",
"invalid: ..."), ``order_id`` the id a PlaceOrder got (0 otherwise or if rejected). Replies
come in completion order, which is seq order.

On start it recovers the data dir and prints one line on stdout,
``READY <port> <last_seq> <state_hash>``, then serves until killed (SIGTERM stops it cleanly).

    python tests/sim/engine_server.py --data-dir D [--port 0] [--snapshot-interval 500]
"""

import argparse
import asyncio
import signal
import struct
import sys
from pathlib import Path

import msgspec

from perpetua.core.commands import PlaceOrder
from perpetua.core.events import OrderEvent
from perpetua.sequencer import (
    CodecError,
    CommandInvalid,
    FsyncPolicy,
    JournalConfig,
    Overloaded,
    Sequencer,
    SequencerConfig,
    SequencerStopped,
    decode_command,
)

FRAME_HEADER = struct.Struct("<I")
FRAME_BYTES_MAX = 1 << 20

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(tuple[int, bytes]).decode


def order_id_of(command: object, events: list[object]) -> int:
    if not isinstance(command, PlaceOrder):
        return 0
    for event in events:
        if isinstance(event, OrderEvent) and event.cl_ord_id == command.cl_ord_id:
            return event.order_id
    return 0


async def handle(sequencer: Sequencer, payload: bytes, writer: asyncio.StreamWriter) -> None:
    request_id = -1
    try:
        request_id, record = _decode(payload)
        command = decode_command(record)
        result = await sequencer.submit(command)  # type: ignore[misc]
        reply = [request_id, result.seq, None, order_id_of(command, result.events)]
    except Overloaded:
        reply = [request_id, 0, "overloaded", 0]
    except (CodecError, CommandInvalid, msgspec.DecodeError, TypeError) as error:
        reply = [request_id, 0, f"invalid: {error}", 0]
    except SequencerStopped:
        return
    body = _encode(reply)
    writer.write(FRAME_HEADER.pack(len(body)) + body)


async def serve_client(
    sequencer: Sequencer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            header = await reader.readexactly(FRAME_HEADER.size)
            (length,) = FRAME_HEADER.unpack(header)
            if length > FRAME_BYTES_MAX:
                break
            payload = await reader.readexactly(length)
            task = asyncio.create_task(handle(sequencer, payload, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main_async(args: argparse.Namespace) -> None:
    config = SequencerConfig(
        snapshot_interval_commands=args.snapshot_interval,
        journal=JournalConfig(
            segment_bytes_max=args.segment_bytes,
            fsync_policy=FsyncPolicy(args.fsync),
        ),
    )
    sequencer = Sequencer.open(args.data_dir, config=config)
    recovered = sequencer.recovery
    state_hash = sequencer.engine.state_hash()  # before start: then only the writer reads it
    sequencer.start()
    server = await asyncio.start_server(
        lambda r, w: serve_client(sequencer, r, w), "127.0.0.1", args.port
    )
    port = server.sockets[0].getsockname()[1]
    last_seq = 0 if recovered is None else recovered.last_seq
    print(f"READY {port} {last_seq} {state_hash}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    sequencer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--snapshot-interval", type=int, default=500)
    parser.add_argument("--segment-bytes", type=int, default=256 * 1024)
    parser.add_argument("--fsync", choices=[p.value for p in FsyncPolicy], default="always")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
