"""Rollout and quality statistics: kept current from the events, read as suppressed tables.

:class:`Statistics` is two things:

- **the consumer**: :meth:`Statistics.catch_up` reads the outbox on from its place and turns
  each event into additions to the aggregated counts (:mod:`pll.stats.indicators`), in the
  same transaction that moves its place, so every event is counted exactly once however
  often it runs and however many processes run it (the place row is locked). Emergency
  accesses are read the same way from the audit trail (reads write no events), a settling
  time behind. Relay-baton conflicts are refusals: nothing is written for them but their
  count, by :func:`conflict_in`, after the refused transaction rolled back.
- **the figures**: :meth:`Statistics.periods`, :meth:`Statistics.snapshot` and
  :meth:`Statistics.rollout` read the counts and the organisation register — never the
  lists — and suppress small counts (:mod:`pll.stats.disclosure`).

Issue 8 (rollout and quality) names the figures; ``docs/statistics.md`` defines each one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, select

from pll.domain.cases import EVENT_PREFIX as CASE_EVENTS
from pll.events import outbox
from pll.stats import ambitions, disclosure, geography
from pll.stats import indicators as ind
from pll.stats.indicators import Home, ListChange, Tally
from pll.stats.organisations import Organisation
from pll.store import multidose as multidose_store
from pll.store import stats as store
from pll.store.db import Database
from pll.store.schema import consumer

#: The consumer's name in the outbox's ``consumer`` table (its lag shows in ``/metrics``).
CONSUMER = "statistics"
#: Its place in the audit trail.
AUDIT = "audit"
#: How far behind the newest audit records the consumer stays (see store.stats.audit_after).
SETTLE = timedelta(seconds=30)

GRAINS = ("week", "month")
BY = ("region", "municipality", "actor_type")
#: The freshness bands of the last confirmation, in days (and "never").
FRESHNESS = (("0–3 mnd", 0, 91), ("3–6 mnd", 91, 183), ("6–12 mnd", 183, 366))


def conflict_in(conn: Connection, patient_id: str | None, org_id: str | None, at: datetime) -> None:
    """Count a change the relay baton refused (someone else had changed it first)."""
    # the home from the Patient itself: the consumer may not have seen this patient yet
    found = store.patients(conn, [patient_id]) if patient_id else {}
    types = store.actor_types(conn, [org_id]) if org_id else {}
    tally = Tally()
    tally.happened(
        ind.CONFLICTS,
        at,
        ind.home_of(found.get(patient_id or "", {})),
        types.get(org_id or "", ""),
    )
    store.add_counts(conn, tally.nonzero())


@dataclass
class Statistics:
    db: Database
    clock: Callable[[], datetime]
    settle: timedelta = SETTLE
    matrix: ambitions.Matrix = field(default_factory=ambitions.current)

    # -- the register ------------------------------------------------------------------------

    def register(self, orgs: Sequence[Organisation]) -> int:
        """Register or update organisations; returns how many were new."""
        with self.db.write() as conn:
            return store.load_organisations(conn, orgs, self.clock())

    # -- the consumer ------------------------------------------------------------------------

    def enrol(self) -> None:
        """Give the consumer its place in the outbox if it has none (at the start), so that
        its lag shows in ``/metrics`` and ``pll events status`` from the first event on,
        whether or not a worker has run yet (docs/operations.md)."""
        with self.db.write() as conn:
            outbox.place(conn, CONSUMER, self.clock())

    def catch_up(
        self,
        batch: int = 500,
        progress: Callable[[int], None] | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Count every event and audit record not counted yet; returns how many events.

        With nothing to count this is one query (:meth:`due`). ``stop`` is asked between
        batches: a worker that is told to stop finishes the batch in hand, whose count and
        place commit together, and leaves the rest to the next run."""
        if not self.due():
            return 0
        total = 0
        while not stop() and (done := self.step(batch)):
            total += done
            if progress is not None:
                progress(done)
        # the audit trail, a batch of records at a time, until none is due
        more = True
        while more and not stop():
            more = self.step_audit(batch * 10) > 0
        return total

    def due(self) -> bool:
        """Whether an event or an audit record waits to be counted: one read-only query
        (the idle check of a worker that asks every few seconds, issue 20)."""
        before = self.clock() - self.settle
        with self.db.read() as conn:
            events, audit = conn.execute(
                select(outbox.waiting(CONSUMER), store.audit_due(AUDIT, before))
            ).one()
        return bool(events) or bool(audit)

    def step(self, batch: int = 500) -> int:
        """Count the next ``batch`` events, in one transaction with the consumer's place."""
        now = self.clock()
        with self.db.write() as conn:
            # two workers counting at once take turns instead of counting twice; the
            # transaction gets its id only at its first write, after the reads
            outbox.take_turns(conn, CONSUMER)
            place = outbox.place(conn, CONSUMER, now)
            events = outbox.after(conn, place.position, batch)
            if not events:
                return 0
            self._count(conn, events)
            outbox.advance(conn, CONSUMER, events[-1], now)
        return len(events)

    def _count(self, conn: Connection, events: Sequence[outbox.Event]) -> None:
        changed = [e for e in events if e.kind == "list-changed"]
        cases = [e for e in events if e.kind.startswith(CASE_EVENTS)]
        patient_ids = {e.patient_id for e in (*changed, *cases)}
        states = store.list_states(conn, patient_ids)
        known = set(states)
        new_patients = {e.patient_id for e in changed} - known
        resources = store.patients(conn, new_patients)
        versions = store.versions(conn, [(e.list_id, e.list_version) for e in changed])
        authors = {k: orjson.loads(v.author) for k, v in versions.items()}
        owners = {str(e.payload.get("owner") or "") for e in cases}
        org_ids = {str(a.get("org_id") or "") for a in authors.values()} | owners
        types = store.actor_types(conn, org_ids - {""})
        multidose = multidose_store.enrolment(conn, {e.patient_id for e in changed})
        tally = Tally()
        live: dict[str, datetime] = {}
        for event in events:
            if event.kind == "list-changed":
                version = versions.get((event.list_id, event.list_version))
                author = authors.get((event.list_id, event.list_version), {})
                org = str(author.get("org_id") or "")
                if org in types and (org not in live or event.created_at < live[org]):
                    live[org] = event.created_at
                emultidose, paper = multidose.get(event.patient_id, (False, False))
                states[event.patient_id] = ind.list_changed(
                    tally,
                    states.get(event.patient_id),
                    ListChange(
                        event.patient_id,
                        event.list_id,
                        event.created_at,
                        frozenset(version.activity.split("+")) if version else frozenset(),
                        types.get(org, ""),
                        ind.home_of(resources.get(event.patient_id, {})),
                        paper=paper,
                        emultidose=emultidose,
                    ),
                )
            elif event.kind.startswith(CASE_EVENTS):
                state = states.get(event.patient_id)
                reported = event.payload.get("reported")
                ind.case_changed(
                    tally,
                    event.kind,
                    event.created_at,
                    datetime.fromisoformat(reported) if reported else event.created_at,
                    state.home if state else Home(),
                    types.get(str(event.payload.get("owner") or ""), ""),
                )
        store.save_list_states(conn, (s for p, s in states.items() if p in patient_ids))
        store.mark_live(conn, live)
        store.add_counts(conn, tally.nonzero())

    def step_audit(self, batch: int = 5000) -> int:
        """Count the emergency accesses in the next ``batch`` audit records (one per health
        worker, patient and day); returns how many records were read past."""
        now = self.clock()
        with self.db.write() as conn:
            position = store.audit_place(conn, AUDIT, now)
            rows, last = store.audit_after(conn, position, now - self.settle, batch)
            if last == position:
                return 0
            accesses: dict[tuple[str, str, str], Any] = {}
            for row in rows:
                actor = orjson.loads(row.actor)
                key = (
                    str(row.patient_id or ""),
                    str(actor.get("hpr") or ""),
                    ind.day(row.recorded_at),
                )
                accesses.setdefault(key, (row, actor))
            first = store.first_emergencies(conn, accesses)
            found = store.patients(conn, {k[0] for k in first})
            homes = {pid: ind.home_of(resource) for pid, resource in found.items()}
            types = store.actor_types(
                conn, {str(a.get("org_id") or "") for _, a in accesses.values()}
            )
            tally = Tally()
            for key in sorted(first):
                row, actor = accesses[key]
                tally.happened(
                    ind.EMERGENCY,
                    row.recorded_at,
                    homes.get(key[0], Home()),
                    types.get(str(actor.get("org_id") or ""), ""),
                )
            store.add_counts(conn, tally.nonzero())
            store.move_audit_place(conn, AUDIT, last, now)
        return last - position

    # -- the figures -------------------------------------------------------------------------

    def periods(self, grain: str, by: str | None, since: date, until: date) -> list[dict[str, Any]]:
        """What happened per week or month from ``since`` to ``until`` (both included), per
        region, municipality or actor type (``by``; ``None``: the whole country), with small
        counts suppressed. One row per period and cell; see ``docs/statistics.md``."""
        labels = period_labels(grain, since, until)
        if not labels:
            return []
        columns = (by,) if by else ()
        with self.db.read() as conn:
            happened = store.counts(
                conn, ind.PERIODIC, grain, since=labels[0], until=labels[-1], by=columns
            )
            # lists at the end of each period: those made before the first, then period by
            # period (one sum per cell, not the whole history)
            before = store.totals(conn, [ind.NEW_LISTS], grain, before=labels[0], by=columns)
            orgs = store.organisations(conn)
        figures: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        cells: set[str] = set(_all_cells(by))
        for r in happened:
            cell = str(getattr(r, by)) if by else ""
            for measure in ind.PERIODIC:
                figures[(r.period, cell)][measure] += int(r._mapping[measure] or 0)
            cells.add(cell)
        lists: dict[str, int] = defaultdict(int)
        for r in before:
            cell = str(getattr(r, by)) if by else ""
            lists[cell] += int(r.value or 0)  # a sum of nothing is NULL
            cells.add(cell)
        # when each cell's organisations went live, sorted: live by a time is a bisection
        registered: dict[str, int] = defaultdict(int)
        went_live: dict[str, list[datetime]] = defaultdict(list)
        for o in orgs:
            cell = str(o._mapping[by]) if by else ""
            cells.add(cell)
            registered[cell] += 1
            if o.live_since is not None:
                went_live[cell].append(o.live_since)
        for times in went_live.values():
            times.sort()
        ordered = sorted(cells, key=_cell_order(by))
        fields = {cell: _cell_fields(by, cell) for cell in ordered}
        rows = []
        for label in labels:
            end = period_end(grain, label)
            for cell in ordered:
                f = figures.get((label, cell), {})
                lists[cell] += f.get(ind.NEW_LISTS, 0)
                total = lists[cell]
                changes = f.get(ind.CHANGES, 0)
                closed = f.get(ind.CASES_CLOSED, 0)
                row: dict[str, Any] = {"period": label, **fields[cell]}
                row |= {
                    "new_lists": f.get(ind.NEW_LISTS, 0),
                    "lists": total,
                    "changes": changes,
                    "changes_per_list": (
                        round(changes / total, 2) if total and by != "actor_type" else None
                    ),
                    "conflicts": f.get(ind.CONFLICTS, 0),
                    "conflicts_per_1000_changes": (
                        round(1000 * f.get(ind.CONFLICTS, 0) / changes, 1) if changes else None
                    ),
                    "emergency_accesses": f.get(ind.EMERGENCY, 0),
                    "cases_opened": f.get(ind.CASES_OPENED, 0),
                    "cases_closed": closed,
                    "mean_days_to_close": (
                        round(f.get(ind.CASE_SECONDS, 0) / closed / 86400, 1) if closed else None
                    ),
                    "organisations": registered[cell],
                    "organisations_live": bisect_left(went_live[cell], end),
                }
                rows.append(row)
        return disclosure.suppress(
            rows,
            PERIOD_COUNTS,
            {
                "changes_per_list": ("changes", "lists"),
                "conflicts_per_1000_changes": ("conflicts", "changes"),
                "mean_days_to_close": ("cases_closed",),
            },
            _group(by),
        )

    def snapshot(self, by: str | None) -> list[dict[str, Any]]:
        """Where the lists stand now, per region or municipality (``None``: the country):
        patients with a PLL and their share of the population, how recently the lists were
        confirmed, multidose, open cases; small counts suppressed."""
        if by not in (None, "region", "municipality"):
            raise ValueError("by must be region or municipality")
        columns = (by,) if by else ()
        today = self.clock().astimezone(ind.OSLO).date()
        with self.db.read() as conn:
            now = store.counts(conn, ind.CURRENT, "now", by=columns)
            # each band starts on a day: summed in the database, one row per cell
            starts = [
                (name, (today - timedelta(days=hi - 1)).isoformat()) for name, _, hi in FRESHNESS
            ]
            confirmed = store.bands(conn, ind.CONFIRMED, [*starts, ("over 12 mnd", "")], by=columns)
        figures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in now:
            for measure in ind.CURRENT:
                figures[str(getattr(r, by)) if by else ""][measure] += int(r._mapping[measure] or 0)
        for r in confirmed:
            cell = str(r._mapping[by]) if by else ""
            for name, _ in (*starts, ("over 12 mnd", "")):
                figures[cell][name] += int(r._mapping[name] or 0)
        cells = set(figures) | set(_all_cells(by))
        places = geography.municipalities()
        rows = []
        for cell in sorted(cells, key=_cell_order(by)):
            f = figures.get(cell, {})
            lists = f.get(ind.LISTS, 0)
            population = _population(by, cell, places)
            within = sum(f.get(name, 0) for name, _, _ in FRESHNESS)
            paper, electronic = f.get(ind.PAPER, 0), f.get(ind.EMULTIDOSE, 0)
            row: dict[str, Any] = {**_cell_fields(by, cell), "lists": lists}
            row |= {
                "population": population,
                "share_of_population_pct": (
                    round(100 * lists / population, 3) if population else None
                ),
                "confirmed_12m": within,
                "confirmed_12m_pct": round(100 * within / lists, 1) if lists else None,
                **{name: f.get(name, 0) for name, _, _ in FRESHNESS},
                "over 12 mnd": f.get("over 12 mnd", 0),
                "aldri": max(lists - within - f.get("over 12 mnd", 0), 0),
                "paper_multidose": paper,
                "emultidose": electronic,
                "emultidose_coverage_pct": (
                    round(100 * electronic / (electronic + paper), 1)
                    if electronic + paper
                    else None
                ),
                "cases_open": f.get(ind.CASES_OPEN, 0),
            }
            rows.append(row)
        bands = (*(name for name, _, _ in FRESHNESS), "over 12 mnd", "aldri")
        return disclosure.suppress(
            rows,
            ("lists", "confirmed_12m", *bands, "paper_multidose", "emultidose", "cases_open"),
            {
                "share_of_population_pct": ("lists",),
                "confirmed_12m_pct": ("confirmed_12m", "lists"),
                "emultidose_coverage_pct": ("emultidose", "paper_multidose"),
            },
            _group(by, period=False),
            parts=(bands,),
        )

    def rollout(self, day: date | None = None) -> list[dict[str, Any]]:
        """Organisations live (that have changed or confirmed a list) out of those registered,
        per region and actor type, against the national ambition for the year, with its
        status (:func:`pll.stats.ambitions.status`). Register data: not suppressed."""
        day = day or self.clock().astimezone(ind.OSLO).date()
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), ind.OSLO)
        with self.db.read() as conn:
            orgs = store.organisations(conn)
        registered: dict[tuple[str, str], int] = defaultdict(int)
        live_by: dict[tuple[str, str], int] = defaultdict(int)
        for o in orgs:
            registered[(o.region, o.actor_type)] += 1
            if o.live_since is not None and o.live_since < end:
                live_by[(o.region, o.actor_type)] += 1
        rows = []
        for region in ambitions.REGIONS:
            for actor_type in ambitions.ACTOR_TYPES:
                count = registered[(region, actor_type)]
                live = live_by[(region, actor_type)]
                share = round(100 * live / count, 1) if count else None
                target = self.matrix.target(region, actor_type, day.year)
                expected = ambitions.expected(self.matrix, region, actor_type, day)
                rows.append(
                    {
                        "region": region,
                        "actor_type": actor_type,
                        "organisations": count,
                        "organisations_live": live,
                        "share_live_pct": share,
                        "target_pct": target,
                        "expected_by_now_pct": (
                            round(expected, 1) if expected is not None else None
                        ),
                        "status": (
                            ambitions.status(self.matrix, region, actor_type, day, share).value
                            if share is not None
                            else ambitions.Status.NO_TARGET.value
                            if target is None
                            else "ingen registrert"
                        ),
                    }
                )
        return rows

    def national(self, day: date | None = None) -> list[dict[str, Any]]:
        """The national ambitions the lists themselves measure, against the ambition table:
        inhabitants with a PLL (the target is a share of 30 % of the population, the part
        expected to use medicines regularly) and e-multidose coverage. Suppressed like the
        counts they come from."""
        day = day or self.clock().astimezone(ind.OSLO).date()
        with self.db.read() as conn:
            now = store.counts(conn, [ind.LISTS, ind.PAPER, ind.EMULTIDOSE], "now")
        total = {
            m: sum(int(r._mapping[m] or 0) for r in now)
            for m in (ind.LISTS, ind.PAPER, ind.EMULTIDOSE)
        }
        lists, paper = total.get(ind.LISTS, 0), total.get(ind.PAPER, 0)
        electronic = total.get(ind.EMULTIDOSE, 0)
        population = geography.population()
        rows = [
            self._against(
                day,
                "innbyggere_med_pll_av_30pct_befolkning",
                "Innbyggere med PLL, av 30 % av befolkningen",
                round(100 * lists / (0.3 * population), 2) if population else None,
                {"lists": lists},
            ),
            self._against(
                day,
                "e_multidose",
                "Multidosepasienter på e-multidose",
                round(100 * electronic / (electronic + paper), 1) if electronic + paper else None,
                {"emultidose": electronic, "paper_multidose": paper},
            ),
        ]
        return disclosure.suppress(
            rows,
            ("lists", "emultidose", "paper_multidose"),
            {"actual_pct": ("lists", "emultidose", "paper_multidose"), "status": ("actual_pct",)},
            id,
        )

    def _against(
        self, day: date, key: str, label: str, actual: float | None, counts: dict[str, int]
    ) -> dict[str, Any]:
        target = self.matrix.target("Norge", key, day.year)
        expected = ambitions.expected(self.matrix, "Norge", key, day)
        status = (
            ambitions.status(self.matrix, "Norge", key, day, actual).value
            if actual is not None
            else ambitions.Status.NO_TARGET.value
        )
        return {
            "indicator": key,
            "label": label,
            **counts,
            "actual_pct": actual,
            "target_pct": target,
            "expected_by_now_pct": round(expected, 1) if expected is not None else None,
            "status": status,
        }

    def updated(self) -> tuple[int, int]:
        """How far the counts go, as event numbers: up to the newest event's id less the
        events not counted yet, and that id (the two are equal when every event is
        counted)."""
        with self.db.read() as conn:
            row = conn.execute(select(consumer).where(consumer.c.name == CONSUMER)).first()
            newest = outbox.head(conn).id
            place = outbox.position_of(row) if row is not None else outbox.START
            behind, _ = outbox.lag(conn, place, self.clock())
            return max(newest - behind, 0), newest


