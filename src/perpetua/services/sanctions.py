"""Sanctions lists and screening: names, dates of birth, nationalities and crypto addresses.

Lists are files the operator updates, in one of two formats:

- ``ofac-sdn``: OFAC's SDN CSV (``sdn.csv``: no header; entity number, name, type, program,
  title, ..., remarks; ``-0-`` means empty). Dates of birth, nationalities and
  ``Digital Currency Address - XBT ...`` entries are read from the remarks.
- ``generic``: a CSV with a header row: ``name`` (required), ``dob`` (YYYY-MM-DD or YYYY),
  ``nationality`` (ISO alpha-2 or a country name), ``addresses`` (``;``-separated), ``id``,
  ``program``.

Name matching (``NAME_MATCH_THRESHOLD``, documented in docs/compliance.md): names are folded
(NFKD, accents and punctuation removed, case-folded, whitespace collapsed) and compared with
rapidfuzz's ``token_sort_ratio`` (word order does not matter: "DOE, John" = "John Doe"); a score
at or above the threshold (0..100, default 88) is a *potential* hit. A date of birth or a
nationality given on both sides that disagrees rules the entry out (the year alone is compared
when one side has only a year). Addresses match exactly (``0x`` addresses case-insensitively).
A hit is never a decision: it opens a review case; only a reviewer's confirmation freezes.
"""

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pycountry
from rapidfuzz import fuzz, process

__all__ = [
    "LIST_FORMATS",
    "NAME_MATCH_THRESHOLD",
    "Entry",
    "Hit",
    "ListError",
    "SanctionsList",
    "fold_name",
    "load_list",
    "normalize_address",
]

NAME_MATCH_THRESHOLD: Final = 88
LIST_FORMATS: Final = ("ofac-sdn", "generic")
LIST_ENTRIES_MAX: Final = 1_000_000
HITS_MAX: Final = 10  # per screening

_DOB = re.compile(r"DOB (\d{1,2} [A-Za-z]{3} \d{4}|[A-Za-z]{3} \d{4}|\d{4})")
_NATIONALITY = re.compile(r"nationality ([A-Za-z ]+?)(?:;|\.|$)")
_ADDRESS = re.compile(r"Digital Currency Address - [A-Z0-9]+ ([A-Za-z0-9]+)")
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
)}  # fmt: skip


class ListError(ValueError):
    """A list file cannot be read; the message names the file and row."""


@dataclass(frozen=True, slots=True)
class Entry:
    list_name: str
    entry_id: str
    name: str
    dob: str = ""  # "YYYY-MM-DD" or "YYYY"
    nationality: str = ""  # ISO alpha-2
    addresses: tuple[str, ...] = ()
    program: str = ""


@dataclass(frozen=True, slots=True)
class Hit:
    entry: Entry
    score: int  # 0..100; 100 for an address
    matched: str  # "name" | "address"

    def as_dict(self) -> dict[str, object]:
        return {
            "list": self.entry.list_name,
            "entryId": self.entry.entry_id,
            "name": self.entry.name,
            "program": self.entry.program,
            "score": self.score,
            "matched": self.matched,
        }


def fold_name(name: str) -> str:
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^\w\s]", " ", text.casefold())
    return " ".join(text.split())


def normalize_address(address: str) -> str:
    text = address.strip()
    return text.lower() if text[:2].lower() == "0x" else text


def _country(text: str) -> str:
    value = text.strip()
    if not value:
        return ""
    if len(value) == 2 and pycountry.countries.get(alpha_2=value.upper()):
        return value.upper()
    try:
        return str(pycountry.countries.lookup(value).alpha_2)
    except LookupError:
        return ""


def _sdn_dob(text: str) -> str:
    parts = text.split()
    if len(parts) == 3:
        return f"{parts[2]}-{_MONTHS.get(parts[1], 1):02d}-{int(parts[0]):02d}"
    return parts[-1]


def _empty(value: str) -> str:
    value = value.strip()
    return "" if value == "-0-" else value


