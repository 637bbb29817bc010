"""Rollout statistics (issue 8): dashboard and export times at 100,000 and 1,000,000 patients.

    .venv/bin/python bench/stats_bench.py                              # 100k and 1M, SQLite + PG
    .venv/bin/python bench/stats_bench.py --patients 100000 --backends sqlite
    .venv/bin/python bench/stats_bench.py --patients 2000 --runs 3 --consumer-patients 50  # smoke

The figures (:class:`pll.services.stats.Statistics`) are read from the aggregated counts
(``stats_count``) and the organisation register, never from the lists, so what they cost
depends on how many cells the counts have, and that grows with the number of patients (more
municipalities × weeks × actor types filled, more days with a last confirmation). So for each
database and number of patients N the benchmark:

1. **Makes a fresh database**: SQLite in a temporary directory, and a throwaway PostgreSQL
   database (``pll_bench_stats_…``, dropped afterwards) when ``--postgres-url`` answers, built
   by the migrations (``Database.upgrade()``).
2. **Fills the counts as N patients would have.** The demo organisation register is
   registered; then a synthetic history of N patients over ``--years`` years is generated — a
   home municipality drawn by population, a list made at a moment of a rollout that speeds up,
   2–6 later changes by organisations of several actor types, a confirmation for about 60 %
   (a fifth of them confirmed again), paper multidose and e-multidose, emergency accesses,
   relay-baton conflicts, discrepancy cases opened and closed — and every step is fed through
   **the consumer's own counting functions** (:class:`pll.stats.indicators.Tally`,
   :func:`~pll.stats.indicators.list_changed`, :func:`~pll.stats.indicators.case_changed`,
   ``Tally.happened`` for conflicts and emergency accesses), so the cells are exactly those the
   consumer would have written for those events. The tally is written with
   :func:`pll.store.stats.add_counts` once per ``--batch`` patients, and ``live_since`` is set
   with :func:`pll.store.stats.mark_live` for the organisations that changed a list. The
   patients do **not** go through the API or the outbox: that would measure the write path
   (``run_bench.py``, ``events_bench.py`` do), and take hours at 1,000,000. What the consumer
   keeps per list (``stats_list``) is not written: the figures never read it. On PostgreSQL
   the tables are then analysed (``VACUUM (ANALYZE)``), as autovacuum would after such a load.
3. **Times the figures** in-process — ``periods`` by region over 12 weeks and by municipality
   over 12 months, ``snapshot`` by region and by municipality, ``rollout`` — and the exports
   over HTTP through the real ASGI app (``create_app`` served by uvicorn in a thread): the CSV
   and JSON tables, and ``GET /statistikk`` (the dashboard page) when it answers 200 (else it
   is reported as skipped). Each after ``--warmup`` untimed runs, ``--runs`` timed runs:
   median and p95 (nearest rank). Five instrumented runs more per figure say how much of it
   is spent reading (``store.counts``, ``totals``, ``bands``, ``organisations``, fetching
   included) and how many rows are read; with ``--explain`` the SQL of every figure is run
   again under ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL and the plans are saved.
4. **Times the consumer on real events**, once per database: ``--consumer-patients`` demo
   patients made through ``PLLService`` (``create_demo`` after importing a generated FEST
   catalogue, as ``pll demo`` does) on a database of their own; the counts ``create_demo``
   made are thrown away and ``Statistics.catch_up()`` counts all the events again, timed:
   events per second.

The table is printed, and the results are written to ``bench/results/stats-<time>.json``.
"""

from __future__ import annotations

import bisect
import io
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
import sqlalchemy as sa
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pll.api.app import create_app
from pll.auth.audit import AuditKey
from pll.catalog.generate import generate
from pll.catalog.importer import import_fest
from pll.config import Settings
from pll.domain.errors import Conflict
from pll.services.demo import USING, create_demo
from pll.services.lists import PLLService
from pll.services.stats import CONSUMER, Statistics
from pll.stats import geography, organisations
from pll.stats import indicators as ind
from pll.stats.ambitions import ACTOR_TYPES
from pll.stats.indicators import Home, ListChange, ListState, Tally
from pll.stats.organisations import Organisation
from pll.store import stats as store
from pll.store.db import Database, normalise_url
from pll.store.schema import consumer, organisation, stats_count, stats_emergency, stats_list
from pll.store.schema import stats_place as stats_place_table
from pllbench.dbsetup import fresh_database

