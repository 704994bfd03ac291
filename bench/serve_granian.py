"""``perpetua run`` served by granian instead of uvicorn: the measured alternative (decisions §32).

The same venue, app and start-up as ``perpetua.runtime.server.run``; only the HTTP server
differs: granian's embedded server (Rust HTTP/1.1, the ASGI interface, ``GRANIAN_THREADS``
runtime threads, default 1) on this process's asyncio loop, so the sequencer stays in the
process as with uvicorn. WebSockets are off: the venue's fan-out writes raw frames to
uvicorn's transport (decisions §9), so only REST is compared. bench_gateway.py starts this with
``BENCH_SERVER=granian``. granian is in the dev extra only (``make venv`` installs it); the
venue itself never imports it.

    .venv/bin/python bench/serve_granian.py --data-dir D --port P [perpetua run's options]
"""

import asyncio
import os
import sys
from dataclasses import replace

try:
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server
except ImportError:
    raise SystemExit("granian is not installed (the dev extra): make venv") from None

from perpetua.cli import build_parser, run_config
from perpetua.runtime.server import configure_logging, operator_key, with_metrics
from perpetua.runtime.venue import open_venue, tune_interpreter


def main() -> None:
    config = run_config(build_parser().parse_args(["run", *sys.argv[1:]]))
    configure_logging(config.server)
    venue = open_venue(replace(config, operator_key=operator_key(config)))
    app = with_metrics(venue)
    tune_interpreter()
    venue.start()
    server = Server(
        app,
        address=config.server.host,
        port=config.server.port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        websockets=False,
        log_enabled=False,
        runtime_threads=int(os.environ.get("GRANIAN_THREADS", "1")),
    )
    try:
        asyncio.run(server.serve())
    finally:
        venue.stop()


if __name__ == "__main__":
    main()
