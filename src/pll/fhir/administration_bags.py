"""The multidose bags on the administration schedule's Bundle (issue 17): what
:func:`pll.domain.administration.bags.bags` found, written onto the answer of
:func:`pll.fhir.administration.schedule_bundle` (shape in ``docs/administration.md``,
"Multidose bags"):

- on each planned dose of a multidose patient, parts of its ``pll-planned-administration``
  extension: ``bag`` (``in-bag``: in the round's bag; ``separate``: from a package), the
  packing report the round's bag comes from (``packingReport``, its id, and ``packedAt``,
  when it was reported) and one ``bagMismatch`` per difference
  (:class:`pll.domain.administration.bags.Flag`);
- one ``OperationOutcome`` issue per difference (``warning``, ``business-rule``), the Norwegian
  text for the nurse, ``expression`` the entry (its current version when it is on the list),
  in the schedule's notice — made when there was none.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pll.domain.administration.bags import Bags, DoseBag, Mismatch
from pll.domain.model import Entry
from pll.fhir import systems
from pll.fhir.administration import EXT_PLANNED, PLANNED_DOSE
from pll.fhir.outcome import issue, outcome
from pll.fhir.resources import instant

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"{systems.PLL_BASE}/administration-schedule/bags")


def with_bags(
    bundle: dict[str, Any], list_id: str, entries: Mapping[str, Entry], found: Bags
) -> dict[str, Any]:
    """``bundle`` (a schedule) with the bags ``found`` on its planned doses and its notice."""
    if not found.doses and not found.mismatches:
        return bundle
    for item in bundle["entry"]:
        resource = item["resource"]
        if resource["resourceType"] != "MedicationRequest":
            continue
        key = next(
            (i["value"] for i in resource.get("identifier", []) if i["system"] == PLANNED_DOSE),
            None,
        )
        bag = found.doses.get(key) if key is not None else None
        if bag is not None:
            _mark(resource, bag)
    if found.mismatches:
        issues = [_issue(m, entries) for m in found.mismatches]
        notice = next(
            (
                e["resource"]
                for e in bundle["entry"]
                if e["resource"]["resourceType"] == "OperationOutcome"
            ),
            None,
        )
        if notice is not None:
            notice["issue"].extend(issues)
        else:
            # after the List, where the schedule's notice stands
            full_url = f"urn:uuid:{uuid.uuid5(_NAMESPACE, list_id)}"
            bundle["entry"].insert(1, {"fullUrl": full_url, "resource": outcome(*issues)})
    return bundle


def _mark(resource: dict[str, Any], bag: DoseBag) -> None:
    extension = next(e for e in resource["extension"] if e["url"] == EXT_PLANNED)
    parts: list[dict[str, Any]] = [{"url": "bag", "valueCode": str(bag.place)}]
    if bag.report is not None:
        parts.append({"url": "packingReport", "valueString": bag.report.id})
        parts.append({"url": "packedAt", "valueDateTime": instant(bag.report.sent_at)})
    parts += [{"url": "bagMismatch", "valueCode": str(flag)} for flag in bag.flags]
    extension["extension"].extend(parts)


def _issue(mismatch: Mismatch, entries: Mapping[str, Entry]) -> dict[str, Any]:
    entry = entries.get(mismatch.entry_id)
    where = f"MedicationStatement/{mismatch.entry_id}"
    if entry is not None:
        where += f"/_history/{entry.version}"
    return issue(mismatch.text, where, code="business-rule", severity="warning")
