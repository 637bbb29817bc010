"""The rollout and quality indicators on a small dataset with hand-checked values (issue 8).

Seven patients, six living in Bergen (Vest) and one in Tromsø (Nord), over three weeks:

- week A: the GP (Bergen legesenter, fastlege) makes the seven lists, each with one medicine
  (three versions each: the list, the prescription, the entry: 21 changes);
- week B: the hospital (Haukeland, sykehus) changes the dose on five of them (5 changes); the
  GP then changes those five on the version it held and is refused by the relay baton five
  times (5 conflicts); the GP confirms the six Bergen lists (6 changes);
- week C: a nurse reports a discrepancy on each of the five entries; they go to the hospital,
  which last changed them, and it resolves them two days later; the hospital reads the five
  lists in an emergency, twice each (5 emergency accesses: one per worker, patient and day);
  the GP registers the five for e-multidose (5 changes) and the pharmacy records paper
  multidose for them (5 changes, by an apotek).

Every figure below was worked out by hand from that story.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pll.api.app import create_app
from pll.auth.audit import AuditKey
from pll.services.lists import PLLService
from pll.services.stats import Statistics
from pll.stats import geography, organisations
from pll.stats import indicators as ind
from pll.stats.disclosure import HIDDEN, SUPPRESSED, THRESHOLD, hidden
from pll.store.db import Database
from pll.store.schema import stats_count
from tests.conftest import (
    Clock,
    LiveServer,
    _drop_postgres_database,
    _postgres_database,
    server_settings,
    serving,
    snapshot,
)
from tests.e2e.scenes import METFORMIN, add_medicine
from tests.integration.builders import new_list, ok, outcome_text, patient

S, H = SUPPRESSED, HIDDEN  # under 5; hidden for the sake of one that is
REGISTER = """orgnr,name,kommunenummer,actor_type,her_id
974600951,Bergen legesenter,4601,fastlege,
983974724,Haukeland universitetssjukehus,4601,sykehus,
964338531,Bergen kommune hjemmetjeneste,4601,sykehjem_hjemmetjeneste,
985563756,Apotek 1 Bergen multidose,4601,apotek,
987654325,Vitusapotek Trondheim,5001,apotek,
911222337,Tromsø legesenter,5501,fastlege,
911333332,Oslo legevakt,0301,legevakt_ohd_kad,
"""
ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101"


def home(code: str) -> dict[str, Any]:
    place = geography.municipalities()[code]
    return {
        **patient(),
        "address": [
            {
                "use": "home",
                "district": place.name,
                "_district": {
                    "extension": [
                        {
                            "url": ind.MUNICIPALITY_EXTENSION,
                            "valueCoding": {"system": ind.MUNICIPALITY_SYSTEM, "code": code},
                        }
                    ]
                },
            }
        ],
    }


def params(**values: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Parameters"}
    if values:
        body["parameter"] = [{"name": k, **v} for k, v in values.items()]
    return body


class Story:
    """The dataset of the module docstring, told once per database."""

    def __init__(self, server: LiveServer, clock: Clock) -> None:
        self.server, self.clock = server, clock
        now = datetime.now(ind.OSLO)
        monday = (now - timedelta(days=now.weekday())).replace(
            hour=10, minute=0, second=0, microsecond=0
        )
        # Tuesdays three, two and one week back: whole weeks, all in the past
        self.a = monday - timedelta(weeks=3) + timedelta(days=1)
        self.b, self.c = self.a + timedelta(weeks=1), self.a + timedelta(weeks=2)
        self.closed = self.c + timedelta(days=2)
        self.pids: list[str] = []
        self.lists: list[str] = []
        self.entries: list[str] = []

    def at(self, when: datetime) -> None:
        self.clock.offset = when - datetime.now(UTC)

    def tell(self) -> None:
        s = self.server
        Statistics(s.db, s.service.clock).register(organisations.parse("test", REGISTER))
        with (
            s.client("gp") as gp,
            s.client("hospital-doctor") as hospital,
            s.client("hospital-doctor", basis="HPAKUTT") as emergency,
            s.client("nurse") as nurse,
            s.client("pharmacist") as pharmacy,
        ):
            self.at(self.a)
            for code in ["4601"] * 6 + ["5501"]:
                pid = ok(gp.post("/fhir/Patient", json=home(code)), 201)["id"]
                self.pids.append(pid)
                self.lists.append(new_list(gp, pid)["id"])
                self.entries.append(add_medicine(gp, pid, METFORMIN)[0])
            self.at(self.b)
            for entry in self.entries[:5]:
                current = ok(hospital.get(f"/fhir/MedicationStatement/{entry}"))
                changed = dict(current, note=[{"text": "Dosen justert under innleggelse"}])
                r = hospital.put(
                    f"/fhir/MedicationStatement/{entry}",
                    json=changed,
                    headers={"If-Match": 'W/"1"'},
                )
                ok(r)
                stale = dict(current, note=[{"text": "Fastlegens endring"}])
                r = gp.put(
                    f"/fhir/MedicationStatement/{entry}", json=stale, headers={"If-Match": 'W/"1"'}
                )
                assert r.status_code == 412, r.text
            for list_id in self.lists[:6]:
                version = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
                ok(
                    gp.post(
                        f"/fhir/List/{list_id}/$confirm", headers={"If-Match": f'W/"{version}"'}
                    )
                )
            self.at(self.c)
            tasks = []
            for entry in self.entries[:5]:
                task = {
                    "resourceType": "Task",
                    "status": "requested",
                    "intent": "order",
                    "focus": {"reference": f"MedicationStatement/{entry}"},
                    "description": "Hjemmetjenesten gir en annen dose",
                }
                tasks.append(ok(nurse.post("/fhir/Task", json=task), 201)["id"])
            for pid in self.pids[:5]:
                for _ in range(2):
                    ok(emergency.get("/fhir/List", params={"patient": pid}))
                ok(
                    gp.post(
                        f"/fhir/Patient/{pid}/$multidose-register",
                        json=params(
                            pharmacy={
                                "valueReference": {
                                    "identifier": {"system": ORGNR, "value": "985563756"},
                                    "display": "Apotek 1 Bergen multidose",
                                }
                            }
                        ),
                    )
                )
                ok(pharmacy.post(f"/fhir/Patient/{pid}/$paper-multidose", json=params()))
            self.at(self.closed)
            for task in tasks:
                ok(hospital.post(f"/fhir/Task/{task}/$resolve"))
        self.clock.offset = timedelta()

    def week(self, when: datetime) -> str:
        return ind.week(when)


@pytest.fixture(scope="module")
def told(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The story, told once on a database and server of this module's own (so no other
    test empties it meanwhile), on the same backend as ``database``."""
    data_dir = tmp_path_factory.mktemp("stats-data")
    if database.is_sqlite:
        url, name = f"sqlite:///{data_dir / 'pll.sqlite3'}", None
    else:
        name = f"pll_stats_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        url = _postgres_database(name)
    db = Database(url)
    db.upgrade()
    clock = Clock()
    service = PLLService(db, AuditKey.load(data_dir), clock=clock)
    try:
        with serving(create_app(server_settings(data_dir, db), service)) as base:
            story = Story(LiveServer(base, data_dir, db, service), clock)
            story.tell()
            Statistics(db, clock).catch_up()
            yield story
    finally:
        db.dispose()
        if name is not None:
            _drop_postgres_database(name)


