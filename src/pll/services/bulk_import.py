"""Bulk import of synthetic patients (issue 20): ``pll import generate``.

Loads synthetic patients 1..N (:mod:`pll.services.synthetic`) in batches, each batch one
transaction: the rows of every patient stamped from its plan's template
(:mod:`pll.services.bulk_templates`, the service's own rows), written with ``COPY`` on
PostgreSQL (batched inserts on SQLite), with a ``bulk_import`` row naming the batch's numbers.
A stopped import run again loads exactly the numbers no committed batch holds. Into empty
tables (PostgreSQL), the secondary indexes and foreign keys are dropped first and built
once at the end; into tables that hold rows, they stay in place. ``VACUUM (ANALYZE)`` after.
The events go into the outbox like any change's, so the statistics, the read copy and
rest-hook subscriptions see them. The audit records are written sealed into the chain, with
the values the sealer would give them (:meth:`Generator._write_sealed`), so the sealer has
nothing to do after a load. No server or worker may use the database meanwhile
(:mod:`pll.store.load_guard`).

``pll import lists`` (a folder of SFM responses) is :mod:`pll.services.bulk_lists`.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, text

from pll.auth.audit import AuditKey
from pll.services.audit import AuditTrail
from pll.services.base import new_id, utcnow
from pll.services.bulk_templates import Template, TemplateError, capture
from pll.services.synthetic import gp_access, person, plan_of, plans, synthetic_fnrs
from pll.store import bulk
from pll.store.audit_partitions import PartitionsBusy
from pll.store.db import Database
from pll.store.load_guard import loading
from pll.store.schema import (
    audit_event,
    entry,
    entry_version,
    outbox,
    patient,
    pll,
    pll_version,
    provenance_target,
)

#: the tables a generated patient's rows go to, in the order written (the outbox last: its
#: ordering lock is held from its rows to the commit)
TABLES: tuple[Table, ...] = (
    patient,
    pll,
    pll_version,
    entry,
    entry_version,
    provenance_target,
    audit_event,
    outbox,
)
NAMES = frozenset(t.name for t in TABLES)
#: the columns of an audit record the load fills in as it seals it (the service leaves
#: ``id`` to the database and the rest to the sealer)
_SEALED = ("id", "chain_seq", "chain_hash")
DEFAULT_BATCH = 2000

Progress = Callable[[int], None]


def _ignore(_: int) -> None:
    return None


# -- generate ------------------------------------------------------------------------------


def generate_job(seed: int) -> str:
    return f"generate:seed={seed}"


def missing(patients: int, done: Iterable[str], batch: int) -> list[tuple[int, int]]:
    """The numbers 1..``patients`` no done batch (``"first-last"``) holds, as runs of at
    most ``batch``, ``(first, last)`` inclusive."""
    covered = sorted(tuple(int(x) for x in item.split("-")) for item in done)
    out: list[tuple[int, int]] = []
    n = 1
    for first, last in [*covered, (patients + 1, patients + 1)]:
        stop = min(first, patients + 1)
        while n < stop:
            out.append((n, min(n + batch, stop) - 1))
            n = out[-1][1] + 1
        n = max(n, last + 1)
    return out


@dataclass
class Generated:
    """What a ``generate`` run did."""

    requested: int
    already: int
    loaded: int
    seconds: float = 0.0
    deferred: list[str] = field(default_factory=lambda: [])
    built: list[str] = field(default_factory=lambda: [])
    indexes_seconds: float = 0.0
    vacuum_seconds: float = 0.0


class Generator:
    """Loads batches of synthetic patients on one database connection at a time."""

    def __init__(
        self,
        db: Database,
        key: AuditKey,
        seed: int,
        ids: Callable[[], str] = new_id,
        clock: Callable[[], Any] = utcnow,
        templates: dict[int, Template] | None = None,
        upto: int = 0,
    ) -> None:
        self.db = db
        self.key = key
        self.seed = seed
        self.ids = ids
        self.now = clock()
        self.access = gp_access()
        self.templates: dict[int, Template] = templates or {}
        self.postgres = not db.is_sqlite
        #: the fødselsnumre of patients 1..``upto``, made once (a few seconds for a million)
        self._fnrs: list[str] = synthetic_fnrs(upto) if upto else []
        self.lz4 = self.postgres and bulk.has_lz4(db.engine)
        self.trail = AuditTrail(db, key, clock)

    def fnr(self, n: int) -> str:
        if n > len(self._fnrs):
            self._fnrs = synthetic_fnrs(max(n, 2 * len(self._fnrs)))
        return self._fnrs[n - 1]

    def prepare(self, conn: Connection, wanted: Iterable[int]) -> None:
        """Make the templates of the plans ``wanted`` that are not made yet, in ``conn``."""
        for k in sorted(set(wanted) - set(self.templates)):
            plan = plans(self.seed)[k]
            made = capture(self.db, self.key, conn, self.access, plan, self.now)
            unknown = {row.table for row in made.rows} - NAMES
            if unknown:
                # the write path has grown: the load must write (and defer the indexes of)
                # these tables too before it can stand for the service
                raise TemplateError(f"the write path wrote {sorted(unknown)}, not loaded here")
            if any(set(_SEALED) & set(r.columns) for r in made.rows if r.table == "audit_event"):
                raise TemplateError("the write path gave an audit record its id or seal itself")
            self.templates[k] = made

    def batch(self, first: int, last: int) -> None:
        """Patients ``first..last`` in one transaction, with their ``bulk_import`` row."""
        with self.db.write() as conn:
            if self.postgres:
                # a batch lost to a crash is lost with its bulk_import row, and loaded again
                conn.execute(text("SET LOCAL synchronous_commit = off"))
                if self.lz4:
                    # the list documents are compressed as they are stored; lz4 costs the
                    # server a fraction of the default's CPU and reads back the same
                    conn.execute(text("SET LOCAL default_toast_compression = lz4"))
            people = [person(n, self.fnr(n), self.seed) for n in range(first, last + 1)]
            self.prepare(conn, {p.plan for p in people})
            rows: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
            audit: list[tuple[tuple[str, ...], Any, str | None]] = []
            for p in people:
                for row, value, mac in self.templates[p.plan].stamp(
                    p, self.ids, self.key, self.postgres
                ):
                    if row.table == audit_event.name:
                        audit.append((row.columns, value, mac))
                    else:
                        rows.setdefault((row.table, row.columns), []).append(value)
            for table in TABLES:
                # outbox rows get their tx from the database, as the service's do: no lock
                # is needed for their order (pll.events.outbox)
                for (name, columns), values in rows.items():
                    if name != table.name:
                        continue
                    if self.postgres:
                        bulk.copy_lines(conn, name, columns, values)
                    else:
                        bulk.insert_rows(conn, table, values)
            # last: from here to the commit the chain's head is locked
            self._write_sealed(conn, audit)
            bulk.mark_done(conn, generate_job(self.seed), [f"{first}-{last}"])

    def _write_sealed(
        self, conn: Connection, audit: list[tuple[tuple[str, ...], Any, str | None]]
    ) -> None:
        """Write the batch's audit records sealed into the chain, in the order the service
        would have written them: with the ids, positions and hashes the sealer would give
        them (:meth:`AuditTrail.seal_new`), so a load leaves no backlog for the sealer —
        millions of records sealed afterwards by one UPDATE each (issue 20). A batch rolled
        back takes its chain positions with it."""
        sealed = self.trail.seal_new(conn, [mac for _, _, mac in audit])
        grouped: dict[tuple[str, ...], list[Any]] = {}
        for (columns, value, _), (record, seq, chain) in zip(audit, sealed, strict=True):
            if self.postgres:
                line = f"{value[:-1]}\t{record}\t{seq}\t{chain}\n"
                grouped.setdefault(columns, []).append(line)
            else:
                cells = {**value, "id": record, "chain_seq": seq, "chain_hash": chain}
                grouped.setdefault(columns, []).append(cells)
        for columns, values in grouped.items():
            if self.postgres:
                bulk.copy_lines(conn, audit_event.name, (*columns, *_SEALED), values)
            else:
                bulk.insert_rows(conn, audit_event, values)


def generate(
    db: Database,
    key: AuditKey,
    patients: int,
    *,
    seed: int = 1,
    batch: int = DEFAULT_BATCH,
    processes: int = 1,
    progress: Progress = _ignore,
    ids: Callable[[], str] = new_id,
    clock: Callable[[], Any] = utcnow,
    build_indexes: bool = True,
) -> Generated:
    """Load synthetic patients 1..``patients`` not loaded yet (by this seed); see the module.

    ``ids`` and ``clock`` are the service's sources (tests give fixed ones); with more than
    one process each process uses the defaults."""
    with loading(db.engine), bulk.only_run(db.engine, generate_job(seed)):
        return _generate(
            db, key, patients, seed, batch, processes, progress, ids, clock, build_indexes
        )


def _generate(
    db: Database,
    key: AuditKey,
    patients: int,
    seed: int,
    batch: int,
    processes: int,
    progress: Progress,
    ids: Callable[[], str],
    clock: Callable[[], Any],
    build_indexes: bool,
) -> Generated:
    with db.read() as conn:
        done = bulk.done_items(conn, generate_job(seed))
    todo = missing(patients, done, batch)
    report = Generated(patients, patients - sum(b - a + 1 for a, b in todo), 0)
    # the templates first: a write path a template cannot replay is refused before any key
    # of the live tables is dropped
    # one process stamps the patients itself and needs their fødselsnumre
    alone = processes <= 1 or len(todo) < 2
    loader = Generator(db, key, seed, ids, clock, upto=todo[-1][1] if todo and alone else 0)
    wanted = {plan_of(n, seed) for a, b in todo for n in range(a, b + 1)}
    with db.read() as conn:
        loader.prepare(conn, wanted)
    if todo and not db.is_sqlite:
        # the records go into their month's partition, not the default one, from which
        # the sealer would move them later (pll.store.audit_partitions); busy: another
        # process is making them
        with contextlib.suppress(PartitionsBusy):
            loader.trail.keep_partitions()
        with db.write() as conn:
            report.deferred = bulk.defer_indexes(conn, TABLES)
    started = time.perf_counter()
    try:
        if alone:
            for first, last in todo:
                loader.batch(first, last)
                report.loaded += last - first + 1
                progress(last - first + 1)
        else:
            # the templates are made once, here, and handed to every process
            report.loaded = _in_processes(
                db.url, key, seed, loader.templates, todo, processes, progress
            )
    except BaseException:
        # a load that failed leaves no table without its keys: what was loaded is whole
        # (each batch commits with its bulk_import row), and a run again continues. Only a
        # killed command leaves them dropped; `pll serve` then refuses the database.
        if not db.is_sqlite and build_indexes:
            bulk.restore_indexes(db.engine)
        raise
    report.seconds = time.perf_counter() - started
    if not db.is_sqlite and build_indexes:
        t0 = time.perf_counter()
        report.built = bulk.restore_indexes(db.engine)
        report.indexes_seconds = time.perf_counter() - t0
    if report.loaded:
        t0 = time.perf_counter()
        bulk.vacuum_analyze(db.engine, TABLES)
        report.vacuum_seconds = time.perf_counter() - t0
    return report


def end_with_parent(parent: int) -> None:
    """End this loading process when the command that started it ends, however it ends:
    a batch left loading by a killed command could commit after the next run has counted
    it as missing, and be loaded twice (Linux: the kernel's parent-death signal)."""
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: PLC0415  (Linux only)

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _worker(
    url: str,
    secret: bytes,
    seed: int,
    templates: dict[int, Template],
    todo: list[tuple[int, int]],
    done: Any,
    parent: int,
) -> None:
    end_with_parent(parent)
    db = Database(url, pool_size=1)
    try:
        upto = max(last for _, last in todo)
        loader = Generator(db, AuditKey(secret), seed, templates=templates, upto=upto)
        for first, last in todo:
            if os.getppid() != parent:
                return
            loader.batch(first, last)
            done.put(last - first + 1)
    except BaseException as exc:
        done.put(f"loading failed: {exc!r}")
        raise
    finally:
        db.dispose()


def _in_processes(
    url: str,
    key: AuditKey,
    seed: int,
    templates: dict[int, Template],
    todo: list[tuple[int, int]],
    processes: int,
    progress: Progress,
) -> int:
    ctx = mp.get_context("spawn")
    done = ctx.Queue()
    processes = min(processes, len(todo))
    procs = [
        ctx.Process(
            target=_worker,
            args=(url, key.secret, seed, templates, todo[i::processes], done, os.getpid()),
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    remaining = sum(last - first + 1 for first, last in todo)
    loaded = 0
    try:
        while remaining > 0:
            try:
                item = done.get(timeout=5)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("the loading processes ended before the load") from None
                continue
            if isinstance(item, str):
                raise RuntimeError(item)
            remaining -= item
            loaded += item
            progress(item)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
    return loaded
