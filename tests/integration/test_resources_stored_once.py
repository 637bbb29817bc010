"""Each entry and prescription is stored once (migration 0027, issue 20): the current resource
is its version row, on both databases. A database upgraded from 0026 reads exactly as before,
and an upgrade that would lose a resource refuses and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command

from pll.store.db import alembic_config
from tests.conftest import LiveServer
from tests.integration.builders import DRUGS, new_patient_with_list, ok, prescription
from tests.integration.builders import statement as entry_of
from tests.integration.migrations import columns, version_row_missing


@pytest.fixture
def gp(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("gp") as client:
        yield client


def _list_with_a_changed_entry(gp: httpx.Client) -> tuple[str, str, str]:
    """A patient's list with a prescription and an entry at version 2: (patient, entry, rx)."""
    pid, _ = new_patient_with_list(gp)
    rx = ok(gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *DRUGS[0])), 201)
    body = entry_of(f"Patient/{pid}", *DRUGS[0], based_on=[f"MedicationRequest/{rx['id']}"])
    made = ok(gp.post("/fhir/MedicationStatement", json=body), 201)
    changed = dict(made, status="on-hold")
    ok(
        gp.put(
            f"/fhir/MedicationStatement/{made['id']}", json=changed, headers={"If-Match": 'W/"1"'}
        )
    )
    return pid, made["id"], rx["id"]


def _reads(gp: httpx.Client, pid: str, eid: str, rid: str) -> list[Any]:
    """What a client reads of them: each resource, its history, the searches, the list."""
    return [
        ok(gp.get(f"/fhir/MedicationStatement/{eid}")),
        ok(gp.get(f"/fhir/MedicationStatement/{eid}/_history")).get("entry"),
        ok(gp.get(f"/fhir/MedicationRequest/{rid}")),
        ok(gp.get("/fhir/MedicationStatement", params={"patient": pid})).get("entry"),
        ok(gp.get("/fhir/MedicationRequest", params={"patient": pid})).get("entry"),
        ok(gp.get("/fhir/List", params={"patient": pid, "_include": "List:item"})).get("entry"),
    ]


def test_the_current_rows_hold_no_resource_and_read_as_their_newest_version(
    server: LiveServer, gp: httpx.Client
) -> None:
    pid, eid, rid = _list_with_a_changed_entry(gp)
    with server.db.engine.connect() as conn:
        assert "resource" not in columns(conn, "entry")
        assert "resource" not in columns(conn, "prescription")
    statement = ok(gp.get(f"/fhir/MedicationStatement/{eid}"))
    assert statement["status"] == "on-hold"
    assert statement["meta"]["versionId"] == "2"
    assert ok(gp.get(f"/fhir/MedicationStatement/{eid}/_history/1"))["status"] == "active"
    assert [e["resource"]["id"] for e in _reads(gp, pid, eid, rid)[3]] == [eid]


def test_a_database_at_0026_upgrades_and_reads_the_same(
    server: LiveServer, gp: httpx.Client
) -> None:
    pid, eid, rid = _list_with_a_changed_entry(gp)
    before = _reads(gp, pid, eid, rid)
    with server.db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0026")
    with server.db.engine.connect() as conn:
        # downgraded, the current rows hold their newest version's resource again
        stored = conn.execute(
            sa.text(
                "SELECT e.resource, v.resource FROM entry e JOIN entry_version v "
                "ON v.entry_id = e.id AND v.version = e.version WHERE e.id = :id"
            ),
            {"id": eid},
        ).one()
        assert stored[0] == stored[1]
    server.db.upgrade()
    assert _reads(gp, pid, eid, rid) == before


def test_an_upgrade_that_would_lose_a_resource_refuses_and_changes_nothing(
    server: LiveServer, gp: httpx.Client
) -> None:
    _, eid, _ = _list_with_a_changed_entry(gp)
    with server.db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0026")
    with version_row_missing(server.db.engine, "entry_version", "entry_id", eid, 2):
        with pytest.raises(RuntimeError, match="1 rows of entry have no row in entry_version"):
            server.db.upgrade()
        with server.db.engine.connect() as conn:
            assert "resource" in columns(conn, "entry")
            assert "resource" in columns(conn, "prescription")
            assert conn.execute(
                sa.text("SELECT resource FROM entry WHERE id = :id"), {"id": eid}
            ).scalar_one()
    server.db.upgrade()
    assert ok(gp.get(f"/fhir/MedicationStatement/{eid}"))["status"] == "on-hold"
