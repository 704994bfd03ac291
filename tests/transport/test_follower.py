"""A stream follower started while JetStream cannot answer (two of three nodes down: no
quorum, so creating its consumer times out) keeps trying and follows the stream once the nodes
are back. A restarted projector or gateway meets exactly this after a NATS node was lost; it used
to die on the first timeout."""

import asyncio
import threading
import time

import nats
import pytest
from nats.js.errors import NotFoundError, ServiceUnavailableError

from perpetua.core.commands import Deposit
from perpetua.runtime.natsd import NatsCluster
from perpetua.sequencer import default_engine, encode_command
from perpetua.transport.replica import Replica, StreamFollower
from perpetua.transport.stream import ClusterNames, encode_batch, ensure_stream

NAMES = ClusterNames("ftest")
START_NS = 1_709_330_400_000_000_000
OUTAGE_S = 4.0


@pytest.mark.slow
def test_a_follower_waits_out_a_lost_quorum(nats_trio: NatsCluster) -> None:
    async def scenario() -> tuple[int, int]:
        nc = await nats.connect(list(nats_trio.urls))
        js = nc.jetstream(timeout=2)
        await ensure_stream(js, NAMES, 3)
        record = (1, encode_command(Deposit(START_NS, 1, "XBt", 10**8, "d-1")))
        await js.publish(NAMES.subject, encode_batch([record]))
        await nc.close()

        nats_trio.kill(1)
        nats_trio.kill(2)
        reader = await nats.connect([nats_trio.urls[0]])
        follower = StreamFollower(reader.jetstream(timeout=1), NAMES, Replica(default_engine()))
        back = threading.Timer(OUTAGE_S, lambda: (nats_trio.start(1), nats_trio.start(2)))
        started = time.monotonic()
        back.start()
        try:
            await follower.start(wait_s=60)
            waited = time.monotonic() - started
            assert await follower.wait_for(1, 30), "the follower did not apply the message"
            return follower.replica.applied_seq, int(waited)
        finally:
            back.join()
            await follower.stop()
            await reader.close()

    applied_seq, waited_s = asyncio.run(scenario())
    assert applied_seq == 1
    assert waited_s >= 1  # it did meet the outage: its first requests timed out


class _Refusing:
    """A JetStream context whose consumer requests fail ``failures`` times with ``error``."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def subscribe(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return object()


def _unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError(
        code=503, err_code=10008, description="JetStream system temporarily unavailable"
    )


def test_a_503_from_jetstream_is_waited_out_like_a_timeout() -> None:
    """The answer a node gives while its lost peers come back (the failure CI saw once)."""
    js = _Refusing(2, _unavailable())
    follower = StreamFollower(js, NAMES, Replica(default_engine()))  # type: ignore[arg-type]
    asyncio.run(follower.start(wait_s=10))
    assert js.calls == 3


def test_a_refusal_that_will_not_pass_is_raised_at_once() -> None:
    js = _Refusing(5, NotFoundError(code=404, err_code=10059, description="stream not found"))
    follower = StreamFollower(js, NAMES, Replica(default_engine()))  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        asyncio.run(follower.start(wait_s=10))
    assert js.calls == 1


def test_the_follower_gives_up_at_its_deadline() -> None:
    js = _Refusing(100, _unavailable())
    follower = StreamFollower(js, NAMES, Replica(default_engine()))  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailableError):
        asyncio.run(follower.start(wait_s=1.2))
    assert 2 <= js.calls <= 3
