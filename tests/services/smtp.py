"""A real SMTP server for tests (aiosmtpd on a free loopback port) that keeps what it
receives, and helpers to read tokens out of the messages."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from perpetua.services.mail import free_port

WAIT_S = 10.0


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def wait(self, address: str, subject_part: str, count: int = 1) -> EmailMessage:
        """The ``count``-th message to ``address`` whose subject contains ``subject_part``."""
        deadline = time.monotonic() + WAIT_S
        while True:
            found = [m for m in self.to(address) if subject_part in m["Subject"]]
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > deadline:
                subjects = [(m["To"], m["Subject"]) for m in self.messages]
                raise AssertionError(f"no mail {subject_part!r} to {address}: {subjects}")
            time.sleep(0.02)


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def token(message: EmailMessage) -> str:
    found = re.search(r"Token: (\S+)", body(message))
    assert found, body(message)
    return found.group(1)


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on ``port`` (default: a free one) for the ``with`` block."""
    inbox = Inbox()
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
