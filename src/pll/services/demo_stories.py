"""What a doctor looks for on the demo's lists and would otherwise never see (issue 16, walked
as a GP on ``pll demo``): recorded drug reactions (CAVE), courses that end, and a pair of
medicines that interact.

The stories are told through the same services as the API (:class:`~pll.services.allergies.
Allergies`, :meth:`~pll.services.lists.PLLService.change`) and draw nothing from the demo's
random stream, so every other number of a seed's demo stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from pll.auth.access import Access
from pll.domain.model import IN_USE
from pll.fhir import systems
from pll.services.allergies import CLINICAL, Allergies
from pll.services.lists import Op, PLLService
from pll.store import repository as repo

#: Kodeverk 9101 *Legemiddelbruk*'s code for a course (*Kur*): a treatment that ends.
COURSE = "2"
#: The reason a course leaves the list when it has run its length.
COURSE_DONE = "Kuren er fullført"

#: A penicillin allergy, on the first demo patient's list (the GP persona's patient), whose
#: list therefore holds no penicillin: the banner's CAVE is seen as soon as the GP logs in.
PENICILLIN = ("J01C", "Penicilliner", "Urtikaria", "high")
#: Muscle pain on a statin, recorded as a reaction to the whole class (ATC C10AA); later the
#: GP tries atorvastatin in a low dose all the same, which meets the reaction: the CAVE
#: finding, overridden with the GP's reason, kept with the version and shown on the entry.
STATINS = ("C10AA", "Statiner (myalgi på simvastatin)", "Muskelsmerter", "low")
STATIN_DRUG = "C10AA05"
STATIN_OVERRIDE = (
    "Myalgien på simvastatin var moderat og gikk over etter seponering; atorvastatin i lav "
    "dose prøves etter samtale med pasienten, CK tas ved kontroll om 6 uker"
)
#: The interacting pair the first demo patient uses (the demo catalogue's one deliberate
#: interaction, :data:`pll.catalog.demo_drugs.DEMO_INTERACTIONS`): apixaban and an SSRI.
INTERACTING = ("B01AF02", "N06AB06")


def reaction(patient_id: str, story: tuple[str, str, str, str]) -> dict[str, Any]:
    """An active, confirmed drug reaction to an ATC class, as a GP records it."""
    atc, text, manifestation, criticality = story
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "type": "allergy" if criticality == "high" else "intolerance",
        "category": ["medication"],
        "criticality": criticality,
        "code": {"coding": [{"system": systems.ATC, "code": atc}], "text": text},
        "patient": {"reference": f"Patient/{patient_id}"},
        "reaction": [{"manifestation": [{"text": manifestation}]}],
    }


def record(service: PLLService, access: Access, patient_id: str, story: Any) -> None:
    """Record one of the stories' reactions through the API's service."""
    Allergies(service).create(access, reaction(patient_id, story))


def with_override(access: Access, reason: str) -> Access:
    """The GP's access with the reason for overriding what this change meets."""
    return replace(access, override=reason, override_findings=None)


def course_days(dosage: list[dict[str, Any]]) -> int | None:
    """How many days a course dosed so lasts: its steps (by ``sequence``) one after the
    other, each as long as its ``timing.repeat.boundsDuration`` in days; ``None`` when a
    step has no length in days (a course without a stated end)."""
    steps: dict[int, int] = {}
    for dose in dosage:
        bounds = ((dose.get("timing") or {}).get("repeat") or {}).get("boundsDuration") or {}
        if bounds.get("code", bounds.get("unit")) != "d":
            return None
        sequence = int(dose.get("sequence", 0))
        steps[sequence] = max(steps.get(sequence, 0), int(bounds["value"]))
    return sum(steps.values()) if steps else None


def course_period(dosage: list[dict[str, Any]], start: date) -> dict[str, str]:
    """A course's ``effectivePeriod``: from ``start`` to the day its length ends it."""
    days = course_days(dosage)
    period = {"start": start.isoformat()}
    if days is not None:
        period["end"] = (start + timedelta(days=days)).isoformat()
    return period


def end_courses(
    service: PLLService,
    access: Access,
    patient_id: str,
    move: Callable[[datetime], None],
    today: datetime,
) -> None:
    """Discontinue each course in use whose ``effectivePeriod.end`` has come by the demo's
    ``today``, as PLL ends any medicine: stopped with :data:`COURSE_DONE`, so it stays
    visible for 90 days and then leaves the list. A course still running ``today`` stays in
    use. ``move`` brings the demo's clock to a course's end (never back: a list whose story
    has passed that day ends it then)."""
    with service.db.read() as conn:
        head = repo.list_row(conn, patient_id=patient_id)
        entries = [] if head is None else list(repo.load_list(conn, head, today).entries.values())
    courses = []
    for entry in entries:
        end = (entry.content.get("effectivePeriod") or {}).get("end")
        codes = [c.get("code") for c in (entry.content.get("category") or {}).get("coding", [])]
        if entry.status in IN_USE and COURSE in codes and end is not None:
            courses.append((date.fromisoformat(end), entry))
    for end, entry in sorted(courses, key=lambda c: c[0]):
        ended = datetime.combine(end, today.timetz())
        if ended > today:
            continue  # still running on the demo's today
        move(ended)
        stopped = dict(entry.content, status="stopped", statusReason=[{"text": COURSE_DONE}])
        service.change(
            access,
            patient_id,
            [Op("update", "MedicationStatement", entry.id, stopped, entry.version)],
            COURSE_DONE,
        )
