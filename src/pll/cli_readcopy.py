"""``pll readcopy``: the read copy (every list, kept current from the events, in a database of
its own, :mod:`pll.events.readcopy`): run it, rebuild it, forward the audit records of the
reads it served, and say how far behind it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pll import cli_common as common

if TYPE_CHECKING:
    from pll.config import Settings
    from pll.events.readcopy import ReadCopy
    from pll.store.db import Database


@click.group()
def readcopy() -> None:
    """The read copy: every list, kept current from the events, in a database of its own."""


def _readcopy(*, store_may_be_down: bool = False) -> tuple[Settings, Database, ReadCopy]:
    from sqlalchemy.exc import OperationalError

    from pll.events.readcopy import ReadCopy
    from pll.services.base import utcnow
    from pll.store.db import Database

    settings = common.settings()
    store = common.database(settings)
    try:
        store.upgrade()
    except OperationalError as exc:
        if not store_may_be_down:
            raise
        # the copy serves from its own database; it follows the store once it is back
        click.echo(f"read copy: PLL's database cannot be reached now ({exc.orig})", err=True)
    copy = ReadCopy(store, Database(settings.readcopy_database), utcnow)
    copy.setup()
    return settings, store, copy


@readcopy.command("run")
@click.option("--port", default=None, type=int, help="also serve list reads on this port")
def readcopy_run(port: int | None) -> None:
    """Follow the events until stopped, keeping the copy current, and forward the audit
    records of the reads it served to PLL's trail; with --port, serve list reads. Starts
    and serves while PLL's database is down, and catches up when it is back."""
    import threading

    from pll.events.readcopy_audit import CopyAudit
    from pll.processes import StopSignals
    from pll.services.base import utcnow

    if port is not None:
        common.check_public_url(common.settings())
    settings, store, copy = _readcopy(store_may_be_down=True)
    audit = CopyAudit(copy.copy, store, utcnow)
    stop = StopSignals().event
    if port is not None:
        import uvicorn

        from pll.api.readcopy_app import create_readcopy_app
        from pll.services.lists import PLLService

        app = create_readcopy_app(settings, PLLService(store, settings.audit_key()), copy)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
    click.echo(f"read copy in {settings.readcopy_database}")
    away = False
    while not stop.is_set():
        try:
            had = copy.step()
            audit.forward()
        except Exception as exc:  # the store or the copy is away for a while: try again
            if not away:
                click.echo(f"read copy: {exc}; trying again", err=True)
            away, had = True, 0
        else:
            if away:
                click.echo("read copy: following PLL again", err=True)
            away = False
        if had == 0:
            stop.wait(1.0 if away else 0.2)


@readcopy.command("rebuild")
def readcopy_rebuild() -> None:
    """Copy every list and the access facts afresh from one snapshot of the store."""
    _, _, copy = _readcopy()
    count = copy.rebuild(progress=lambda n: click.echo(f"  {n} lists", err=True))
    click.echo(f"read copy rebuilt: {count} lists")


@readcopy.command("forward")
def readcopy_forward() -> None:
    """Send the audit records of the reads the copy served to PLL's trail now (`pll
    readcopy run` does this all the time); each record reaches the trail once."""
    from pll.events.readcopy_audit import CopyAudit
    from pll.services.base import utcnow

    _, store, copy = _readcopy()
    sent = CopyAudit(copy.copy, store, utcnow).forward()
    click.echo(f"{sent} audit record(s) sent to PLL's trail")


@readcopy.command("status")
def readcopy_status() -> None:
    """How far behind the store the copy is, and its audit records not yet forwarded."""
    from pll.events.readcopy_audit import CopyAudit
    from pll.services.base import utcnow

    _, store, copy = _readcopy()
    lag = copy.lag()
    waiting, oldest = CopyAudit(copy.copy, store, utcnow).waiting()
    click.echo(
        f"{lag.lists} lists copied; {lag.behind} event(s) behind, the oldest "
        f"{lag.oldest_seconds:.1f} s old; {waiting} audit record(s) not yet forwarded"
        + (f", the oldest {oldest:.1f} s old" if waiting else "")
    )
