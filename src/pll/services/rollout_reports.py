"""The rollout and payment team's reports (issue 19, docs/statistics.md "Reports for the
rollout team"): first lists per GP and GP office, per journal system, per GP office.

They name people and businesses, so they are not public: only the rollout role
(:attr:`Role.ROLLOUT`, a token with the scope ``nhn:pll/rollout``) reads them. Every read is
audited — an audit record without a patient, written with the answer's read in one
transaction, so the record is durable before the answer goes out — and so is every refusal
(the public, a health worker, a patient: 403 with an ``OperationOutcome``).

The rules (what counts as a first list, which office a list belongs to, what a refusal
counts as) are :mod:`pll.stats.rollout`; this module reads and audits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from pll.auth.access import Access, Decision
from pll.domain.errors import DomainError, Forbidden
from pll.domain.model import Role
from pll.services.audit import AuditTrail
from pll.stats import rollout as rules
from pll.stats.indicators import week as week_of
from pll.store import audit_log
from pll.store import rollout as store
from pll.store.db import Database

log = logging.getLogger(__name__)

#: The audit record's resource type for a read of one of these reports.
RESOURCE = "RolloutReport"
NOT_ROLLOUT = (
    "The rollout reports (first lists per GP, per journal system, per GP office) name people "
    "and businesses: only the rollout and payment team reads them (a token with the scope "
    "nhn:pll/rollout). The public figures are at /stats/."
)
NOT_ROLLOUT_NB = (
    "Rapportene om innføringen (førstegangslister per fastlege, per journalsystem, per "
    "legekontor) navngir personer og virksomheter: bare innførings- og kompensasjonsteamet "
    "leser dem. De offentlige tallene finner du på /statistikk."
)
#: What "the last 12 months" of confirmations is.
YEAR = timedelta(days=365)


def count_refusal(db: Database, access: Access, error: DomainError, at: datetime) -> None:
    """Count a request a use case refused for the client system it came through (per ISO
    week, Norwegian time), in its own transaction: the refusal rolled back everything it
    tried. Counted once however many places see it (the services' guard, then the API): a
    refusal raised while handling one already counted is that refusal told again.

    Best effort, and after the refusal is logged (the guard logs a refused access first,
    rule 5): a count that cannot be written (a lock timeout, a full disk) is logged as a
    warning and dropped — it never replaces the refusal the caller is owed."""
    measure = rules.measure_of(error)
    if measure is None or _counted(error):
        return
    vars(error)[_COUNTED] = True
    try:
        with db.write() as conn:
            store.count_for_client(conn, access.client_id or "", week_of(at), measure)
    except Exception:
        log.warning(
            "the refusal (%s) of client %r was not counted for the rollout figures",
            measure,
            (access.client_id or "")[:100],
            exc_info=True,
        )


_COUNTED = "_counted_for_client"


def _counted(error: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if vars(cause).get(_COUNTED):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False


@dataclass
class RolloutReports:
    db: Database
    clock: Callable[[], datetime]
    trail: AuditTrail

    def first_lists(self, access: Access, month: str) -> dict[str, Any]:
        """The first lists of ``month`` (``YYYY-MM``) per prescriber and organisation; the
        month is checked (:class:`InvalidInput`) before anything is read or written."""
        self.admit(access, "first-lists")
        start, end = rules.month_span(month)
        with self._audited(access, f"first-lists/{month}") as conn:
            made = [
                (r.created_at, orjson.loads(r.author))
                for r in store.first_versions(conn, start, end)
            ]
            return rules.first_lists(
                month, made, store.organisation_names(conn), store.organisations_by_her(conn)
            )

    def vendors(self, access: Access, week: str) -> dict[str, Any]:
        """Per client system in ``week`` (``YYYY-Www``): changes, conflicts, refusals,
        overrides, failed sends, technical cases; the week is checked
        (:class:`InvalidInput`) before anything is read or written."""
        self.admit(access, "vendors")
        start, end = rules.week_span(week)
        with self._audited(access, f"vendors/{week}") as conn:
            counts = store.client_counts(conn, week)
            for r in store.changes_by_client(conn, start, end):
                counted = counts.setdefault(r.client_id, {})
                counted[rules.CHANGES] = int(r.changes)
                counted[rules.OVERRIDES] = int(r.overrides)
            for r in store.technical_cases_by_client(conn, start, end):
                counts.setdefault(r.client_id, {})[rules.TECHNICAL_CASES] = int(r.cases)
            rows = rules.vendor_rows(week, counts, store.registered_clients(conn))
            return {"report": "vendors", "week": week, "rows": rows}

    def gp_offices(self, access: Access) -> dict[str, Any]:
        """Every GP office of the register, the one furthest behind first."""
        now = self.clock()
        month = rules.this_month(now)
        before = rules.previous_month(month)
        with self._audited(access, "gp-offices") as conn:
            by_her = store.organisations_by_her(conn)
            offices = {
                r.id: rules.Office(r.id, r.name, r.municipality, r.list_patients)
                for r in store.gp_offices(conn)
            }
            for row in store.holders(conn):
                confirmation = orjson.loads(row.confirmation) if row.confirmation else None
                office = offices.get(
                    rules.responsible_office(confirmation, orjson.loads(row.baton), by_her)
                )
                if office is None:
                    continue
                office.with_pll += 1
                if confirmation and now - datetime.fromisoformat(confirmation["at"]) <= YEAR:
                    office.confirmed_12m += 1
            for wanted in (month, before):
                start, end = rules.month_span(wanted)
                for r in store.first_versions(conn, start, end):
                    office = offices.get(rules.organisation_of(orjson.loads(r.author), by_her))
                    if office is None:
                        continue
                    if wanted == month:
                        office.first_lists_this_month += 1
                    else:
                        office.first_lists_previous_month += 1
            return {
                "report": "gp-offices",
                "month": month,
                "previous_month": before,
                "rows": rules.furthest_behind(offices.values()),
            }

    def admit(self, access: Access, what: str) -> None:
        """Refuse (403, the refusal in the audit trail) anyone but the rollout team; asked
        before the request's parameters are looked at."""
        if access.actor.role is Role.ROLLOUT:
            return
        record = self.trail.record(
            access, "read", RESOURCE, what[:60], None, Decision(False, NOT_ROLLOUT)
        )
        with self.db.write() as conn:
            audit_log.append(conn, record)
        raise Forbidden(NOT_ROLLOUT, "report", norwegian=NOT_ROLLOUT_NB)

    @contextmanager
    def _audited(self, access: Access, what: str) -> Iterator[Connection]:
        """A read of one report: refused unless the caller is the rollout team (:meth:`admit`);
        allowed, its audit record joins the transaction the report is read in. ``what``
        names a period already checked: the record holds nothing a caller typed unchecked."""
        self.admit(access, what)
        with self.db.write() as conn:
            audit_log.append(
                conn, self.trail.record(access, "read", RESOURCE, what, None, Decision(True))
            )
            yield conn