@pytest.fixture
def stats(told: Story) -> Statistics:
    return Statistics(told.server.db, told.server.service.clock)


def test_the_story_made_the_versions_it_says(told: Story) -> None:
    # the hand-checked counts rest on these: 3 versions per new list, 1 per later step
    with told.server.client("gp") as gp:
        versions = [int(ok(gp.get(f"/fhir/List/{i}"))["meta"]["versionId"]) for i in told.lists]
    assert versions == [7] * 5 + [4, 3]  # list, rx, entry; dose; confirm; e-multidose; paper


def row(rows: list[dict[str, Any]], **where: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    assert len(found) == 1, (where, rows)
    return found[0]


def test_figures_per_week_for_the_country(told: Story, stats: Statistics) -> None:
    rows = stats.periods("week", None, told.a.date(), told.c.date())
    assert [r["period"] for r in rows] == [told.week(t) for t in (told.a, told.b, told.c)]
    a, b, c = rows
    assert a | {} == {
        "period": told.week(told.a),
        "area": "Norge",
        "new_lists": 7,
        "lists": 7,
        "changes": 21,
        "changes_per_list": 3.0,
        "conflicts": S,
        "conflicts_per_1000_changes": H,
        "emergency_accesses": S,
        "cases_opened": S,
        "cases_closed": S,
        "mean_days_to_close": H,
        "organisations": 7,
        "organisations_live": 1,  # the GP
    }
    assert b["new_lists"] is S
    assert (b["lists"], b["changes"], b["changes_per_list"]) == (7, 11, 1.57)
    assert (b["conflicts"], b["conflicts_per_1000_changes"]) == (5, 454.5)  # 1000 × 5 / 11
    assert b["organisations_live"] == 2  # and the hospital
    assert (c["changes"], c["changes_per_list"], c["conflicts"]) == (10, 1.43, S)
    assert c["conflicts_per_1000_changes"] is H
    assert c["emergency_accesses"] == 5  # ten reads: five workers-patients-days
    assert (c["cases_opened"], c["cases_closed"], c["mean_days_to_close"]) == (5, 5, 2.0)
    assert c["organisations_live"] == 3  # and the pharmacy (paper multidose)


def test_figures_per_month_add_up_the_weeks(told: Story, stats: Statistics) -> None:
    expected: dict[str, dict[str, int]] = {}
    for when, new, changes in ((told.a, 7, 21), (told.b, 0, 11), (told.c, 0, 10)):
        month = expected.setdefault(ind.month(when), {"new_lists": 0, "changes": 0})
        month["new_lists"] += new
        month["changes"] += changes
    rows = stats.periods("month", None, told.a.date(), told.c.date())
    got = {r["period"]: {"new_lists": r["new_lists"], "changes": r["changes"]} for r in rows}
    for month, figures in expected.items():
        assert got[month] == {k: (v if v >= THRESHOLD else S) for k, v in figures.items()}


def test_figures_per_region_and_actor_type(told: Story, stats: Statistics) -> None:
    by_region = stats.periods("week", "region", told.a.date(), told.c.date())
    week_a, week_b = told.week(told.a), told.week(told.b)
    assert [r["region"] for r in by_region if r["period"] == week_a] == [
        "Nord",
        "Midt-Norge",
        "Vest",
        "Sør-Øst",
    ]
    vest = row(by_region, period=week_a, region="Vest")
    assert (vest["new_lists"], vest["changes"], vest["organisations"]) == (6, 18, 4)
    nord = row(by_region, period=week_a, region="Nord")
    assert (nord["new_lists"], nord["changes"], nord["organisations"]) == (S, S, 1)
    assert row(by_region, period=week_b, region="Vest")["conflicts"] == 5
    by_type = stats.periods("week", "actor_type", told.b.date(), told.c.date())
    assert row(by_type, period=week_b, actor_type="fastlege")["changes"] == 6
    assert row(by_type, period=week_b, actor_type="sykehus")["changes"] == 5
    assert row(by_type, period=week_b, actor_type="fastlege")["conflicts"] == 5
    assert row(by_type, period=week_b, actor_type="fastlege")["changes_per_list"] is None
    week_c = told.week(told.c)
    assert row(by_type, period=week_c, actor_type="sykehus")["cases_opened"] == 5
    assert row(by_type, period=week_c, actor_type="sykehus")["emergency_accesses"] == 5
    assert row(by_type, period=week_c, actor_type="fastlege")["changes"] == 5
    assert row(by_type, period=week_c, actor_type="apotek")["changes"] == 5
    by_place = stats.periods("week", "municipality", told.a.date(), told.a.date())
    bergen = row(by_place, municipality="4601")
    assert (bergen["municipality_name"], bergen["region"], bergen["new_lists"]) == (
        "Bergen",
        "Vest",
        6,
    )
    assert row(by_place, municipality="5501")["new_lists"] is S


def test_where_the_lists_stand_now(told: Story, stats: Statistics) -> None:
    country = row(stats.snapshot(None), area="Norge")
    population = geography.population()
    assert country == {
        "area": "Norge",
        "lists": 7,
        "population": population,
        "share_of_population_pct": round(100 * 7 / population, 3),
        "confirmed_12m": 6,
        "confirmed_12m_pct": 85.7,  # 6 of 7
        "0–3 mnd": 6,
        "3–6 mnd": S,
        "6–12 mnd": S,
        "over 12 mnd": S,
        "aldri": S,  # one, the Tromsø list
        "paper_multidose": 5,
        "emultidose": 5,
        "emultidose_coverage_pct": 50.0,  # 5 of 5 + 5
        "cases_open": S,  # all five resolved
    }
    vest = row(stats.snapshot("region"), region="Vest")
    assert (vest["lists"], vest["confirmed_12m"], vest["paper_multidose"]) == (6, 6, 5)
    assert vest["share_of_population_pct"] == round(600 / geography.population("Vest"), 3)
    assert row(stats.snapshot("region"), region="Nord")["lists"] is S
    assert row(stats.snapshot("municipality"), municipality="4601")["lists"] == 6


def test_organisations_live_against_the_ambition(told: Story, stats: Statistics) -> None:
    rows = stats.rollout(told.c.date())
    gp = row(rows, region="Vest", actor_type="fastlege")
    assert (gp["organisations"], gp["organisations_live"], gp["share_live_pct"]) == (1, 1, 100.0)
    assert (gp["target_pct"], gp["status"]) == (60.0, "nådd")  # the 2026 mandate: 60 % in Vest
    home_care = row(rows, region="Vest", actor_type="sykehjem_hjemmetjeneste")
    assert (home_care["organisations_live"], home_care["status"]) == (0, "bak")  # reports only
    assert row(rows, region="Nord", actor_type="fastlege")["share_live_pct"] == 0.0
    assert row(rows, region="Midt-Norge", actor_type="apotek")["status"] == "ingen ambisjon"
    assert row(rows, region="Sør-Øst", actor_type="sykehus")["status"] == "ingen registrert"
    # before the hospital changed anything, it was not live
    earlier = stats.rollout(told.a.date())
    assert row(earlier, region="Vest", actor_type="sykehus")["organisations_live"] == 0


def test_every_event_is_counted_once_however_often_and_by_how_many(
    told: Story, stats: Statistics
) -> None:
    db = told.server.db

    def counts() -> list[Any]:
        with db.read() as conn:
            return sorted(conn.execute(sa.select(stats_count)).all())

    before = counts()
    threads = [threading.Thread(target=stats.catch_up) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.catch_up() == 0
    assert counts() == before
    position, newest = stats.updated()
    assert position == newest > 0


# -- over HTTP -------------------------------------------------------------------------------


def test_the_export_as_json_and_csv(told: Story) -> None:
    with httpx.Client(base_url=told.server.base) as anyone:  # published figures: no login
        since, until = told.a.date().isoformat(), told.c.date().isoformat()
        query = {"grain": "week", "by": "", "since": since, "until": until}
        body = ok(anyone.get("/stats/periods", params=query))
        assert body["suppressed_below"] == 5
        first = body["rows"][0]
        assert (first["new_lists"], first["changes"], first["conflicts"]) == (7, 21, None)
        r = anyone.get("/stats/periods", params=query | {"format": "csv"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        lines = r.text.splitlines()
        assert lines[0].startswith("period,area,new_lists,lists,changes,changes_per_list,conflicts")
        assert lines[1].startswith(f"{told.week(told.a)},Norge,7,7,21,3.0,<5,skjult,")
        snap = anyone.get("/stats/snapshot", params={"by": "region", "format": "csv"}).text
        assert "Vest,6," in snap
        index = ok(anyone.get("/stats/"))
        assert index["counted_up_to_event"] == index["newest_event"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"grain": "day"}, "grain"),
        ({"by": "fylke"}, "by"),
        ({"since": "2026-13-01"}, "since"),
        ({"since": "2026-11-20", "until": "2026-11-01"}, "since"),
        ({"since": "2019-01-01", "until": "2026-11-01"}, "since"),
        ({"format": "xlsx"}, "format"),
    ],
)
def test_bad_parameters_are_refused_clearly(told: Story, query: dict[str, str], named: str) -> None:
    with httpx.Client(base_url=told.server.base) as anyone:
        r = anyone.get("/stats/periods", params=query)
        assert r.status_code == 400
        assert f"'{named}'" in outcome_text(r)
        assert r.json()["issue"][0]["expression"] == [named]
    with httpx.Client(base_url=told.server.base) as anyone:
        r = anyone.get("/stats/snapshot", params={"by": "actor_type"})
        assert r.status_code == 400


def test_no_exported_patient_count_is_under_five(told: Story) -> None:
    """Suppression: whatever is asked, no figure about patients leaves under 5 (only the
    organisation register's counts do, which are no patient data)."""
    register_counts = {"organisations", "organisations_live", "population"}
    since = (told.a - timedelta(weeks=4)).date().isoformat()
    exports = [
        ("/stats/periods", {"grain": g, "by": b, "since": since})
        for g in ("week", "month")
        for b in ("", "region", "municipality", "actor_type")
    ] + [("/stats/snapshot", {"by": b}) for b in ("", "region", "municipality")]
    seen = 0
    with httpx.Client(base_url=told.server.base) as anyone:
        for path, query in exports:
            for r in ok(anyone.get(path, params=query))["rows"]:
                for name, value in r.items():
                    if isinstance(value, int) and name not in register_counts:
                        seen += 1
                        assert value >= THRESHOLD, (path, query, name, r)
            csv = anyone.get(path, params=query | {"format": "csv"}).text
            header, *lines = [line.split(",") for line in csv.splitlines()]
            for cells in lines:
                for name, cell in zip(header, cells, strict=True):
                    if cell.isdigit() and name not in register_counts:
                        assert int(cell) >= THRESHOLD, (path, query, name, cells)
    assert seen > 20  # the dataset does publish figures: the test looked at real ones


def test_a_refused_change_is_counted_and_changes_nothing_else(
    server: LiveServer, clock: Clock
) -> None:
    """A relay-baton refusal adds to the conflicts and to nothing else; other 412s (a
    stale case) are not the baton's."""
    stats = Statistics(server.db, server.service.clock)
    with server.client("gp") as gp, server.client("hospital-doctor") as hospital:
        pid = ok(gp.post("/fhir/Patient", json=home("4601")), 201)["id"]
        new_list(gp, pid)
        entry, _ = add_medicine(gp, pid, METFORMIN)
        current = ok(hospital.get(f"/fhir/MedicationStatement/{entry}"))
        changed = dict(current, note=[{"text": "Dosen justert"}])
        ok(
            hospital.put(
                f"/fhir/MedicationStatement/{entry}", json=changed, headers={"If-Match": 'W/"1"'}
            )
        )
        stats.catch_up()
        before = snapshot(server.db)
        r = gp.put(
            f"/fhir/MedicationStatement/{entry}", json=current, headers={"If-Match": 'W/"1"'}
        )
        assert r.status_code == 412
    after = snapshot(server.db)
    changed = {t for t in after if after[t] != before[t]}
    assert changed == {"stats_count", "audit_event"}  # the count, and the read of the current one
    with server.db.read() as conn:
        conflicts = conn.execute(
            sa.select(stats_count.c.grain, stats_count.c.value).where(
                stats_count.c.measure == ind.CONFLICTS
            )
        ).all()
    assert sorted(conflicts) == [("month", 1), ("week", 1)]
    # a stale version of a case is refused too, but it is not the relay baton
    with server.client("nurse") as nurse, server.client("hospital-doctor") as hospital:
        task = {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "focus": {"reference": f"MedicationStatement/{entry}"},
            "description": "Feil dose",
        }
        case = ok(nurse.post("/fhir/Task", json=task), 201)["id"]
        stale = hospital.post(f"/fhir/Task/{case}/$take", headers={"If-Match": 'W/"7"'})
        assert stale.status_code == 412
    with server.db.read() as conn:
        again = conn.execute(
            sa.select(stats_count.c.grain, stats_count.c.value).where(
                stats_count.c.measure == ind.CONFLICTS
            )
        ).all()
    assert sorted(again) == sorted(conflicts)


def test_a_patient_without_a_known_home_is_counted_as_unknown(server: LiveServer) -> None:
    stats = Statistics(server.db, server.service.clock)
    with server.client("gp") as gp:
        for _ in range(5):
            pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]
            new_list(gp, pid)
    stats.catch_up()
    rows = stats.snapshot("region")
    assert [r["region"] for r in rows] == ["Nord", "Midt-Norge", "Vest", "Sør-Øst", "ukjent"]
    assert row(rows, region="ukjent")["lists"] == 5
    assert row(rows, region="ukjent")["population"] is None
    assert not any(hidden(r["population"]) for r in rows)


def test_national_ambitions_the_lists_measure(told: Story, stats: Statistics) -> None:
    people, multidose = stats.national(date(2026, 11, 15))  # held against the 2026 targets
    population = geography.population()
    assert people["lists"] == 7
    assert people["actual_pct"] == round(100 * 7 / (0.3 * population), 2)
    assert (people["target_pct"], people["status"]) == (15.0, "bak")
    assert (multidose["emultidose"], multidose["paper_multidose"]) == (5, 5)
    assert multidose["actual_pct"] == 50.0  # 5 of 5 + 5
    assert (multidose["target_pct"], multidose["status"]) == (None, "ingen ambisjon")  # from 2027
    assert stats.national(date(2027, 12, 31))[1]["status"] == "nådd"  # 20 % in 2027
    with httpx.Client(base_url=told.server.base) as anyone:
        csv = anyone.get("/stats/ambitions", params={"format": "csv"}).text
    assert csv.splitlines()[0].startswith("indicator,label,lists,actual_pct,target_pct")
