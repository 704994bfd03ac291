"""Mail to users over real SMTP, and the embedded outbox server the default setup sends to.

1. Every message goes out over SMTP (``smtplib``) to ``MailConfig.host:port``: a configured
   relay (``PERPETUA_SMTP_URL=smtp://user:pass@host:587?starttls=1``), or, by default, the
   ``Outbox``: an ``aiosmtpd`` server on loopback that the exchange starts and stops itself and
   that stores each message it receives as a file in a Maildir (``DATA_DIR/outbox``), which the
   operator reads with any mail client or ``cat``.
2. ``SmtpMailer.send`` blocks (network I/O): callers on an event loop run it in a thread.
3. Every message states the user's anti-phishing phrase when one is set, in its first line,
   so a user can tell our mail from an imitation.
4. Bodies never carry a password or an API secret; links carry single-use tokens only.
"""

import mailbox
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "DEFAULT_SENDER",
    "MAIL_TIMEOUT_S",
    "MailConfig",
    "Mailer",
    "Outbox",
    "SmtpMailer",
    "compose",
    "free_port",
    "mail_config",
]

MAIL_TIMEOUT_S: Final = 10.0
DEFAULT_SENDER: Final = "Perpetua <no-reply@perpetua.invalid>"
OUTBOX_DIR_NAME: Final = "outbox"


@dataclass(frozen=True, slots=True)
class MailConfig:
    host: str
    port: int
    sender: str = DEFAULT_SENDER
    starttls: bool = False
    tls: bool = False
    username: str = ""
    password: str = ""


def mail_config(url: str, sender: str = DEFAULT_SENDER) -> MailConfig:
    """``smtp://[user:pass@]host[:port][?starttls=1]`` or ``smtps://...``."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"mail server URL must be smtp://host:port or smtps://...: {url!r}")
    tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    return MailConfig(
        parts.hostname,
        parts.port or (465 if tls else 25),
        sender,
        starttls=query.get("starttls", ["0"])[0] in ("1", "true"),
        tls=tls,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str, anti_phishing: str = "") -> None: ...


def compose(sender: str, to: str, subject: str, body: str, anti_phishing: str = "") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="perpetua.invalid")
    head = f"Your anti-phishing phrase: {anti_phishing}\n\n" if anti_phishing else ""
    message.set_content(head + body)
    return message


class SmtpMailer:
    """Sends each message in its own SMTP session (rule 2: blocking)."""

    def __init__(self, config: MailConfig) -> None:
        self.config = config

    def send(self, to: str, subject: str, body: str, anti_phishing: str = "") -> None:
        c = self.config
        message = compose(c.sender, to, subject, body, anti_phishing)
        smtp_class: Callable[..., smtplib.SMTP] = smtplib.SMTP_SSL if c.tls else smtplib.SMTP
        with smtp_class(c.host, c.port, timeout=MAIL_TIMEOUT_S) as smtp:
            if c.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if c.username:
                smtp.login(c.username, c.password)
            smtp.send_message(message)


def free_port() -> int:
    """A loopback TCP port free now (aiosmtpd's readiness probe needs the real number)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Outbox:
    """The embedded SMTP server of rule 1: ``start()`` listens on a free loopback port and
    returns its ``MailConfig``; ``stop()`` closes it. Messages land in ``path`` (a Maildir)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / OUTBOX_DIR_NAME
        self._controller: Any = None

    def start(self) -> MailConfig:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Mailbox

        self.path.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(str(self.path), create=True)
        port = free_port()
        self._controller = Controller(Mailbox(self.path), hostname="127.0.0.1", port=port)
        self._controller.start()
        return MailConfig("127.0.0.1", port)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        """What the outbox holds, oldest first (for the operator and tests)."""
        box = mailbox.Maildir(str(self.path), create=False)
        found = sorted(box.items(), key=lambda item: item[1].get_date())
        from email import message_from_bytes, policy

        return [message_from_bytes(m.as_bytes(), policy=policy.default) for _key, m in found]
