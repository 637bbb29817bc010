"""What a page says of a refusal the services made for the API, in English, when the
refusal carries no Norwegian of its own (:func:`pll.web.edge.norwegian`)."""

from __future__ import annotations

import re

from pll.domain.errors import DomainError, NotFound

#: What a page calls a resource it did not find, by FHIR type.
_MISSING = {
    "List": "Legemiddellisten",
    "MedicationStatement": "Legemidlet",
    "MedicationRequest": "Resepten",
    "MedicationDispense": "Utleveringen",
    "AllergyIntolerance": "Legemiddelreaksjonen",
    "Patient": "Pasienten",
    "Provenance": "Endringen",
    "Consent": "Sperringen",
    "Task": "Avviket",
    "Subscription": "Varselet",
}
_RESOURCE_REF = re.compile(r"([A-Z][A-Za-z]+)/\S+ (?:does not exist|has no version)")


def not_found(error: DomainError) -> str | None:
    """A :class:`NotFound` from the services, which answer the API in English (``List/x
    does not exist.``), as a page says it: what was not found, in Norwegian."""
    if not isinstance(error, NotFound):
        return None
    named = _RESOURCE_REF.match(error.message)
    if named is None:  # the web layer's own, written in Norwegian
        return None
    what = _MISSING.get(named.group(1), "Det")
    return f"{what} du ba om, finnes ikke (lenken kan være feil eller gammel)."
