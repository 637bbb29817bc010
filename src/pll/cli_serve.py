"""``pll serve``: the web UI and the FHIR API, with what runs beside them.

With ``--workers N`` (N > 1) on Linux the request workers are PLL's own
(:mod:`pll.api.serve_workers`: a listening socket each, so that connections spread evenly);
with one worker this process serves (:func:`pll.api.serve_workers.serve_here`); elsewhere
uvicorn's workers share one socket. The background work runs in a ``pll worker``
child (``PLL_BACKGROUND=process``, :class:`pll.cli_worker.WorkerChild`), in the request
workers (``inline``) or elsewhere (``external``).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pll import cli_common as common
from pll.cli_worker import WorkerChild

if TYPE_CHECKING:
    from pll.config import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1))
def serve(host: str, port: int, workers: int) -> None:
    """Run the FHIR server (migrating the schema first)."""
    from pll.api import serve_workers
    from pll.cli_guard import refuse_unfinished_load, start_serving

    settings = common.settings()
    common.check_public_url(settings)
    held = None
    if workers > 1 and serve_workers.supported():
        try:
            held = serve_workers.claim(host, port)
        except OSError as exc:
            raise click.ClickException(f"cannot serve on {host}:{port}: {exc}") from None
        port = held.getsockname()[1]
    database = common.database(settings)
    # before the migrations: not while a bulk import loads (pll.store.load_guard)
    stop_serving = start_serving(database.url, "serve")
    database.upgrade()
    refuse_unfinished_load(database)
    from pll.auth.tokens import signing_key
    from pll.services.base import utcnow
    from pll.services.stats import Statistics

    # its lag shows from the first event, wherever (and whether) a worker runs
    Statistics(database, utcnow).enrol()
    database.dispose()

    signing_key(settings.data_dir)  # made once here, not raced by several workers
    settings.audit_key()
    _announce(settings, host, port, workers)
    metrics_dir = _metrics_dir(settings.data_dir) if workers > 1 else None
    child, stop = _background_beside(settings, workers)
    code = 0
    try:
        if held is not None:
            code = serve_workers.RequestWorkers(
                workers, host, port, lambda line: click.echo(line, err=True)
            ).run()
        elif workers == 1:
            code = 0 if serve_workers.serve_here(host, port) else serve_workers.NOT_STARTED
        else:  # not Linux: uvicorn's workers, sharing one socket
            import uvicorn

            uvicorn.run(
                serve_workers.APP,
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
                access_log=False,
            )
    finally:
        if held is not None:
            held.close()
        if stop is not None:
            stop.set()
        if child is not None:
            child.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        stop_serving()
    if code:
        raise click.ClickException("the server could not start (see above)")


def _announce(settings: Settings, host: str, port: int, workers: int) -> None:
    """Say where PLL serves, and warn loudly when development tokens are trusted."""
    click.echo(
        f"PLL serving the web UI at http://{host}:{port}/ and FHIR at http://{host}:{port}/fhir "
        f"({workers} worker(s))"
    )
    if settings.dev_auth:
        click.echo(
            "PLL_DEV_AUTH is on: development tokens from `pll token` are trusted. "
            "Never run it like this with real patients.",
            err=True,
        )


def _background_beside(
    settings: Settings, workers: int
) -> tuple[WorkerChild | None, threading.Event | None]:
    """Start what runs beside the request workers: the ``pll worker`` child
    (``PLL_BACKGROUND=process``), or with several inline workers the one dispatcher. What to
    stop when ``pll serve`` stops."""
    child = None
    if settings.background == "process":
        # one worker for the sealer, the statistics and the dispatcher, however many
        # request workers (pll.events.worker); stopped by serve, or by the kernel if this
        # process is killed
        child = WorkerChild()
        child.start()
        click.echo("background work in a pll worker of its own (PLL_BACKGROUND=process)")
    elif settings.background == "external":
        click.echo(
            "background work left to pll worker elsewhere (PLL_BACKGROUND=external): the "
            "audit trail is sealed and the statistics counted only where one runs"
        )
    if not (workers > 1 and settings.inline and settings.dispatches):
        return child, None
    # one dispatcher, in this process, not one per worker (they would deliver each event
    # once per worker)
    import dataclasses

    from pll.cli_clients import case_base
    from pll.events.worker import background

    os.environ["PLL_DISPATCH"] = "0"  # the workers inherit it
    database = common.database(settings)
    only_dispatch = dataclasses.replace(settings, seal_interval=0, stats_interval=0)
    stop = threading.Event()
    background(case_base(database, settings), only_dispatch).start(stop)
    return child, stop


def _metrics_dir(data_dir: Path) -> Path | None:
    """Where the workers of this ``pll serve`` keep their metrics, so that ``/metrics`` adds
    up all of them (prometheus_client's multiprocess mode): ``metrics/<pid>`` in the data
    folder, new for each run, removed when it ends. What runs that are gone left behind is
    removed first. ``None`` when ``PROMETHEUS_MULTIPROC_DIR`` is already set: that folder
    is the operator's, to empty between runs."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    runs = data_dir / "metrics"
    runs.mkdir(parents=True, exist_ok=True)
    for old in runs.iterdir():
        if old.name.isdigit() and not _running(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    ours = runs / str(os.getpid())
    shutil.rmtree(ours, ignore_errors=True)  # a pid used again
    ours.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(ours)  # the workers inherit it
    return ours


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True
