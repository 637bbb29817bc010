"""What the caller may do, decided once per request and handed to the services.

The services ask an :class:`Access` rather than looking at roles themselves, so the policy
lives here in one place (STYLE: permissions decided once per request). Issue 3 extends this
with access bases, blocks and emergency access; the seam stays the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from pll.domain.errors import Forbidden
from pll.domain.model import Author, Role


@dataclass(frozen=True)
class Access:
    """The caller and the patients whose data it may read."""

    actor: Author

    def check_read(self, patient_identifier: str | None) -> None:
        """Refuse a patient reading anyone's data but their own."""
        if self.actor.role is Role.PATIENT and patient_identifier != self.actor.pid:
            raise Forbidden("A patient can read only their own medication list.")

    @property
    def needs_identity_check(self) -> bool:
        return self.actor.role is Role.PATIENT
