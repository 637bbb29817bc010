"""SFM Basis compatible operations: ``$getMedication``, ``$sendMedication`` and the import of
a ``$getMedication`` response (``pll import sfm``).

A journal system written for SFM Basis (https://simplifier.net/guide/SFMAPIBasis) reads the
list as an SFM document and sends the doctor's complete list back. The send goes through the
same write path as every other change (:meth:`PLLService.apply_in`: access, decision support,
audit, one list version, the outgoing event) and is held to the SFM rules: it relates
(``Composition.relatesTo.targetIdentifier``) to the client's latest read, made less than four
hours earlier, and accounts for every head of chain and every statement that read showed.
Where the list changed since that read, the relay-baton rules decide: what the send did not
change is left as others left it, and a change to an entry someone else changed since is
refused — the whole send, with nothing written.

One module per use case, dependencies pointing inwards (from the operations to the helpers):

- :mod:`.get_medication` — ``$getMedication``: its parameters, the document, the read kept;
- :mod:`.send_medication` — ``$sendMedication``: bounded, held to its read, planned, applied;
- :mod:`.plan` — planning a send: its SFM rules, its operations, SFM's answer;
- :mod:`.merge` — what a statement says of an entry, and a sent change merged into it;
- :mod:`.reads` — the reads a send must be based on;
- :mod:`.importing` — ``pll import sfm``: a ``$getMedication`` response as a new list;
- :mod:`.shared` — the snapshot a document is written from, and the rule for client ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pll.auth.access import Access
from pll.services.lists import ChangeResult, PLLService
from pll.services.sfm.get_medication import IGNORED, get_medication
from pll.services.sfm.importing import Imported, import_document
from pll.services.sfm.reads import READ_VALID_FOR, reader_key
from pll.services.sfm.send_medication import send_medication
from pll.services.sfm.shared import FHIR_ID

__all__ = ["FHIR_ID", "IGNORED", "READ_VALID_FOR", "Imported", "SfmService", "reader_key"]


@dataclass
class SfmService:
    """The SFM Basis operations over one :class:`PLLService`, as the API and the CLI call them."""

    service: PLLService

    def get_medication(self, access: Access, parameters: Any) -> dict[str, Any]:
        """The patient's list as an SFM document; the read is kept for a later send."""
        return get_medication(self.service, access, parameters)

    def send_medication(
        self, access: Access, parameters: Any, reason: str | None = None
    ) -> tuple[dict[str, Any], ChangeResult | None]:
        """Apply a doctor's complete list sent as an SFM document; returns SFM's answer."""
        return send_medication(self.service, access, parameters, reason)

    def import_document(
        self,
        data: Any,
        reason: str | None = None,
        also: Callable[[Connection], None] | None = None,
    ) -> Imported:
        """Bring in a ``$getMedication`` response as the list of a patient who has none;
        ``also`` runs last in its transaction."""
        return import_document(self.service, data, reason, also)
