"""Use cases on patients and their PLL: the one place every entry point goes through.

Each write opens one transaction, loads the list aggregate (locked), applies the domain
rules through a :class:`~pll.domain.changes.ListChange`, and writes — in that same
transaction — the new list version, every resource version, the current list documents and
the outgoing event (DESIGN §3 rules 1, 2, 7). If anything raises, nothing is written.

This module holds the changes (:meth:`PLLService.apply_in` and the use cases built on it) and
the current-list read. :class:`PLLService` also takes, by use case: patients
(:mod:`pll.services.patient_records`), decision support on a change and on demand
(:mod:`pll.services.list_checks`), writing a version and PLL's own versions
(:mod:`pll.services.list_versions`), and the reads of the past (:mod:`pll.services.history`).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from pll.auth.access import Access, Decision, Verb
from pll.domain.changes import ListChange, start_list
from pll.domain.checks import Finding
from pll.domain.diff import diff_content
from pll.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    VersionConflict,
)
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import MedicationList
from pll.domain.paused import check_change_of_paused
from pll.domain.prescribers import PrescriberRefused, held_to_own
from pll.fhir import resources as fhir
from pll.services import multidose_packing as packing
from pll.services.audit import Refused
from pll.services.base import Stored, guarded, relocate
from pll.services.decision_support import CatalogueInUse, named
from pll.services.history import ListHistory
from pll.services.list_checks import ListChecks
from pll.services.list_versions import ListVersions
from pll.services.patient_records import PatientRecords, early_refusal
from pll.store import catalog as catalog_store
from pll.store import pipeline
from pll.store import repository as repo
from pll.store.originators import originators

# early_refusal and relocate are imported from here by the other use cases
__all__ = [
    "ChangeResult",
    "Op",
    "OpKind",
    "PLLService",
    "Written",
    "early_refusal",
    "read_key",
    "relocate",
]

OpKind = Literal["create", "update", "import", "confirm", "pause", "resume"]


@dataclass(frozen=True)
class Op:
    """One operation of a change: create/update a resource, or act on the list."""

    kind: OpKind
    rtype: str | None = None
    rid: str | None = None
    resource: dict[str, Any] | None = None
    if_match: int | None = None
    reason: str | None = None
    #: where the operation came from in a transaction Bundle, for error locations
    where: str | None = None
    #: for an imported entry that ended: when (the 90 days count from then)
    ended_at: datetime | None = None
    #: for a resume: whether it also confirms the list (the default) or only resumes it
    confirm: bool = True
    #: a structured dosage the dose checks judge beside a dosage kept as text (not stored)
    sent_dosing: tuple[dict[str, Any], ...] = ()
    #: the operation comes from an SFM ``$sendMedication`` (its entries keep their dosage
    #: as text beside the e-resept's structured dosing: pll.services.multidose_packing)
    by_sfm: bool = False


@dataclass(frozen=True)
class Written:
    """A resource as a change left it, for the response."""

    rtype: str
    id: str
    version: int
    resource: dict[str, Any]
    created: bool


@dataclass
class ChangeResult:
    list_id: str
    list_version: int | None  # None when nothing really changed
    written: list[Written] = field(default_factory=list)
    #: the List as this change left it, so a response needs no second read
    list: Stored | None = None
    #: what decision support found in what the change brought (rule 6)
    findings: builtins.list[Finding] = field(default_factory=lambda: [])


class PLLService(PatientRecords, ListChecks, ListVersions, ListHistory):
    """Patients, lists, entries and prescriptions, with their history."""

    # -- changes ---------------------------------------------------------------------------

    @guarded
    def create_list(
        self, access: Access, resource: dict[str, Any], reason: str | None = None
    ) -> ChangeResult:
        """Create a patient's PLL (``POST /fhir/List``)."""
        if resource.get("entry"):
            raise InvalidInput(
                "Create the list empty and add entries as MedicationStatement resources "
                "(or in the same transaction Bundle).",
                "List.entry",
            )
        try:
            with self.db.write() as conn:
                patient_id = self.resolve_patient(
                    conn, access, resource.get("subject"), "List.subject"
                )
                return self.apply_in(conn, access, patient_id, [], reason, create_list=True)
        except IntegrityError:
            # Two journal systems created the same patient's list at the same moment.
            raise Conflict(
                "This patient already has a PLL; a patient has exactly one list.", "List.subject"
            ) from None

    @guarded
    def create_resource(
        self, access: Access, rtype: str, resource: dict[str, Any], reason: str | None = None
    ) -> ChangeResult:
        """Create an entry or a prescription on the PLL of the patient its subject names."""
        with self.db.write() as conn:
            patient_id = self.resolve_patient(
                conn, access, resource.get("subject"), f"{rtype}.subject"
            )
            return self.apply_in(
                conn, access, patient_id, [Op("create", rtype, self.ids(), resource)], reason
            )

    @guarded
    def update_resource(
        self,
        access: Access,
        rtype: str,
        rid: str,
        resource: dict[str, Any],
        if_match: int | None,
        reason: str | None = None,
    ) -> ChangeResult:
        """Update an existing entry or prescription (``PUT``), under the relay-baton rules."""
        if resource.get("id") not in (None, rid):
            raise InvalidInput(
                f"The resource id {resource.get('id')!r} does not match the URL id {rid!r}.",
                f"{rtype}.id",
            )
        with self.db.write() as conn:
            # the list row, locked: a change takes it first (apply_in)
            row = repo.list_of(conn, rtype, rid)
            if row is None:
                raise NotFound(
                    f"{rtype}/{rid} does not exist; new entries and prescriptions are "
                    "created with POST and get their id from the server.",
                    f"{rtype}.id",
                )
            subject = resource.get("subject")
            # The usual case, the entry's own patient by id, needs no lookup.
            if subject is not None and subject != {"reference": f"Patient/{row.patient_id}"}:
                named = self.resolve_patient(conn, access, subject, f"{rtype}.subject")
                if named != row.patient_id:
                    raise InvalidInput(
                        f"{rtype}/{rid} belongs to another patient; the subject cannot change.",
                        f"{rtype}.subject",
                    )
            return self.apply_in(
                conn,
                access,
                row.patient_id,
                [Op("update", rtype, rid, resource, if_match)],
                reason,
                locked=row,
            )

    @guarded
    def change(
        self, access: Access, patient_id: str, ops: list[Op], reason: str | None = None
    ) -> ChangeResult:
        """Apply ``ops`` to the patient's PLL as one accepted change (one list version)."""
        with self.db.write() as conn:
            return self.apply_in(conn, access, patient_id, ops, reason)

    @guarded
    def change_list(
        self, access: Access, list_id: str, ops: list[Op], reason: str | None = None
    ) -> ChangeResult:
        with self.db.write() as conn:
            row = repo.list_row(conn, list_id=list_id)
            if row is None:
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            return self.apply_in(conn, access, row.patient_id, ops, reason)

    def apply_in(
        self,
        conn: Connection,
        access: Access,
        patient_id: str,
        ops: list[Op],
        reason: str | None,
        *,
        create_list: bool = False,
        refuse_while_paused: str | None = None,
        locked: Any = None,
    ) -> ChangeResult:
        """The write path, inside the caller's transaction. The list row is taken first, so
        every write path locks in the same order (list, then anything else).

        A paused list (Pause PLL) is not changed until a doctor resumes it: operations on it
        are refused (409, nothing written) unless they resume it or pause it
        (:func:`pll.domain.paused.check_change_of_paused`), whichever way they come — REST,
        a transaction, the web UI, SFM ``$sendMedication``. ``refuse_while_paused`` is where
        the refusal points (default ``List``). Checked after access is admitted, so the
        refusal tells the pause only to whoever may see the list. ``locked``: the patient's
        list row as :func:`pll.store.repository.list_row` gives it, locked already by the
        caller in this transaction (issue 20: one statement less)."""
        if locked is not None:
            row = locked
        else:
            row = None if create_list else repo.list_row(conn, patient_id=patient_id, lock=True)
        # what a prescriber puts on the list; a doctor's change may be anything, a dentist's
        # or midwife's only their own entries (ListChange, pll.domain.prescribers). The
        # statement that decides also reads the multidose state and the catalogue version.
        # the audit row is written with the change's other rows, in one round trip
        admitted = self.trail.admit_change(
            conn,
            access,
            Verb.PRESCRIBE,
            patient_id,
            "create" if create_list else "update",
            "List",
            None,
            log=False,
        )
        now = self.clock()
        author = access.actor
        if create_list:
            lst = start_list(
                self.ids(), patient_id, author, now, exists=repo.list_exists_for(conn, patient_id)
            )
            # a multidose registration or paper multidose may come before the list
            lst.multidose = admitted.multidose
        else:
            if row is None:
                raise Conflict(
                    f"Patient/{patient_id} has no PLL yet: create it first with POST /fhir/List.",
                    "subject",
                )
            entry_ids, rx_ids = _wanted(ops)
            lst = repo.load_list(conn, row, now, entry_ids, rx_ids, admitted.multidose)
        # the entries as loaded, before the change: what the packing check compares with
        loaded = dict(lst.entries)
        _paused_guard(lst, ops, refuse_while_paused)
        whose = None
        if held_to_own(author):
            whose = originators(conn, lst.entries, lst.prescriptions)
        change = ListChange(lst, author, now, reason, whose)
        created: dict[tuple[str, str], bool] = {}
        for op in ops:
            self._apply_logged(conn, access, change, op, patient_id, created)
        record = change.finish()
        findings: list[Finding] = []
        if record is not None:
            places = {op.rid: op.where for op in ops if op.rid and op.where}
            sent = {op.rid: op.sent_dosing for op in ops if op.rid and op.sent_dosing}
            imported = {op.rid for op in ops if op.rid and op.kind == "import"}
            # an entry marked for multidose packing must be packable (issue 18)
            by_sfm = frozenset(op.rid for op in ops if op.rid and op.by_sfm)
            packing.check_change(conn, lst, record, now, places, sent, imported, by_sfm, loaded)
            findings, record = self._checked(
                conn,
                access,
                lst,
                record,
                places,
                sent,
                catalogue=CatalogueInUse(admitted.catalogue),
                reactions=admitted.reactions,
            )
        result = ChangeResult(lst.id, record.version if record else None, findings=findings)
        if record is None:
            self.trail.log(conn, access, Verb.PRESCRIBE, patient_id, admitted.record)
            result.written = [
                self._written(lst, op.rtype, op.rid, False) for op in ops if op.rtype and op.rid
            ]
            return result
        with pipeline.one_statement(conn):
            self.trail.log(conn, access, Verb.PRESCRIBE, patient_id, admitted.record)
            # the client system is kept with the version: the rollout team's per-vendor
            # figures (issue 19, pll.services.rollout_reports)
            resources, list_json = self._persist(
                conn, lst, record, now, create_list, access.client_id or ""
            )
        result.list = Stored(list_json, lst.version, lst.updated, lst.patient_id)
        for t in record.touched:
            if t.resource_type != "List":
                result.written.append(
                    Written(
                        t.resource_type,
                        t.id,
                        t.version,
                        orjson.loads(resources[(t.resource_type, t.id)]),
                        t.action == "create",
                    )
                )
        return result

    def _apply_logged(
        self,
        conn: Connection,
        access: Access,
        change: ListChange,
        op: Op,
        patient_id: str,
        created: dict[tuple[str, str], bool],
    ) -> None:
        """One operation of the change; its errors located in the request, and a refusal
        of a prescriber (by whose an entry is, or an act for doctors only) logged like the
        policy's refusals."""
        try:
            self._apply_op(conn, change, op, patient_id, created)
        except PrescriberRefused as exc:
            # refused by whose the entry is, or because only doctors act on the list as a
            # whole, not by the policy's table: logged all the same
            decision = Decision(False, exc.message)
            record = self.trail.record(access, op.kind, exc.rtype, exc.rid, patient_id, decision)
            where = relocate(exc.expression, op.rtype, op.where) if op.where else None
            raise Refused(
                exc.message, where or exc.expression, record=record, norwegian=exc.norwegian
            ) from exc
        except VersionConflict as exc:
            _explain_conflict(conn, exc)
            if op.where:
                exc.expression = relocate(exc.expression, op.rtype, op.where)
            raise
        except DomainError as exc:
            if op.where:
                exc.expression = relocate(exc.expression, op.rtype, op.where)
            raise

    def _apply_op(
        self,
        conn: Connection,
        change: ListChange,
        op: Op,
        patient_id: str,
        created: dict[tuple[str, str], bool],
    ) -> None:
        if op.kind in ("confirm", "pause", "resume"):
            _list_op(change, op)
            return
        if op.rtype is None or op.rid is None or op.resource is None:
            raise InvalidInput(f"A {op.kind} needs a resource type, an id and a resource.")
        if op.rtype == "MedicationStatement":
            content = fhir.statement_content(op.resource, patient_id)
            if op.kind == "import":
                change.import_entry(op.rid, content, op.ended_at)
            elif op.kind == "create":
                change.add_entry(op.rid, content)
            else:
                change.update_entry(op.rid, content, op.if_match)
        elif op.rtype == "MedicationRequest":
            content = fhir.request_content(op.resource, patient_id)
            if op.kind == "import":
                change.import_prescription(op.rid, content)
            elif op.kind == "create":
                change.add_prescription(op.rid, content, *_fest_facts(conn, content))
            else:
                change.update_prescription(op.rid, content, op.if_match)
        else:
            raise InvalidInput(f"{op.rtype} is not part of the medication list.", "resourceType")
        created[(op.rtype, op.rid)] = op.kind in ("create", "import")

    def _written(self, lst: MedicationList, rtype: str, rid: str, created: bool) -> Written:
        if rtype == "MedicationStatement":
            e = lst.entries[rid]
            return Written(rtype, rid, e.version, fhir.entry_resource(e), created)
        rx = lst.prescriptions[rid]
        return Written(
            "MedicationRequest", rid, rx.version, fhir.prescription_resource(rx), created
        )

    # -- reads -----------------------------------------------------------------------------

    @guarded
    def current(
        self,
        access: Access,
        *,
        list_id: str | None = None,
        patient_id: str | None = None,
        identifier: tuple[str | None, str] | None = None,
        document: bool = False,
    ) -> Stored | None:
        """The current List, or the whole list document (List, entries, prescriptions), by
        list id, patient id or the patient's fødselsnummer/D-nummer: one keyed lookup plus
        its audit row (DESIGN §6). See :mod:`pll.services.reads` for the same read on the
        event loop."""
        key, value, system = read_key(list_id, patient_id, identifier)
        if key == "identifier":
            early_refusal(access, Verb.READ)
        for _ in range(2):
            with self.db.read() as conn:
                if key == "identifier" and system is not None:
                    self._named_person(conn, access, system, value)
                row = repo.list_document(conn, key, value, document=document, system=system)
                if row is None:
                    return None
                now = self.clock()
                if row.expires_at is None or row.expires_at > now:
                    self.trail.admit(
                        conn, access, Verb.READ, row.patient_id, "read", "List", row.id
                    )
                    return Stored(row.text, row.version, row.updated_at, row.patient_id)
            self.expire(row.id)
        raise RuntimeError("list document could not be refreshed")  # pragma: no cover


