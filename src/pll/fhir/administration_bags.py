"""The multidose bags on the administration schedule's Bundle (issue 17): what
:func:`pll.domain.administration.bags.bags` found, written onto the answer of
:func:`pll.fhir.administration.schedule_bundle` (shape in ``docs/administration.md``,
"Multidose bags"):

- on each planned dose of a multidose patient, parts of its ``pll-planned-administration``
  extension: ``bag`` (``in-bag``: in the round's bag; ``separate``: from a package), the
  packing report the round's bag comes from (``packingReport``, its id, and ``packedAt``,
  when it was reported) and one ``bagMismatch`` per difference
  (:class:`pll.domain.administration.bags.Flag`);
- one ``OperationOutcome`` issue per entry and kind of difference (``warning``,
  ``business-rule``), the Norwegian text for the nurse naming the rounds day by day,
  ``expression`` the entry (its current version when it is on the list),
  in the schedule's notice — made when there was none.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pll.domain.administration.bags import MISMATCH, Bags, DoseBag, Flag, Mismatch
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
        issues = _issues(found.mismatches, entries)
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


def _issues(mismatches: Sequence[Mismatch], entries: Mapping[str, Entry]) -> list[dict[str, Any]]:
    """One issue per entry and kind of mismatch, naming its rounds day by day (a removed
    entry of four rounds over 14 days is one issue, not 56)."""
    grouped: dict[tuple[str, Flag], list[Mismatch]] = {}
    for mismatch in mismatches:
        grouped.setdefault((mismatch.entry_id, mismatch.flag), []).append(mismatch)
    out = []
    for (entry_id, _), group in grouped.items():
        entry = entries.get(entry_id)
        where = f"MedicationStatement/{entry_id}"
        if entry is not None:
            where += f"/_history/{entry.version}"
        if len(group) == 1:
            text = group[0].text
        else:
            days: dict[date, list[str]] = {}
            for m in group:
                days.setdefault(m.day, []).append(str(m.slot))
            when = "; ".join(f"{day:%d.%m.%Y} {', '.join(slots)}" for day, slots in days.items())
            what = "; ".join(dict.fromkeys(m.what for m in group))
            text = f"{MISMATCH}: {what} ({when})."
        out.append(issue(text, where, code="business-rule", severity="warning"))
    return out
