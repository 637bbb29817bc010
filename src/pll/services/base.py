"""What every use case shares: the database, the clock, ids, the audit trail, and the guard
that logs what a refusal leaves behind (DESIGN §3 rule 5)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

from pll.auth.access import Access, Verb
from pll.auth.audit import AuditKey
from pll.domain.errors import DomainError, VersionConflict
from pll.domain.technical_cases import CaseRules
from pll.services.audit import AuditTrail
from pll.services.rollout_reports import count_refusal
from pll.services.stats import conflict_in
from pll.store import repository as repo
from pll.store.db import Database


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


#: What a relay-baton conflict is about: the list or one of its entries or prescriptions
#: (a stale version of an allergy or a case is a conflict too, but not the baton's).
_BATON = frozenset({"List", "MedicationStatement", "MedicationRequest"})


@dataclass(frozen=True)
class Stored:
    """A stored JSON document as text, with its version."""

    text: str
    version: int
    updated: datetime
    patient_id: str


class ServiceBase:
    """The database, clock, ids and audit trail of the list services."""

    def __init__(
        self,
        db: Database,
        key: AuditKey,
        clock: Callable[[], datetime] = utcnow,
        ids: Callable[[], str] = new_id,
    ) -> None:
        self.db = db
        self.clock = clock
        self.ids = ids
        self.trail = AuditTrail(db, key, clock)
        #: Told of every refusal a use case makes (the application counts them for
        #: ``/metrics``); ``None`` tells no one.
        self.on_refusal: Callable[[DomainError], None] | None = None
        #: Deadlines of cases, the national queue, when a failing subscription opens a
        #: technical case (issue 18); the application sets them from the environment.
        self.case_rules = CaseRules()

    @contextmanager
    def guard(self, access: Access) -> Iterator[None]:
        """Log what a refusal leaves behind once its transaction has rolled back: a refused
        access (rule 5), and the read that a relay-baton refusal makes by handing back the
        current version, with the refusal counted for the statistics. Every use case runs
        under it, so it is also where refusals are told to :attr:`on_refusal`."""
        # the refusal's audit record first (rule 5), its count for the client system after
        # it, best effort: a count that cannot be written never replaces the refusal
        with self._settled(access), self._by_client(access), self.trail.refusals(), self._told():
            try:
                yield
            except VersionConflict as exc:
                shown = [r for r in exc.resources if r.get("resourceType") in repo.RESOURCE_TABLES]
                with self.db.write() as conn:
                    patient_id = None
                    for resource in shown:
                        rtype, rid = resource["resourceType"], resource["id"]
                        row = repo.resource_row(conn, rtype, rid)
                        if row is not None:
                            patient_id = row.patient_id
                            self.trail.admit(
                                conn, access, Verb.READ, row.patient_id, "read", rtype, rid
                            )
                    if exc.expression in _BATON:
                        # the rollout statistics count them per 1,000 changes (issue 8)
                        conflict_in(conn, patient_id, access.actor.org_id, self.clock())
                raise

    @staticmethod
    @contextmanager
    def _settled(access: Access) -> Iterator[None]:
        """A page view's reads count as logged once the use case has ended cleanly, its
        transactions committed (:class:`~pll.auth.access.ReadLog`)."""
        if access.reads is None:
            yield
            return
        committed = False
        try:
            yield
            committed = True
        finally:
            access.reads.settle(committed=committed)

    @contextmanager
    def _by_client(self, access: Access) -> Iterator[None]:
        """Count a refusal for the client system it came through: the rollout team's
        per-vendor figures (issue 19, :func:`pll.services.rollout_reports.count_refusal`),
        once the refusal is logged; best effort, it never raises."""
        try:
            yield
        except DomainError as exc:
            count_refusal(self.db, access, exc, self.clock())
            raise

    @contextmanager
    def _told(self) -> Iterator[None]:
        try:
            yield
        except DomainError as exc:
            if self.on_refusal is not None:
                self.on_refusal(exc)
            raise


S = TypeVar("S", bound=ServiceBase)
P = ParamSpec("P")
R = TypeVar("R")


def guarded(
    method: Callable[Concatenate[S, Access, P], R],
) -> Callable[Concatenate[S, Access, P], R]:
    """Run a use case under :meth:`ServiceBase.guard`, so every refusal it makes is logged."""

    @wraps(method)
    def run(self: S, access: Access, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.guard(access):
            return method(self, access, *args, **kwargs)

    return run


def members(list_json: dict[str, Any]) -> dict[str, int]:
    """The entries of a stored List and their versions."""
    out = {}
    for item in list_json.get("entry", []):
        ref = item["item"]["reference"]  # MedicationStatement/{id}/_history/{v}
        _, eid, _, version = ref.split("/")
        out[eid] = int(version)
    return out


def relocate(expression: str | None, rtype: str | None, where: str) -> str:
    """``MedicationStatement.status`` of Bundle entry 2 is ``Bundle.entry[2].resource.status``."""
    if expression and rtype and expression.startswith(rtype):
        return where + expression[len(rtype) :]
    return where
