"""The ``pll`` command: serve, demo data, migrations, development tokens, the audit trail.

Configuration comes from the environment (``PLL_DATABASE_URL``, ``PLL_DATA_DIR``), so the
server and ``pll token`` always agree on the key and the database.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pll import cli_common as common
from pll.cli_clients import clients
from pll.cli_extract import extract
from pll.cli_import import add_bulk_commands
from pll.cli_readcopy import readcopy
from pll.cli_serve import serve
from pll.cli_worker import worker
from pll.domain.errors import DomainError

if TYPE_CHECKING:
    from pll.services.stats import Statistics


def _personas() -> list[str]:
    from pll.auth.tokens import PERSONAS

    return list(PERSONAS)


def _now() -> datetime:
    return datetime.now(UTC)


@click.group()
def main() -> None:
    """Pasientens legemiddelliste (PLL): the shared medication list."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    settings = common.settings()
    database = common.database(settings)
    database.upgrade()
    click.echo(f"schema is current ({database.engine.url.render_as_string(hide_password=True)})")


@main.command()
@click.option("--patients", default=50, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option(
    "--catalogue-scale",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0.001, 10),
    help="size of the generated FEST catalogue imported first (1 = the real one's size)",
)
def demo(patients: int, seed: int, catalogue_scale: float) -> None:
    """Import a generated drug catalogue and create synthetic patients with realistic lists."""
    import io

    from rich.progress import Progress

    from pll.catalog.generate import generate
    from pll.catalog.importer import import_fest
    from pll.services.demo import create_demo
    from pll.services.lists import PLLService

    settings = common.settings()
    database = common.database(settings)
    database.upgrade()
    extract = io.BytesIO()
    generate(extract, scale=catalogue_scale, seed=seed, demo=True)
    extract.seek(0)
    result = import_fest(database, extract, f"generated (scale {catalogue_scale})", now=_now())
    click.echo(f"FEST catalogue version {result.version}: {result.counts.get('Drug', 0)} drugs")
    service = PLLService(database, settings.audit_key())
    with Progress() as progress:
        task = progress.add_task("demo patients", total=patients)
        numbers = create_demo(service, patients, seed, lambda n: progress.advance(task, n))
    click.echo(f"{patients} patients with a PLL; for example fødselsnummer {numbers[0]}")


