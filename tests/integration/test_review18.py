"""Review of issue 18: each test here fails on main and proves one finding of
/work/notes/review-18.md. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from pll.auth.tokens import PERSONAS
from pll.fhir import technical_cases as fhir_technical
from pll.store.schema import audit_event
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import (
    ok,
)
from tests.integration.test_multidose import params, pharmacy

# -- technical cases: hostile Task bodies --------------------------------------------------------


def _technical(client: httpx.Client, **fields: Any) -> httpx.Response:
    body = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": fhir_technical.CODE,
        "focus": {"identifier": {"system": fhir_technical.CLIENT_ID, "value": "demo-journal"}},
        "description": "Sending feilet",
        **fields,
    }
    return client.post("/fhir/Task", json=body)


@pytest.mark.parametrize(
    "fields",
    [
        {"description": "Sending feilet\u0000"},
        {
            "focus": {
                "identifier": {"system": fhir_technical.CLIENT_ID, "value": "demo-journal\u0000"}
            }
        },
    ],
    ids=["nul-description", "nul-client-id"],
)
def test_review18_hostile_technical_reports_are_4xx(
    server: LiveServer, fields: dict[str, Any]
) -> None:
    """A NUL character in a technical report: PostgreSQL refuses it in a text column (the
    description is stored raw, the client id is looked up raw), so the report is a 500
    there, while SQLite stores it (201). A discrepancy case with the same description is
    201 on both (its text lives in the JSON resource, escaped)."""
    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        r = _technical(gp, **fields)
    assert 400 <= r.status_code < 500, r.text
    assert snapshot(server.db, audit=False) == before


# -- a paused list ------------------------------------------------------------------------------


def test_review18_multidose_registration_changes_a_paused_list(server: LiveServer) -> None:
    """'A paused list is not changed until a doctor resumes it' (domain/paused.py): the
    e-multidose registration makes a new version of a paused list all the same."""
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as gp:
        list_id = scene.list_id
        ok(
            gp.post(
                f"/fhir/List/{list_id}/$pause",
                json={
                    "resourceType": "Parameters",
                    "parameter": [{"name": "reason", "valueString": "Innlagt"}],
                },
            )
        )
        before = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
        r = gp.post(f"/fhir/Patient/{scene.pid}/$multidose-register", json=params(pharmacy()))
        after = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
    assert r.status_code == 409, r.text
    assert after == before


# -- refusals are logged ------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["$confirm", "$pause"])
def test_review18_a_dentists_refused_list_act_is_logged(server: LiveServer, operation: str) -> None:
    """A dentist refused an act on the GP's list as a whole (only doctors confirm, pause,
    resume) is refused by the domain's require_doctor, a plain Forbidden: nothing in the
    patient's access log says a dentist tried, where a refused change of the GP's entry
    (NotYourEntry) and a policy refusal are both logged."""
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("dentist") as dentist:
        etag = dentist.get(f"/fhir/List/{scene.list_id}").headers["ETag"]
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "Innlagt"}],
        }
        r = dentist.post(
            f"/fhir/List/{scene.list_id}/{operation}", json=body, headers={"If-Match": etag}
        )
    assert r.status_code == 403, r.text
    hpr = str(PERSONAS["dentist"].hpr)
    with server.db.read() as conn:
        rows = conn.execute(
            sa.select(audit_event.c.actor, audit_event.c.outcome).where(
                audit_event.c.patient_id == scene.pid, audit_event.c.outcome != "0"
            )
        ).all()
    assert [r for r in rows if orjson.loads(r.actor).get("hpr") == hpr], rows
