"""The whole round of giving the medicines (issue 17) over real HTTP on both databases: a
unit registers the patient, reads the schedule, records doses given and not given; a
doctor's dose change appears as unacknowledged on the unit's schedule, a dose given from it
is flagged, a nurse's acknowledgement clears it; Pause PLL and its resumption are changes
too; every refused acknowledgement answers an OperationOutcome and writes nothing, and
another unit's nurse is refused and logged."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pll.fhir.acknowledgements import EXT_UNACKNOWLEDGED, MARK
from pll.fhir.administration import EXT_PLANNED
from pll.fhir.validate import validate
from pll.store.schema import care_acknowledged_change, care_acknowledgement
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import DRUGS, dose, ok, outcome_text, statement
from tests.integration.test_administrations import given, setup, today
from tests.integration.test_care_units import audit_of
from tests.integration.test_events import Receiver, deliver_all, receiver, subscribe

__all__ = ["receiver"]  # the rest-hook endpoint fixture, shared with the events tests

NOT_GIVEN = "http://pll.invalid/fhir/CodeSystem/administration-not-given"
OTHER_UNITS_NURSE = "9144900"  # the persona "nurse", of Bergen kommune hjemmetjeneste
CARE_WORKER = "9144943"

# the clock at 19:30 today, where every planned dose of the day but the night's may be recorded
pytestmark = pytest.mark.usefixtures("evening_round")


def schedule(client: httpx.Client, list_id: str) -> dict[str, Any]:
    answer = ok(client.get(f"/fhir/List/{list_id}/$administration-schedule?date={today()}"))
    validate(answer, "Bundle")
    return answer


def marks(answer: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Per entry id, the unacknowledged changes marked on its items (kind, from, to, by)."""
    out: dict[str, list[dict[str, str]]] = {}
    for item in answer["entry"]:
        resource = item["resource"]
        if resource["resourceType"] != "MedicationRequest":
            continue
        entry_id = resource["supportingInformation"][0]["reference"].split("/")[1]
        (planned,) = (e for e in resource["extension"] if e["url"] == EXT_PLANNED)
        for part in planned["extension"]:
            if part["url"] == "unacknowledged":
                out.setdefault(entry_id, []).append(_parts(part["extension"]))
    return out


def _parts(parts: list[dict[str, Any]]) -> dict[str, str]:
    values = {}
    for p in parts:
        key = next(k for k in p if k.startswith("value"))
        value = p[key]
        values[p["url"]] = value["display"] if key == "valueReference" else str(value)
    return values


def warnings(answer: dict[str, Any]) -> list[str]:
    return [
        i["diagnostics"]
        for item in answer["entry"]
        if item["resource"]["resourceType"] == "OperationOutcome"
        for i in item["resource"]["issue"]
        if i["diagnostics"].startswith(MARK)
    ]


def acknowledge(version: Any, kind: str = "valueInteger") -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": "version", kind: version}]}