@main.command()
@click.option("--persona", required=True, type=click.Choice(list(_personas())))
@click.option("--pid", default=None, help="fødselsnummer, for the patient persona")
@click.option("--ttl", default=8 * 3600, show_default=True, type=int, help="lifetime in seconds")
@click.option(
    "--dpop-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="bind the token to this EC P-256 key (PEM; made if missing): send it with DPoP proofs",
)
@click.option(
    "--client",
    default="pll-dev-client",
    show_default=True,
    help="the journal system's client_id (PLL_EMBED_ORIGINS names client systems so)",
)
def token(persona: str, pid: str | None, ttl: int, dpop_key: Path | None, client: str) -> None:
    """Print a development access token for a persona."""
    from pll.auth.tokens import issue

    settings = common.settings()
    try:
        click.echo(
            issue(settings.data_dir, persona, pid, ttl, dpop_key_file=dpop_key, client_id=client)
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@main.command("dpop-proof")
@click.option(
    "--dpop-key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--method", required=True, help="the request's HTTP method")
@click.option("--url", required=True, help="the request's URL")
@click.option("--token", "access_token", required=True, help="the DPoP-bound access token")
def dpop_proof(dpop_key: Path, method: str, url: str, access_token: str) -> None:
    """Print a one-time DPoP proof (RFC 9449) for one request, for curl and the like."""
    from pll.auth.dpop import make_proof
    from pll.auth.tokens import dpop_key as load_key

    try:
        key = load_key(dpop_key)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(make_proof(key, method=method.upper(), url=url, access_token=access_token))


@main.group()
def fest() -> None:
    """The drug catalogue (FEST)."""


@fest.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def fest_import(file: Path) -> None:
    """Import a FEST M30 extract as the catalogue in use (the previous one stays if it fails)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeElapsedColumn

    from pll.catalog.importer import import_fest

    settings = common.settings()
    database = common.database(settings)
    database.upgrade()
    size = file.stat().st_size
    with (
        file.open("rb") as stream,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
        ) as progress,
    ):
        task = progress.add_task(f"importing {file.name}", total=size)
        try:
            result = import_fest(
                database,
                stream,
                file.name,
                now=_now(),
                progress=lambda done: progress.update(task, completed=done),
            )
        except DomainError as exc:
            raise click.ClickException(str(exc)) from None
        progress.update(task, completed=size)
    counts = ", ".join(
        f"{v} {k}" for k, v in sorted(result.counts.items()) if not k.startswith("Kat")
    )
    click.echo(f"FEST catalogue version {result.version} in use ({counts}).")
    from pll.services.lists import PLLService

    lists, entries = PLLService(database, settings.audit_key()).refresh_withdrawn()
    click.echo(
        f"{entries} entr{'y' if entries == 1 else 'ies'} in use name a drug the catalogue no "
        f"longer has as active; {lists} list(s) got a version that flags it."
    )
    if result.dangling_brands:
        click.echo(f"note: {result.dangling_brands} package(s) name a brand the extract lacks")


@fest.command("generate")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0.001, 100))
@click.option("--seed", default=2026, show_default=True, type=int)
def fest_generate(out: Path, scale: float, seed: int) -> None:
    """Write a FEST extract of invented drugs (1 = the real catalogue's size)."""
    from rich.progress import Progress

    from pll.catalog.generate import BASE, generate

    total = int(sum(BASE.values()) * scale)
    with out.open("wb") as stream, Progress() as progress:
        task = progress.add_task(f"writing {out.name}", total=total)
        counts = generate(
            stream, scale=scale, seed=seed, progress=lambda n: progress.update(task, completed=n)
        )
        progress.update(task, completed=total)
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items()) + f" → {out}")


@main.group()
def audit() -> None:
    """The tamper-evident audit trail."""


@audit.command("seal")
def audit_seal() -> None:
    """Link every audit record not yet sealed into the hash chain."""
    from pll.services.audit import AuditTrail

    settings = common.settings()
    trail = AuditTrail(common.database(settings), settings.audit_key(), _now)
    click.echo(f"sealed {trail.seal()} record(s)")


@audit.command("partitions")
@click.option(
    "--ahead",
    type=click.IntRange(0, 120),
    default=3,
    show_default=True,
    help="Months after the current one to make partitions for.",
)
def audit_partitions(ahead: int) -> None:
    """Make the audit trail's monthly partitions ahead, and list them (PostgreSQL).

    The sealer of every `pll serve` and `pll worker` does this once an hour as well. No
    partition is ever dropped: how long the trail is kept is a legal decision."""
    from rich.console import Console
    from rich.table import Table

    from pll.services.audit import AuditTrail
    from pll.store.audit_partitions import PartitionsBusy

    settings = common.settings()
    database = common.database(settings)
    if database.is_sqlite:
        click.echo("SQLite keeps the audit trail in one table; partitions are PostgreSQL's.")
        return
    trail = AuditTrail(database, settings.audit_key(), _now, partitions_ahead=ahead)
    try:
        made = trail.keep_partitions()
    except PartitionsBusy as exc:
        click.echo(f"no partition made: a lock stayed busy ({exc}); try again", err=True)
        sys.exit(1)
    table = Table(title="Audit trail partitions (rows: PostgreSQL's estimate)")
    for heading in ("partition", "from (UTC)", "to (UTC)", "rows", "size"):
        table.add_column(heading, justify="right" if heading in ("rows", "size") else "left")
    for part in trail.partitions():
        table.add_row(
            part.name,
            f"{part.start:%Y-%m-%d}" if part.start else "any month without a partition",
            f"{part.end:%Y-%m-%d}" if part.end else "",
            f"{part.rows:,}",
            f"{part.bytes / 1_048_576:,.1f} MB",
        )
    Console().print(table)
    click.echo(f"made: {', '.join(made)}" if made else "made: none (all there already)")


