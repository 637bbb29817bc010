"""Technical cases (*feilhåndtering*, issue 18): report one about a client system, follow it,
handle it; the register of client systems; and the case PLL opens itself for a subscription
that keeps failing.

Who sees and does what:

- **Reporting.** Health personnel report a technical case, and so do operators; a patient
  does not (their way in is a discrepancy on their list). A case about a patient (``for``)
  is a report on that patient's data: the access policy decides it and the patient's access
  log shows it, as for a discrepancy. A case without a patient holds no personal data and
  is in no patient's log.
- **The operator** (:attr:`Role.OPERATOR`) of the receiving organisation takes, resolves,
  rejects and comments; the reporter comments and withdraws
  (:func:`pll.domain.technical_cases.refusal`). An operator never reads a patient's data: a
  case about a patient is shown to them without the patient and the free text
  (:func:`pll.fhir.technical_cases.task` ``redacted``), its history not at all.
- **The inbox** (``Task?owner=<orgnr>`` for an operator) is the operator's own organisation
  only, and only for an organisation that operates a registered client system or is PLL's
  own operations.

Technical cases write no outgoing event: events are a list's (each names a list and its
version) and most technical cases have none. Every change is one transaction; a refusal
writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from pll.auth.access import Access, Decision, Verb
from pll.domain import technical_cases as rules
from pll.domain.cases import Action, Status
from pll.domain.deadlines import overdue
from pll.domain.errors import Forbidden, InvalidInput
from pll.domain.model import Author, Role
from pll.domain.technical_cases import ClientSystem, TechnicalCase
from pll.fhir import cases as fhir_cases
from pll.fhir import technical_cases as fhir
from pll.services.audit import Refused
from pll.services.base import ServiceBase, Stored
from pll.store import repository as repo
from pll.store import subscriptions as subscription_store
from pll.store import technical_cases as store
from pll.store.repository import dumps

#: Who PLL is when it opens a case itself.
PLL = Author("PLL (automatisk)", Role.SYSTEM)
NO_PATIENTS_REPORT = (
    "A patient reports what is wrong on their list as a discrepancy (a Task on the List); "
    "technical cases are reported by health personnel and operators."
)
NOT_AN_OPERATOR = (
    "This organisation operates no registered client system: an operator's inbox is for the "
    "organisation a client system is registered to (pll clients add --orgnr), or PLL's own "
    "operations."
)
NOT_YOURS = (
    "A technical case is shown to its reporter, to the operators it was sent to, and (when "
    "it is about a patient) to health personnel with access to that patient."
)
NO_HISTORY = (
    "The history of a case about a patient holds its free text, which an operator may not "
    "see; the Task itself lists every comment and status change."
)


@dataclass
class TechnicalCaseService:
    service: ServiceBase

    # -- the register of client systems ----------------------------------------------------

    def register(self, system: ClientSystem) -> bool:
        """Register a client system (or update it); whether it was new."""
        with self.service.db.write() as conn:
            return store.put_client(conn, system, self.service.clock())

    def unregister(self, client_id: str) -> bool:
        with self.service.db.write() as conn:
            return store.remove_client(conn, client_id)

    def clients(self) -> list[ClientSystem]:
        with self.service.db.read() as conn:
            return store.clients(conn)

    # -- reporting -------------------------------------------------------------------------

    def report(self, access: Access, data: Any) -> Stored:
        """A new technical case (``POST Task`` with code ``technical``), routed to the
        client system's operator."""
        reported = fhir.report_request(data)
        if access.is_patient:
            raise Forbidden(NO_PATIENTS_REPORT)
        if reported.patient_id is not None:
            refusal = access.refusal(Verb.REPORT)
            if refusal is not None:
                raise Forbidden(refusal)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            case_id = svc.ids()
            if reported.patient_id is not None:
                if repo.get_patient(conn, reported.patient_id) is None:
                    raise InvalidInput(f"Patient/{reported.patient_id} does not exist.", "Task.for")
                svc.trail.admit(
                    conn, access, Verb.REPORT, reported.patient_id, "create", "Task", case_id
                )
            return self._open(
                conn,
                case_id,
                reported.client_id,
                access.actor,
                reported.description,
                reported.patient_id,
            )

    def _open(
        self,
        conn: Connection,
        case_id: str,
        client_id: str,
        reporter: Author,
        description: str | None,
        patient_id: str | None,
        subscription_id: str | None = None,
    ) -> Stored:
        svc = self.service
        now = svc.clock()
        client = store.client(conn, rules.reported_client(client_id))
        config = svc.case_rules
        case, step = rules.report(
            case_id,
            client,
            client_id,
            reporter,
            description,
            config.operations,
            now,
            config.deadlines.due("technical", now),
            patient_id,
            subscription_id,
        )
        text = dumps(fhir.task(case, [step], client))
        store.add(conn, case, step, text)
        return Stored(text, case.version, case.updated_at, patient_id or "")

    def subscription_failing(self, subscription_id: str, since: datetime) -> str | None:
        """A subscription's deliveries have failed since ``since``: once that has lasted
        ``PLL_SUBSCRIPTION_CASE_AFTER``, open one technical case for its client system
        (none while one it opened is still open). Returns the new case's id, if one was
        opened. The case names the subscription, never its patient."""
        svc = self.service
        now = svc.clock()
        if now - since < svc.case_rules.subscription_case_after:
            return None
        with svc.db.write() as conn:
            row = subscription_store.get(conn, subscription_id, lock=True)
            if row is None or row.status != "active":
                return None
            if store.open_for_subscription(conn, subscription_id):
                return None
            client_id = str(row.owner).split("|", 1)[0]
            if client_id in ("", "-"):
                client_id = "ukjent-klient"
            case_id = svc.ids()
            hours = (now - since).total_seconds() / 3600
            self._open(
                conn,
                case_id,
                client_id,
                PLL,
                f"Varsler til abonnementet Subscription/{subscription_id} har feilet uten "
                f"stans i {hours:.1f} timer (siden {since.isoformat(timespec='seconds')}). "
                f"Siste feil: {(row.last_error or 'ukjent')[:500]}",
                None,
                subscription_id,
            )
            return case_id

    # -- acting on a case ------------------------------------------------------------------

    def act(
        self, access: Access, case_id: str, action: Action, data: Any, expected: int | None
    ) -> Stored | None:
        """Take, comment on, resolve, reject or withdraw a technical case; ``None`` when
        ``case_id`` is not a technical case (the caller asks the discrepancy cases)."""
        comment = fhir_cases.comment_request(data, f"${action.value}")
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            row = store.get(conn, case_id, lock=True)
            if row is None:
                return None
            case = store.case_of(row)
            operator = access.actor.role is Role.OPERATOR
            if case.patient_id is not None and not operator:
                # an operator's work on a patient's case shows no personal data; anyone
                # else's (the reporter's comment or withdrawal) is an access to the
                # patient, decided and logged as such
                svc.trail.admit(
                    conn, access, Verb.REPORT, case.patient_id, "update", "Task", case_id
                )
            why = rules.refusal(case, action, access.actor)
            if why is not None:
                record = None
                if case.patient_id is not None and not operator:
                    record = svc.trail.record(
                        access, "update", "Task", case_id, case.patient_id, Decision(False, why)
                    )
                raise Refused(why, "Task.owner", {"owner": case.recipient.label()}, record=record)
            now = svc.clock()
            after, step = rules.act(case, action, access.actor, comment, now, expected)
            steps = [*store.steps(conn, case_id), step]
            client = store.client(conn, case.client_id)
            text = dumps(fhir.task(after, steps, client))
            store.save(conn, after, step, text)
            return self._shown(conn, access, after, text, now)

    # -- reads -----------------------------------------------------------------------------

    def read(self, access: Access, case_id: str) -> Stored | None:
        """A technical case as this caller may see it; ``None`` when it is not one."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = store.get(conn, case_id)
            if row is None:
                return None
            case = store.case_of(row)
            self._may_see(conn, access, case, "read")
            return self._shown(conn, access, case, row.resource, svc.clock())

    def history(self, access: Access, case_id: str) -> list[Stored] | None:
        """Every version of a technical case, newest first; ``None`` when it is not one."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            row = store.get(conn, case_id)
            if row is None:
                return None
            case = store.case_of(row)
            if case.patient_id is not None and access.actor.role is Role.OPERATOR:
                raise Forbidden(NO_HISTORY)
            self._may_see(conn, access, case, "history")
            return [
                Stored(v.resource, v.version, v.recorded_at, case.patient_id or "")
                for v in store.versions(conn, case_id)
            ]

    def inbox(
        self,
        access: Access,
        org_id: str,
        statuses: frozenset[Status] | None,
        only_overdue: bool,
        count: int,
        offset: int,
    ) -> tuple[int, list[str]]:
        """A page of the technical cases sent to the operator's own organisation, newest
        first (only the overdue ones, if asked), each flagged ``overdue`` when it is."""
        actor = access.actor
        if actor.role is not Role.OPERATOR or actor.org_id != org_id:
            raise Forbidden(
                "An operator's technical cases are shown to operators acting for it: ask for "
                "owner=<your own organisation number>.",
                "owner",
            )
        svc = self.service
        with svc.db.read() as conn:
            if org_id != svc.case_rules.operations.orgnr and not store.operates(conn, org_id):
                raise Forbidden(NOT_AN_OPERATOR, "owner")
            now = svc.clock()
            total, rows = store.for_owner(
                conn, org_id, statuses, now if only_overdue else None, count, offset
            )
            shown = []
            for row in rows:
                case = store.case_of(row)
                stored = self._shown(conn, access, case, row.resource, now)
                shown.append(stored.text)
            return total, shown

    def _may_see(self, conn: Connection, access: Access, case: TechnicalCase, action: str) -> None:
        """Refuse a caller who may not see this case (a patient's case: the access policy,
        logged in the patient's access log)."""
        actor = access.actor
        if rules.at_operator(case, actor):
            return
        if case.patient_id is not None and actor.role is not Role.OPERATOR:
            svc = self.service
            svc.trail.admit(conn, access, Verb.READ, case.patient_id, action, "Task", case.id)
            return
        if rules.refusal(case, Action.WITHDRAW, actor) is None:
            return
        raise Forbidden(NOT_YOURS, "Task.id")

    def _shown(
        self, conn: Connection, access: Access, case: TechnicalCase, text: str, now: datetime
    ) -> Stored:
        """The Task as this caller sees it now: redacted for an operator when it is about a
        patient, flagged when overdue."""
        if case.patient_id is not None and access.actor.role is Role.OPERATOR:
            task = fhir.task(
                case, store.steps(conn, case.id), store.client(conn, case.client_id), redacted=True
            )
        else:
            task = orjson.loads(text)
        task = fhir_cases.flagged(task, overdue(case.due_at, case.status.closed, now))
        return Stored(dumps(task), case.version, case.updated_at, case.patient_id or "")
