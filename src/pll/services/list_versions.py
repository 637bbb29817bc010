"""Writing a list version: each accepted change is persisted with its resource versions and
the List (its version rows, where the current ones are read from), the current list document
(the whole list in one Bundle, kept in the list row in the same transaction so a read is one
keyed lookup, DESIGN §6) and its outgoing event (rule 7); and the versions PLL
makes on its own — what the list shows beside the doctors' changes (:meth:`record_in`),
entries whose medicine FEST no longer has (:meth:`refresh_withdrawn`) and discontinued
entries leaving the list after 90 days (:meth:`expire`, rule 3). FHIR R4 ``List``:
https://hl7.org/fhir/R4/list.html."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import orjson
from sqlalchemy import Connection

from pll.domain.list_upkeep import expire_entries, flag_withdrawn
from pll.domain.model import ListVersion, MedicationList, Prescription
from pll.domain.paused import check_change_of_paused
from pll.domain.prescriptions import local_day, next_expiry
from pll.fhir import resources as fhir
from pll.services.base import ServiceBase, members
from pll.services.decision_support import drugs, named
from pll.store import catalog as catalog_store
from pll.store import pipeline
from pll.store import repository as repo
from pll.store.repository import dumps


class ListVersions(ServiceBase):
    """A change's version written with its documents and event; PLL's own versions."""

    def _persist(
        self,
        conn: Connection,
        lst: MedicationList,
        record: ListVersion,
        now: datetime,
        is_new: bool,
        client_id: str | None = None,
    ) -> tuple[dict[tuple[str, str], str], str]:
        resources: dict[tuple[str, str], str] = {}
        for t in record.touched:
            if t.resource_type == "MedicationStatement":
                resources[(t.resource_type, t.id)] = dumps(fhir.entry_resource(lst.entries[t.id]))
            elif t.resource_type == "MedicationRequest":
                resources[(t.resource_type, t.id)] = dumps(
                    fhir.prescription_resource(lst.prescriptions[t.id])
                )
        list_json, document, expires = self._documents(lst, now)
        event = {
            "list": f"List/{lst.id}",
            "patient": f"Patient/{lst.patient_id}",
            "version": lst.version,
            "activity": record.activity,
            "touched": [f"{t.resource_type}/{t.id}/_history/{t.version}" for t in record.touched],
        }
        # nothing below returns rows: the statements go as one (issue 20)
        with pipeline.one_statement(conn):
            if is_new:
                repo.insert_list(conn, lst, document, expires)
            else:
                repo.save_list(conn, lst, document, expires)
            repo.save_version(conn, lst, record, list_json, resources, client_id)
            repo.add_event(conn, self.ids(), lst, "list-changed", now, event)
        return resources, list_json

    def _documents(self, lst: MedicationList, now: datetime) -> tuple[str, str, datetime | None]:
        visible = lst.visible_entries(now)
        list_json = fhir.list_resource(lst, visible)
        linked = {rx for e in visible for rx in e.prescription_ids}
        shown: list[Prescription] = [
            p
            for p in lst.prescriptions.values()
            if p.id in linked or p.status in ("active", "on-hold")
        ]
        document = fhir.document(list_json, visible, shown, local_day(now))
        # the document shows which prescriptions have expired: it is rebuilt when the next
        # one expires, as when the next discontinued entry leaves the list
        expires = min(
            (t for t in (lst.next_hide(now), next_expiry(shown, now)) if t),
            default=None,
        )
        return dumps(list_json), dumps(document), expires

    def record_in(
        self,
        conn: Connection,
        patient_id: str,
        make: Callable[[MedicationList, datetime], ListVersion | None],
        rx_ids: Iterable[str] = (),
        *,
        while_paused: bool = False,
        where: str = "List",
    ) -> ListVersion | None:
        """A list version of what the list shows beside the doctors' changes (the multidose
        parties, paper multidose, dispensings), in the caller's transaction: the list is
        locked and loaded (with the prescriptions ``rx_ids``), ``make`` applies the domain
        rule, and the version is written with its documents and its event, as every change
        is. ``None`` when the patient has no list or ``make`` changed nothing.

        A paused list is changed by nobody (:mod:`pll.domain.paused`): :class:`Conflict`
        at ``where`` before ``make`` runs, unless ``while_paused`` — for what happens in
        reality whether the list is paused or not and is only recorded by PLL (a
        dispensing at the pharmacy)."""
        row = repo.list_row(conn, patient_id=patient_id, lock=True)
        if row is None:
            return None
        now = self.clock()
        lst = repo.load_list(conn, row, now, (), rx_ids)
        if not while_paused:
            check_change_of_paused(lst.pause, resumes=False, expression=where)
        record = make(lst, now)
        if record is None:
            return None
        self._persist(conn, lst, record, now, is_new=False)
        return record

    def refresh_withdrawn(self, batch: int = 2000) -> tuple[int, int]:
        """After a new drug catalogue: flag, as a version of each list it concerns, the
        entries whose medicine it no longer has as active, and unflag those it has again.
        Returns (lists changed, entries flagged)."""
        wanted: dict[str, set[str]] = {}
        after = ""
        while True:
            with self.db.read() as conn:
                rows = repo.coded_entries(conn, after, batch)
                if not rows:
                    break
                after = rows[-1].id
                listed = [named(r.id, repo.content_of(r.resource)) for r in rows]
                coded = [n for n in listed if n.fest]
                drugs_ = drugs(conn, catalog_store.active(conn), coded)
                lists = {r.id: r.list_id for r in rows}
                for d in drugs_:
                    if d.active is False:
                        wanted.setdefault(lists[d.entry], set()).add(d.entry)
        with self.db.read() as conn:
            flagged = repo.flagged_lists(conn)
        changed = 0
        for list_id in set(wanted) | set(flagged):
            desired = frozenset(wanted.get(list_id, set()))
            if desired != flagged.get(list_id, frozenset()):
                changed += self._flag(list_id, desired)
        return changed, sum(len(v) for v in wanted.values())

    def _flag(self, list_id: str, withdrawn: frozenset[str]) -> int:
        with self.db.write() as conn:
            row = repo.list_row(conn, list_id=list_id, lock=True)
            if row is None:
                return 0
            now = self.clock()
            lst = repo.load_list(conn, row, now)
            record = flag_withdrawn(lst, withdrawn, now)
            if record is None:
                return 0
            self._persist(conn, lst, record, now, is_new=False)
            return 1

    def expire(self, list_id: str) -> int | None:
        """Let discontinued entries whose 90 days are over leave the list, as a version of
        its own; returns that version. Reads call this when the stored documents expire."""
        with self.db.write() as conn:
            row = repo.list_row(conn, list_id=list_id, lock=True)
            now = self.clock()
            if row is None or row.expires_at is None or row.expires_at > now:
                return None
            lst = repo.load_list(conn, row, now)
            shown = repo.list_version_row(conn, list_id, row.version)
            if shown is None:  # every version has its row (rule 1; migration 0028 checked)
                raise LookupError(f"list {list_id} has no row for its version {row.version}")
            record = expire_entries(lst, set(members(orjson.loads(shown.list_json))), now)
            if record is None:
                # no entry leaves, so the List is as its version row has it: only the
                # document's expiry markers move
                _, document, expires = self._documents(lst, now)
                repo.save_documents(conn, list_id, document, expires)
                return None
            self._persist(conn, lst, record, now, is_new=False)
            return record.version
