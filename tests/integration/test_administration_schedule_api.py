"""The daily administration schedule over real HTTP on both databases (issue 17):
``GET List/{id}/$administration-schedule`` plans each dosage kind on its days, says what it
will not plan (a paused list or entry, a free-text dosage), refuses bad input with an
OperationOutcome, and is one read in the patient's access log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pll.domain.multidose import ADMINISTRATION, PACKED
from pll.fhir.validate import validate
from pll.store.schema import audit_event
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import (
    multidose_catalogue,
    new_patient_with_list,
    ok,
    outcome_text,
    prescribed,
    statement,
)

OP = "$administration-schedule"
EXT = "http://pll.invalid/fhir/StructureDefinition/pll-planned-administration"
ATC = "http://www.whocc.no/atc"
MONDAY = "2026-03-02"


@pytest.fixture
def gp(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("gp") as client:
        yield client


def _entry(
    gp: httpx.Client,
    pid: str,
    name: str,
    atc: str,
    *dosage: dict[str, Any],
    start: str | None = None,
    based_on: list[str] | None = None,
) -> dict[str, Any]:
    body = statement(f"Patient/{pid}", name, atc, based_on=based_on)
    body["dosage"] = list(dosage)
    if start:
        body["effectivePeriod"] = {"start": start}
    return ok(gp.post("/fhir/MedicationStatement", json=body), 201)


def _dose(value: float, **repeat: Any) -> dict[str, Any]:
    element: dict[str, Any] = {
        "doseAndRate": [{"doseQuantity": {"value": value, "unit": "tablett"}}]
    }
    if repeat:
        element["timing"] = {"repeat": repeat}
    return element


def _schedule(client: httpx.Client, list_id: str, **params: str) -> dict[str, Any]:
    answer = ok(client.get(f"/fhir/List/{list_id}/{OP}", params=params))
    validate(answer, "Bundle")  # every answer is valid FHIR R4
    return answer


def _parts(resource: dict[str, Any]) -> dict[str, Any]:
    (ext,) = [e for e in resource["extension"] if e["url"] == EXT]
    return {
        p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]
    }


def _requests(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
        and _parts(e["resource"])["kind"] == kind
    ]


def _planned(bundle: dict[str, Any]) -> list[tuple[str, str, str, float, str]]:
    """(medicine, local planned time, round, amount, source) of every planned dose."""
    out = []
    for r in _requests(bundle, "planned"):
        dosage = r["dosageInstruction"][0]
        parts = _parts(r)
        out.append(
            (
                r["medicationCodeableConcept"]["text"].split()[0],
                dosage["timing"]["event"][0],
                parts["slot"],
                dosage["doseAndRate"][0]["doseQuantity"]["value"],
                parts["source"],
            )
        )
    return out


def _notices(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        i
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "OperationOutcome"
        for i in e["resource"]["issue"]
    ]


def test_each_dosage_kind_lands_on_its_days_and_rounds(
    server: LiveServer, gp: httpx.Client
) -> None:
    pid, list_id = new_patient_with_list(gp)
    rx = ok(
        gp.post(
            "/fhir/MedicationRequest",
            json={
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [{"system": ATC, "code": "A10BA02"}],
                    "text": "Metformin tab 500 mg",
                },
                "subject": {"reference": f"Patient/{pid}"},
                "dosageInstruction": [_dose(1, when=["MORN", "EVE"])],
            },
        ),
        201,
    )
    metformin = _entry(
        gp,
        pid,
        "Metformin tab 500 mg",
        "A10BA02",
        _dose(1, when=["MORN", "EVE"]),
        based_on=[f"MedicationRequest/{rx['id']}"],
    )
    weekly = _entry(
        gp,
        pid,
        "Metotreksat tab 2,5 mg",
        "L04AX03",
        _dose(4, frequency=1, period=1, periodUnit="wk", dayOfWeek=["thu"]),
        start="2026-01-01",
    )
    _entry(
        gp,
        pid,
        "Furosemid tab 40 mg",
        "C03CA01",
        _dose(1, when=["MORN"], period=2, periodUnit="d"),
        start="2026-03-01",
    )
    _entry(
        gp,
        pid,
        "Prednisolon tab 5 mg",
        "H02AB06",
        {**_dose(4, when=["MORN"], boundsDuration={"value": 2, "code": "d"}), "sequence": 1},
        {**_dose(2, when=["MORN"], boundsDuration={"value": 2, "code": "d"}), "sequence": 2},
        start="2026-03-02",
    )
    paracetamol = _entry(
        gp,
        pid,
        "Paracetamol tab 500 mg",
        "N02BE01",
        {
            **_dose(2, frequency=1, period=1, periodUnit="d"),
            "asNeededBoolean": True,
            "maxDosePerPeriod": {
                "numerator": {"value": 8, "unit": "tablett"},
                "denominator": {"value": 1, "unit": "døgn"},
            },
        },
    )
    free = _entry(gp, pid, "Laktulose mikst", "A06AD11", {"text": "10-20 ml etter avføring"})

    week = _schedule(gp, list_id, start=MONDAY, end="2026-03-08")
    assert week["type"] == "collection"
    listed = week["entry"][0]["resource"]
    assert (listed["resourceType"], listed["id"]) == ("List", list_id)
    assert _notices(week) == []
    planned = _planned(week)
    assert [(t, a) for m, t, _, a, _ in planned if m == "Metformin"] == [
        (f"2026-03-0{d}T{h}:00:00+01:00", 1) for d in range(2, 9) for h in ("08", "20")
    ]
    assert [(t, s, a) for m, t, s, a, _ in planned if m == "Metotreksat"] == [
        ("2026-03-05T08:00:00+01:00", "morgen", 4)
    ]
    assert [t[:10] for m, t, *_ in planned if m == "Furosemid"] == [
        "2026-03-03", "2026-03-05", "2026-03-07",
    ]  # fmt: skip
    assert [(t[:10], a) for m, t, _, a, _ in planned if m == "Prednisolon"] == [
        ("2026-03-02", 4), ("2026-03-03", 4), ("2026-03-04", 2), ("2026-03-05", 2),
    ]  # fmt: skip
    assert {source for *_, source in planned} == {"package"}

    # each dose names the entry version it comes from, its prescription and its planned slot
    dose = next(r for r in _requests(week, "planned") if "Metformin" in str(r))
    assert dose["intent"] == "instance-order"
    assert dose["subject"] == {"reference": f"Patient/{pid}"}
    assert dose["supportingInformation"][0]["reference"] == (
        f"MedicationStatement/{metformin['id']}/_history/{metformin['meta']['versionId']}"
    )
    assert dose["identifier"][0]["value"] == f"{metformin['id']}/{MONDAY}/morgen/1"
    assert dose["basedOn"] == [{"reference": f"MedicationRequest/{rx['id']}"}]
    weekly_dose = next(r for r in _requests(week, "planned") if "Metotreksat" in str(r))
    assert weekly_dose["supportingInformation"][0]["reference"].startswith(
        f"MedicationStatement/{weekly['id']}/_history/"
    )
    assert "basedOn" not in weekly_dose  # no prescription linked: none is invented

    # as needed: every day, with its daily maximum and what remains of it
    as_needed = _requests(week, "as-needed")
    assert len(as_needed) == 7
    first = as_needed[0]
    assert first["supportingInformation"][0]["reference"].startswith(
        f"MedicationStatement/{paracetamol['id']}/"
    )
    assert first["dosageInstruction"][0]["asNeededBoolean"] is True
    assert first["dosageInstruction"][0]["maxDosePerPeriod"]["numerator"]["value"] == 8
    assert _parts(first)["remaining"]["value"] == 8
    assert "timing" not in first["dosageInstruction"][0]

    # free text: listed as 'må vurderes' with its text, never planned
    assess = _requests(week, "assess")
    assert [a["dosageInstruction"][0] for a in assess] == [{"text": "10-20 ml etter avføring"}] * 7
    assert "fritekst" in _parts(assess[0])["reason"]
    assert all(free["id"] in a["supportingInformation"][0]["reference"] for a in assess)

    # one day alone is that day of the week
    monday = _schedule(gp, list_id, date=MONDAY)
    assert _planned(monday) == [p for p in planned if p[1].startswith(MONDAY)]


def test_multidose_entries_come_from_the_bag(server: LiveServer, gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)
    # packable (issue 18): tablets from the catalogue, on a prescription, in the morning
    multidose_catalogue(server.db)
    mark = [{"url": ADMINISTRATION, "extension": [{"url": PACKED, "valueBoolean": True}]}]
    prescribed(gp, pid, "Amlodipin tab 5 mg", "C08CA01", extension=mark)
    day = _schedule(gp, list_id, date=MONDAY)
    assert [(s, src) for _, _, s, _, src in _planned(day)] == [("morgen", "multidose")]


def test_a_paused_list_plans_nothing_and_says_so(server: LiveServer, gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)
    _entry(gp, pid, "Metformin tab 500 mg", "A10BA02", _dose(1, when=["MORN"]))
    version = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
    ok(
        gp.post(
            f"/fhir/List/{list_id}/$pause",
            json={
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": "Innlagt på sykehus"}],
            },
            headers={"If-Match": f'W/"{version}"'},
        )
    )
    answer = _schedule(gp, list_id, start=MONDAY, end="2026-03-03")
    assert _requests(answer, "planned") == []
    assert [r["resource"]["resourceType"] for r in answer["entry"]] == [
        "List",
        "OperationOutcome",
    ]
    (notice,) = _notices(answer)
    assert notice["severity"] == "warning"
    assert "pauset" in notice["diagnostics"]
    assert "Innlagt på sykehus" in notice["diagnostics"]


def test_a_paused_entry_is_named_not_planned(server: LiveServer, gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)
    entry = _entry(gp, pid, "Metformin tab 500 mg", "A10BA02", _dose(1, when=["MORN"]))
    held = {**entry, "status": "on-hold"}
    ok(
        gp.put(
            f"/fhir/MedicationStatement/{entry['id']}",
            json=held,
            headers={"If-Match": f'W/"{entry["meta"]["versionId"]}"'},
        )
    )
    answer = _schedule(gp, list_id, date=MONDAY)
    assert _requests(answer, "planned") == []
    (notice,) = _notices(answer)
    assert notice["severity"] == "information"
    assert notice["expression"][0].startswith(f"MedicationStatement/{entry['id']}/_history/")


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"date": "2026-02-30"}, "date"),
        ({"date": "20260302"}, "date"),
        ({"date": "i morgen"}, "date"),
        ({"start": MONDAY, "end": "2026-03-16"}, "end"),  # 15 days
        ({"start": "2026-03-10", "end": MONDAY}, "end"),
        ({"end": MONDAY}, "start"),
        ({"date": MONDAY, "start": MONDAY}, "start"),
        ({"dato": MONDAY}, "dato"),
        # the chart covers 1900–2999: the calendar's last and first days are refused, no 5xx
        ({"date": "9999-12-31"}, "date"),
        ({"start": "9999-12-30", "end": "9999-12-31"}, "start"),
        ({"start": "2999-12-31", "end": "3000-01-01"}, "end"),
        ({"date": "0001-01-01"}, "date"),
    ],
)
def test_bad_dates_are_refused_with_where(
    server: LiveServer, gp: httpx.Client, params: dict[str, str], where: str
) -> None:
    _, list_id = new_patient_with_list(gp)
    before = snapshot(server.db)
    r = gp.get(f"/fhir/List/{list_id}/{OP}", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == [where]
    assert outcome_text(r)
    assert snapshot(server.db) == before


def test_fourteen_days_is_the_most(server: LiveServer, gp: httpx.Client) -> None:
    _, list_id = new_patient_with_list(gp)
    answer = _schedule(gp, list_id, start=MONDAY, end="2026-03-15")
    assert answer["entry"][0]["resource"]["id"] == list_id


def test_unknown_list_and_no_basis_are_refused(server: LiveServer, gp: httpx.Client) -> None:
    r = gp.get(f"/fhir/List/no-such-list/{OP}", params={"date": MONDAY})
    assert r.status_code == 404, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    _, list_id = new_patient_with_list(gp)
    with server.client("gp", basis=None) as no_basis:
        before = snapshot(server.db, audit=False)
        r = no_basis.get(f"/fhir/List/{list_id}/{OP}", params={"date": MONDAY})
    assert r.status_code == 403, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert snapshot(server.db, audit=False) == before


def test_the_read_is_in_the_access_log_once(server: LiveServer, gp: httpx.Client) -> None:
    pid, list_id = new_patient_with_list(gp)

    def reads() -> list[tuple[str, str, str | None]]:
        with server.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    audit_event.c.action, audit_event.c.resource_type, audit_event.c.resource_id
                ).where(audit_event.c.patient_id == pid, audit_event.c.outcome == "0")
            ).all()
        return [tuple(r) for r in rows]

    before = reads()
    _schedule(gp, list_id, start=MONDAY, end="2026-03-08")
    after = reads()
    assert len(after) == len(before) + 1
    assert after.count(("read", "List", list_id)) == before.count(("read", "List", list_id)) + 1


def test_the_operation_is_in_the_capability_statement(server: LiveServer) -> None:
    cap = ok(httpx.get(f"{server.base}/fhir/metadata"))
    (rest,) = cap["rest"]
    (lists,) = [r for r in rest["resource"] if r["type"] == "List"]
    assert "administration-schedule" in {o["name"] for o in lists.get("operation", [])}