@audit.command("verify")
def audit_verify() -> None:
    """Check every record's MAC and the chain; exit 1 naming the first broken record."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from pll.services.audit import AuditTrail

    settings = common.settings()
    trail = AuditTrail(common.database(settings), settings.audit_key(), _now)
    with Progress(transient=True) as progress:
        task = progress.add_task("verifying audit records", total=None)
        result = trail.verify(
            lambda done, total: progress.update(task, completed=done, total=total)
        )
    table = Table(title="Audit trail")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("records", str(result.records))
    table.add_row("sealed in the chain", str(result.records - result.unsealed))
    table.add_row("not yet sealed", str(result.unsealed))
    table.add_row("from before MACs (migration 0002)", str(result.legacy))
    table.add_row("chain head", result.head)
    Console().print(table)
    if result.ok:
        click.echo("audit trail intact")
        return
    first_id, first = result.problems[0]
    click.echo(
        f"BROKEN at record id {first_id}: {first}" if first_id else f"BROKEN: {first}", err=True
    )
    for _, message in result.problems[1:10]:
        click.echo(f"  also: {message}", err=True)
    if len(result.problems) > 10:
        click.echo(f"  ... and {len(result.problems) - 10} more", err=True)
    sys.exit(1)


@main.group()
def proxy() -> None:
    """Proxies (fullmakt): who may act for a patient on the patient view."""


@proxy.command("add")
@click.option("--holder", required=True, help="fødselsnummer of the person given the proxy")
@click.option("--patient", required=True, help="fødselsnummer of the patient")
def proxy_add(holder: str, patient: str) -> None:
    """Register that HOLDER may act for PATIENT (from the national proxy register)."""
    from pll.services.access import register_proxy

    settings = common.settings()
    try:
        added = register_proxy(common.database(settings), holder, patient, add=True)
    except DomainError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo("proxy registered" if added else "proxy was already registered")


@proxy.command("remove")
@click.option("--holder", required=True)
@click.option("--patient", required=True)
def proxy_remove(holder: str, patient: str) -> None:
    """End a proxy."""
    from pll.services.access import register_proxy

    settings = common.settings()
    try:
        removed = register_proxy(common.database(settings), holder, patient, add=False)
    except DomainError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo("proxy removed" if removed else "no such proxy")


@main.group()
def events() -> None:
    """Delivering the outbox: FHIR rest-hook subscriptions and NATS JetStream."""


@events.command("run")
def events_run() -> None:
    """Deliver events until stopped (Ctrl-C or SIGTERM); what was delivered stays delivered."""
    import dataclasses

    from pll.cli_clients import case_base
    from pll.events.worker import background
    from pll.processes import StopSignals

    settings = common.settings()
    database = common.database(settings)
    database.upgrade()
    stop = StopSignals().event
    where = f" and NATS at {settings.nats_url}" if settings.nats_url else ""
    click.echo(f"delivering events to subscriptions{where}")
    # the dispatcher alone, even with PLL_DISPATCH=0 (that is for the servers and workers)
    only_dispatch = dataclasses.replace(settings, seal_interval=0, stats_interval=0, dispatch=True)
    background(case_base(database, settings), only_dispatch).run(stop)


@events.command("status")
def events_status() -> None:
    """Each consumer's place in the outbox: how far behind, and why it fails if it does."""
    from rich.console import Console
    from rich.table import Table

    from pll.events import outbox
    from pll.services.audit import AuditTrail
    from pll.services.base import utcnow

    settings = common.settings()
    database = common.database(settings)
    database.upgrade()
    table = Table(title="event consumers")
    for column in ("consumer", "behind (events)", "oldest waiting (s)", "attempts", "last error"):
        table.add_column(column)
    with database.read() as conn:
        for row in outbox.places(conn):
            behind, age = outbox.lag(conn, outbox.position_of(row), utcnow())
            table.add_row(
                row.name, str(behind), f"{age:.1f}", str(row.attempts), row.last_error or ""
            )
        oldest = outbox.oldest_transaction(conn)
    console = Console()
    console.print(table)
    if oldest is not None:
        # consumers read only what was committed before the oldest transaction still open
        # began writing (pll.events.outbox): a long one holds them all back
        console.print(
            f"Consumers read up to the oldest open transaction: PostgreSQL process "
            f"{oldest.pid} (database {oldest.database or '-'}, {oldest.state or '-'}), "
            f"open for {oldest.seconds:.1f} s."
        )
    # the sealer has no place in the outbox: what waits for it says whether one runs
    trail = AuditTrail(database, settings.audit_key(), utcnow)
    count, age = trail.unsealed()
    more = "+" if count >= 100_000 else ""
    click.echo(
        f"audit records not yet sealed: {count}{more}, the oldest {age:.1f} s old "
        "(a sealer runs about once a second)"
    )
    click.echo(
        f"background work (PLL_BACKGROUND={settings.background}): "
        + {
            "inline": "in each pll serve process",
            "process": "in the pll worker that pll serve starts",
            "external": "in pll worker processes run apart from pll serve",
        }[settings.background]
    )


