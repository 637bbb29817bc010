"""The pseudonymised extract (issue 19) on SQLite and PostgreSQL: demo patients and a patient
with a dispensing, an administration record and a technical case are extracted as CSV (by the
``pll stats extract`` command) and as Parquet; no fødselsnummer, name or free text of the
database appears anywhere in either file; a patient keeps their pseudonym from one extract to
the next and gets another under another key; ``--since`` splits an extract without losing or
repeating a row; the command refuses to run without a key, or with a weak one, and writes
nothing then."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pll.domain.identifiers import parse_person_identifier
from pll.services.demo import create_demo
from pll.services.extract import write_extract
from pll.stats.extract import NAMES, Pseudonymiser
from pll.store.schema import (
    discrepancy_case,
    discrepancy_case_version,
    patient,
    pll_version,
    technical_case,
    technical_case_version,
)
from tests.conftest import LiveServer
from tests.integration.builders import DRUGS, ok, prescription, statement
from tests.integration.test_administrations import NOT_GIVEN, given, med, setup
from tests.integration.test_technical_cases import register, technical

KEY = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
OTHER_KEY = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"


@dataclass
class Story:
    server: LiveServer
    pid: str  # the patient with a dispensing, an administration and a technical case
    fnr: str
    secrets: list[str]  # every fødselsnummer, name and free text in the database
    #: after every event the story made (the evening round's clock may stand ahead of the wall)
    until: datetime


def _run(story: Story, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PLL_PSEUDONYM_KEY"}
    env |= {
        "PLL_DATABASE_URL": story.server.db.url,
        "PLL_DATA_DIR": str(story.server.data_dir),
    }
    if key is not None:
        env["PLL_PSEUDONYM_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "pll.cli", "stats", "extract", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _secrets(server: LiveServer) -> list[str]:
    """Every fødselsnummer, name and free text the database holds about the story."""
    found: set[str] = set()
    with server.db.read() as conn:
        for r in conn.execute(sa.select(patient.c.identifier_value, patient.c.resource)):
            found.add(r.identifier_value)
            for name in orjson.loads(r.resource).get("name", []):
                found.add(name["family"])
                found.update(name.get("given", []))
        authors = [
            *conn.execute(sa.select(pll_version.c.author)).scalars(),
            *conn.execute(sa.select(discrepancy_case_version.c.author)).scalars(),
            *conn.execute(sa.select(technical_case_version.c.author)).scalars(),
        ]
        for author in authors:
            data = orjson.loads(author)
            found.update(v for k, v in data.items() if k in ("name", "org_name", "pid"))
        texts = [
            *conn.execute(sa.select(pll_version.c.reason)).scalars(),
            *conn.execute(sa.select(discrepancy_case.c.description)).scalars(),
            *conn.execute(sa.select(discrepancy_case_version.c.comment)).scalars(),
            *conn.execute(sa.select(technical_case.c.description)).scalars(),
        ]
        found.update(t for t in texts if t)
    # the drugs' names and dose texts of the story's own entries
    found.update(name for name, _ in DRUGS)
    return sorted(found)


@pytest.fixture
def story(evening_round: LiveServer) -> Story:
    server = evening_round
    numbers = create_demo(server.service, 4, seed=19)
    pid, _, (entry,) = setup(server, med())
    with server.client("nursing-home-nurse") as nurse:
        ok(nurse.post("/fhir/MedicationAdministration", json=given(pid, entry)), 201)
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        ref = f"Patient/{pid}"
        rx = prescription(ref, *DRUGS[1])
        rx["dispenseRequest"] = {"quantity": {"value": 30, "unit": "tablett"}}
        rx = ok(gp.post("/fhir/MedicationRequest", json=rx), 201)
        body = statement(ref, *DRUGS[1], 1, "MORN", based_on=[f"MedicationRequest/{rx['id']}"])
        ok(gp.post("/fhir/MedicationStatement", json=body), 201)
        dispense = {
            "resourceType": "MedicationDispense",
            "status": "completed",
            "subject": {"reference": ref},
            "authorizingPrescription": [{"reference": f"MedicationRequest/{rx['id']}"}],
            "medicationCodeableConcept": rx["medicationCodeableConcept"],
            "quantity": {"value": 30, "unit": "tablett"},
            "whenHandedOver": server.service.clock().isoformat(timespec="seconds"),
        }
        ok(pharmacist.post("/fhir/MedicationDispense", json=dispense), 201)
        register(server)
        ok(
            technical(
                gp, text="Journalen viste feil dose for Metformin", **{"for": {"reference": ref}}
            ),
            201,
        )
        fnr = ok(gp.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"]
    assert fnr not in numbers
    return Story(server, pid, fnr, _secrets(server), server.service.clock() + timedelta(days=1))


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _parquet(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def test_no_fodselsnummer_name_or_free_text_in_either_format(story: Story, tmp_path: Path) -> None:
    out = tmp_path / "extract.csv"
    r = _run(story, "--out", str(out), "--until", story.until.isoformat())
    assert r.returncode == 0, r.stderr
    assert "rows" in r.stderr  # progress and the summary go to stderr
    parquet = tmp_path / "extract.parquet"
    keys = Pseudonymiser(KEY)
    written = write_extract(story.server.db, keys, parquet, "parquet", None, story.until)

    rows = _csv(out)
    assert list(rows[0]) == list(NAMES)
    assert len(rows) == written.total
    kinds = {row["kind"] for row in rows}
    assert kinds == {"list-version", "dispense", "administration", "case", "technical-case"}
    as_parquet = _parquet(parquet)
    assert {row["event_id"] for row in as_parquet} == {row["event_id"] for row in rows}

    text = out.read_text(encoding="utf-8")
    flat = io.StringIO()
    for row in as_parquet:
        flat.write(" ".join(str(v) for v in row.values()) + "\n")
    parquet_bytes = parquet.read_bytes()
    assert story.fnr in story.secrets
    assert len(story.secrets) > 20
    for secret in story.secrets:
        assert secret not in text, secret
        assert secret not in flat.getvalue(), secret
        assert secret.encode() not in parquet_bytes, secret
    # nor PLL's own ids for the patient
    assert story.pid not in text

    # the story's patient: pseudonym, birth year from the fødselsnummer, every event theirs
    mine = [row for row in rows if row["patient"] == keys.of("patient", story.pid)]
    assert {row["kind"] for row in mine} >= {
        "list-version",
        "dispense",
        "administration",
        "technical-case",
    }
    born = parse_person_identifier(None, story.fnr).birth_date.year
    assert {row["birth_year"] for row in mine} == {str(born)}
    given_row = next(row for row in mine if row["kind"] == "administration")
    assert given_row["status"] == "completed"
    assert given_row["atc"] == DRUGS[0][1]
    assert given_row["actor_role"] == "nurse"
    assert given_row["hpr"]
    assert given_row["orgnr"]
    assert given_row["entry"]
    dispensed = next(row for row in mine if row["kind"] == "dispense")
    assert dispensed["atc"] == DRUGS[1][1]
    assert dispensed["orgnr"]
    assert dispensed["prescription"]
    assert next(row for row in mine if row["kind"] == "technical-case")["client_id"]
    # demo patients have a home: their municipality is the kommunenummer
    demo = [
        row
        for row in rows
        if row["kind"] == "list-version" and row["patient"] != mine[0]["patient"]
    ]
    assert demo
    assert all(len(row["municipality"]) == 4 for row in demo)


def test_the_same_patient_has_the_same_pseudonym_and_another_key_gives_others(
    story: Story, tmp_path: Path
) -> None:
    db = story.server.db
    first, second, other = (tmp_path / n for n in ("a.csv", "b.parquet", "c.csv"))
    write_extract(db, Pseudonymiser(KEY), first, "csv", None, story.until)
    write_extract(db, Pseudonymiser(KEY), second, "parquet", None, story.until)
    write_extract(db, Pseudonymiser(OTHER_KEY), other, "csv", None, story.until)
    a, b, c = _csv(first), _parquet(second), _csv(other)

    def pseudonyms(rows: list[dict[str, Any]]) -> dict[str, str]:
        # by the event (the same event id under one key), the patient's pseudonym
        return {row["event_id"]: row["patient"] for row in rows if row["patient"]}

    assert pseudonyms(a) == pseudonyms(b)
    assert len(set(pseudonyms(a).values())) == 5
    assert not set(pseudonyms(a).values()) & set(pseudonyms(c).values())
    assert not {row["entry"] for row in a if row["entry"]} & {r["entry"] for r in c if r["entry"]}
    assert len(c) == len(a)


def test_since_splits_an_extract_without_losing_or_repeating_a_row(
    story: Story, tmp_path: Path
) -> None:
    db = story.server.db
    keys = Pseudonymiser(KEY)
    whole = tmp_path / "whole.csv"
    write_extract(db, keys, whole, "csv", None, story.until)
    rows = _csv(whole)
    times = sorted({row["event_time"] for row in rows})
    middle = datetime.fromisoformat(times[len(times) // 2])
    before, after = tmp_path / "before.csv", tmp_path / "after.csv"
    write_extract(db, keys, before, "csv", None, middle)
    r = _run(
        story,
        "--out",
        str(after),
        "--since",
        middle.isoformat(),
        "--until",
        story.until.isoformat(),
    )
    assert r.returncode == 0, r.stderr
    early, late = _csv(before), _csv(after)
    assert early
    assert late
    assert all(datetime.fromisoformat(row["event_time"]) < middle for row in early)
    assert all(datetime.fromisoformat(row["event_time"]) >= middle for row in late)
    ids = [row["event_id"] for row in early + late]
    assert sorted(ids) == sorted(row["event_id"] for row in rows)


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (None, "PLL_PSEUDONYM_KEY is not set"),
        ("", "PLL_PSEUDONYM_KEY is not set"),
        ("short-but-secret-ish", "at least 32 bytes"),
        ("ab" * 32, "too regular"),
    ],
)
def test_no_key_or_a_weak_key_is_refused_and_nothing_is_written(
    server: LiveServer, tmp_path: Path, key: str | None, said: str
) -> None:
    out = tmp_path / "extract.csv"
    story = Story(server, "", "", [], server.service.clock())
    r = _run(story, "--out", str(out), key=key)
    assert r.returncode != 0
    assert said in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--since", "yesterday"], "not an ISO 8601 date-time"),
        (["--since", "2030-01-01", "--until", "2029-01-01"], "is not before"),
        (["--format", "xlsx"], "xlsx"),
    ],
)
def test_bad_options_are_refused_clearly(
    server: LiveServer, tmp_path: Path, args: list[str], said: str
) -> None:
    story = Story(server, "", "", [], server.service.clock())
    r = _run(story, "--out", str(tmp_path / "x.csv"), *args)
    assert r.returncode != 0
    assert said in r.stderr
    assert list(tmp_path.iterdir()) == []


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
