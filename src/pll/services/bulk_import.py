"""Bulk import of many lists (issue 20): ``pll import generate`` and ``pll import lists``.

**Generate** loads synthetic patients 1..N (:mod:`pll.services.synthetic`) in batches, each
batch one transaction: the rows of every patient stamped from its plan's template
(:mod:`pll.services.bulk_templates`, the service's own rows), written with ``COPY`` on
PostgreSQL (batched inserts on SQLite), with a ``bulk_import`` row naming the batch's numbers.
A stopped import run again loads exactly the numbers no committed batch holds. Into empty
tables (PostgreSQL), the secondary indexes and foreign keys are dropped first and built
once at the end; into tables that hold rows, they stay in place. ``VACUUM (ANALYZE)`` after.
The events go into the outbox like any change's (the outbox's ordering lock taken as the
service takes it), so the statistics, the read copy and rest-hook subscriptions see them.

**Lists** imports every ``*.json`` (and reports every ``*.xml``) file of a folder, each an SFM
Basis ``$getMedication`` response, through the same import as ``pll import sfm``, one file
per transaction with its ``bulk_import`` row. A file that cannot be imported is reported with
its name and what is wrong (line and column for a file that is not JSON), nothing of it is
written, and the rest are imported; a run again retries only the files not yet imported.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, text

from pll.auth.audit import AuditKey
from pll.domain.errors import DomainError
from pll.fhir.sfm.reading import parse_lenient
from pll.services.base import new_id, utcnow
from pll.services.bulk_templates import Template, TemplateError, capture
from pll.services.lists import PLLService
from pll.services.sfm import SfmService
from pll.services.synthetic import gp_access, person, plan_of, plans, synthetic_fnrs
from pll.store import bulk
from pll.store.db import Database
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
            for p in people:
                for row, value in self.templates[p.plan].stamp(
                    p, self.ids, self.key, self.postgres
                ):
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
            bulk.mark_done(conn, generate_job(self.seed), [f"{first}-{last}"])


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
    with bulk.only_run(db.engine, generate_job(seed)):
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


def _die_with(parent: int) -> None:
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
    _die_with(parent)
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


# -- lists ---------------------------------------------------------------------------------


def lists_job(folder: Path) -> str:
    return f"lists:{folder.resolve()}"


@dataclass
class Bad:
    """A file that was not imported, and why."""

    name: str
    problem: str


@dataclass
class ListsImported:
    files: int
    already: int
    imported: int = 0
    entries: int = 0
    bad: list[Bad] = field(default_factory=lambda: [])
    warnings: list[str] = field(default_factory=lambda: [])
    seconds: float = 0.0


def list_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".json", ".xml")
    )


def import_lists(
    db: Database,
    key: AuditKey,
    folder: Path,
    *,
    progress: Progress = _ignore,
    service: PLLService | None = None,
) -> ListsImported:
    """Import every file of ``folder`` not imported yet; see the module."""
    job = lists_job(folder)
    files = list_files(folder)
    with db.read() as conn:
        done = set(bulk.done_items(conn, job))
    report = ListsImported(len(files), sum(1 for f in files if f.name in done))
    sfm = SfmService(service or PLLService(db, key))
    started = time.perf_counter()
    for path in files:
        if path.name in done:
            continue
        problem = _import_one(sfm, job, path, report)
        if problem is not None:
            report.bad.append(Bad(path.name, problem))
        progress(1)
    report.seconds = time.perf_counter() - started
    if report.imported:
        bulk.vacuum_analyze(db.engine, TABLES)
    return report


def _import_one(sfm: SfmService, job: str, path: Path, report: ListsImported) -> str | None:
    if path.suffix.lower() == ".xml":
        return "an XML document: PLL reads SFM Basis documents as JSON (FHIR JSON), not XML"
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"

    def mark(conn: Connection) -> None:
        bulk.mark_done(conn, job, [path.name])

    try:
        data, forgiven = parse_lenient(content)
        done = sfm.import_document(data, also=mark)
    except DomainError as exc:
        where = f" (at {exc.expression})" if exc.expression else ""
        return f"{exc.message}{where}"
    report.imported += 1
    report.entries += done.entries
    report.warnings += [f"{path.name}: {w}" for w in [*forgiven, *done.warnings]]
    return None
