"""Identity and liveness providers: the port a third-party verification service plugs into,
and the built-in one, manual review by the operator.

1. ``IdentityProvider.check`` gets a submitted KYC case: its questionnaire and its documents
   (decrypted, in memory only) and answers a ``Finding`` (``pass``, ``fail`` or
   ``inconclusive``, with a reason and the provider's own reference), or None when it has
   nothing to say.
2. A finding is advice, never a decision: it is recorded in the case's audit trail
   (``kyc_decisions``, reviewer ``provider:<name>``, decision ``finding_<outcome>``) and the
   case stays in the review queue, where reviewers decide (four-eyes where the case needs it).
3. ``ManualReview``, the built-in provider, has nothing automated to say: every case is
   decided by the operator's reviewers from the documents (``/admin/kyc/case``,
   ``/admin/kyc/document``).
4. A provider that raises is logged and the case waits for reviewers as with manual review:
   a provider outage never loses or decides a case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

__all__ = [
    "FINDING_CHARS_MAX",
    "OUTCOMES",
    "Document",
    "Finding",
    "IdentityProvider",
    "ManualReview",
]

OUTCOMES: Final = ("pass", "fail", "inconclusive")
FINDING_CHARS_MAX: Final = 1_000  # a finding's reason, as kept in the audit trail


class Document(NamedTuple):
    kind: str  # id_front, id_back, selfie, proof_of_address, source_of_funds, incorporation
    content_type: str
    data: bytes


class Finding(NamedTuple):
    outcome: str  # one of OUTCOMES
    reason: str
    reference: str = ""  # the provider's id for this check


class IdentityProvider(Protocol):
    name: str

    def check(
        self, case_id: int, application: Mapping[str, Any], documents: Sequence[Document]
    ) -> Finding | None: ...


class ManualReview:
    """The built-in provider (rule 3): the operator's reviewers decide every case."""

    name = "manual"

    def check(
        self, case_id: int, application: Mapping[str, Any], documents: Sequence[Document]
    ) -> Finding | None:
        return None