def answer_of(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in result["parameter"]:
        if "part" in p:
            out.setdefault(p["name"], []).append({q["name"]: _value(q) for q in p["part"]})
        else:
            out[p["name"]] = _value(p)
    return out


def _value(parameter: dict[str, Any]) -> Any:
    return next(v for k, v in parameter.items() if k.startswith("value"))


def acknowledgements(server: LiveServer, list_id: str) -> list[tuple[Any, ...]]:
    with server.db.read() as conn:
        a = care_acknowledgement
        rows = conn.execute(
            sa.select(a.c.unit_orgnr, a.c.base_version, a.c.list_version)
            .where(a.c.list_id == list_id)
            .order_by(a.c.list_version)
        ).all()
        c = care_acknowledged_change
        changes = conn.execute(sa.select(c.c.kind, c.c.list_version)).all()
    return [tuple(r) for r in rows] + [tuple(r) for r in changes]


def refused(server: LiveServer, client: httpx.Client, list_id: str, body: Any, status: int) -> str:
    before = snapshot(server.db, audit=False)
    r = client.post(f"/fhir/List/{list_id}/$acknowledge-changes", json=body)
    assert r.status_code == status, r.text
    assert snapshot(server.db, audit=False) == before
    return outcome_text(r)


def version_of(client: httpx.Client, list_id: str) -> int:
    return int(ok(client.get(f"/fhir/List/{list_id}"))["meta"]["versionId"])


def test_the_round_with_a_change_acknowledged(server: LiveServer) -> None:
    twice = statement("Patient/x", *DRUGS[0], 1, "MORN", "EVE")
    evening = statement("Patient/x", *DRUGS[1], 1, "EVE")
    pid, list_id, (metformin, atorva) = setup(server, twice, evening)
    with (
        server.client("gp") as gp,
        server.client("nursing-home-nurse") as nurse,
        server.client("care-worker") as worker,
    ):
        # the unit took the list in as it stood when it registered the patient
        first = schedule(nurse, list_id)
        assert marks(first) == {}
        assert warnings(first) == []
        # the morning round: given; atorvastatin in the evening: not given
        morning = ok(nurse.post("/fhir/MedicationAdministration", json=given(pid, metformin)), 201)
        assert "extension" not in morning or all(
            e["url"] != EXT_UNACKNOWLEDGED for e in morning["extension"]
        )
        reason = [{"coding": [{"system": NOT_GIVEN, "code": "refused"}]}]
        body = given(pid, atorva, "kveld/1", "not-done", statusReason=reason)
        ok(worker.post("/fhir/MedicationAdministration", json=body), 201)
        before_change = version_of(gp, list_id)

        # the doctor doubles metformin
        changed = ok(
            gp.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json={**metformin, "dosage": dose(2, "MORN", "EVE")},
                headers={"If-Match": 'W/"1"'},
            )
        )
        current = version_of(gp, list_id)
        answer = schedule(nurse, list_id)
        # each of the entry's items (morgen, kveld) is marked
        assert len(marks(answer)[metformin["id"]]) == 2
        mark = marks(answer)[metformin["id"]][0]
        assert mark["kind"] == "dose"
        assert mark["from"] == "1 tablett morgen og kveld"
        assert mark["to"] == "2 tabletter morgen og kveld"
        assert mark["by"].startswith("Kari Fastlege, HPR 9144889")
        assert mark["listVersion"] == str(current)
        assert atorva["id"] not in marks(answer)
        (warning,) = warnings(answer)
        assert "endret dose (1 tablett morgen og kveld → 2 tabletter morgen og kveld)" in warning
        # a reader of no unit sees the plain schedule
        assert marks(schedule(gp, list_id)) == {}

        # the evening dose is given from the changed entry: allowed, and flagged
        evening_dose = given(pid, changed, "kveld/1")
        flagged = ok(nurse.post("/fhir/MedicationAdministration", json=evening_dose), 201)
        validate(flagged, "MedicationAdministration")
        (flag,) = (e for e in flagged["extension"] if e["url"] == EXT_UNACKNOWLEDGED)
        assert _parts(flag["extension"])["listVersion"] == str(current)
        assert _parts(flag["extension"])["kind"] == "dose"

        # refused, each with an OperationOutcome and nothing written
        assert "does not exist" in refused(server, nurse, "no-such-list", acknowledge(1), 404)
        assert "cannot be acknowledged" in refused(
            server, nurse, list_id, acknowledge(current + 1), 409
        )
        assert "version" in refused(server, nurse, list_id, acknowledge(0), 400)
        assert "version" in refused(server, nurse, list_id, acknowledge(True, "valueBoolean"), 400)
        assert "version" in refused(server, nurse, list_id, acknowledge("v2", "valueString"), 400)
        assert "Only nurses" in refused(server, worker, list_id, acknowledge(current), 403)
        with server.client("nurse") as other_unit:
            text = refused(server, other_unit, list_id, acknowledge(current), 403)
            assert "not registered with your care unit" in text
        refusals = [a for a in audit_of(server, pid) if a[0] == "acknowledge-changes"]
        assert refusals == [
            ("acknowledge-changes", "4", CARE_WORKER),
            ("acknowledge-changes", "4", OTHER_UNITS_NURSE),
        ]

        # a version the unit had already taken in: answered, nothing written
        before = snapshot(server.db, audit=False)
        old = answer_of(
            ok(nurse.post(f"/fhir/List/{list_id}/$acknowledge-changes", json=acknowledge(1)))
        )
        assert old["written"] is False
        assert old["previous"] == before_change
        assert len(old["remaining"]) == 1
        assert snapshot(server.db, audit=False) == before

        # the nurse acknowledges the change; the schedule is plain again
        done = answer_of(
            ok(
                nurse.post(
                    f"/fhir/List/{list_id}/$acknowledge-changes",
                    json=acknowledge(str(current), "valueString"),
                )
            )
        )
        assert done["written"] is True
        assert [c["kind"] for c in done["change"]] == ["dose"]
        assert "remaining" not in done
        cleared = schedule(nurse, list_id)
        assert marks(cleared) == {}
        assert warnings(cleared) == []
    assert acknowledgements(server, list_id) == [
        ("883416031", before_change, current),
        ("dose", current),
    ]
    actions = [(a, o) for a, o, _ in audit_of(server, pid) if a == "acknowledge-changes"]
    assert actions == [("acknowledge-changes", "4")] * 2 + [("acknowledge-changes", "0")] * 2