def _paused_guard(lst: MedicationList, ops: list[Op], where: str | None) -> None:
    # a second $pause is refused by the domain with its own message
    if ops and not any(op.kind == "pause" for op in ops):
        resumes = any(op.kind == "resume" for op in ops)
        check_change_of_paused(lst.pause, resumes=resumes, expression=where or "List")


def _list_op(change: ListChange, op: Op) -> None:
    if op.kind == "confirm":
        change.confirm(op.if_match)
    elif op.kind == "pause":
        change.pause(op.reason)
    else:
        change.resume(op.if_match, confirm=op.confirm)


def _explain_conflict(conn: Connection, exc: VersionConflict) -> None:
    """Tell the loser of a relay-baton conflict what the other doctor changed, and hand back
    the current version, so only what really conflicts needs redoing (DESIGN §3 rule 2)."""
    rtype, _, rid = exc.details.get("resource", "").partition("/")
    if rtype not in repo.RESOURCE_TABLES:
        return
    held = repo.resource_version(conn, rtype, rid, int(exc.details["yourVersion"]))
    current = repo.resource_row(conn, rtype, rid)
    if held is None or current is None:
        return
    changes = diff_content(repo.content_of(held.resource), repo.content_of(current.resource))
    if changes:
        said = "; ".join(
            f"{c.element}: {c.before or '(none)'} → {c.after or '(none)'}" for c in changes
        )
        exc.message += f" Changed since your version: {said}."
    exc.resources.append(orjson.loads(current.resource))


