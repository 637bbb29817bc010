"""Rules 5 and 7: every read leaves a trace; every accepted change writes its event with it."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from pll.store.schema import audit_event, outbox, pll_version
from tests.conftest import LiveServer
from tests.integration.builders import DRUGS, new_patient_with_list, ok, statement


def test_every_read_of_a_list_leaves_an_audit_row(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid, list_id = new_patient_with_list(gp)
    with server.db.read() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(audit_event)).scalar_one()
    with server.client("nurse") as nurse:
        ok(nurse.get(f"/fhir/List/{list_id}"))
        ok(nurse.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))
    with server.db.read() as conn:
        rows = conn.execute(sa.select(audit_event).order_by(audit_event.c.id)).all()[before:]
    assert [(r.action, r.resource_type, r.resource_id, r.patient_id) for r in rows] == [
        ("read", "List", list_id, pid),
        ("read", "List", list_id, pid),
    ]
    assert orjson.loads(rows[0].actor)["hpr"] == "9144900"


def test_each_accepted_change_writes_one_event_in_its_transaction(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid, list_id = new_patient_with_list(gp)
        entry = ok(
            gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[0])), 201
        )
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{entry['id']}",
                json=entry,
                headers={"If-Match": 'W/"1"'},
            )
        )
        refused = gp.put(
            f"/fhir/MedicationStatement/{entry['id']}",
            json=dict(entry, status="on-hold"),
            headers={"If-Match": 'W/"9"'},
        )
        assert refused.status_code == 412
    with server.db.read() as conn:
        versions = (
            conn.execute(sa.select(pll_version.c.version).order_by(pll_version.c.version))
            .scalars()
            .all()
        )
        events = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    # Accepted: creating the list, adding the entry. Not: the unchanged write, the stale one.
    assert versions == [1, 2]
    assert [(e.list_id, e.list_version) for e in events] == [(list_id, 1), (list_id, 2)]
    assert (
        orjson.loads(events[1].payload)["touched"][1]
        == f"MedicationStatement/{entry['id']}/_history/1"
    )
