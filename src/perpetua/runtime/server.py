"""Serving a venue: logging, the HTTP server and ``/metrics``, the same for ``run`` and ``demo``.

- ``configure_logging``: structured logs through structlog. Every stdlib ``logging`` record of
  the venue (ours, uvicorn's) goes through one formatter: JSON lines on stderr by default
  (``log_format = "text"`` for people), with ``seq`` when the record carries a command's.
- ``server_config``: the one uvicorn configuration (``gateway.server``: uvloop, httptools with
  the request-head and per-address guards, keep-alive, forwarded headers trusted only from
  ``server.forwarded_allow_ips``).
- ``with_metrics``: the venue's ASGI app with ``GET /metrics`` in front (Prometheus text).
- ``run``: ``perpetua run``: open the venue, start it and its feeds, serve until SIGINT or
  SIGTERM, stop in reverse order (the server with the background jobs, then ``Venue.stop``),
  exit 0.
"""

import logging
import os
import secrets
import signal
import sys
from dataclasses import replace
from typing import Any

import structlog
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from perpetua.gateway.app import DirectRoutes
from perpetua.gateway.server import KEEP_ALIVE_S, uvicorn_config
from perpetua.runtime.config import ServerConfig, VenueConfig
from perpetua.runtime.metrics import CONTENT_TYPE, CommandCounts, VenueCollector, metrics_text
from perpetua.runtime.venue import Venue, open_venue, tune_interpreter

__all__ = [
    "KEEP_ALIVE_S",
    "OPERATOR_KEY_ENV",
    "MetricsApp",
    "configure_logging",
    "operator_key",
    "run",
    "server_config",
    "with_metrics",
]

log = logging.getLogger("perpetua.run")
OPERATOR_KEY_ENV = "PERPETUA_OPERATOR_KEY"


def configure_logging(server: ServerConfig) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if server.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(server.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def operator_key(config: VenueConfig) -> str:
    """The configured key, else $PERPETUA_OPERATOR_KEY, else a new random one."""
    return config.operator_key or os.environ.get(OPERATOR_KEY_ENV, "") or secrets.token_urlsafe(24)


class MetricsApp:
    """``GET /metrics`` answered here; everything else goes to the venue's app."""

    def __init__(self, app: DirectRoutes, registry: CollectorRegistry) -> None:
        self.app = app
        self.registry = registry
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics" and scope["method"] == "GET":
            body = metrics_text(self.registry)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", CONTENT_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        await self.app(scope, receive, send)


def with_metrics(venue: Venue) -> MetricsApp:
    counts = CommandCounts()
    venue.sequencer.subscribe_batches(counts.on_batch)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        VenueCollector(venue.sequencer, venue.app.state.gateway, venue.projector, counts)
    )
    return MetricsApp(venue.app, registry)


def server_config(app: Any, server: ServerConfig) -> uvicorn.Config:
    """``gateway.server.uvicorn_config``: head timeout and size, connections per address,
    WebSocket message size, forwarded headers only from the listed proxies."""
    return uvicorn_config(
        app, server.host, server.port, server.log_level, server.forwarded_allow_ips, log_config=None
    )


def run(config: VenueConfig) -> int:
    configure_logging(config.server)
    key = operator_key(config)
    if not config.operator_key:
        sys.stderr.write(f"operator key (x-operator-key for /api/v1/admin/*): {key}\n")
    venue = open_venue(replace(config, operator_key=key))
    if venue.outbox is not None:
        sys.stderr.write(
            f"mail to users goes to the outbox {venue.outbox.path} "
            "(set PERPETUA_SMTP_URL for a real relay)\n"
        )
    app = with_metrics(venue)
    tune_interpreter()
    venue.start()
    venue.start_feeds()
    server = uvicorn.Server(server_config(app, config.server))
    stops: list[int] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        # uvicorn handles the signal (graceful stop), then re-raises it to the handler that
        # was in place before it started: this one only records it, so the cleanup below
        # runs and the process exits 0 instead of dying by the signal.
        signal.signal(number, lambda signum, _frame: stops.append(signum))
    try:
        server.run()
    finally:
        venue.stop()
    log.info("stopped cleanly", extra={"signals": stops})
    return 0
