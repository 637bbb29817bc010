"""``pll stats extract``: the pseudonymised event-level extract for the evaluators (issue 19).

The key comes from ``PLL_PSEUDONYM_KEY`` and nowhere else (not an option: a key on the command
line ends up in shell histories and process lists). Progress goes to stderr, so the command
can run unattended with its output collected. What a row holds: ``docs/statistics.md``.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from pll import cli_common as common

OSLO = ZoneInfo("Europe/Oslo")
#: How far behind the clock an extract ends by default: a change takes its recorded time
#: before it commits, so an extract that ended at "now" could miss a change committed just
#: after it read that part, and the next extract (``--since`` this one's end) would too.
SETTLE = timedelta(minutes=1)


def moment(text: str, option: str) -> datetime:
    """An ISO 8601 date or date-time; without a UTC offset it is Norwegian time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 date-time, such as 2026-11-01T00:00:00+01:00",
            param_hint=option,
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=OSLO)
    return value.astimezone(UTC)


@click.command("extract")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="the file to write (replaced when the extract is complete)",
)
@click.option("--since", default=None, help="only events recorded at or after this ISO date-time")
@click.option(
    "--until",
    default=None,
    help="only events recorded before this ISO date-time (default: a minute ago)",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv")
def extract(out: Path, since: str | None, until: str | None, fmt: str) -> None:
    """Write the pseudonymised extract: one row per list version, dispensing, administration
    and case event; the patient as a keyed pseudonym (PLL_PSEUDONYM_KEY), birth year and
    municipality; no fødselsnummer, no names, no free text."""
    from pll.services.extract import write_extract
    from pll.stats.extract import Pseudonymiser
    from pll.store.db import Database

    try:
        keys = Pseudonymiser(os.environ.get("PLL_PSEUDONYM_KEY"))
    except ValueError as exc:
        raise click.ClickException(f"nothing was written: {exc}") from None
    start = moment(since, "--since") if since else None
    end = moment(until, "--until") if until else datetime.now(UTC) - SETTLE
    if start is not None and start >= end:
        raise click.BadParameter(
            f"{since} is not before the extract's end ({end.isoformat()})", param_hint="--since"
        )
    if not out.parent.is_dir():
        raise click.BadParameter(f"{out.parent} is not a folder", param_hint="--out")
    settings = common.settings()
    database = Database(settings.database_url)
    began = time.monotonic()

    def progress(kind: str, rows: int) -> None:
        rate = rows / max(time.monotonic() - began, 1e-6)
        label = "all kinds" if kind == "done" else kind
        click.echo(f"extract: {rows:,} rows ({label}, {rate:,.0f} rows/s)", err=True)

    try:
        # no migration here: an extract only reads, and may run against a read replica
        written = write_extract(database, keys, out, fmt, start, end, progress)
    finally:
        database.dispose()
    per_kind = ", ".join(f"{k} {n:,}" for k, n in written.counts.items())
    click.echo(
        f"wrote {written.total:,} rows to {out} ({per_kind}); "
        f"the next extract: --since {end.isoformat()}",
        err=True,
    )
