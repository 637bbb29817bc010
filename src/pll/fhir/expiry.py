"""The expired marker on a ``MedicationRequest``: computed when the prescription is read.

A prescription past its validity end (``dispenseRequest.validityPeriod.end``, or one year from
``authoredOn`` for one stored before PLL stated it) carries the extension
``http://pll.invalid/fhir/StructureDefinition/prescription-expired`` whose ``valueDate`` is that
end. Its ``status`` stays as FHIR defines it (an expired prescription is still ``active``
until it is renewed, recalled or completed): expiry depends on the day it is read, so it is
never stored in a prescription's versions, and a client's copy of the marker is no content.
"""

from __future__ import annotations

from datetime import date
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


def marked(resource: dict[str, Any], today: date) -> dict[str, Any]:
    """The resource as read on ``today``: with the expired marker when it has expired."""
    plain = unmarked(resource)
    if not is_expired(plain, today):
        return plain
    marker = {"url": EXT_EXPIRED, "valueDate": str(end_of(plain))}
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


def marked_text(text: str, today: date) -> str:
    """A stored ``MedicationRequest``'s JSON as read on ``today`` (untouched unless expired)."""
    resource = orjson.loads(text)
    if not is_expired(resource, today):
        return text
    return orjson.dumps(marked(resource, today)).decode()
