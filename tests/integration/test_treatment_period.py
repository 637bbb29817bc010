"""The treatment period's limits hold at the REST API as on the prescribing page, on both
databases: a ``MedicationStatement.effectivePeriod`` that starts before 1900 or more than a
year ahead, or stops more than ten years ahead (the year 9999), is refused with a 4xx
OperationOutcome naming the field, and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pll.domain.prescriptions import local_day
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import (
    DRUGS,
    etag,
    new_patient_with_list,
    ok,
    outcome_text,
    statement,
)

WHERE = "MedicationStatement.effectivePeriod"


@pytest.mark.parametrize(
    ("period", "where", "words"),
    [
        ({"start": "2026-01-01", "end": "9999-12-31"}, f"{WHERE}.end", "more than 10 years ahead"),
        ({"start": "1850-05-01"}, f"{WHERE}.start", "must be from 1900-01-01"),
        ({"start": "2999"}, f"{WHERE}.start", "a year from today"),
    ],
)
def test_an_absurd_treatment_period_is_refused_at_the_api(
    server: LiveServer, clock: Clock, period: dict[str, str], where: str, words: str
) -> None:
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp)
        body = statement(f"Patient/{pid}", *DRUGS[0])
        before = snapshot(server.db, audit=False)
        r = gp.post("/fhir/MedicationStatement", json={**body, "effectivePeriod": period})
        assert r.status_code == 400, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
        assert words in outcome_text(r)
        assert [i["expression"] for i in r.json()["issue"]] == [[where]]
        assert snapshot(server.db, audit=False) == before

        # a change of an entry's period is held to the same rule
        today = local_day(clock())
        entry = ok(gp.post("/fhir/MedicationStatement", json=body), 201)
        read = gp.get(f"/fhir/MedicationStatement/{entry['id']}")
        before = snapshot(server.db, audit=False)
        r = gp.put(
            f"/fhir/MedicationStatement/{entry['id']}",
            json={**ok(read), "effectivePeriod": period},
            headers={"If-Match": etag(read)},
        )
        assert r.status_code == 400, r.text
        assert [i["expression"] for i in r.json()["issue"]] == [[where]]
        assert snapshot(server.db, audit=False) == before
        # ten years ahead is a planned end, not a typing error
        planned = {"start": today.isoformat(), "end": (today + timedelta(days=3650)).isoformat()}
        r = gp.put(
            f"/fhir/MedicationStatement/{entry['id']}",
            json={**ok(read), "effectivePeriod": planned},
            headers={"If-Match": etag(read)},
        )
        assert ok(r)["effectivePeriod"] == planned