def test_acknowledging_a_version_takes_in_the_changes_up_to_it_only(server: LiveServer) -> None:
    pid, list_id, (metformin, atorva) = setup(
        server,
        statement("Patient/x", *DRUGS[0], 1, "MORN"),
        statement("Patient/x", *DRUGS[1], 1, "EVE"),
    )
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{atorva['id']}",
                json={**atorva, "status": "on-hold"},
                headers={"If-Match": 'W/"1"'},
            )
        )
        paused_at = version_of(gp, list_id)
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json={**metformin, "dosage": dose(1, "EVE")},
                headers={"If-Match": 'W/"1"'},
            )
        )
        new = ok(
            gp.post(
                "/fhir/MedicationStatement",
                json=statement(f"Patient/{pid}", *DRUGS[2], 1, "MORN"),
            ),
            201,
        )
        answer = schedule(nurse, list_id)
        shown = marks(answer)
        assert [m["kind"] for m in shown[metformin["id"]]] == ["timing"]
        assert [m["kind"] for m in shown[new["id"]]] == ["new"]
        # the paused entry has no items: it is in the notice only
        assert atorva["id"] not in shown
        assert any("pauset" in w for w in warnings(answer))

        done = answer_of(
            ok(
                nurse.post(
                    f"/fhir/List/{list_id}/$acknowledge-changes", json=acknowledge(paused_at)
                )
            )
        )
        assert [c["kind"] for c in done["change"]] == ["paused"]
        assert sorted(c["kind"] for c in done["remaining"]) == ["new", "timing"]
        after = schedule(nurse, list_id)
        assert sorted(marks(after)) == sorted([metformin["id"], new["id"]])
        assert not any("pauset (" in w for w in warnings(after))


def test_pause_pll_and_its_resumption_are_changes_for_the_unit(server: LiveServer) -> None:
    _, list_id, _ = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        version = version_of(gp, list_id)
        pause = {
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "Innlagt på sykehus"}],
        }
        ok(
            gp.post(
                f"/fhir/List/{list_id}/$pause",
                json=pause,
                headers={"If-Match": f'W/"{version}"'},
            )
        )
        (paused,) = warnings(schedule(nurse, list_id))
        assert "legemiddellisten pauset (Pause PLL)" in paused
        ok(nurse.post(f"/fhir/List/{list_id}/$acknowledge-changes", json=acknowledge(version + 1)))
        assert warnings(schedule(nurse, list_id)) == []
        ok(gp.post(f"/fhir/List/{list_id}/$resume", headers={"If-Match": f'W/"{version + 1}"'}))
        resumed = schedule(nurse, list_id)
        (warning,) = warnings(resumed)
        assert "legemiddellisten gjenopptatt" in warning
        # the doses are back, and the unit is told the list came back
        assert any(e["resource"]["resourceType"] == "MedicationRequest" for e in resumed["entry"])


