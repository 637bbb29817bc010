"""The expired marker on a ``MedicationRequest``: computed when the prescription is read.

A prescription past its validity end (``dispenseRequest.validityPeriod.end``, or one year from
``authoredOn`` for one stored before PLL stated it, or from when PLL first recorded it for one
with neither: :func:`pll.domain.prescriptions.end_of`) carries the extension
``http://pll.invalid/fhir/StructureDefinition/prescription-expired`` whose ``valueDate`` is that
end. Its ``status`` stays as FHIR defines it (an expired prescription is still ``active``
until it is renewed, recalled or completed): expiry depends on the day it is read, so it is
never stored in a prescription's versions, and a client's copy of the marker is no content.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson

from pll.domain.prescriptions import end_of, is_expired
from pll.fhir.systems import PLL_BASE

EXT_EXPIRED = f"{PLL_BASE}/StructureDefinition/prescription-expired"


def unmarked(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without the expired marker (a new dict when it had one)."""
    extensions = resource.get("extension")
    if not isinstance(extensions, list) or not any(
        isinstance(e, dict) and e.get("url") == EXT_EXPIRED for e in extensions
    ):
        return resource
    kept = [e for e in extensions if not (isinstance(e, dict) and e.get("url") == EXT_EXPIRED)]
    out = {k: v for k, v in resource.items() if k != "extension"}
    if kept:
        out["extension"] = kept
    return out


def expired_on(resource: dict[str, Any]) -> date | None:
    """The validity end the expired marker names; ``None`` when the resource has none."""
    for e in resource.get("extension") or []:
        if isinstance(e, dict) and e.get("url") == EXT_EXPIRED:
            try:
                return date.fromisoformat(str(e.get("valueDate")))
            except ValueError:
                return None
    return None


def marked(
    resource: dict[str, Any], today: date, recorded: datetime | None = None
) -> dict[str, Any]:
    """The resource as read on ``today``: with the expired marker when it has expired
    (``recorded``: when PLL first recorded it, see :func:`end_of`)."""
    plain = unmarked(resource)
    if not is_expired(plain, today, recorded):
        return plain
    marker = {"url": EXT_EXPIRED, "valueDate": str(end_of(plain, recorded))}
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if key == "extension":
            continue
        out[key] = value
        if key == "meta":
            # extensions come right after id and meta, as FHIR's JSON orders them
            out["extension"] = [*plain.get("extension", []), marker]
    if "extension" not in out:
        out["extension"] = [*plain.get("extension", []), marker]
    return out


def marked_text(text: str, today: date, recorded: datetime | None = None) -> str:
    """A stored ``MedicationRequest``'s JSON as read on ``today`` (untouched unless expired)."""
    resource = orjson.loads(text)
    if not is_expired(resource, today, recorded):
        return text
    return orjson.dumps(marked(resource, today, recorded)).decode()


def marked_document(text: str, today: date) -> str:
    """A list document (a Bundle) as read on ``today``, for a reader that serves a copy it
    cannot have rebuilt (the read copy): each prescription past its end by its own dates
    carries the expired marker, whether or not the copy was stored with it. Untouched when
    none is newly expired."""
    bundle = orjson.loads(text)
    changed = False
    for item in bundle.get("entry") or []:
        resource = item.get("resource") or {}
        if resource.get("resourceType") != "MedicationRequest" or expired_on(resource):
            continue
        if is_expired(resource, today):
            item["resource"] = marked(resource, today)
            changed = True
    return orjson.dumps(bundle).decode() if changed else text
