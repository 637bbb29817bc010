"""List reads served by the read copy: decided on the copy's own facts, logged in the copy.

The same rules as a read from the store, applied to what the copy holds, so a list stays
readable while the store is down (``docs/events.md``, "The read copy"):

- what no patient's facts could allow is refused before anyone is looked up
  (:meth:`pll.auth.access.Access.refusal`), and a patient naming a person who is neither
  themselves nor someone they hold a proxy for is refused alike whether or not that person
  is known (:meth:`~pll.auth.access.Access.speaks_for`);
- the patient's facts — blocks, proxies, multidose parties, care units — come from the copy
  (:mod:`pll.events.readcopy_facts`) and :meth:`pll.auth.access.Access.decide` decides on
  them: there is one policy, and the store's reads ask it too;
- the record has the content the store's trail would hold (:func:`pll.services.audit
  .audit_record`, action ``read-copy``), is written to the copy in the transaction that read
  the list, before the answer, and reaches the store's trail later
  (:mod:`pll.events.readcopy_audit`). A refusal is recorded too.

The one thing that needs the store: a discontinued entry whose 90 days are over leaves the
list by a version the store makes (DESIGN §3 rule 3). When the copied document has expired
the copy asks the store for it; with the store away it serves the document it has, and asks
again no sooner than :data:`STORE_RETRY` later (a try may wait for a connection).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from pll.auth.access import NOT_YOURS, Access, Decision, Verb
from pll.auth.audit import AuditKey
from pll.domain.errors import Forbidden, NotFound, Unavailable
from pll.domain.identifiers import parse_person_identifier
from pll.domain.prescriptions import local_day
from pll.events import readcopy_audit
from pll.events import readcopy_facts as facts_store
from pll.events.readcopy import ReadCopy, by_person
from pll.fhir.expiry import marked_document
from pll.services.audit import actor_json, audit_record
from pll.services.patient_records import early_refusal

log = logging.getLogger("pll.readcopy")

#: the audit action of a read served (or refused) by the read copy: the patient's access
#: log shows it as such (pll.fhir.access)
ACTION = "read-copy"

#: how long the copy serves expired lists as copied after the store failed to answer
STORE_RETRY = timedelta(seconds=30)

_UNREADY = (
    "The read copy is still copying from PLL who may read which list; it serves lists "
    "once it has done so. Try again shortly."
)


class ReadCopyReads:
    """Reads of the copy's lists for health personnel and patients (and their proxies).

    ``expire`` lets a list's expired discontinued entries leave it in the store
    (:meth:`pll.services.list_versions.ListVersions.expire`); ``None``: not tried."""

    def __init__(
        self,
        copy: ReadCopy,
        key: AuditKey,
        clock: Callable[[], datetime],
        expire: Callable[[str], object] | None = None,
    ) -> None:
        self.copy, self.key, self.clock, self.expire = copy, key, clock, expire
        self._actors: dict[Access, str] = {}
        #: the store did not answer: expired lists are served as copied until then
        self._away_until: datetime | None = None

    def _actor(self, access: Access) -> str:
        """The record's actor, made once per caller (as :class:`pll.services.audit
        .AuditTrail` does: it costs as much as the rest of the record)."""
        found = self._actors.get(access)
        if found is None:
            if len(self._actors) > 10_000:
                self._actors.clear()
            found = self._actors[access] = actor_json(access)
        return found

    def read_list(self, access: Access, system: str | None, value: str) -> str:
        """The list document of the person with this number, as a FHIR document Bundle;
        :class:`Forbidden` (logged) when the policy refuses, :class:`NotFound` when the
        copy has no list for them, :class:`Unavailable` while the copy lacks its facts."""
        person = parse_person_identifier(system or None, value, "patient.identifier")
        early_refusal(access, Verb.READ)
        if not self.copy.facts_complete():
            raise Unavailable(_UNREADY)
        pid = access.actor.pid
        with self.copy.copy.write() as conn:
            found = by_person(conn, person.system, person.value)
            if access.is_patient and not access.speaks_for(
                person.value,
                bool(pid)
                and person.value != pid
                and facts_store.holds_proxy(conn, pid or "", person.value),
            ):
                decision = Decision(False, NOT_YOURS)
            elif found is None:
                decision = None
            else:
                facts = facts_store.facts(
                    conn, found.patient_id, person.value, **access.fact_keys()
                )
                decision = access.decide(Verb.READ, facts)
            if found is not None and decision is not None:
                record = audit_record(
                    self.key,
                    self._actor(access),
                    access,
                    ACTION,
                    "List",
                    found.list_id,
                    found.patient_id,
                    decision,
                    self.clock(),
                )
                readcopy_audit.append(conn, record)
        if decision is not None and not decision.allowed:
            raise Forbidden(decision.message, norwegian=decision.norwegian)
        if found is None:
            raise NotFound("The read copy has no list for this patient.", "patient.identifier")
        document = found.document
        if found.expires_at is not None and found.expires_at <= self.clock():
            document = self._expired(found.list_id, found.patient_id, document)
        # a copy stored before prescriptions said when they expire has no markers
        return marked_document(document, local_day(self.clock()))

    def _expired(self, list_id: str, patient_id: str, document: str) -> str:
        """The document once the store has let the entries past their 90 days leave the
        list (rule 3), or ``document`` as the copy has it when the store cannot."""
        now = self.clock()
        if self.expire is None or (self._away_until is not None and now < self._away_until):
            return document
        try:
            self.expire(list_id)
            self.copy.refresh(list_id)
        except Exception as exc:  # the store is away: the copy serves what it has
            # and does not ask again for a while: each try may wait for a connection
            self._away_until = now + STORE_RETRY
            log.warning(
                "read copy: list %s has expired entries the store could not drop "
                "now (%s); served as copied",
                list_id,
                exc,
            )
            return document
        refreshed = self.copy.document(patient_id)
        return str(refreshed.document) if refreshed is not None else document