#: wide enough for the table when the output goes to a file
console = Console(width=None if sys.stdout.isatty() else 200)
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"

#: Who makes a list, who changes it later, who confirms it (actor type: weight; "" is an
#: organisation not in the register, counted under "ukjent").
CREATORS = {"fastlege": 70, "sykehus": 20, "sykehjem_hjemmetjeneste": 8, "": 2}
CHANGERS = {
    "fastlege": 42,
    "sykehus": 25,
    "sykehjem_hjemmetjeneste": 12,
    "legevakt_ohd_kad": 6,
    "avtalespesialist": 6,
    "apotek": 7,
    "": 2,
}
CONFIRMERS = {"fastlege": 85, "sykehus": 15}
EMERGENCY_UNITS = {"legevakt_ohd_kad": 70, "sykehus": 30}
CASE_OWNERS = {"fastlege": 70, "sykehus": 30}
CLOSINGS = {"case-resolved": 70, "case-rejected": 20, "case-withdrawn": 10}


# -- the synthetic history ---------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """What every batch of patients is drawn from; picklable, so batches run in processes."""

    seed: int
    patients: int
    start: datetime
    end: datetime
    places: tuple[geography.Municipality, ...]
    cumulative: tuple[int, ...]
    #: per (region, actor type): (the day each organisation goes live, its id), by day
    using: dict[tuple[str, str], tuple[tuple[datetime, str], ...]]
    #: per actor type, the same over the whole country
    national: dict[str, tuple[tuple[datetime, str], ...]]


def make_world(seed: int, patients: int, end: datetime, years: float) -> World:
    """The municipalities by population, and which organisations of the demo register use PLL
    (the share of each region's of each type that ``pll demo`` uses) from when: their go-live
    days are spread over the first half of the period, so the rollout shows."""
    rng = random.Random(seed)
    start = end - timedelta(days=round(365.25 * years))
    places = tuple(geography.municipalities().values())
    cumulative, total = [], 0
    for p in places:
        total += p.population
        cumulative.append(total)
    using: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    national: dict[str, list[tuple[datetime, str]]] = {}
    orgs = organisations.demo()
    for region, share in USING.items():
        for kind in ACTOR_TYPES:
            mine = [o for o in orgs if o.region == region and o.actor_type == kind]
            chosen = mine[: math.ceil(share * len(mine))]
            for o in chosen:
                live = start + (end - start) * rng.random() * 0.5
                using.setdefault((region, kind), []).append((live, o.id))
                national.setdefault(kind, []).append((live, o.id))
    return World(
        seed,
        patients,
        start,
        end,
        places,
        tuple(cumulative),
        {k: tuple(sorted(v)) for k, v in using.items()},
        {k: tuple(sorted(v)) for k, v in national.items()},
    )


@dataclass
class Batch:
    """One batch's additions to the counts, the first action of each organisation in it, and
    how many of each kind of event it counted."""

    counts: dict[ind.Key, int]
    live: dict[str, datetime]
    events: Counter[str] = field(default_factory=Counter)


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _org(world: World, rng: random.Random, region: str, kind: str, at: datetime) -> str:
    """A registered organisation of ``kind`` that is live at ``at``, in the patient's region if
    there is one, else anywhere; "" (someone not in the register) when none is."""
    if not kind:
        return ""
    for pool in (world.using.get((region, kind), ()), world.national.get(kind, ())):
        n = bisect.bisect_right(pool, (at, "\uffff"))
        if n:
            return pool[rng.randrange(n)][1]
    return ""


def _later(rng: random.Random, created: datetime, end: datetime) -> datetime:
    return created + (end - created) * rng.random()


