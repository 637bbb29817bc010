"""The care unit's round (issue 17, the ``/kurve`` pages): a unit's patients today with what
is due and late, and one patient's day as a chart with what was recorded.

Both are reads of patients' lists, decided by the access policy as
:attr:`~pll.auth.access.Verb.ADMINISTER` — the nurses and care workers of a unit the patient
is registered with, a patient's block on the worker honoured — and logged as what they show,
a read of the ``List`` (the patient's access log says "åpnet legemiddellisten"). Nothing is
written but the audit rows. Recording goes through
:class:`pll.services.administrations.AdministrationService`, as over FHIR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from pll.auth.access import Access, Verb
from pll.domain.administration import OSLO, DaySchedule, Given, schedule_list
from pll.domain.administration.bags import NONE, Bags
from pll.domain.administration.rounds import RoundState, round_state
from pll.domain.administration.unit_settings import needs_second_signature
from pll.domain.errors import Forbidden
from pll.domain.model import Author, Entry, MedicationList, Pause, Role
from pll.services.acknowledgements import Pending, pending
from pll.services.administration_bags import schedule_bags
from pll.services.administrations import rx_group
from pll.services.audit import decide
from pll.services.lists import PLLService
from pll.services.unit_settings import of_unit, on_day
from pll.store import administrations as ma_store
from pll.store import audit_log
from pll.store import care_units as cu_store
from pll.store import repository as repo

#: The most patients one unit's overview shows (a large nursing home has some 150 beds).
MAX_UNIT_PATIENTS = 300
#: The audit action: both pages show the list's contents (see the module).
ACTION = "read"
_GIVERS = frozenset({Role.NURSE, Role.CARE_WORKER})


@dataclass(frozen=True)
class Recorded:
    """A standing record of the day, as the chart shows it."""

    id: str
    entry_id: str
    slot_key: str | None
    status: str
    amount: Decimal | None
    unit: str | None
    reason: str | None
    at: datetime
    by: Author
    verifier_hpr: str | None
    #: why an as-needed dose was given
    why: str


@dataclass(frozen=True)
class UnitPatient:
    """One patient of the unit's overview. ``allowed`` false: the policy refused (a block),
    and nothing about the patient's list is shown."""

    patient_id: str
    resource: dict[str, Any]
    identifier: str
    allowed: bool
    has_list: bool = False
    paused: bool = False
    state: RoundState = field(default_factory=lambda: RoundState((), ()))
    #: how many changes of the list the unit has not acknowledged
    unacknowledged: int = 0


@dataclass(frozen=True)
class UnitDay:
    """The unit's overview at ``now``: its patients in the order they were registered."""

    orgnr: str
    name: str
    kind: str | None
    now: datetime
    patients: tuple[UnitPatient, ...]


@dataclass(frozen=True)
class Chart:
    """One patient's day: the list at the version it was made from, the day's schedule (with
    the as-needed amounts given counted) and the records that stand; the changes the
    caller's unit has not acknowledged up to that version (``None`` when the caller acts for
    no unit the patient is registered with) and what is in each round's multidose bag."""

    patient_id: str
    day: date
    now: datetime
    lst: MedicationList | None
    schedule: DaySchedule | None
    pause: Pause | None
    entries: dict[str, Entry]
    controlled: frozenset[str]
    records: tuple[Recorded, ...]
    unseen: Pending | None = None
    bags: Bags = NONE

    @property
    def recorded(self) -> dict[str, str]:
        """Planned doses' keys with a standing record → its status."""
        return {r.slot_key: r.status for r in self.records if r.slot_key}


