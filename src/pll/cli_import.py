"""``pll import lists`` and ``pll import generate``: many lists at once (issue 20).

Both continue where a stopped run stopped (run the same command again); a progress bar on a
terminal, a plain line every few seconds otherwise (a log). What they write and how:
:mod:`pll.services.bulk_import`, ``docs/bulk-import.md``.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pll import cli_common as common
from pll.config import Settings

if TYPE_CHECKING:
    from pll.store.db import Database


def add_bulk_commands(group: click.Group) -> None:
    """Put ``lists`` and ``generate`` into the ``pll import`` group."""
    group.add_command(import_lists)
    group.add_command(import_generate)


@contextmanager
def _progress(what: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich bar on a terminal (stderr); a plain line every 5 s otherwise."""
    from rich.console import Console  # noqa: PLC0415  (the CLI starts fast without it)
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    started = time.perf_counter()
    if console.is_terminal:
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(what, total=total, rate="")

            def advance(n: int) -> None:
                bar.advance(task, n)
                done = bar.tasks[0].completed
                bar.update(task, rate=f"{done / (time.perf_counter() - started):,.0f}/s")

            yield advance
        return
    done = [0]
    last = [started]

    def line(n: int) -> None:
        done[0] += n
        now = time.perf_counter()
        if now - last[0] >= 5 or done[0] == total:
            last[0] = now
            rate = done[0] / max(now - started, 1e-9)
            click.echo(f"  {what}: {done[0]:,}/{total:,} ({rate:,.0f}/s)", err=True)

    yield line


def _database(settings: Settings) -> Database:
    database = common.database(settings)
    database.upgrade()
    return database


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # kB on Linux


@click.command("generate")
@click.option("--patients", type=click.IntRange(min=1), required=True, help="load patients 1..N")
@click.option("--seed", type=int, default=1, show_default=True, help="which synthetic patients")
@click.option(
    "--batch",
    type=click.IntRange(min=1, max=100_000),
    default=2000,
    show_default=True,
    help="patients a transaction",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1, max=16),
    default=1,
    show_default=True,
    help="loading processes (PostgreSQL; SQLite takes one writer)",
)
def import_generate(patients: int, seed: int, batch: int, processes: int) -> None:
    """Load synthetic patients 1..N, each with a list of 4-8 entries, as the service writes
    them (the benchmark's patients). Run again, it loads only what is missing."""
    from pll.services.bulk_import import generate, generate_job, missing  # noqa: PLC0415
    from pll.services.bulk_templates import TemplateError  # noqa: PLC0415
    from pll.store import bulk  # noqa: PLC0415
    from pll.store.load_guard import LoadRefused  # noqa: PLC0415

    settings = common.settings()
    database = _database(settings)
    with database.read() as conn:
        done = bulk.done_items(conn, generate_job(seed))

    todo = sum(b - a + 1 for a, b in missing(patients, done, batch))
    if database.is_sqlite:
        processes = 1
    if todo:
        click.echo(
            "the service writes each plan's rows once first (up to 256 plans: on PostgreSQL "
            "about a minute), then the patients are stamped from them",
            err=True,
        )
    try:
        with _progress("patients", todo) as advance:
            report = generate(
                database,
                settings.audit_key(),
                patients,
                seed=seed,
                batch=batch,
                processes=processes,
                progress=advance,
            )
    except (bulk.Busy, TemplateError, LoadRefused) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException(
            "stopped; the batches committed stay: run the same command again to continue"
        ) from None
    rate = report.loaded / report.seconds if report.seconds else 0.0
    click.echo(
        f"{report.loaded:,} patients loaded in {report.seconds:.1f} s ({rate:,.0f}/s), "
        f"{report.already:,} were there already; indexes built in "
        f"{report.indexes_seconds:.1f} s, VACUUM (ANALYZE) {report.vacuum_seconds:.1f} s; "
        f"peak memory {_peak_mb():,.0f} MB a process"
    )
    if report.deferred:
        click.echo(
            f"the tables were empty: {len(report.deferred)} indexes and constraints were "
            "built after loading"
        )


@click.command("lists")
@click.argument(
    "folder", type=click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
)
@click.option(
    "--processes",
    type=click.IntRange(min=1, max=16),
    default=1,
    show_default=True,
    help="importing processes (PostgreSQL; SQLite takes one writer)",
)
def import_lists(folder: Path, processes: int) -> None:
    """Import every SFM Basis $getMedication response (*.json) in FOLDER, each as a new
    patient's PLL, as `pll import sfm` does, then seal the audit trail. A file that cannot be
    imported is named with what is wrong and skipped (nothing of it is written); run again,
    only the files not yet imported are tried. Exits with status 1 if any file was skipped."""
    from pll.services.bulk_lists import import_lists as run  # noqa: PLC0415
    from pll.services.bulk_lists import list_files, lists_job  # noqa: PLC0415
    from pll.store import bulk  # noqa: PLC0415
    from pll.store.load_guard import LoadRefused  # noqa: PLC0415

    settings = common.settings()
    database = _database(settings)
    with database.read() as conn:
        done = set(bulk.done_items(conn, lists_job(folder)))
    todo = sum(1 for f in list_files(folder) if f.name not in done)
    try:
        with _progress("files", todo) as advance:
            report = run(
                database,
                settings.audit_key(),
                folder,
                processes=1 if database.is_sqlite else processes,
                progress=advance,
            )
    except LoadRefused as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException(
            "stopped; the files imported stay: run the same command again to continue"
        ) from None
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for bad in report.bad:
        click.echo(f"skipped {bad.name}: {bad.problem}", err=True)
    rate = report.imported / report.seconds if report.seconds else 0.0
    again = f" ({report.again:,} again after a collision)" if report.again else ""
    click.echo(
        f"{report.imported:,} lists imported ({report.entries:,} entries) in "
        f"{report.seconds:.1f} s ({rate:,.1f} files/s){again}; {report.already:,} were "
        f"imported before; {len(report.bad):,} skipped; {report.sealed:,} audit records sealed"
    )
    if report.bad:
        sys.exit(1)
