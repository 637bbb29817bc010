"""``pll clients``: the register of client systems (issue 18), where technical cases about
each system go. A client system is named by the ``client_id`` its HelseID tokens carry;
registering it changes nothing about who may call the API (an unregistered client is served
as before, and its technical cases go to PLL's own operations)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from pll import cli_common as common
from pll.config import Settings
from pll.domain.errors import DomainError

if TYPE_CHECKING:
    from pll.services.base import ServiceBase
    from pll.services.technical_cases import TechnicalCaseService
    from pll.store.db import Database


def case_base(database: Database, settings: Settings) -> ServiceBase:
    """The services' base the event dispatcher opens technical cases with: the deployment's
    audit key, the wall clock and the configured case rules."""
    from pll.services.base import ServiceBase, utcnow

    base = ServiceBase(database, settings.audit_key(), utcnow)
    base.case_rules = settings.case_rules
    return base


@contextmanager
def _service() -> Iterator[TechnicalCaseService]:
    """The register's service on the configured database, closed again afterwards."""
    from pll.services.technical_cases import TechnicalCaseService

    settings = common.settings()
    database = common.database(settings)
    try:
        database.upgrade()
        yield TechnicalCaseService(case_base(database, settings))
    finally:
        database.dispose()


@click.group()
def clients() -> None:
    """The register of client systems: who operates each, where its technical cases go."""


@clients.command("add")
@click.option("--client-id", required=True, help="the client_id its access tokens carry")
@click.option("--name", required=True, help="the system's name, such as 'DIPS Arena'")
@click.option("--vendor", required=True, help="the vendor or operator")
@click.option("--email", default=None, help="the operator's contact e-mail")
@click.option("--phone", default=None, help="the operator's contact telephone")
@click.option(
    "--orgnr",
    default=None,
    help="the operator's organisation number; without it, cases go to PLL's operations",
)
def clients_add(
    client_id: str,
    name: str,
    vendor: str,
    email: str | None,
    phone: str | None,
    orgnr: str | None,
) -> None:
    """Register a client system, or update one already registered."""
    from pll.domain.technical_cases import client_system

    try:
        system = client_system(client_id, name, vendor, email, phone, orgnr)
    except DomainError as exc:
        raise click.ClickException(f"nothing was registered: {exc}") from None
    with _service() as service:
        new = service.register(system)
    where = f"orgnr {system.operator_orgnr}" if system.operator_orgnr else "PLL's operations"
    click.echo(
        f"{'registered' if new else 'updated'} {system.client_id}: {system.name} "
        f"({system.vendor}); technical cases go to {where}"
    )


@clients.command("list")
def clients_list() -> None:
    """Every registered client system, tab-separated."""
    with _service() as service:
        found = service.clients()
    for c in found:
        click.echo(
            "\t".join(
                [
                    c.client_id,
                    c.name,
                    c.vendor,
                    c.operator_orgnr or "-",
                    c.email or "-",
                    c.phone or "-",
                ]
            )
        )


@clients.command("remove")
@click.option("--client-id", required=True)
def clients_remove(client_id: str) -> None:
    """Take a client system out of the register (its open cases stay where they went)."""
    with _service() as service:
        removed = service.unregister(client_id)
    if not removed:
        raise click.ClickException(f"{client_id} is not registered.")
    click.echo(f"removed {client_id}")
