"""Each List is stored once (migration 0028, issue 20): the current List is its version row,
on both databases, and on PostgreSQL the list document stays in the list's own row. A database
upgraded from 0027 reads exactly as before, and an upgrade that would lose a List refuses and
changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command

from pll.fhir.expiry import EXT_EXPIRED
from pll.store.db import alembic_config
from tests.conftest import Clock, LiveServer
from tests.integration.builders import DRUGS, new_patient_with_list, ok, prescription
from tests.integration.builders import statement as entry_of
from tests.integration.migrations import columns, version_row_missing


@pytest.fixture
def gp(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("gp") as client:
        yield client


def _list_at_version_3(gp: httpx.Client) -> tuple[str, str]:
    """A patient's list with a prescription and an entry: (patient, list) at version 3."""
    pid, lid = new_patient_with_list(gp)
    rx = ok(gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *DRUGS[0])), 201)
    body = entry_of(f"Patient/{pid}", *DRUGS[0], based_on=[f"MedicationRequest/{rx['id']}"])
    ok(gp.post("/fhir/MedicationStatement", json=body), 201)
    return pid, lid


def _reads(gp: httpx.Client, pid: str, lid: str) -> list[Any]:
    """What a client reads of the list: the List by id and by patient, its history, the
    document."""
    return [
        ok(gp.get(f"/fhir/List/{lid}")),
        ok(gp.get("/fhir/List", params={"patient": pid})).get("entry"),
        ok(gp.get(f"/fhir/List/{lid}/_history")).get("entry"),
        ok(gp.get("/fhir/List", params={"patient": pid, "_include": "List:item"})).get("entry"),
    ]


def test_the_list_row_holds_no_list_and_reads_as_its_newest_version(
    server: LiveServer, gp: httpx.Client
) -> None:
    pid, lid = _list_at_version_3(gp)
    with server.db.engine.connect() as conn:
        assert "list_json" not in columns(conn, "pll")
    current = ok(gp.get(f"/fhir/List/{lid}"))
    assert current["meta"]["versionId"] == "3"
    assert current == ok(gp.get(f"/fhir/List/{lid}/_history/3"))
    assert [e["resource"] for e in ok(gp.get("/fhir/List", params={"patient": pid}))["entry"]] == [
        current
    ]
    document = ok(gp.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))
    assert document["entry"][0]["resource"] == current


def test_on_postgresql_the_document_is_kept_in_the_list_row(server: LiveServer) -> None:
    if server.db.engine.dialect.name != "postgresql":
        pytest.skip("storage and compression of a column are PostgreSQL's")
    with server.db.engine.connect() as conn:
        storage = conn.execute(
            sa.text(
                "SELECT attstorage FROM pg_attribute "
                "WHERE attrelid = 'pll'::regclass AND attname = 'document'"
            )
        ).scalar_one()
    # m: compressed in the row, out of line only when the row would not fit a page
    assert storage == "m"


def test_a_database_at_0027_upgrades_and_reads_the_same(
    server: LiveServer, gp: httpx.Client
) -> None:
    pid, lid = _list_at_version_3(gp)
    before = _reads(gp, pid, lid)
    with server.db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0027")
    with server.db.engine.connect() as conn:
        # downgraded, the list row holds its newest version's List again
        stored = conn.execute(
            sa.text(
                "SELECT p.list_json, v.list_json FROM pll p JOIN pll_version v "
                "ON v.list_id = p.id AND v.version = p.version WHERE p.id = :id"
            ),
            {"id": lid},
        ).one()
        assert stored[0] == stored[1]
    server.db.upgrade()
    assert _reads(gp, pid, lid) == before


def test_an_upgrade_that_would_lose_a_list_refuses_and_changes_nothing(
    server: LiveServer, gp: httpx.Client
) -> None:
    _, lid = _list_at_version_3(gp)
    with server.db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0027")
    with version_row_missing(server.db.engine, "pll_version", "list_id", lid, 3):
        with pytest.raises(RuntimeError, match="1 rows of pll have no row in pll_version"):
            server.db.upgrade()
        with server.db.engine.connect() as conn:
            assert "list_json" in columns(conn, "pll")
            assert conn.execute(
                sa.text("SELECT list_json FROM pll WHERE id = :id"), {"id": lid}
            ).scalar_one()
    server.db.upgrade()
    assert ok(gp.get(f"/fhir/List/{lid}"))["meta"]["versionId"] == "3"


def test_an_expired_prescription_rebuilds_the_document_and_leaves_the_list(
    server: LiveServer, gp: httpx.Client, clock: Clock
) -> None:
    pid, lid = _list_at_version_3(gp)
    before = ok(gp.get(f"/fhir/List/{lid}"))
    clock.advance(days=367)
    # the read finds the stored document expired and has it rebuilt, with the expiry marked
    document = ok(gp.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))
    marked = [
        [x["url"] for x in e["resource"].get("extension", [])]
        for e in document["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]
    assert marked == [[EXT_EXPIRED]]
    # no version was written: the List is its version row, as it was
    assert document["entry"][0]["resource"] == before
    assert ok(gp.get(f"/fhir/List/{lid}")) == before
    with server.db.engine.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT count(*) FROM pll_version WHERE list_id = :id"), {"id": lid}
        ).scalar_one()
    assert versions == 3
