"""Discrepancy cases (*avvik*): report one on a list or an entry, follow it, handle it.

Every operation opens one transaction and decides access through the audit trail: reporting,
commenting and withdrawing as :attr:`Verb.REPORT` (anyone with access to the list, the patient
too), taking, resolving and rejecting as :attr:`Verb.HANDLE` (doctors), reads as
:attr:`Verb.READ`. Which case a caller may act on is the case's own rule
(:func:`pll.domain.cases.refusal`: the receiving organisation, the reporter); its refusal is
logged like the policy's. A change writes — in the same transaction — the case, a step of its
history (only ever added to) and one outgoing event (``case-reported``, ``case-taken``, ...,
DESIGN §3 rule 7). Writes lock the list first and the case second, the order every write
takes its locks in, so a case's event carries the list's current version. If anything is
refused, nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Row

from pll.auth.access import Access, Decision, PatientFacts, Verb
from pll.domain import cases as rules
from pll.domain.cases import Action, Kind, Status
from pll.domain.deadlines import overdue
from pll.domain.errors import Forbidden, InvalidInput, NotFound
from pll.domain.model import MedicationList
from pll.fhir import cases as fhir_cases
from pll.services.audit import Refused
from pll.services.base import Stored
from pll.services.case_events import drug, event, with_deadline
from pll.services.deviations import DeviationService
from pll.services.lists import PLLService, early_refusal
from pll.store import audit_log
from pll.store import cases as store
from pll.store import repository as repo
from pll.store.repository import dumps

#: The actions on a case that handle it: doctors of the receiving organisation.
_HANDLING = frozenset({Action.TAKE, Action.RESOLVE, Action.REJECT})


@dataclass(frozen=True)
class Shown:
    """A case as a page shows it: the Task, and what the caller may do with it."""

    task: dict[str, Any]
    actions: frozenset[Action]


@dataclass
class CaseService:
    service: PLLService

    def report(self, access: Access, data: Any) -> Stored:
        """A new case on the list or one entry, routed to the responsible prescriber's
        organisation (the entry's last author, else the baton holder); or one about giving
        the medicines (:mod:`pll.services.deviations`)."""
        reported = fhir_cases.report_request(data)
        early_refusal(access, Verb.REPORT)
        if reported.kind is Kind.ADMINISTRATION:
            return DeviationService(self.service).report(access, reported)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            list_id = self._list_of(conn, reported)
            head = repo.list_row(conn, list_id=list_id, lock=True)
            if head is None:  # pragma: no cover - a list is never deleted
                raise NotFound(f"List/{list_id} does not exist.", "Task.focus")
            if reported.patient_id not in (None, head.patient_id):
                raise InvalidInput(
                    f"Task.for names Patient/{reported.patient_id}, but the focus is on "
                    f"the list of Patient/{head.patient_id}.",
                    "Task.for",
                )
            case_id = svc.ids()
            svc.trail.admit(conn, access, Verb.REPORT, head.patient_id, "create", "Task", case_id)
            now = svc.clock()
            entry_id = reported.entry_id
            lst = repo.load_list(conn, head, now, [entry_id] if entry_id else [])
            case, step = rules.report(
                case_id, lst, entry_id, reported.version, access.actor, reported.description, now
            )
            case = with_deadline(svc, case)
            shown = drug(lst, entry_id)
            text = dumps(fhir_cases.task(case, [step], shown))
            store.add(conn, case, step, text)
            event(svc, conn, lst, case, step)
            return Stored(text, case.version, case.updated_at, case.patient_id)

    @staticmethod
    def _list_of(conn: Connection, reported: fhir_cases.Reported) -> str:
        where = "Task.focus"
        if reported.entry_id is None:
            if repo.list_row(conn, list_id=reported.focus_id) is None:
                raise InvalidInput(f"List/{reported.focus_id} does not exist.", where)
            return reported.focus_id
        row = repo.resource_row(conn, "MedicationStatement", reported.focus_id)
        if row is None:
            raise InvalidInput(f"MedicationStatement/{reported.focus_id} does not exist.", where)
        return str(row.list_id)

    def act(
        self,
        access: Access,
        case_id: str,
        action: Action,
        data: Any,
        expected: int | None = None,
        *,
        patient_id: str | None = None,
    ) -> Stored:
        """Take, comment on, resolve, reject or withdraw a case (``data``: the operation's
        ``Parameters``, with an optional ``comment``; ``expected``: the case version the
        caller saw, from ``If-Match``). ``patient_id``, when given, is the patient the
        caller is working on: another patient's case is then as unknown as a missing one."""
        comment = fhir_cases.comment_request(data, f"${action.value}")
        verb = Verb.HANDLE if action in _HANDLING else Verb.REPORT
        early_refusal(access, verb)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            row = _case_row(conn, case_id, patient_id)
            # the list first, then the case: the order every write takes its locks in
            head = repo.list_row(conn, list_id=row.list_id, lock=True)
            if head is None:  # pragma: no cover - a list is never deleted
                raise NotFound(f"List/{row.list_id} does not exist.", "Task.focus")
            row = _case_row(conn, case_id, patient_id, lock=True)
            svc.trail.admit(conn, access, verb, row.patient_id, "update", "Task", case_id)
            case = store.case_of(row)
            why = rules.refusal(case, action, access.actor)
            if why is not None:
                record = svc.trail.record(
                    access, "update", "Task", case_id, case.patient_id, Decision(False, why)
                )
                raise Refused(
                    why,
                    "Task.owner",
                    {"owner": case.recipient.label(), "reporter": case.reporter.label()},
                    record=record,
                )
            now = svc.clock()
            after, step = rules.act(case, action, access.actor, comment, now, expected)
            steps = [*store.steps(conn, case_id), step]
            text = dumps(fhir_cases.task(after, steps, _focus_display(row)))
            store.save(conn, after, step, text)
            event(svc, conn, _plain_list(head), after, step)
            return Stored(text, after.version, after.updated_at, after.patient_id)

    # -- reads -----------------------------------------------------------------------------

    def read(self, access: Access, case_id: str) -> Stored:
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = _case_row(conn, case_id)
            svc.trail.admit(conn, access, Verb.READ, row.patient_id, "read", "Task", case_id)
            return Stored(_as_read(row, svc.clock()), row.version, row.updated_at, row.patient_id)

    def version(self, access: Access, case_id: str, version: int) -> Stored:
        """One earlier version of a case (vread)."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = _case_row(conn, case_id)
            svc.trail.admit(conn, access, Verb.READ, row.patient_id, "vread", "Task", case_id)
            found = next((v for v in store.versions(conn, case_id) if v.version == version), None)
            if found is None:
                raise NotFound(f"Task/{case_id} has no version {version}.", "versionId")
            return Stored(found.resource, found.version, found.recorded_at, row.patient_id)

    def history(self, access: Access, case_id: str) -> list[Stored]:
        """Every version of a case, newest first: each report, status change and comment."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = _case_row(conn, case_id)
            svc.trail.admit(conn, access, Verb.READ, row.patient_id, "history", "Task", case_id)
            return [
                Stored(v.resource, v.version, v.recorded_at, row.patient_id)
                for v in store.versions(conn, case_id)
            ]

    def search(
        self,
        access: Access,
        patient_id: str,
        statuses: frozenset[Status] | None,
        count: int,
        offset: int,
    ) -> tuple[int, list[str]]:
        """A page of the patient's cases (only those in ``statuses``, if given), newest
        first, as stored Task texts."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            svc.trail.admit(conn, access, Verb.READ, patient_id, "search", "Task", None)
            total, rows = store.for_patient(conn, patient_id, statuses, count, offset)
            return total, [r.resource for r in rows]

    def inbox(
        self,
        access: Access,
        org_id: str,
        statuses: frozenset[Status] | None,
        count: int,
        offset: int,
        only_overdue: bool = False,
    ) -> tuple[int, int, list[str]]:
        """A page of the cases addressed to ``org_id``, newest first: the organisation's
        inbox, for health personnel acting for it (the organisation in their token).

        Each case shown is a read of its patient: decided by the access policy (a patient
        who has blocked the caller is left out, with no record, as nothing of theirs is
        shown) and logged in that patient's access log (DESIGN §3 rule 5). Returns the
        number of cases addressed there, how many of this page were left out, and the
        Tasks shown, each tagged ``overdue`` when it is still open past its deadline
        (``only_overdue``: only those)."""
        early_refusal(access, Verb.READ)
        if access.is_patient or access.actor.org_id != org_id:
            raise Forbidden(
                "An organisation's discrepancy cases are shown to those acting for it: ask "
                "for owner=<your own organisation number>, or search by patient.",
                "owner",
            )
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            now = svc.clock()
            total, rows = store.for_owner(
                conn, org_id, statuses, count, offset, now if only_overdue else None
            )
            shown = []
            for row in rows:
                facts = audit_log.facts(conn, row.patient_id, hpr=access.actor.hpr, holder=None)
                if facts is None:  # pragma: no cover - a case's patient is never removed
                    continue
                decision = access.decide(
                    Verb.READ,
                    PatientFacts(row.patient_id, facts.identifier_value, bool(facts.blocked)),
                )
                if not decision.allowed:
                    continue
                audit_log.append(
                    conn,
                    svc.trail.record(
                        access, "search", "Task", row.id, row.patient_id, decision, now
                    ),
                )
                shown.append(_as_read(row, now))
            return total, len(rows) - len(shown), shown

    def on_list(self, access: Access, patient_id: str) -> list[Shown]:
        """The cases shown on the patient's list (those not closed), oldest first, each with
        what the caller may do with it. For a page that has read the list (and logged that):
        access is decided as for any read, and the read is logged when it shows a case; a
        list with no open case adds nothing to the patient's access log."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            _, record = svc.trail.admit_unlogged(
                conn, access, Verb.READ, patient_id, "search", "Task", None
            )
            _, rows = store.for_patient(conn, patient_id, rules.OPEN, 500, 0)
            if rows:
                svc.trail.log(conn, access, Verb.READ, patient_id, record)
            now = svc.clock()
            return [
                Shown(orjson.loads(_as_read(r, now)), rules.allowed(store.case_of(r), access.actor))
                for r in reversed(rows)
            ]


def _case_row(
    conn: Connection, case_id: str, patient_id: str | None = None, *, lock: bool = False
) -> Row[Any]:
    row = store.get(conn, case_id, lock=lock)
    if row is None or patient_id not in (None, row.patient_id):
        raise NotFound(f"Task/{case_id} does not exist.", "Task.id")
    return row


def _as_read(row: Row[Any], now: datetime) -> str:
    """The stored Task as a read shows it now: tagged ``overdue`` when it is still open past
    its deadline (a flag of the moment, not a new version)."""
    if not overdue(row.due_at, Status(row.status).closed, now):
        return str(row.resource)
    return dumps(fhir_cases.flagged(orjson.loads(row.resource), overdue=True))


def _focus_display(row: Row[Any]) -> str | None:
    """What the case's focus was called when it was reported (kept through its versions)."""
    shown = (orjson.loads(row.resource).get("focus") or {}).get("display")
    return str(shown) if shown else None


def _plain_list(head: Row[Any]) -> MedicationList:
    """The list row as far as an event needs it (its id, patient and version)."""
    return MedicationList(
        id=head.id,
        patient_id=head.patient_id,
        version=head.version,
        created=head.created_at,
        updated=head.updated_at,
        baton=repo.author_of(head.baton),
    )