def simulate(world: World, first: int, last: int) -> Batch:  # noqa: PLR0912
    """Patients ``first`` to ``last - 1`` of the history, counted by the consumer's functions.

    Patient n's story depends only on the seed and n, so batches can be made in any order
    and in any process, and give the same counts."""
    tally = Tally()
    live: dict[str, datetime] = {}
    events: Counter[str] = Counter()
    types = {o_id: kind for kind, pool in world.national.items() for _, o_id in pool}
    span = world.end - world.start
    for n in range(first, last):
        rng = random.Random(world.seed * 10_000_019 + n)
        # the rollout speeds up: patient n's list is made (n/N)^0.5 of the way through
        created = world.start + span * ((n + 1) / world.patients) ** 0.5 * 0.999
        created -= timedelta(seconds=rng.randrange(86_400))
        if rng.random() < 0.005:
            home = Home()  # no municipality code on the address
        else:
            place = world.places[
                bisect.bisect_right(world.cumulative, rng.randrange(world.cumulative[-1]))
            ]
            home = Home(place.region, place.code)
        # (time, actor type, activities)
        steps = [(created, _pick(rng, CREATORS), frozenset({"create-list", "create"}))]
        for _ in range(rng.randint(2, 6)):
            steps.append(
                (_later(rng, created, world.end), _pick(rng, CHANGERS), frozenset({"update"}))
            )
        if rng.random() < 0.6:
            confirmed = _later(rng, created, world.end)
            steps.append((confirmed, _pick(rng, CONFIRMERS), frozenset({"confirm"})))
            if rng.random() < 0.2:
                again = _later(rng, confirmed, world.end)
                steps.append((again, _pick(rng, CONFIRMERS), frozenset({"confirm"})))
        steps.sort(key=lambda s: s[0])
        # multidose: from some change on, on paper (some move on to e-multidose), or e-multidose
        paper_from = emulti_from = len(steps)
        paper_until = len(steps)
        draw = rng.random()
        if draw < 0.04:
            paper_from = rng.randrange(len(steps))
            if rng.random() < 0.5:
                paper_until = emulti_from = rng.randrange(paper_from, len(steps) + 1)
        elif draw < 0.07:
            emulti_from = rng.randrange(len(steps))
        state: ListState | None = None
        list_id = f"list-{n}"
        patient_id = f"patient-{n}"
        for i, (at, kind, activities) in enumerate(steps):
            org = _org(world, rng, home.region, kind, at)
            if org and (org not in live or at < live[org]):
                live[org] = at
            state = ind.list_changed(
                tally,
                state,
                ListChange(
                    patient_id,
                    list_id,
                    at,
                    activities,
                    types.get(org, ""),
                    home,
                    paper=paper_from <= i < paper_until,
                    emultidose=i >= emulti_from,
                ),
            )
            events["list-changed"] += 1
        if rng.random() < 0.03:
            at = _later(rng, created, world.end)
            org = _org(world, rng, home.region, _pick(rng, EMERGENCY_UNITS), at)
            tally.happened(ind.EMERGENCY, at, home, types.get(org, ""))
            events["emergency access"] += 1
        if rng.random() < 0.02:
            at, kind, _ = steps[rng.randrange(1, len(steps))]
            tally.happened(ind.CONFLICTS, at, home, kind)
            events["conflict"] += 1
        if rng.random() < 0.08:
            reported = _later(rng, created, world.end)
            owner = types.get(_org(world, rng, home.region, _pick(rng, CASE_OWNERS), reported), "")
            ind.case_changed(tally, "case-reported", reported, reported, home, owner)
            events["case-reported"] += 1
            closed = reported + timedelta(days=rng.uniform(0.1, 21))
            if rng.random() < 0.6 and closed <= world.end:
                ind.case_changed(tally, _pick(rng, CLOSINGS), closed, reported, home, owner)
                events["case closed"] += 1
    return Batch(tally.nonzero(), live, events)


def invented(count: int, seed: int) -> list[Organisation]:
    """``count`` organisations more for the register, placed by population and of every actor
    type, that never use PLL: the size of a real register (some thousands) without changing
    the counts."""
    rng = random.Random(seed)
    places = list(geography.municipalities().values())
    weights = [p.population for p in places]
    out = []
    for n in range(count):
        place = rng.choices(places, weights)[0]
        kind = ACTOR_TYPES[n % len(ACTOR_TYPES)]
        out.append(
            Organisation(f"{800_000_000 + n}", f"Org {n}", place.code, place.region, kind, None)
        )
    return out


