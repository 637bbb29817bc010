"""The audit trail: who touched which patient's data, on what basis, with what outcome.

Every read and write of patient data passes :meth:`AuditTrail.admit` (through
:class:`~pll.services.lists.PLLService`), which decides access with the caller's
:class:`~pll.auth.access.Access` and writes the record in the caller's transaction — so a
write and its record commit together, and a read's record is durable before the answer
goes out. :meth:`seal` links records into the hash chain; :meth:`verify` checks the whole
log (``pll audit verify``). See :mod:`pll.auth.audit` for what the seal proves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Row

from pll.auth import audit as seal_math
from pll.auth.access import Access, Decision, PatientFacts, Verb
from pll.domain.errors import Forbidden, NotFound
from pll.domain.model import Multidose
from pll.store import audit_log, audit_partitions
from pll.store import multidose as multidose_store
from pll.store.audit_partitions import Partition, PartitionsBusy
from pll.store.db import Database

log = logging.getLogger("pll.audit")

#: Partitions are made this many months ahead of the current one (PostgreSQL, issue 20).
PARTITIONS_AHEAD = 3
#: How often a sealing process checks that the months ahead have their partitions, and how
#: soon it tries again when another transaction held a lock it needed.
PARTITIONS_CHECK = timedelta(hours=1)
PARTITIONS_RETRY = timedelta(minutes=1)


@dataclass
class Refused(Forbidden):
    """Access refused by the policy; ``record`` is logged after the transaction rolls back."""

    record: dict[str, Any] | None = None


def actor_json(access: Access) -> str:
    """The audit record's ``actor``: the person, their organisation and the client system."""
    data: dict[str, Any] = access.actor.to_json()
    if access.client_id:
        data["client_id"] = access.client_id
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def audit_record(
    key: seal_math.AuditKey,
    actor: str,
    access: Access,
    action: str,
    rtype: str,
    rid: str | None,
    patient_id: str | None,
    decision: Decision,
    now: datetime,
) -> dict[str, Any]:
    """The audit row for one access (``actor``: :func:`actor_json` of ``access``), with
    its MAC: what the store's trail appends, and what the read copy keeps and forwards."""
    basis = access.basis.value if access.basis else None
    outcome = decision.outcome.value
    mac = key.mac(
        seal_math.canonical(
            now, actor, action, rtype, basis, outcome, rid, patient_id, decision.flag
        )
    )
    return {
        "recorded_at": now,
        "actor": actor,
        "action": action,
        "resource_type": rtype,
        "resource_id": rid,
        "patient_id": patient_id,
        "basis": basis,
        "outcome": outcome,
        "flag": decision.flag,
        "mac": mac,
    }


def decide(
    conn: Connection, access: Access, verb: Verb, patient_id: str
) -> tuple[PatientFacts, Decision]:
    """The policy's verdict on ``access`` doing ``verb`` to this patient's data, from the
    facts the store holds now; nothing is logged (:meth:`AuditTrail.admit` does that)."""
    facts, decision, _ = _decided(conn, access, verb, patient_id, for_change=False)
    return facts, decision


def _decided(
    conn: Connection, access: Access, verb: Verb, patient_id: str, *, for_change: bool
) -> tuple[PatientFacts, Decision, Row[Any]]:
    row = audit_log.facts(conn, patient_id, **access.fact_keys(), for_change=for_change)
    if row is None:
        raise NotFound(f"Patient/{patient_id} does not exist.", "patient")
    facts = PatientFacts.of(patient_id, row)
    return facts, access.decide(verb, facts), row


@dataclass(frozen=True)
class Admitted:
    """What admitting a change of a patient's list read, in the one statement that decided
    access (issue 20): the facts, the patient's multidose state, the catalogue version in
    use and whether the patient has an active reaction, handed on so the change reads none
    of them again (and the reactions only if there are any)."""

    facts: PatientFacts
    multidose: Multidose
    catalogue: int | None
    reactions: bool
    #: the audit row of the admission (written already, unless admitted with ``log=False``)
    record: dict[str, Any]