def read_key(
    list_id: str | None,
    patient_id: str | None,
    identifier: tuple[str | None, str] | None,
) -> tuple[str, str, str | None]:
    """How a current-list read finds the list: (key kind, value, identifier system)."""
    if identifier is not None:
        parsed = parse_person_identifier(identifier[0], identifier[1], "patient.identifier")
        return "identifier", parsed.value, parsed.system
    if list_id is not None:
        return "list", list_id, None
    if patient_id is not None:
        return "patient", patient_id, None
    raise InvalidInput("Name the list by its id, the patient's id or identifier.")


def _wanted(ops: Iterable[Op]) -> tuple[set[str], set[str]]:
    entries: set[str] = set()
    prescriptions: set[str] = set()
    for op in ops:
        if op.rtype == "MedicationStatement" and op.rid:
            entries.add(op.rid)
        if op.rtype == "MedicationRequest" and op.rid:
            prescriptions.add(op.rid)
        res = op.resource or {}
        for ref in res.get("basedOn") or []:
            prescriptions.add(str(ref.get("reference", "")).removeprefix("MedicationRequest/"))
        prior = (res.get("priorPrescription") or {}).get("reference")
        if prior:
            prescriptions.add(str(prior).removeprefix("MedicationRequest/"))
    return entries, prescriptions


def _fest_facts(conn: Connection, content: dict[str, Any]) -> tuple[str | None, str | None]:
    """The prescribed drug's prescription validity in the catalogue in use (FEST
    ``Reseptgyldighet``, an ISO 8601 duration such as P10D for an antibiotic) and its
    pharmaceutical form (``LegemiddelformKort``, which the quantity's unit must fit), the one
    place PLL reads them for a new prescription; ``None`` for a drug named by text only, not
    in the catalogue, or one FEST gives none of (validity: the e-resept default of one year;
    form: any unit)."""
    code = named("", content).fest
    version = catalog_store.active(conn) if code else None
    if code is None or version is None:
        return None, None
    row = catalog_store.drugs_by_code(conn, version, [code]).get(code)
    return (row.validity, row.form) if row is not None else (None, None)