def fill(
    db: Database, world: World, batch: int, processes: int, label: str, extra: int = 0
) -> dict[str, Any]:
    """Register the demo organisations (and ``extra`` invented ones) and write the counts of
    ``world.patients`` patients, one transaction per batch; returns how long it took and what
    was counted."""
    started = time.perf_counter()
    Statistics(db, lambda: world.start).register(organisations.demo() + invented(extra, world.seed))
    spans = [(a, min(a + batch, world.patients)) for a in range(0, world.patients, batch)]
    events: Counter[str] = Counter()
    written = 0
    generate = 0.0
    with (
        ProcessPoolExecutor(max_workers=processes) as pool,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("patients"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress,
    ):
        task = progress.add_task(f"{label}: counting", total=world.patients)
        futures = [pool.submit(simulate, world, a, b) for a, b in spans]
        for (a, b), future in zip(spans, futures, strict=True):
            t = time.perf_counter()
            result = future.result()
            generate += time.perf_counter() - t
            with db.write() as conn:
                store.add_counts(conn, result.counts)
                store.mark_live(conn, result.live)
            written += len(result.counts)
            events += result.events
            progress.update(task, advance=b - a)
    if not db.is_sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE) stats_count, organisation"))
    with db.read() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(stats_count)).scalar_one()
        by_grain = dict(
            conn.execute(
                sa.select(stats_count.c.grain, sa.func.count()).group_by(stats_count.c.grain)
            ).all()
        )
        live = conn.execute(
            sa.select(sa.func.count())
            .select_from(organisation)
            .where(organisation.c.live_since.is_not(None))
        ).scalar_one()
        registered = conn.execute(sa.select(sa.func.count()).select_from(organisation)).scalar_one()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "waiting_for_generation_seconds": round(generate, 1),
        "cells_written": written,
        "stats_count_rows": rows,
        "stats_count_rows_by_grain": by_grain,
        "organisations": registered,
        "organisations_live": live,
        "events_counted": dict(events),
    }


# -- databases ---------------------------------------------------------------------------------


def postgres_reachable(pg_admin: str) -> str | None:
    """``None`` if PostgreSQL answers at ``pg_admin``, else why not."""
    engine = sa.create_engine(normalise_url(pg_admin))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