@dataclass
class AuditTrail:
    """Decides access to one patient's data and records it, on one database and key."""

    db: Database
    key: seal_math.AuditKey
    clock: Callable[[], datetime]
    partitions_ahead: int = PARTITIONS_AHEAD
    _actors: dict[Access, str] = field(default_factory=dict, repr=False)
    _partitions_due: datetime | None = field(default=None, repr=False)

    def actor(self, access: Access) -> str:
        found = self._actors.get(access)
        if found is None:
            if len(self._actors) > 10_000:
                self._actors.clear()
            found = self._actors[access] = actor_json(access)
        return found

    def record(
        self,
        access: Access,
        action: str,
        rtype: str,
        rid: str | None,
        patient_id: str | None,
        decision: Decision,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """The audit row for one access, with its MAC."""
        return audit_record(
            self.key,
            self.actor(access),
            access,
            action,
            rtype,
            rid,
            patient_id,
            decision,
            now or self.clock(),
        )

    def admit(
        self,
        conn: Connection,
        access: Access,
        verb: Verb,
        patient_id: str,
        action: str,
        rtype: str,
        rid: str | None,
    ) -> PatientFacts:
        """Decide whether ``access`` may ``verb`` this patient's data, and log it.

        Allowed: the record joins the caller's transaction. Refused: :class:`Refused` carries
        the record, which :meth:`refusals` writes once the transaction has rolled back. A
        read that is part of a page view already logged (``access.reads``) is decided but
        adds no second record.
        """
        facts, record = self.admit_unlogged(conn, access, verb, patient_id, action, rtype, rid)
        self.log(conn, access, verb, patient_id, record)
        return facts

    def log(
        self, conn: Connection, access: Access, verb: Verb, patient_id: str, record: dict[str, Any]
    ) -> None:
        """Write the record of an allowed access (from :meth:`admit_unlogged`) in the
        caller's transaction; a read that is part of a page view already logged
        (``access.reads``: by a read, or by the pharmacy's packing basis) writes none."""
        reads = access.reads
        if reads is not None:
            if verb is Verb.READ and patient_id in reads:
                return
            reads.pending(patient_id)
        audit_log.append(conn, record)

    def admit_unlogged(
        self,
        conn: Connection,
        access: Access,
        verb: Verb,
        patient_id: str,
        action: str,
        rtype: str,
        rid: str | None,
    ) -> tuple[PatientFacts, dict[str, Any]]:
        """:meth:`admit`, leaving the record of an allowed access to the caller: for a read
        that is part of one already logged (a page that read the list shows what else
        there is), which writes its record only when it shows something. A refusal is
        logged as by :meth:`admit`."""
        facts, decision = decide(conn, access, verb, patient_id)
        record = self.record(access, action, rtype, rid, patient_id, decision)
        if not decision.allowed:
            raise Refused(decision.message, record=record, norwegian=decision.norwegian)
        return facts, record

    def admit_change(
        self,
        conn: Connection,
        access: Access,
        verb: Verb,
        patient_id: str,
        action: str,
        rtype: str,
        rid: str | None,
        *,
        log: bool = True,
    ) -> Admitted:
        """:meth:`admit` for a change of the patient's list: the same decision and record,
        with what the change needs besides from the same statement (:class:`Admitted`).
        ``log=False``: the caller writes ``record`` with :meth:`log` later in the same
        transaction (with the change's other rows, in one round trip: issue 20)."""
        facts, decision, row = _decided(conn, access, verb, patient_id, for_change=True)
        record = self.record(access, action, rtype, rid, patient_id, decision)
        if not decision.allowed:
            raise Refused(decision.message, record=record, norwegian=decision.norwegian)
        if log:
            self.log(conn, access, verb, patient_id, record)
        catalogue = row.catalogue
        return Admitted(
            facts,
            multidose_store.state_of(row),
            int(catalogue) if catalogue is not None else None,
            bool(row.reactions),
            record,
        )

    @contextmanager
    def refusals(self) -> Iterator[None]:
        """Log refused accesses: the refusal rolled its transaction back, the record stays."""
        try:
            yield
        except Refused as exc:
            if exc.record is not None:
                with self.db.write() as conn:
                    audit_log.append(conn, exc.record)
            raise

    # -- the seal ----------------------------------------------------------------------------

    def seal(self, batch: int = 5000, stop: Callable[[], bool] = lambda: False) -> int:
        """Link every record not yet in the chain, in batches; returns how many. Each batch
        takes the chain's head row for its transaction, so sealers in several processes
        take turns and never seal a record twice. ``stop`` is asked between batches (a
        worker told to stop finishes the batch in hand).

        On PostgreSQL it first sees, at most once an hour, that this month and the next
        :data:`PARTITIONS_AHEAD` have their partitions (:meth:`keep_partitions`): the sealer
        runs in every process that serves or works, so the partitions are made wherever PLL
        runs, well before a record needs one."""
        now = self.clock()
        if not self.db.is_sqlite and (self._partitions_due is None or now >= self._partitions_due):
            try:
                made = self.keep_partitions()
            except PartitionsBusy as exc:
                log.warning("audit partitions not checked, a lock was busy (%s); retrying", exc)
                self._partitions_due = now + PARTITIONS_RETRY
            else:
                if made:
                    log.info("audit partitions made: %s", ", ".join(made))
                self._partitions_due = now + PARTITIONS_CHECK
        sealed = 0
        while not stop():
            with self.db.write() as conn:
                head = audit_log.chain_head(conn, lock=True)
                rows = audit_log.unsealed(conn, batch)
                if not rows:
                    return sealed
                if head is None:
                    # A log emptied by hand (tests) starts a new chain; 0002 made the first.
                    audit_log.start_chain(conn)
                    seq, current = 0, seal_math.GENESIS
                else:
                    seq, current = int(head.seq), str(head.hash)
                seals = []
                for row in rows:
                    seq += 1
                    current = self.key.link(current, seq, int(row.id), row.mac)
                    seals.append(
                        {"record": row.id, "at": row.recorded_at, "seq": seq, "hash": current}
                    )
                audit_log.seal(conn, seals, seq, current)
                sealed += len(rows)
        return sealed

    def unsealed(self, cap: int = 100_000) -> tuple[int, float]:
        """How many records wait for the sealer (counted up to ``cap``) and how old the
        oldest is, in seconds (0 when none waits). An age that keeps growing says that no
        sealer runs (``pll worker``, issue 20)."""
        with self.db.read() as conn:
            count, oldest = audit_log.unsealed_backlog(conn, cap)
        age = (self.clock() - oldest).total_seconds() if oldest is not None else 0.0
        return count, max(age, 0.0)

    def keep_partitions(self, ahead: int | None = None) -> list[str]:
        """Make the audit trail's partitions of this month, the ``ahead`` months after it
        (:data:`PARTITIONS_AHEAD` by default) and any month whose records wait in the default
        partition; returns the names made (none on SQLite, which keeps one table). Raises
        :class:`PartitionsBusy`, having changed nothing, when a lock stayed busy."""
        if self.db.is_sqlite:
            return []
        with self.db.write() as conn:
            return audit_partitions.ensure(
                conn, self.clock(), self.partitions_ahead if ahead is None else ahead
            )

    def partitions(self) -> list[Partition]:
        """The partitions with their row estimates and sizes (``pll audit partitions``)."""
        if self.db.is_sqlite:
            return []
        with self.db.read() as conn:
            return audit_partitions.listing(conn)

    def verify(self, progress: Callable[[int, int], None] | None = None) -> Verification:
        """Check every record's MAC and the chain through the sealed ones, in one snapshot
        of the log (sealers keep working meanwhile, and are not held up)."""
        result = Verification()
        with self.db.snapshot() as conn:
            head = audit_log.chain_head(conn)
            total = audit_log.count(conn)
            legacy_upto = int(head.legacy_upto) if head is not None else 0
            previous, expected, held_by = seal_math.GENESIS, 1, None
            for done, row in enumerate(audit_log.all_records(conn), start=1):
                if progress is not None and (done % 1000 == 0 or done == total):
                    progress(done, total)
                result.records += 1
                self._check_mac(row, legacy_upto, result)
                if row.chain_seq is None:
                    result.unsealed += 1
                    continue
                seq = int(row.chain_seq)
                if seq == expected - 1 and seq > 0:
                    # one index per month cannot keep a position unique across months
                    result.problem(
                        row.id,
                        f"record id {row.id} claims chain position #{seq}, which record id "
                        f"{held_by} holds: a sealed record was copied or re-sealed",
                    )
                    continue
                if seq != expected:
                    result.problem(
                        row.id,
                        f"the chain jumps from record #{expected - 1} to #{seq}: "
                        f"{seq - expected} sealed record(s) before record id {row.id} "
                        "are missing (deleted)",
                    )
                link = self.key.link(previous, seq, int(row.id), row.mac)
                if link != row.chain_hash:
                    result.problem(
                        row.id,
                        f"record id {row.id} (chain #{seq}) does not follow from the record "
                        "before it: its chain hash is wrong (moved, re-sealed or forged)",
                    )
                previous, expected, held_by = str(row.chain_hash), seq + 1, row.id
            result.head = previous
            self._check_head(head, expected - 1, previous, result)
        return result

    @staticmethod
    def _check_head(head: Any, sealed: int, last_hash: str, result: Verification) -> None:
        if head is None:
            if sealed:
                result.problem(None, "the chain head is missing (deleted)")
            return
        if result.legacy != int(head.legacy_count):
            result.problem(
                None,
                f"{result.legacy} records without a MAC claim to predate the seal, but "
                f"{head.legacy_count} did: records were inserted or deleted among them",
            )
        if int(head.seq) != sealed:
            result.problem(
                None,
                f"the chain head says {head.seq} records are sealed but the log holds "
                f"{sealed}: the newest sealed records were deleted",
            )
        elif head.hash != last_hash:
            result.problem(None, "the chain head's hash does not match the last sealed record")

    def _check_mac(self, row: Any, legacy_upto: int, result: Verification) -> None:
        if row.mac is None:
            if 0 < int(row.id) <= legacy_upto:
                result.legacy += 1
                return
            result.problem(
                row.id, f"record id {row.id} has no MAC: it was not written by PLL (inserted)"
            )
            return
        content = seal_math.canonical(
            row.recorded_at,
            row.actor,
            row.action,
            row.resource_type,
            row.basis,
            row.outcome,
            row.resource_id,
            row.patient_id,
            row.flag,
        )
        if self.key.mac(content) != row.mac:
            result.problem(
                row.id,
                f"record id {row.id} does not match its MAC: it was edited, or inserted by "
                "someone without the audit key",
            )


@dataclass
class Verification:
    """What ``pll audit verify`` found."""

    records: int = 0
    unsealed: int = 0
    legacy: int = 0
    head: str = seal_math.GENESIS
    problems: list[tuple[int | None, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, record_id: int | None, message: str) -> None:
        self.problems.append((record_id, message))
