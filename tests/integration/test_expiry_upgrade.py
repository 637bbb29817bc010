"""Expired prescriptions are never shown as valid, also on lists stored before PLL said when
prescriptions expire, on both databases: a list document stored by the old code (no expired
marker, no ``expires_at``), and a prescription stored with neither ``authoredOn`` nor a
validity (as the old REST API and imports stored them). Dates are relative to the test's own
today (the server's clock, moved by the test)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from alembic import command

from pll.api.readcopy_app import create_readcopy_app
from pll.domain.prescriptions import add_duration, local_day
from pll.events.readcopy import ReadCopy
from pll.store import schema
from pll.store.db import Database, alembic_config
from pll.store.schema import pll, prescription_version
from tests.conftest import Clock, LiveServer, server_settings, serving, snapshot
from tests.integration.builders import DRUGS, new_fnr, new_patient_with_list, ok, prescription
from tests.integration.builders import statement as entry_of
from tests.integration.test_multidose import dispensed
from tests.integration.test_sfm import bundle_of, ext, get_medication
from tests.integration.test_web import logged_in, opened

EXPIRED = "http://pll.invalid/fhir/StructureDefinition/prescription-expired"


@pytest.fixture
def gp(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("gp") as client:
        yield client


def _on_list(gp: httpx.Client, pid: str) -> dict[str, Any]:
    rx = ok(gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *DRUGS[0])), 201)
    based_on = [f"MedicationRequest/{rx['id']}"]
    ok(
        gp.post(
            "/fhir/MedicationStatement",
            json=entry_of(f"Patient/{pid}", *DRUGS[0], based_on=based_on),
        ),
        201,
    )
    return rx


def _undated(resource: dict[str, Any]) -> dict[str, Any]:
    """A prescription as the old REST API stored it: no issue date, no validity."""
    out = {k: v for k, v in resource.items() if k != "authoredOn"}
    request = {k: v for k, v in (out.get("dispenseRequest") or {}).items() if k != "validityPeriod"}
    out.pop("dispenseRequest", None)
    if request:
        out["dispenseRequest"] = request
    return out


def _store_as_before(server: LiveServer, pid: str, *, undated: bool = False) -> None:
    """Make the patient's stored list what the code before expiry stored: the document with
    no expired marker and ``expires_at`` NULL; with ``undated`` its prescriptions too."""
    with server.db.write() as conn:
        row = conn.execute(sa.select(pll.c.id, pll.c.document).where(pll.c.patient_id == pid)).one()
        document = orjson.loads(row.document)
        for item in document["entry"]:
            resource = item["resource"]
            if resource["resourceType"] == "MedicationRequest":
                resource.pop("extension", None)
                if undated:
                    item["resource"] = _undated(resource)
        conn.execute(
            sa.update(pll)
            .where(pll.c.id == row.id)
            .values(document=orjson.dumps(document).decode(), expires_at=None)
        )
        if not undated:
            return
        # each resource is stored once, in its version rows (migration 0027)
        key = prescription_version.c.prescription_id
        rows = conn.execute(
            sa.select(key, prescription_version.c.version, prescription_version.c.resource).where(
                key.in_(
                    sa.select(schema.prescription.c.id).where(
                        schema.prescription.c.list_id == row.id
                    )
                )
            )
        ).all()
        for r in rows:
            conn.execute(
                sa.update(prescription_version)
                .where(key == r.prescription_id, prescription_version.c.version == r.version)
                .values(resource=orjson.dumps(_undated(orjson.loads(r.resource))).decode())
            )


def _upgrade_from_0011(server: LiveServer) -> None:
    """What ``pll db upgrade`` does on a database at 0011: run migration 0012."""
    with server.db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0011")
    server.db.upgrade()


def _markers(document: dict[str, Any]) -> list[list[str]]:
    return [
        [e["valueDate"] for e in ext(item["resource"], EXPIRED)]
        for item in document["entry"]
        if item["resource"]["resourceType"] == "MedicationRequest"
    ]


def _shown(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def _pages(server: LiveServer, fnr: str, pid: str) -> tuple[str, str]:
    with logged_in(server, "gp") as doctor:
        listed = doctor.get(opened(doctor, fnr))
        assert listed.status_code == 200, listed.text
    with logged_in(server, "patient", fnr) as me:
        mine = me.get(f"/pasient/{pid}")
        assert mine.status_code == 200, mine.text
    return listed.text, mine.text


def _statement_expiry(gp: httpx.Client, fnr: str) -> list[str]:
    bundle = bundle_of(ok(get_medication(gp, fnr)))
    statement = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement"
    )
    return [e["valueDate"] for e in ext(statement, EXPIRED)]


def test_a_page_never_says_valid_until_a_past_date_of_a_document_stored_before(
    server: LiveServer, gp: httpx.Client, clock: Clock
) -> None:
    """Read before any upgrade step: the pages judge expiry by the end date when the stored
    document has no marker."""
    fnr = new_fnr()
    pid, _ = new_patient_with_list(gp, fnr)
    rx = _on_list(gp, pid)
    end = date.fromisoformat(rx["dispenseRequest"]["validityPeriod"]["end"])
    _store_as_before(server, pid)
    clock.advance(days=(end - local_day(clock())).days + 1)
    doctor, patient = _pages(server, fnr, pid)
    assert f"Utløpt {_shown(end)}" in doctor
    assert "Gyldig til" not in doctor
    assert "Resepten er utløpt" in patient
    assert "Resepten er gyldig" not in patient


def test_after_the_upgrade_a_list_stored_before_reads_expired_everywhere(
    server: LiveServer, gp: httpx.Client, clock: Clock
) -> None:
    fnr = new_fnr()
    pid, list_id = new_patient_with_list(gp, fnr)
    rx = _on_list(gp, pid)
    end = rx["dispenseRequest"]["validityPeriod"]["end"]
    version = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
    _store_as_before(server, pid)
    clock.advance(days=367)
    params = {"patient": pid, "_include": "List:item"}
    _upgrade_from_0011(server)
    assert _markers(ok(gp.get("/fhir/List", params=params))) == [[end]]
    assert _statement_expiry(gp, fnr) == [end]
    doctor, patient = _pages(server, fnr, pid)
    assert f"Utløpt {_shown(date.fromisoformat(end))}" in doctor
    assert "Resepten er utløpt" in patient
    # the document was rebuilt; the list has no new version for it
    assert ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"] == version


def test_a_prescription_with_no_date_of_its_own_expires_a_year_after_pll_recorded_it(
    server: LiveServer, gp: httpx.Client, clock: Clock
) -> None:
    fnr = new_fnr()
    pid, _ = new_patient_with_list(gp, fnr)
    recorded = local_day(clock())
    rx = _on_list(gp, pid)
    _store_as_before(server, pid, undated=True)
    _upgrade_from_0011(server)
    stored = ok(gp.get(f"/fhir/MedicationRequest/{rx['id']}"))
    assert "authoredOn" not in stored
    assert "dispenseRequest" not in stored
    assert ext(stored, EXPIRED) == []

    clock.advance(days=367)
    end = add_duration(recorded, "P1Y")
    read = ok(gp.get(f"/fhir/MedicationRequest/{rx['id']}"))
    assert [e["valueDate"] for e in ext(read, EXPIRED)] == [end.isoformat()]
    found = ok(gp.get("/fhir/MedicationRequest", params={"patient": pid}))
    assert [[e["valueDate"] for e in ext(r["resource"], EXPIRED)] for r in found["entry"]] == [
        [end.isoformat()]
    ]
    document = ok(gp.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))
    assert _markers(document) == [[end.isoformat()]]
    assert _statement_expiry(gp, fnr) == [end.isoformat()]
    doctor, patient = _pages(server, fnr, pid)
    assert f"Utløpt {_shown(end)}" in doctor
    assert "Resepten er utløpt" in patient
    # and it cannot be dispensed
    before = snapshot(server.db, audit=False)
    with server.client("pharmacist") as pharmacist:
        handed = (clock() - timedelta(minutes=1)).isoformat()
        r = pharmacist.post("/fhir/MedicationDispense", json=dispensed(rx["id"], pid, 1, handed))
    assert r.status_code == 409, r.text
    assert f"expired on {end.isoformat()}" in r.text
    assert snapshot(server.db, audit=False) == before


@pytest.fixture
def copy(server: LiveServer, clock: Clock, tmp_path: Any) -> Iterator[ReadCopy]:
    copy_db = Database(f"sqlite:///{tmp_path / 'copy.sqlite3'}")
    made = ReadCopy(server.db, copy_db, clock)
    made.setup()
    yield made
    copy_db.dispose()


def _read_copy(server: LiveServer, copy: ReadCopy, fnr: str) -> dict[str, Any]:
    app = create_readcopy_app(server_settings(server.data_dir, server.db), server.service, copy)
    params = {"patient.identifier": f"urn:oid:2.16.578.1.12.4.1.4.1|{fnr}"}
    headers = {
        "Authorization": f"Bearer {server.token('gp')}",
        "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
    }
    with serving(app) as base, httpx.Client(base_url=base, headers=headers) as client:
        return ok(client.get("/fhir/List", params=params))


@pytest.mark.parametrize("undated", [False, True])
def test_the_read_copy_of_a_list_stored_before_reads_expired(
    server: LiveServer, gp: httpx.Client, clock: Clock, copy: ReadCopy, undated: bool
) -> None:
    """A copy taken before the upgrade: a prescription past its end date is marked when read
    from the copy; one with no date of its own once the upgrade's ``pll readcopy rebuild``
    has copied the stored documents with their expiry."""
    fnr = new_fnr()
    pid, _ = new_patient_with_list(gp, fnr)
    recorded = local_day(clock())
    _on_list(gp, pid)
    _store_as_before(server, pid, undated=undated)
    copy.rebuild()
    clock.advance(days=367)
    end = add_duration(recorded, "P1Y").isoformat()
    if undated:
        _upgrade_from_0011(server)
        copy.rebuild()
    assert _markers(_read_copy(server, copy, fnr)) == [[end]]
