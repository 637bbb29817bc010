"""What was recorded, marked on the administration schedule (issue 17,
docs/administration.md "The daily schedule").

Each planned dose (``MedicationRequest`` with a ``planned-dose`` identifier) that has a
record that stands (not entered in error) gets three more parts in its
``pll-planned-administration`` extension, so a chart shows what was done without a second
search:

- ``recorded``: ``valueReference`` ``MedicationAdministration/<id>``;
- ``recorded-status``: ``valueCode`` ``completed``, ``partial`` (less than planned) or
  ``not-done``;
- ``not-given``: for ``not-done``, ``valueCoding`` of the code system
  ``administration-not-given`` (refused, absent, unavailable, held, vomited).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Row

from pll.domain.administration.records import NotGiven, Status
from pll.fhir.administration import EXT_PLANNED, PLANNED_DOSE
from pll.fhir.administrations import NOT_GIVEN_SYSTEM

_R = "MedicationAdministration"


def recorded_status(row: Row[Any]) -> str:
    """``completed``, ``partial`` or ``not-done`` of a standing record."""
    if row.status != Status.COMPLETED.value:
        return Status.NOT_DONE.value
    amount, planned = row.amount, row.planned_amount
    if amount is not None and planned is not None and Decimal(amount) < Decimal(planned):
        return "partial"
    return Status.COMPLETED.value


def mark_recorded(bundle: dict[str, Any], records: Sequence[Row[Any]]) -> dict[str, Any]:
    """``bundle`` (a schedule) with each planned dose that has a standing record in
    ``records`` marked (see the module); changed in place and returned."""
    by_key = {r.slot_key: r for r in records if r.slot_key is not None}
    if not by_key:
        return bundle
    for item in bundle.get("entry") or []:
        resource = item["resource"]
        key = next(
            (i["value"] for i in resource.get("identifier") or [] if i["system"] == PLANNED_DOSE),
            None,
        )
        row = by_key.get(key) if key is not None else None
        if row is None:
            continue
        ext = next(e for e in resource["extension"] if e["url"] == EXT_PLANNED)
        status = recorded_status(row)
        ext["extension"] += [
            {"url": "recorded", "valueReference": {"reference": f"{_R}/{row.id}"}},
            {"url": "recorded-status", "valueCode": status},
        ]
        if status == Status.NOT_DONE.value and row.status_reason:
            reason = NotGiven(row.status_reason)
            ext["extension"].append(
                {
                    "url": "not-given",
                    "valueCoding": {
                        "system": NOT_GIVEN_SYSTEM,
                        "code": reason.value,
                        "display": reason.display,
                    },
                }
            )
    return bundle