@dataclass
class CareRound:
    service: PLLService

    def unit_day(self, access: Access) -> UnitDay:
        """The caller's unit (the organisation in their token) and its registered patients,
        each with the doses due now and late (:mod:`pll.domain.administration.rounds`) and
        how many changes of the list the unit has not acknowledged.
        Each patient shown is one record in their access log; a patient who has blocked the
        worker is listed without their list, and the refusal is logged."""
        orgnr = access.actor.org_id
        if access.actor.role not in _GIVERS or not orgnr:
            raise Forbidden(
                "Only nurses and care workers of a care unit have the unit's chart.",
                norwegian="Kurven er for sykepleiere og helsefagarbeidere ved en enhet.",
            )
        svc = self.service
        trail = svc.trail
        with svc.guard(access), svc.db.read() as conn:
            now = svc.clock()
            today = now.astimezone(OSLO).date()
            unit = cu_store.unit(conn, orgnr)
            # the unit's rounds today: the chart's planned doses, and so the records' keys
            rounds = of_unit(conn, orgnr, today).times
            shown = []
            for pid in cu_store.unit_patients(conn, orgnr, MAX_UNIT_PATIENTS):
                head = repo.list_row(conn, patient_id=pid)
                facts, decision = decide(conn, access, Verb.ADMINISTER, pid)
                record = trail.record(
                    access, ACTION, "List", head.id if head else None, pid, decision
                )
                row = repo.get_patient(conn, pid)
                resource = orjson.loads(row.resource) if row is not None else {}
                if not decision.allowed:
                    audit_log.append(conn, record)
                    shown.append(UnitPatient(pid, resource, facts.identifier, allowed=False))
                    continue
                trail.log(conn, access, Verb.ADMINISTER, pid, record)
                if head is None:
                    shown.append(UnitPatient(pid, resource, facts.identifier, allowed=True))
                    continue
                lst = repo.load_list(conn, head, now)
                day = schedule_list(lst, today, slots=rounds).days[0]
                recorded = {
                    r.slot_key: r.status
                    for r in ma_store.standing_on(conn, pid, today)
                    if r.slot_key
                }
                unseen = pending(conn, head.id, pid, head.version, orgnr)
                shown.append(
                    UnitPatient(
                        pid,
                        resource,
                        facts.identifier,
                        allowed=True,
                        has_list=True,
                        paused=lst.pause is not None,
                        state=round_state(day.doses, recorded, now),
                        unacknowledged=len(unseen.changes) if unseen is not None else 0,
                    )
                )
        return UnitDay(
            orgnr,
            (unit.name if unit is not None else None) or access.actor.org_name or orgnr,
            unit.kind if unit is not None else None,
            now,
            tuple(shown),
        )

    def is_care_unit(self, orgnr: str) -> bool:
        """Whether PLL knows the organisation as a care unit (a patient was registered
        there); no patient's data is read."""
        with self.service.db.read() as conn:
            return cu_store.unit(conn, orgnr) is not None

    def chart(self, access: Access, patient_id: str) -> Chart:
        """The patient's chart for today (local), if the caller gives medicines to them."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            head = repo.list_row(conn, patient_id=patient_id)
            svc.trail.admit(
                conn,
                access,
                Verb.ADMINISTER,
                patient_id,
                ACTION,
                "List",
                head.id if head else None,
            )
            now = svc.clock()
            today = now.astimezone(OSLO).date()
            if head is None:
                return Chart(patient_id, today, now, None, None, None, {}, frozenset(), ())
            lst = repo.load_list(conn, head, now)
            records = tuple(_recorded(r) for r in ma_store.standing_on(conn, patient_id, today))
            given = [
                Given(r.entry_id, r.at, r.amount, r.unit or "")
                for r in records
                if r.status == "completed" and r.amount is not None
            ]
            # the rounds and second-signature rule of the caller's unit, as recording uses them
            unit = on_day(conn, access, patient_id, today)
            result = schedule_list(lst, today, slots=unit.times, given=given)
            day = result.days[0]
            shown = {d.entry_id for d in day.doses} | {a.entry_id for a in day.as_needed}
            controlled = frozenset(
                e
                for e in shown
                if e in lst.entries and needs_second_signature(rx_group(conn, lst.entries[e]), unit)
            )
            # what the caller's unit has not taken in, up to the version the chart shows
            unseen = pending(conn, lst.id, patient_id, lst.version, access.actor.org_id)
            found = schedule_bags(conn, lst, result)
        return Chart(
            patient_id,
            today,
            now,
            lst,
            day,
            lst.pause,
            lst.entries,
            controlled,
            records,
            unseen,
            found,
        )


def _recorded(row: Any) -> Recorded:
    resource = orjson.loads(row.resource)
    reasons = resource.get("reasonCode") or []
    return Recorded(
        id=row.id,
        entry_id=row.entry_id,
        slot_key=row.slot_key,
        status=row.status,
        amount=Decimal(row.amount) if row.amount is not None else None,
        unit=row.unit,
        reason=row.status_reason,
        at=row.effective_at,
        by=Author.from_json(orjson.loads(row.performer)),
        verifier_hpr=row.verifier_hpr,
        why=str(reasons[0].get("text") or "") if reasons else "",
    )