#: The counts of :meth:`Statistics.periods` that are about patients (suppressed when small)
PERIOD_COUNTS = (
    "new_lists",
    "lists",
    "changes",
    "conflicts",
    "emergency_accesses",
    "cases_opened",
    "cases_closed",
)


def period_labels(grain: str, since: date, until: date) -> list[str]:
    """Every week (``2026-W47``) or month (``2026-11``) from ``since`` to ``until``."""
    if grain not in GRAINS:
        raise ValueError("grain must be week or month")
    labels: list[str] = []
    if grain == "week":
        day = since - timedelta(days=since.weekday())
        while day <= until:
            labels.append(ind.week(datetime.combine(day, datetime.min.time(), ind.OSLO)))
            day += timedelta(days=7)
    else:
        year, number = since.year, since.month
        while (year, number) <= (until.year, until.month):
            labels.append(f"{year}-{number:02d}")
            year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return labels


def period_end(grain: str, label: str) -> datetime:
    """When a period ends (the first moment after it), in UTC."""
    if grain == "week":
        monday = date.fromisocalendar(int(label[:4]), int(label[6:]), 1)
        start = monday + timedelta(days=7)
    else:
        year, number = int(label[:4]), int(label[5:])
        start = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return datetime.combine(start, datetime.min.time(), ind.OSLO).astimezone(UTC)