def _ofac_rows(name: str, text: str) -> list[Entry]:
    entries = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not row[0].strip():
            continue
        if len(row) < 2:
            raise ListError(f"{name}: row {number}: not an SDN row")
        remarks = _empty(row[11]) if len(row) > 11 else ""
        dob = _DOB.search(remarks)
        nationality = _NATIONALITY.search(remarks)
        entries.append(
            Entry(
                name,
                _empty(row[0]),
                _empty(row[1]),
                _sdn_dob(dob.group(1)) if dob else "",
                _country(nationality.group(1)) if nationality else "",
                tuple(normalize_address(a) for a in _ADDRESS.findall(remarks)),
                _empty(row[3]) if len(row) > 3 else "",
            )
        )
    return entries


def _generic_rows(name: str, text: str) -> list[Entry]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "name" not in reader.fieldnames:
        raise ListError(f"{name}: a generic list needs a header row with 'name'")
    entries = []
    for number, row in enumerate(reader, 2):
        person = (row.get("name") or "").strip()
        if not person:
            raise ListError(f"{name}: row {number}: no name")
        addresses = tuple(
            normalize_address(a) for a in (row.get("addresses") or "").split(";") if a.strip()
        )
        entries.append(
            Entry(
                name,
                (row.get("id") or str(number)).strip(),
                person,
                (row.get("dob") or "").strip(),
                _country(row.get("nationality") or ""),
                addresses,
                (row.get("program") or "").strip(),
            )
        )
    return entries


def load_list(path: Path, fmt: str, name: str = "") -> list[Entry]:
    if fmt not in LIST_FORMATS:
        raise ListError(f"{path}: format must be one of {', '.join(LIST_FORMATS)}")
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as error:
        raise ListError(f"{path}: {error.strerror or error}") from None
    label = name or path.name
    entries = _ofac_rows(label, text) if fmt == "ofac-sdn" else _generic_rows(label, text)
    if len(entries) > LIST_ENTRIES_MAX:
        raise ListError(f"{path}: more than {LIST_ENTRIES_MAX} entries")
    return entries


def _dates_agree(a: str, b: str) -> bool:
    if not a or not b:
        return True
    if len(a) == 4 or len(b) == 4:
        return a[:4] == b[:4]
    return a == b


class SanctionsList:
    """Every loaded entry, indexed for screening; ``version`` grows with each load."""

    def __init__(
        self, entries: Sequence[Entry] = (), threshold: int = NAME_MATCH_THRESHOLD
    ) -> None:
        if not 0 < threshold <= 100:
            raise ValueError("the name match threshold is a score in 1..100")
        self.threshold = threshold
        self.version = 0
        self._entries: list[Entry] = []
        self._names: list[str] = []
        self._addresses: dict[str, Entry] = {}
        self.replace(entries)

    def replace(self, entries: Iterable[Entry]) -> None:
        self._entries = list(entries)
        self._names = [fold_name(e.name) for e in self._entries]
        self._addresses = {a: e for e in self._entries for a in e.addresses}
        self.version += 1

    def __len__(self) -> int:
        return len(self._entries)

    def screen_person(
        self, name: str, dob: str = "", nationalities: Sequence[str] = ()
    ) -> list[Hit]:
        folded = fold_name(name)
        if not folded or not self._names:
            return []
        found = process.extract(
            folded,
            self._names,
            scorer=fuzz.token_sort_ratio,
            score_cutoff=self.threshold,
            limit=HITS_MAX,
        )
        hits = []
        for _, score, index in found:
            entry = self._entries[index]
            if not _dates_agree(entry.dob, dob):
                continue
            if entry.nationality and nationalities and entry.nationality not in nationalities:
                continue
            hits.append(Hit(entry, int(score), "name"))
        return hits

    def screen_address(self, address: str) -> list[Hit]:
        entry = self._addresses.get(normalize_address(address))
        return [] if entry is None else [Hit(entry, 100, "address")]