def test_the_unit_is_told_of_a_doctors_change_through_its_subscription(
    server: LiveServer, clock: Any, receiver: Receiver
) -> None:
    """The unit follows the patient's list (``List?patient=``) with the existing
    subscriptions; a doctor's change reaches it as the list version the schedule marks."""
    pid, list_id, (metformin,) = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        ok(subscribe(nurse, pid, receiver.url), 201)
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json={**metformin, "dosage": dose(2, "MORN")},
                headers={"If-Match": 'W/"1"'},
            )
        )
        current = version_of(gp, list_id)
        deliver_all(server, clock)
        assert receiver.versions() == [str(current)]
        (bundle,) = receiver.bundles()
        assert bundle["entry"][1]["fullUrl"].endswith(f"/List/{list_id}/_history/{current}")
        (mark,) = marks(schedule(nurse, list_id))[metformin["id"]]
        assert mark["listVersion"] == str(current)


def test_the_statistics_count_the_time_from_change_to_acknowledgement(
    server: LiveServer, clock: Any
) -> None:
    """Per unit: the median and 90th percentile of the hours from each change to its
    acknowledgement, and the changes unacknowledged now; small counts suppressed."""
    pid, list_id, (metformin,) = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        for name, atc in [*DRUGS[1:], ("Paracet tab 500 mg", "N02BE01")]:
            entry = statement(f"Patient/{pid}", name, atc, 1, "EVE")
            ok(gp.post("/fhir/MedicationStatement", json=entry), 201)
            clock.advance(hours=1)
        # five new entries, made 5, 4, 3, 2 and 1 hours before they are acknowledged
        done = answer_of(
            ok(
                nurse.post(
                    f"/fhir/List/{list_id}/$acknowledge-changes",
                    json=acknowledge(version_of(gp, list_id)),
                )
            )
        )
        assert len(done["change"]) == 5
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json={**metformin, "dosage": dose(2, "MORN")},
                headers={"If-Match": 'W/"1"'},
            )
        )
        table = ok(httpx.get(f"{server.base}/stats/acknowledgements"))
    (row,) = table["rows"]
    assert row["unit"] == "883416031"
    assert (row["acknowledged"], row["median_hours"], row["p90_hours"]) == (5, 3.0, 5.0)
    assert row["unacknowledged"] is None  # one change waiting: under five, suppressed
    csv = httpx.get(f"{server.base}/stats/acknowledgements", params={"format": "csv"}).text
    assert csv.splitlines()[1] == "883416031,5,3.0,5.0,<5"


SCT = "http://snomed.info/sct"
ORAL = {"coding": [{"system": SCT, "code": "26643006", "display": "Oral"}]}
SUBCUT = {"coding": [{"system": SCT, "code": "34206005", "display": "Subkutan"}]}


def test_a_change_of_route_is_unacknowledged_for_the_unit(server: LiveServer) -> None:
    """The same amount at the same time by another route (by mouth → under the skin) changes
    what the nurse does: it is 'Endret — ikke kvittert' until a nurse takes it in."""
    oral = statement("Patient/x", *DRUGS[0], 1, "MORN")
    oral["dosage"][0]["route"] = ORAL
    _, list_id, (entry,) = setup(server, oral)
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        assert marks(schedule(nurse, list_id)) == {}
        changed = {**entry, "dosage": [{**entry["dosage"][0], "route": SUBCUT}]}
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{entry['id']}",
                json=changed,
                headers={"If-Match": 'W/"1"'},
            )
        )
        answer = schedule(nurse, list_id)
        (mark,) = marks(answer)[entry["id"]]
        assert (mark["kind"], mark["from"], mark["to"]) == ("route", "Oral", "Subkutan")
        assert any("endret administrasjonsmåte (Oral → Subkutan)" in w for w in warnings(answer))
        version = version_of(nurse, list_id)
        ok(nurse.post(f"/fhir/List/{list_id}/$acknowledge-changes", json=acknowledge(version)))
        assert marks(schedule(nurse, list_id)) == {}
