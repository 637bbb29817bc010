"""What the ``pll`` commands share: the configuration from the environment, told in one line
when a variable is wrong (the operator gets what to fix, not a traceback), the database it
names, and the check of ``PLL_PUBLIC_URL`` before serving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pll.config import Settings

if TYPE_CHECKING:
    from pll.store.db import Database


def settings() -> Settings:
    """The configuration, or one line saying which variable is wrong (no traceback)."""
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def database(settings: Settings) -> Database:
    """The configured database (its data folder made if missing); not migrated here."""
    from pll.store.db import Database  # noqa: PLC0415 - most commands start without it

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Database(settings.database_url)


def check_public_url(settings: Settings) -> None:
    """Refuse to serve when DPoP proofs could only be held to the Host header (outside
    development mode); in development mode, say once that they are."""
    try:
        settings.check_public_url()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.public_url is None:
        click.echo(
            "PLL_PUBLIC_URL is not set: DPoP proofs are held to each request's Host header, "
            "as only development mode allows.",
            err=True,
        )
