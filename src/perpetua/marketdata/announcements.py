"""The operator's announcements as BitMEX ``Announcement`` rows (``GET /announcement``,
``/announcement/urgent`` and the WebSocket ``announcement`` table).

Invariants:
- an announcement's ``id`` is the seq of the ``PublishAnnouncement`` that published it, so
  every gateway and every replay agrees on it;
- ``rows`` is keyed by id; listings are newest first and hold at most ``ANNOUNCEMENTS_MAX``
  (the oldest is forgotten past it, as the read models' answer is cut);
- a withdrawn announcement is gone from every listing (a ``delete`` on the WebSocket).
"""

from typing import Any

from perpetua.core.events import AnnouncementPublished
from perpetua.wire.values import iso_ms

__all__ = ["ANNOUNCEMENTS_MAX", "Announcements", "announcement_wire"]

ANNOUNCEMENTS_MAX = 1_000  # the same cut as store.queries.ANNOUNCEMENTS_MAX


def announcement_wire(
    announcement_id: int, ts_ns: int, title: str, content: str, link: str
) -> dict[str, Any]:
    """BitMEX's model: ``id``, ``link``, ``title``, ``content``, ``date``."""
    return {
        "id": announcement_id,
        "link": link,
        "title": title,
        "content": content,
        "date": iso_ms(ts_ns),
    }


class Announcements:
    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.urgent: set[int] = set()

    def publish(self, seq: int, event: AnnouncementPublished) -> dict[str, Any]:
        return self._add(seq, event.ts_ns, event.title, event.content, event.link, event.urgent)

    def _add(
        self, seq: int, ts_ns: int, title: str, content: str, link: str, urgent: bool
    ) -> dict[str, Any]:
        row = announcement_wire(seq, ts_ns, title, content, link)
        self.rows[seq] = row
        if urgent:
            self.urgent.add(seq)
        while len(self.rows) > ANNOUNCEMENTS_MAX:
            self.withdraw(min(self.rows))
        return row

    def withdraw(self, announcement_id: int) -> dict[str, Any] | None:
        self.urgent.discard(announcement_id)
        return self.rows.pop(announcement_id, None)

    def seed(self, stored: list[Any]) -> None:
        """Read-model rows (``store.queries.announcements_of_all``), any order."""
        for row in stored:
            self._add(row.id, row.timestamp_ns, row.title, row.content, row.link, row.urgent)

    def listing(self, urgent_only: bool = False) -> list[dict[str, Any]]:
        """Newest first."""
        ids = sorted(self.urgent if urgent_only else self.rows, reverse=True)
        return [self.rows[i] for i in ids]
