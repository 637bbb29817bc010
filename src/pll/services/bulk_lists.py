"""``pll import lists FOLDER`` (issue 20): many SFM Basis ``$getMedication`` responses at once.

Every ``*.json`` file of the folder (and every ``*.xml``, which is reported) is imported
through the same import as ``pll import sfm`` (:meth:`SfmService.import_document`), one file
per transaction with its ``bulk_import`` row, so a stopped import run again tries only the
files not yet imported. A file that cannot be imported is reported with its name and what is
wrong (line and column for a file that is not JSON), nothing of it is written, and the rest
are imported.

With ``processes`` above one (PostgreSQL), that many processes share the files out, each
taking the next file not taken; each file is still imported whole in one transaction. Two
files that claim the same thing (one patient, or ids the sender gave) and are imported at the
same moment collide in the database: the file that lost is imported again after the others,
in the command's own process, where it meets what the first wrote, as it would have in one
process — only which of two such files comes first may differ from name order.

At the end the audit records the imports wrote are sealed into the chain
(:meth:`AuditTrail.seal`, batch by batch, so a run stopped there seals the rest next time):
no server or worker runs beside an import (:mod:`pll.store.load_guard`), and the trail is
left whole, with nothing waiting for the sealer.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from pll.auth.audit import AuditKey
from pll.domain.errors import DomainError
from pll.fhir.sfm.lenient_json import parse_lenient
from pll.services.audit import AuditTrail
from pll.services.base import new_id, utcnow
from pll.services.bulk_import import TABLES, Progress, end_with_parent
from pll.services.lists import PLLService
from pll.services.sfm import SfmService
from pll.store import bulk
from pll.store.db import Database
from pll.store.load_guard import loading

#: per file name, the source of the ids the import gives new things (tests give fixed ones;
#: with several processes it must be picklable: a module-level function)
IdsFor = Callable[[str], Callable[[], str]]


def fresh_ids(_name: str) -> Callable[[], str]:
    return new_id


def _ignore(_: int) -> None:
    return None


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
    #: the audit records sealed at the end
    sealed: int = 0
    #: files imported again in the command's process after colliding with another's
    again: int = 0


@dataclass
class Outcome:
    """What became of one file: imported (``entries``, ``warnings``), refused
    (``problem``), or to be tried again (``retry``: it collided with a file imported at the
    same moment by another process)."""

    name: str
    entries: int = 0
    warnings: list[str] = field(default_factory=lambda: [])
    problem: str | None = None
    retry: bool = False


def list_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".json", ".xml")
    )


class _Importer:
    """Imports files one by one on one database connection at a time."""

    def __init__(
        self, db: Database, key: AuditKey, job: str, ids_for: IdsFor, clock: Callable[[], Any]
    ) -> None:
        self.service = PLLService(db, key, clock=clock)
        self.sfm = SfmService(self.service)
        self.job = job
        self.ids_for = ids_for

    def one(self, path: Path, *, shared: bool = False) -> Outcome:
        """Import ``path`` in one transaction. ``shared``: other processes import at the
        same time, and a collision with one of them is an :class:`Outcome` to retry."""
        self.service.ids = self.ids_for(path.name)
        try:
            return self._one(path)
        except DBAPIError:
            if not shared:
                raise
            return Outcome(path.name, retry=True)

    def _one(self, path: Path) -> Outcome:
        if path.suffix.lower() == ".xml":
            return Outcome(
                path.name,
                problem="an XML document: PLL reads SFM Basis documents as JSON (FHIR JSON), "
                "not XML",
            )
        try:
            content = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            return Outcome(path.name, problem=f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        except OSError as exc:
            return Outcome(path.name, problem=f"cannot be read ({exc.strerror})")

        def mark(conn: Connection) -> None:
            bulk.mark_done(conn, self.job, [path.name])

        try:
            data, forgiven = parse_lenient(content)
            done = self.sfm.import_document(data, also=mark)
        except DomainError as exc:
            where = f" (at {exc.expression})" if exc.expression else ""
            return Outcome(path.name, problem=f"{exc.message}{where}")
        warnings = [f"{path.name}: {w}" for w in [*forgiven, *done.warnings]]
        return Outcome(path.name, done.entries, warnings)


def import_lists(
    db: Database,
    key: AuditKey,
    folder: Path,
    *,
    processes: int = 1,
    progress: Progress = _ignore,
    ids_for: IdsFor = fresh_ids,
    clock: Callable[[], Any] = utcnow,
) -> ListsImported:
    """Import every file of ``folder`` not imported yet, then seal the audit trail; see
    the module. Refused (:class:`~pll.store.load_guard.LoadRefused`) while PLL servers or
    workers use the database."""
    with loading(db.engine):
        return _import(db, key, folder, processes, progress, ids_for, clock)


def _import(
    db: Database,
    key: AuditKey,
    folder: Path,
    processes: int,
    progress: Progress,
    ids_for: IdsFor,
    clock: Callable[[], Any],
) -> ListsImported:
    job = lists_job(folder)
    files = list_files(folder)
    with db.read() as conn:
        done = set(bulk.done_items(conn, job))
    report = ListsImported(len(files), sum(1 for f in files if f.name in done))
    todo = [p for p in files if p.name not in done]
    importer = _Importer(db, key, job, ids_for, clock)
    started = time.perf_counter()
    if processes > 1 and not db.is_sqlite and len(todo) > 1:
        outcomes = _in_processes(db.url, key, job, todo, processes, progress, ids_for, clock)
        again = sorted((o for o in outcomes if o.retry), key=lambda o: o.name)
        report.again = len(again)
        outcomes = [o for o in outcomes if not o.retry]
        outcomes += [importer.one(folder / o.name) for o in again]
    else:
        outcomes = []
        for path in todo:
            outcomes.append(importer.one(path))
            progress(1)
    for outcome in sorted(outcomes, key=lambda o: o.name):
        if outcome.problem is not None:
            report.bad.append(Bad(outcome.name, outcome.problem))
            continue
        report.imported += 1
        report.entries += outcome.entries
        report.warnings += outcome.warnings
    report.seconds = time.perf_counter() - started
    # also when nothing was imported now: a run stopped before it sealed is finished here
    report.sealed = AuditTrail(db, key, clock).seal()
    if report.imported:
        bulk.vacuum_analyze(db.engine, TABLES)
    return report


def _worker(
    url: str,
    secret: bytes,
    job: str,
    names: Any,
    results: Any,
    ids_for: IdsFor,
    clock: Callable[[], Any],
    parent: int,
) -> None:
    end_with_parent(parent)
    db = Database(url, pool_size=1)
    try:
        importer = _Importer(db, AuditKey(secret), job, ids_for, clock)
        while (path := names.get()) is not None:
            if os.getppid() != parent:
                return
            results.put(importer.one(Path(path), shared=True))
    except BaseException as exc:
        results.put(f"importing failed: {exc!r}")
        raise
    finally:
        db.dispose()


def _in_processes(
    url: str,
    key: AuditKey,
    job: str,
    todo: list[Path],
    processes: int,
    progress: Progress,
    ids_for: IdsFor,
    clock: Callable[[], Any],
) -> list[Outcome]:
    ctx = mp.get_context("spawn")
    names, results = ctx.Queue(), ctx.Queue()
    processes = min(processes, len(todo))
    for path in todo:
        names.put(str(path))
    for _ in range(processes):
        names.put(None)
    args = (url, key.secret, job, names, results, ids_for, clock, os.getpid())
    procs = [ctx.Process(target=_worker, args=args) for _ in range(processes)]
    for p in procs:
        p.start()
    outcomes: list[Outcome] = []
    try:
        while len(outcomes) < len(todo):
            try:
                item = results.get(timeout=5)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("the importing processes ended before the import") from None
                continue
            if isinstance(item, str):
                raise RuntimeError(item)
            outcomes.append(item)
            progress(1)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
    return outcomes