def _all_cells(by: str | None) -> Iterable[str]:
    """The cells shown even when empty."""
    if by == "region":
        return ambitions.REGIONS
    if by == "actor_type":
        return ambitions.ACTOR_TYPES
    if by is None:
        return ("",)
    return ()


def _cell_order(by: str | None) -> Callable[[str], tuple[int, str]]:
    order = {"region": ambitions.REGIONS, "actor_type": ambitions.ACTOR_TYPES}.get(by or "", ())

    def key(cell: str) -> tuple[int, str]:
        # the known ones in their usual order, then the rest, "" (unknown) last
        if cell in order:
            return (order.index(cell), "")
        return (len(order) + (1 if cell == "" else 0), cell)

    return key


def _cell_fields(by: str | None, cell: str) -> dict[str, Any]:
    if by is None:
        return {"area": "Norge"}
    if by == "municipality":
        place = geography.municipalities().get(cell)
        return {
            "region": place.region if place else "",
            "municipality": cell,
            "municipality_name": place.name if place else "Ukjent",
        }
    return {by: cell or "ukjent"}


def _population(by: str | None, cell: str, places: dict[str, geography.Municipality]) -> int | None:
    if by is None:
        return geography.population()
    if by == "region":
        return geography.population(cell) if cell in ambitions.REGIONS else None
    place = places.get(cell)
    return place.population if place else None


def _group(by: str | None, *, period: bool = True) -> Callable[[dict[str, Any]], Any]:
    """The cells whose sum is published too (so one suppressed cell among them would be
    given away): a region's municipalities, the country's regions or actor types."""

    def group(row: dict[str, Any]) -> Any:
        when = row.get("period") if period else None
        if by == "municipality":
            return (when, row["region"])
        if by is None:
            return (when, id(row))  # the country: its own total
        return when

    return group