# -- timing ------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], runs: int, warmup: int) -> dict[str, Any]:
    """Median and p95 (nearest rank) in ms of ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)], 2),
        "max_ms": round(ordered[-1], 2),
        "runs_ms": [round(t, 2) for t in times],
    }


#: What the figures read with, in :mod:`pll.store.stats` (those there are are wrapped).
READERS = ("counts", "totals", "bands", "organisations")


class Reads:
    """Counts the time spent in, and the rows returned by, the store's reads of the counts and
    the register, by wrapping them where the service looks them up (only while on)."""

    def __init__(self) -> None:
        self.on = False
        self.seconds = 0.0
        self.rows = 0
        self.calls: list[dict[str, Any]] = []
        for name in READERS:
            if hasattr(store, name):
                setattr(store, name, self._wrap(getattr(store, name)))

    def _wrap(self, fn: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        def run(*args: Any, **kwargs: Any) -> list[Any]:
            if not self.on:
                return fn(*args, **kwargs)
            t = time.perf_counter()
            rows = fn(*args, **kwargs)
            took = time.perf_counter() - t
            self.seconds += took
            self.rows += len(rows)
            self.calls.append(
                {
                    "call": fn.__name__,
                    "args": [a for a in args[1:] if not isinstance(a, sa.Connection)],
                    "kwargs": {
                        k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()
                    },
                    "rows": len(rows),
                    "ms": round(took * 1000, 2),
                }
            )
            return rows

        return run

    def measure(self, fn: Callable[[], Any], runs: int = 5) -> dict[str, Any]:
        """The run with the median total of ``runs`` instrumented runs."""
        seen = []
        for _ in range(runs):
            self.on, self.seconds, self.rows, self.calls = True, 0.0, 0, []
            t = time.perf_counter()
            out = fn()
            total = time.perf_counter() - t
            self.on = False
            seen.append(
                {
                    "total_ms": round(total * 1000, 2),
                    "reading_ms": round(self.seconds * 1000, 2),
                    "rows_read": self.rows,
                    "rows_out": len(out) if isinstance(out, list) else None,
                    "calls": self.calls,
                }
            )
        return sorted(seen, key=lambda r: r["total_ms"])[len(seen) // 2]


READS = Reads()


def explain(db: Database, fn: Callable[[], Any]) -> list[dict[str, Any]]:
    """Each SELECT ``fn`` issues on PostgreSQL, run again under EXPLAIN (ANALYZE, BUFFERS)."""
    captured: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", listen)
    try:
        fn()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listen)
    plans = []
    with db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cur:
            for statement, parameters in captured:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plan = "\n".join(r[0] for r in cur.fetchall())
                plans.append({"sql": statement, "parameters": repr(parameters), "plan": plan})
        raw.rollback()
    return plans


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The ASGI app on a real socket in a thread (as tests/conftest.py serves it)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


#: The exports timed over HTTP, and the dashboard (timed only if it answers 200).
EXPORTS = {
    "GET /stats/periods week × region, CSV": "/stats/periods?grain=week&by=region&format=csv",
    "GET /stats/periods month × municipality, JSON": (
        "/stats/periods?grain=month&by=municipality&format=json"
    ),
    "GET /stats/snapshot municipality, CSV": "/stats/snapshot?by=municipality&format=csv",
}
DASHBOARD = ("GET /statistikk (dashboard page)", "/statistikk")


def measure_figures(
    db: Database, tmp: Path, now: datetime, runs: int, warmup: int, with_plans: bool
) -> dict[str, Any]:
    """Every figure in-process and every export over HTTP, on the filled ``db``."""
    clock = lambda: now  # noqa: E731 - the figures' "today" is the end of the history
    stats = Statistics(db, clock)
    today = now.date()  # as /stats/ takes it, and the same spans as it takes by default
    figures: dict[str, Callable[[], Any]] = {
        "periods week × region, 12 weeks": lambda: stats.periods(
            "week", "region", today - timedelta(weeks=11), today
        ),
        "periods month × municipality, 12 months": lambda: stats.periods(
            "month", "municipality", today - timedelta(days=334), today
        ),
        "snapshot region": lambda: stats.snapshot("region"),
        "snapshot municipality": lambda: stats.snapshot("municipality"),
        "rollout": stats.rollout,
    }
    out: dict[str, Any] = {}
    for name, fn in figures.items():
        out[name] = timed(fn, runs, warmup) | {"breakdown": READS.measure(fn)}
        if with_plans and not db.is_sqlite:
            out[name]["plans"] = explain(db, fn)
    data_dir = tmp / f"data-{uuid.uuid4().hex[:6]}"
    data_dir.mkdir()
    settings = Settings(
        data_dir=data_dir,
        database_url=db.url,
        dev_auth=True,
        seal_interval=0,
        dispatch=False,
        stats_interval=0,
    )
    service = PLLService(db, AuditKey.load(data_dir), clock=clock)
    with (
        serving(create_app(settings, service)) as base,
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        pages = dict(EXPORTS)
        probe = client.get(DASHBOARD[1])
        if probe.status_code == 200:
            pages[DASHBOARD[0]] = DASHBOARD[1]
        else:
            out[DASHBOARD[0]] = {"skipped": f"answered {probe.status_code}, not 200"}
        for name, path in pages.items():
            sizes: list[int] = []

            def get(path: str = path, sizes: list[int] = sizes) -> None:
                response = client.get(path)
                response.raise_for_status()
                sizes.append(len(response.content))

            out[name] = timed(get, runs, warmup) | {"bytes": sizes[-1], "path": path}
    return out


# -- the consumer on real events ---------------------------------------------------------------


def consumer_throughput(db: Database, tmp: Path, patients: int, seed: int) -> dict[str, Any]:
    """Demo patients made through the service, then every event counted again, timed."""
    extract = io.BytesIO()
    generate(extract, scale=0.1, seed=seed)
    extract.seek(0)
    import_fest(db, extract, "generated (scale 0.1)", now=datetime.now(UTC))
    data_dir = tmp / f"demo-{uuid.uuid4().hex[:6]}"
    data_dir.mkdir()
    service = PLLService(db, AuditKey.load(data_dir))
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("demo patients through PLLService", total=patients)
        create_demo(service, patients, seed, lambda n: progress.advance(task, n))
    made = time.perf_counter() - started
    # create_demo counted them already: forget that, so the consumer counts every event again
    with db.write() as conn:
        for table in (stats_count, stats_list, stats_emergency, stats_place_table):
            conn.execute(table.delete())
        conn.execute(consumer.delete().where(consumer.c.name == CONSUMER))
        conn.execute(organisation.update().values(live_since=None))
        outbox_events = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
    stats = Statistics(db, lambda: datetime.now(UTC) + timedelta(minutes=5))
    t = time.perf_counter()
    events = stats.catch_up()
    seconds = time.perf_counter() - t
    with db.read() as conn:
        cells = conn.execute(sa.select(sa.func.count()).select_from(stats_count)).scalar_one()
    return {
        "patients": patients,
        "seconds_to_make": round(made, 1),
        "outbox_events": outbox_events,
        "events_counted": events,
        "catch_up_seconds": round(seconds, 2),
        "events_per_second": round(events / seconds, 1) if seconds else None,
        "stats_count_rows": cells,
    }


# -- the report --------------------------------------------------------------------------------


def _cell(m: dict[str, Any] | None) -> str:
    if m is None:
        return "–"
    if "skipped" in m:
        return f"skipped ({m['skipped']})"
    return f"{m['median_ms']:.1f} / {m['p95_ms']:.1f}"


def report(results: dict[str, Any]) -> None:
    runs = results["runs"]
    table = Table(title="Rollout statistics: median / p95 ms (the counts of N patients)")
    table.add_column("measurement")
    for r in runs:
        table.add_column(f"{r['backend']}\n{r['patients']:,} patients", justify="right")
    table.add_row("stats_count rows", *(f"{r['fill']['stats_count_rows']:,}" for r in runs))
    table.add_row("organisations registered", *(str(r["fill"]["organisations"]) for r in runs))
    table.add_row("filling the counts, s", *(str(r["fill"]["seconds"]) for r in runs))
    names: list[str] = []
    for r in runs:
        names += [n for n in r["measurements"] if n not in names]
    for name in names:
        table.add_row(name, *(_cell(r["measurements"].get(name)) for r in runs))
    console.print(table)
    breakdown = Table(title="Of which reading the counts (median of 5 instrumented runs)")
    breakdown.add_column("figure")
    for r in runs:
        breakdown.add_column(f"{r['backend']}\n{r['patients']:,}", justify="right")
    for name in names:
        cells = []
        for r in runs:
            b = r["measurements"].get(name, {}).get("breakdown")
            cells.append(
                f"{b['reading_ms']:.1f} of {b['total_ms']:.1f} ms, {b['rows_read']:,} rows"
                if b
                else "–"
            )
        if any(c != "–" for c in cells):
            breakdown.add_row(name, *cells)
    console.print(breakdown)
    if results["consumer"]:
        c = Table(title="The consumer on real events (Statistics.catch_up)")
        for col in ("database", "patients", "events", "seconds", "events/s", "cells"):
            c.add_column(col, justify="right")
        for r in results["consumer"]:
            if "events_counted" not in r:
                c.add_row(r["backend"], str(r["patients"]), "failed", "", "", "")
                continue
            c.add_row(
                r["backend"],
                str(r["patients"]),
                str(r["events_counted"]),
                str(r["catch_up_seconds"]),
                str(r["events_per_second"]),
                str(r["stats_count_rows"]),
            )
        console.print(c)


@click.command()
@click.option(
    "--patients",
    default="100000,1000000",
    show_default=True,
    help="numbers of patients, comma-separated",
)
@click.option("--backends", default="sqlite,postgresql", show_default=True)
@click.option(
    "--postgres-url",
    default=DEFAULT_PG,
    show_default=True,
    help="a PostgreSQL database to connect to as administrator (throwaway ones are made beside)",
)
@click.option("--runs", default=20, show_default=True, help="timed runs per measurement")
@click.option("--warmup", default=3, show_default=True, help="untimed runs before them")
@click.option("--batch", default=50_000, show_default=True, help="patients per write")
@click.option("--years", default=2.0, show_default=True, help="how long the history is")
@click.option(
    "--processes",
    default=max(1, (os.cpu_count() or 2) - 1),
    show_default=True,
    help="processes generating the history",
)
@click.option(
    "--consumer-patients",
    default=2000,
    show_default=True,
    help="demo patients for the consumer's throughput (0: skip)",
)
@click.option(
    "--extra-organisations",
    default=0,
    show_default=True,
    help="invented organisations registered besides the demo register's (never live)",
)
@click.option("--explain/--no-explain", default=False, help="save PostgreSQL plans")
@click.option("--seed", default=2026, show_default=True)
def main(
    patients: str,
    backends: str,
    postgres_url: str,
    runs: int,
    warmup: int,
    batch: int,
    years: float,
    processes: int,
    consumer_patients: int,
    extra_organisations: int,
    explain: bool,
    seed: int,
) -> None:
    counts = [int(p.replace("_", "")) for p in patients.split(",") if p.strip()]
    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = set(chosen) - {"sqlite", "postgresql"}
    if unknown:
        raise click.BadParameter(f"unknown backend(s): {', '.join(sorted(unknown))}")
    skipped: dict[str, str] = {}
    if "postgresql" in chosen and (why := postgres_reachable(postgres_url)):
        skipped["postgresql"] = why
        chosen.remove("postgresql")
        console.print(f"[yellow]PostgreSQL skipped: {why}")
    console.print(
        "The counts are generated through the consumer's own counting functions "
        "(pll.stats.indicators: Tally, list_changed, case_changed) for a synthetic history, "
        "not by running the patients through the API: the cells are those the consumer would "
        "have written; the write path is measured elsewhere (run_bench.py, events_bench.py)."
    )
    now = datetime.now(UTC).replace(microsecond=0)
    results: dict[str, Any] = {
        "started": now.isoformat(),
        "commit": _commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "options": {
            "patients": counts,
            "backends": chosen,
            "runs": runs,
            "warmup": warmup,
            "batch": batch,
            "years": years,
            "processes": processes,
            "consumer_patients": consumer_patients,
            "extra_organisations": extra_organisations,
            "seed": seed,
        },
        "method": (
            "counts generated through pll.stats.indicators (the consumer's counting functions) "
            "for a synthetic history of N patients, written with pll.store.stats.add_counts; "
            "not through the API"
        ),
        "skipped": skipped,
        "runs": [],
        "consumer": [],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"stats-{now.strftime('%Y%m%dT%H%M%SZ')}.json"

    def save() -> None:  # after every step, so a stopped run keeps what it measured
        out.write_text(json.dumps(results, indent=1, default=str))

    with tempfile.TemporaryDirectory(prefix="pll-stats-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for backend in chosen:
            for n in counts:
                label = f"{backend}, {n:,} patients"
                world = make_world(seed, n, now, years)
                with fresh_database(backend, tmp, postgres_url, f"n{n}") as db:
                    filled = fill(db, world, batch, processes, label, extra_organisations)
                    console.print(
                        f"{label}: {filled['stats_count_rows']:,} stats_count rows "
                        f"in {filled['seconds']} s ({filled['events_counted']})"
                    )
                    with console.status(f"{label}: timing the figures"):
                        measured = measure_figures(db, tmp, now, runs, warmup, explain)
                results["runs"].append(
                    {"backend": backend, "patients": n, "fill": filled, "measurements": measured}
                )
                save()
                report({"runs": results["runs"][-1:], "consumer": []})
            if consumer_patients:
                results["consumer"].append(
                    {"backend": backend}
                    | consumer_run(backend, tmp, postgres_url, consumer_patients, seed)
                )
                save()
    if len(results["runs"]) > 1 or results["consumer"]:
        report(results)
    save()
    console.print(f"written to {out}")


def _commit() -> str | None:
    """The commit measured, with ``+changes`` when the work tree differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def consumer_run(
    backend: str, tmp: Path, postgres_url: str, patients: int, seed: int
) -> dict[str, Any]:
    """:func:`consumer_throughput` on a fresh database; with the next seed on another if the
    demo gives two patients the same synthetic fødselsnummer (``create_demo`` then stops with
    a Conflict: the second patient is found, not made, and already has a list)."""
    failed: list[dict[str, Any]] = []
    for attempt in range(3):
        with fresh_database(backend, tmp, postgres_url, f"consumer{attempt}") as db:
            try:
                done = consumer_throughput(db, tmp, patients, seed + attempt)
            except Conflict as exc:
                failed.append({"seed": seed + attempt, "error": str(exc)})
                console.print(f"[yellow]create_demo, seed {seed + attempt}: {exc}")
                continue
        return done | {"seed": seed + attempt, "failed_seeds": failed}
    return {"patients": patients, "failed_seeds": failed}


if __name__ == "__main__":
    main()
