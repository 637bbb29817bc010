"""The ``pll`` command: serve, demo data, migrations and development tokens.

Configuration comes from the environment (``PLL_DATABASE_URL``, ``PLL_DATA_DIR``), so the
server and ``pll token`` always agree on the key and the database.
"""

from __future__ import annotations

import sys

import click

from pll.config import Settings


def _database(settings: Settings):  # type: ignore[no-untyped-def]
    from pll.store.db import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Database(settings.database_url)


@click.group()
def main() -> None:
    """Pasientens legemiddelliste (PLL): the shared medication list."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    settings = Settings.from_env()
    database = _database(settings)
    database.upgrade()
    click.echo(f"schema is current ({database.engine.url.render_as_string(hide_password=True)})")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Run the FHIR server (migrating the schema first)."""
    import uvicorn

    settings = Settings.from_env()
    _database(settings).upgrade()
    from pll.auth.tokens import signing_key

    signing_key(settings.data_dir)  # made once here, not raced by several workers
    click.echo(f"PLL serving FHIR at http://{host}:{port}/fhir ({workers} worker(s))")
    uvicorn.run(
        "pll.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@main.command()
@click.option("--patients", default=50, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--seed", default=2026, show_default=True, type=int)
def demo(patients: int, seed: int) -> None:
    """Create synthetic patients with realistic medication lists."""
    from rich.progress import Progress

    from pll.services.demo import create_demo
    from pll.services.lists import PLLService

    settings = Settings.from_env()
    database = _database(settings)
    database.upgrade()
    service = PLLService(database)
    with Progress() as progress:
        task = progress.add_task("demo patients", total=patients)
        numbers = create_demo(service, patients, seed, lambda n: progress.advance(task, n))
    click.echo(f"{patients} patients with a PLL; for example fødselsnummer {numbers[0]}")


@main.command()
@click.option(
    "--persona",
    required=True,
    type=click.Choice(["gp", "hospital-doctor", "nurse", "pharmacist", "patient"]),
)
@click.option("--pid", default=None, help="fødselsnummer, for the patient persona")
@click.option("--ttl", default=8 * 3600, show_default=True, type=int, help="lifetime in seconds")
def token(persona: str, pid: str | None, ttl: int) -> None:
    """Print a development access token for a persona."""
    from pll.auth.tokens import issue

    settings = Settings.from_env()
    try:
        click.echo(issue(settings.data_dir, persona, pid, ttl))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
