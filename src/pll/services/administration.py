"""Giving the medicines (issue 17): the daily administration schedule of a list.

The schedule is a read of the list: one read transaction loads the list as it stands, the
access policy decides and the trail logs it, and :mod:`pll.domain.administration` plans
the days. Nothing is written but the audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pll.auth.access import Access, Verb
from pll.domain.errors import NotFound
from pll.fhir import resources as fhir
from pll.fhir.acknowledgements import mark_schedule
from pll.fhir.administration import schedule_bundle
from pll.fhir.administration_bags import with_bags
from pll.fhir.administration_records import mark_recorded
from pll.services.acknowledgements import pending
from pll.services.administration_bags import schedule_bags
from pll.services.lists import PLLService
from pll.services.schedule_records import planned
from pll.store import repository as repo

#: The audit action: the schedule shows the list's contents, so it is logged as what it is,
#: a read of the List (``Verb.READ``), as ``GET List`` logs it (the patient sees "åpnet
#: legemiddellisten").
ACTION = "read"


@dataclass
class AdministrationService:
    service: PLLService

    def schedule(self, access: Access, list_id: str, first: date, last: date) -> dict[str, Any]:
        """The planned administrations of the list ``list_id`` on each local day from
        ``first`` to ``last`` (at most 14), as the FHIR Bundle of
        :func:`pll.fhir.administration.schedule_bundle`.

        Refused: an unknown list (``NotFound``), a caller the access policy does not let read
        the patient's list (``Forbidden``, logged), a range that is backwards or longer than
        14 days (``InvalidInput`` at ``end``, not logged). The work is bounded by
        the days and the list's entries (at most ``MAX_LIST_ENTRIES``). The rounds are the
        clock times of the unit the caller acts for when the patient is registered there
        (else the defaults); the records that stand count as given, and each planned dose
        recorded is marked (:mod:`pll.services.schedule_records`).

        For a caller acting for a care unit the patient is registered with (the
        organisation in their token), the items of entries with changes the unit has not
        acknowledged, and the notice, are marked (:func:`pll.fhir.acknowledgements.mark_schedule`);
        a multidose patient's planned doses say what is in the round's bag
        (:mod:`pll.services.administration_bags`).
        """
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            head = repo.list_row(conn, list_id=list_id)
            if head is None:
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            # Any health worker reading the list with a basis may read its schedule, as they
            # may read the list; care-unit access (issue 17) will narrow this to the units
            # caring for the patient.
            svc.trail.admit(conn, access, Verb.READ, head.patient_id, ACTION, "List", list_id)
            now = svc.clock()
            lst = repo.load_list(conn, head, now)
            # inside the transaction: a refused range rolls the audit row back with it; the
            # caller's unit's clock times and the standing records of the days (one query)
            result, records = planned(conn, access, lst, first, last, now)
            found = schedule_bags(conn, lst, result)
            # the changes the caller's unit has not taken in (none for callers of no unit)
            unseen = pending(conn, lst.id, lst.patient_id, lst.version, access.actor.org_id)
        shown = fhir.list_resource(lst, lst.visible_entries(now))
        bundle = mark_recorded(schedule_bundle(lst, shown, result, now), records)
        bundle = with_bags(bundle, lst.id, lst.entries, found)
        if unseen is not None:
            mark_schedule(bundle, lst.id, unseen.changes)
        return bundle
