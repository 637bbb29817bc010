"""Use cases on patients and their PLL: the one place every entry point goes through.

Each write opens one transaction, loads the list aggregate (locked), applies the domain
rules through a :class:`~pll.domain.changes.ListChange`, and writes — in that same
transaction — the new list version, every resource version, the current list documents and
the outgoing event (DESIGN §3 rules 1, 2, 7). If anything raises, nothing is written.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from pll.auth.access import NOT_YOURS, Access, Decision, Verb
from pll.domain import overrides
from pll.domain.changes import ListChange, expire_entries, flag_withdrawn, start_list
from pll.domain.checks import DOSE_KINDS, Finding, Kind
from pll.domain.diff import diff_content
from pll.domain.errors import (
    ChecksRefused,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleRefused,
    VersionConflict,
)
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import (
    IN_USE,
    RX_ACTIVE,
    ListVersion,
    MedicationList,
    Prescription,
    Touched,
)
from pll.domain.prescriptions import local_day, next_expiry
from pll.fhir import resources as fhir
from pll.fhir import systems
from pll.fhir.findings import OVERRIDE_FINDINGS_HEADER, OVERRIDE_HEADER
from pll.fhir.findings import issues as finding_issues
from pll.services.audit import Refused
from pll.services.base import Stored, guarded, members
from pll.services.decision_support import Named, drug_key, drugs, items, named, review
from pll.services.history import ListHistory
from pll.store import audit_log
from pll.store import catalog as catalog_store
from pll.store import multidose as multidose_store
from pll.store import repository as repo
from pll.store.repository import dumps

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


def _person(resource: dict[str, Any]) -> tuple[str, str]:
    found = []
    for i, ident in enumerate(resource.get("identifier") or []):
        if ident.get("system") in (systems.FNR, systems.DNR):
            parsed = parse_person_identifier(
                ident.get("system"), str(ident.get("value", "")), f"Patient.identifier[{i}]"
            )
            found.append((parsed.system, parsed.value))
    if len(found) != 1:
        raise InvalidInput(
            "A patient needs exactly one fødselsnummer (system urn:oid:2.16.578.1.12.4.1.4.1) "
            "or D-nummer (urn:oid:2.16.578.1.12.4.1.4.2) identifier.",
            "Patient.identifier",
        )
    return found[0]


class PLLService(ListHistory):
    """Patients, lists, entries and prescriptions, with their history."""

    # -- patients --------------------------------------------------------------------------

    @guarded
    def register_patient(
        self, access: Access, resource: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Register a patient, or find the one with the same fødselsnummer/D-nummer.

        Returns the patient and whether it was created.
        """
        for attempt in range(2):
            try:
                with self.db.write() as conn:
                    return self.register_patient_in(conn, access, resource)
            except IntegrityError:
                # Registered by someone else at the same moment: the retry finds it.
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def register_patient_in(
        self, conn: Connection, access: Access, resource: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        system, value = _person(resource)
        early_refusal(access, Verb.READ)
        self._named_person(conn, access, system, value)
        existing = repo.find_patient(conn, system, value)
        if existing is not None:
            self.trail.admit(conn, access, Verb.READ, existing.id, "read", "Patient", existing.id)
            found: dict[str, Any] = orjson.loads(existing.resource)
            return found, False
        early_refusal(access, Verb.WRITE)  # registering is a change, refused before it is made
        now = self.clock()
        pid = self.ids()
        stored = fhir.with_meta(
            "Patient",
            pid,
            1,
            now,
            {k: v for k, v in resource.items() if k not in ("id", "meta", "text")},
        )
        repo.insert_patient(conn, pid, system, value, now, dumps(stored))
        self.trail.admit(conn, access, Verb.WRITE, pid, "create", "Patient", pid)
        return stored, True

    def _named_person(self, conn: Connection, access: Access, system: str, identifier: str) -> None:
        """Refuse a patient naming a person who is neither themselves nor someone they hold
        a proxy for, with the same answer whether or not that person is registered; when
        they are, the attempt goes into that person's access log."""
        if not access.is_patient:
            return
        pid = access.actor.pid
        if pid and (identifier == pid or audit_log.has_proxy(conn, pid, identifier)):
            return
        row = repo.find_patient(conn, system, identifier)
        record = None
        if row is not None:
            record = self.trail.record(
                access, "search", "Patient", None, row.id, Decision(False, NOT_YOURS)
            )
        raise Refused(NOT_YOURS, record=record)

    def patient_by_identifier(
        self, access: Access, verb: Verb, system: str | None, value: str
    ) -> str | None:
        """The id of the patient with this fødselsnummer/D-nummer, for a search that will
        decide and log access itself (so the lookup is not logged twice)."""
        parsed = parse_person_identifier(system or None, value, "patient.identifier")
        early_refusal(access, verb)
        with self.trail.refusals(), self.db.read() as conn:
            self._named_person(conn, access, parsed.system, parsed.value)
            row = repo.find_patient(conn, parsed.system, parsed.value)
            return str(row.id) if row is not None else None

    @guarded
    def read_patient(self, access: Access, patient_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = repo.get_patient(conn, patient_id)
            if row is None:
                raise NotFound(f"Patient/{patient_id} does not exist.", "Patient.id")
            self.trail.admit(conn, access, Verb.READ, patient_id, "read", "Patient", patient_id)
            data: dict[str, Any] = orjson.loads(row.resource)
            return data

    @guarded
    def find_patient(self, access: Access, system: str | None, value: str) -> dict[str, Any] | None:
        parsed = parse_person_identifier(system or None, value, "identifier")
        early_refusal(access, Verb.READ)
        with self.db.read() as conn:
            self._named_person(conn, access, parsed.system, parsed.value)
            row = repo.find_patient(conn, parsed.system, parsed.value)
            if row is None:
                return None
            self.trail.admit(conn, access, Verb.READ, row.id, "search", "Patient", row.id)
            data: dict[str, Any] = orjson.loads(row.resource)
            return data

    def resolve_patient(
        self, conn: Connection, access: Access, subject: dict[str, Any] | None, where: str
    ) -> str:
        """The patient id a ``subject`` reference names (by id or by identifier)."""
        if not subject:
            raise InvalidInput("The subject (the patient) is missing.", where)
        ref = subject.get("reference")
        if ref:
            if not ref.startswith("Patient/"):
                raise InvalidInput(
                    f"The subject must reference a Patient, got {ref!r}.", where + ".reference"
                )
            row = repo.get_patient(conn, ref.removeprefix("Patient/"))
            if row is None:
                raise InvalidInput(f"{ref} does not exist.", where + ".reference")
        elif subject.get("identifier"):
            ident = subject["identifier"]
            parsed = parse_person_identifier(
                ident.get("system"), str(ident.get("value", "")), where + ".identifier"
            )
            early_refusal(access, Verb.WRITE)  # every caller writes; refused before any lookup
            self._named_person(conn, access, parsed.system, parsed.value)
            row = repo.find_patient(conn, parsed.system, parsed.value)
            if row is None:
                raise InvalidInput(
                    f"No patient is registered with {parsed.kind} {parsed.value}.",
                    where + ".identifier",
                )
        else:
            raise InvalidInput("The subject needs a reference or an identifier.", where)
        patient_id: str = row.id
        return patient_id

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
            row = repo.resource_row(conn, rtype, rid)
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
                conn, access, row.patient_id, [Op("update", rtype, rid, resource, if_match)], reason
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
    ) -> ChangeResult:
        """The write path, inside the caller's transaction. The list row is taken first, so
        every write path locks in the same order (list, then anything else)."""
        row = None if create_list else repo.list_row(conn, patient_id=patient_id, lock=True)
        self.trail.admit(
            conn,
            access,
            Verb.WRITE,
            patient_id,
            "create" if create_list else "update",
            "List",
            None,
        )
        now = self.clock()
        author = access.actor
        if create_list:
            lst = start_list(
                self.ids(), patient_id, author, now, exists=repo.list_exists_for(conn, patient_id)
            )
            # a multidose registration or paper multidose may come before the list
            lst.multidose = multidose_store.state(conn, patient_id)
        else:
            if row is None:
                raise Conflict(
                    f"Patient/{patient_id} has no PLL yet: create it first with POST /fhir/List.",
                    "subject",
                )
            entry_ids, rx_ids = _wanted(ops)
            lst = repo.load_list(conn, row, now, entry_ids, rx_ids)
        change = ListChange(lst, author, now, reason)
        created: dict[tuple[str, str], bool] = {}
        for op in ops:
            try:
                self._apply_op(conn, change, op, patient_id, created)
            except VersionConflict as exc:
                _explain_conflict(conn, exc)
                if op.where:
                    exc.expression = relocate(exc.expression, op.rtype, op.where)
                raise
            except DomainError as exc:
                if op.where:
                    exc.expression = relocate(exc.expression, op.rtype, op.where)
                raise
        record = change.finish()
        findings: list[Finding] = []
        if record is not None:
            places = {op.rid: op.where for op in ops if op.rid and op.where}
            findings, record = self._checked(conn, access, lst, record, places)
        result = ChangeResult(lst.id, record.version if record else None, findings=findings)
        if record is None:
            result.written = [
                self._written(lst, op.rtype, op.rid, False) for op in ops if op.rtype and op.rid
            ]
            return result
        resources, list_json = self._persist(conn, lst, record, now, create_list)
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

    def _checked(
        self,
        conn: Connection,
        access: Access,
        lst: MedicationList,
        record: ListVersion,
        places: dict[str, str],
    ) -> tuple[list[Finding], ListVersion]:
        """Decision support on what this change brings (rule 6): findings come back with the
        accepted change. A blocking one refuses it unless the caller overrides it with a
        reason, which is then kept with the version — but only when the change brings the
        medicine (a new entry or prescription, another drug, or one back in use) or, for a
        dose finding, brings or changes its dosage. Pausing or stopping a medicine already
        on the list is never blocked, so an old entry dosed wrongly can still be stopped.

        A dose in a unit the drug's form does not take is refused outright (422, at the
        unit; no override) when the change brings the medicine or changes its dosage.
        ``places`` gives where a resource sits in the request (a Bundle entry), by id."""
        touched = {t.id: t for t in record.touched if t.resource_type in repo.RESOURCE_TABLES}
        if not touched:
            return [], record
        findings = review(
            conn,
            lst.patient_id,
            items(lst.entries.values(), lst.prescriptions.values()),
            set(touched),
        )
        # the list flags what the catalogue no longer has (rule 6): touched entries anew
        gone = {f.entries[0] for f in findings if f.kind is Kind.WITHDRAWN}
        lst.withdrawn = frozenset(
            e
            for e in (lst.withdrawn - set(touched)) | (gone & set(lst.entries))
            if e in lst.entries and lst.entries[e].status in IN_USE
        )
        fresh, dosed = (
            self._fresh(conn, lst, touched) if any(f.blocking for f in findings) else (set(), set())
        )
        blocking = [
            f
            for f in findings
            if f.blocking and set(f.entries) & (dosed if f.kind in DOSE_KINDS else fresh)
        ]
        for f in blocking:
            if f.kind is Kind.UNIT_FORM:
                rtype = touched[f.entries[0]].resource_type
                key = "dosage" if rtype == "MedicationStatement" else "dosageInstruction"
                where = f"{rtype}.{key}{f.details['element']}"
                place = places.get(f.entries[0])
                raise RuleRefused(
                    f.message,
                    relocate(where, rtype, place) if place else where,
                )
        if not blocking:
            return findings, record
        codes = {f.code for f in blocking}
        accepted = access.override_findings
        if not access.override or (accepted is not None and not codes <= accepted):
            missing = sorted(codes - (accepted or set()))
            raise ChecksRefused(
                f"Nothing was saved: {len(blocking)} finding(s) need a deliberate override "
                f"({blocking[0].message}). To go ahead, give the reason in {OVERRIDE_HEADER} "
                f"and name the findings in {OVERRIDE_FINDINGS_HEADER}: {', '.join(missing)}. "
                "Both are kept with the change.",
                OVERRIDE_HEADER,
                # each of them shown in this answer: its cap never leaves out a blocking
                # finding, so an override never covers one its author did not see
                {"overrideFindings": ",".join(missing)},
                issues=finding_issues(findings),
            )
        # kept with the entries each finding concerns, to be shown on them (rule 6)
        return findings, replace(record, override=overrides.describe(access.override, blocking))

    @staticmethod
    def _fresh(
        conn: Connection, lst: MedicationList, touched: dict[str, Touched]
    ) -> tuple[set[str], set[str]]:
        """The touched entries and prescriptions in use that bring a medicine to the list,
        and those that bring a medicine or a new dosage (which the dose findings block)."""
        brought, dosed = set(), set()
        for rid, t in touched.items():
            current = lst.entries.get(rid) or lst.prescriptions.get(rid)
            if current is None or current.status not in IN_USE | RX_ACTIVE:
                continue
            if t.action == "create":
                brought.add(rid)
                continue
            old = repo.resource_version(conn, t.resource_type, rid, t.version - 1)
            before = repo.content_of(old.resource) if old is not None else {}
            if before.get("status") not in IN_USE | RX_ACTIVE or drug_key(before) != drug_key(
                current.content
            ):
                brought.add(rid)
            key = "dosage" if t.resource_type == "MedicationStatement" else "dosageInstruction"
            if before.get(key) != current.content.get(key):
                dosed.add(rid)
        return brought, dosed | brought

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
                change.add_prescription(op.rid, content, _fest_validity(conn, content))
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

    def _persist(
        self,
        conn: Connection,
        lst: MedicationList,
        record: ListVersion,
        now: datetime,
        is_new: bool,
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
        if is_new:
            repo.insert_list(conn, lst, list_json, document, expires)
        else:
            repo.save_list(conn, lst, list_json, document, expires)
        repo.save_version(conn, lst, record, list_json, resources)
        repo.add_event(
            conn,
            self.ids(),
            lst,
            "list-changed",
            now,
            {
                "list": f"List/{lst.id}",
                "patient": f"Patient/{lst.patient_id}",
                "version": lst.version,
                "activity": record.activity,
                "touched": [
                    f"{t.resource_type}/{t.id}/_history/{t.version}" for t in record.touched
                ],
            },
        )
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
    ) -> ListVersion | None:
        """A list version of what the list shows beside the doctors' changes (the multidose
        parties, paper multidose, dispensings), in the caller's transaction: the list is
        locked and loaded (with the prescriptions ``rx_ids``), ``make`` applies the domain
        rule, and the version is written with its documents and its event, as every change
        is. ``None`` when the patient has no list or ``make`` changed nothing."""
        row = repo.list_row(conn, patient_id=patient_id, lock=True)
        if row is None:
            return None
        now = self.clock()
        lst = repo.load_list(conn, row, now, (), rx_ids)
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
            record = expire_entries(lst, set(members(orjson.loads(row.list_json))), now)
            if record is None:
                list_json, document, expires = self._documents(lst, now)
                repo.save_documents(conn, list_id, list_json, document, expires)
                return None
            self._persist(conn, lst, record, now, is_new=False)
            return record.version

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

    @guarded
    def check_list(self, access: Access, list_id: str) -> tuple[str, list[Finding]]:
        """Every decision-support finding on the list as it is (``List/$check``); returns
        the patient and the findings."""
        with self.db.read() as conn:
            head = repo.list_row(conn, list_id=list_id)
            if head is None:
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            self.trail.admit(conn, access, Verb.READ, head.patient_id, "check", "List", list_id)
            lst = repo.load_list(conn, head, self.clock())
            listed = items(lst.entries.values(), lst.prescriptions.values())
            return head.patient_id, review(conn, head.patient_id, listed, None)

    @guarded
    def check_drafts(
        self, access: Access, patient_id: str, drafts: list[tuple[str, dict[str, Any]]]
    ) -> list[Finding]:
        """What decision support would find if these medicines (id, FHIR content with
        ``medicationCodeableConcept``) joined the patient's list (CDS Hooks ``order-select``
        and ``order-sign``)."""
        with self.db.read() as conn:
            if repo.get_patient(conn, patient_id) is None:
                raise NotFound(f"Patient/{patient_id} does not exist.", "context.patientId")
            self.trail.admit(conn, access, Verb.READ, patient_id, "check", "List", None)
            head = repo.list_row(conn, patient_id=patient_id)
            listed: list[Named] = []
            if head is not None:
                lst = repo.load_list(conn, head, self.clock())
                listed = items(lst.entries.values(), lst.prescriptions.values())
            listed += [named(rid, content) for rid, content in drafts]
            return review(conn, patient_id, listed, {rid for rid, _ in drafts})

    def log_check(self, access: Access, patient_id: str, list_id: str | None) -> None:
        """The record of a dry run (its own records went with its rolled-back transaction)."""
        with self.trail.refusals(), self.db.write() as conn:
            self.trail.admit(conn, access, Verb.READ, patient_id, "check", "List", list_id)


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


def early_refusal(access: Access, verb: Verb) -> None:
    """Refuse what no patient's facts could allow before a fødselsnummer is looked up, so
    the answer cannot tell who is registered. (A request naming a list or patient by its
    id goes on to the decision, and its refusal is logged in that patient's access log.)"""
    refusal = access.refusal(verb)
    if refusal is not None:
        raise Forbidden(refusal)


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


def relocate(expression: str | None, rtype: str | None, where: str) -> str:
    """``MedicationStatement.status`` of Bundle entry 2 is ``Bundle.entry[2].resource.status``."""
    if expression and rtype and expression.startswith(rtype):
        return where + expression[len(rtype) :]
    return where


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


def _fest_validity(conn: Connection, content: dict[str, Any]) -> str | None:
    """The prescribed drug's prescription validity in the catalogue in use (FEST
    ``Reseptgyldighet``, an ISO 8601 duration such as P10D for an antibiotic), the one place
    PLL reads it for a new prescription; ``None`` (the e-resept default of one year) for a
    drug named by text only, not in the catalogue, or one FEST gives no validity."""
    code = named("", content).fest
    version = catalog_store.active(conn) if code else None
    if code is None or version is None:
        return None
    row = catalog_store.drugs_by_code(conn, version, [code]).get(code)
    return row.validity if row is not None else None