@main.group()
def stats() -> None:
    """Rollout and quality statistics: the organisation register and the counts."""


def _statistics() -> Statistics:
    from pll.services.base import utcnow
    from pll.services.stats import Statistics

    settings = common.settings()
    database = common.database(settings)
    database.upgrade()
    return Statistics(database, utcnow)


@stats.command("update")
def stats_update() -> None:
    """Count the events not counted yet (``pll serve`` does this every few seconds)."""
    from rich.progress import Progress

    statistics = _statistics()
    position, newest = statistics.updated()
    with Progress() as progress:
        task = progress.add_task("events counted", total=max(newest - position, 0))
        counted = statistics.catch_up(progress=lambda n: progress.advance(task, n))
    click.echo(f"{counted} events counted; the counts now go up to event {newest}")


@stats.command("organisations")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--demo", is_flag=True, help="load the invented demo register shipped with PLL")
def stats_organisations(file: Path | None, demo: bool) -> None:
    """Load an organisation register (CSV: orgnr,name,kommunenummer,actor_type,her_id)."""
    from pll.stats import organisations

    if (file is None) == (not demo):
        raise click.UsageError("give a register FILE or --demo (one of them)")
    try:
        orgs = (
            organisations.demo()
            if demo
            else organisations.parse(str(file), Path(str(file)).read_text(encoding="utf-8"))
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(str(exc)) from None
    new = _statistics().register(orgs)
    click.echo(f"{len(orgs)} organisations in the register ({new} new)")


@main.group("import")
def import_() -> None:
    """Bring in lists kept by other systems."""


@import_.command("sfm")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_sfm(file: Path) -> None:
    """Import an SFM Basis $getMedication response as a patient's new PLL."""
    from pll.fhir.sfm.lenient_json import parse_lenient
    from pll.services.lists import PLLService
    from pll.services.sfm import SfmService

    settings = common.settings()
    database = common.database(settings)
    database.upgrade()
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file} is not UTF-8 text ({exc.reason}).") from None
    try:
        data, warnings = parse_lenient(text)
        for warning in warnings:
            click.echo(f"warning: {file.name}: {warning}", err=True)
        done = SfmService(PLLService(database, settings.audit_key())).import_document(data)
    except DomainError as exc:
        raise click.ClickException(f"nothing was imported: {exc}") from None
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"Patient/{done.patient_id}: List/{done.list_id} with {done.entries} entries, "
        f"{done.prescriptions} prescriptions, {done.dispenses} dispensing(s), "
        f"{done.messages} M25 message(s), {done.allergies} reaction(s)."
    )


main.add_command(serve)
main.add_command(readcopy)
main.add_command(clients)
main.add_command(worker)
add_bulk_commands(import_)
stats.add_command(extract)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
