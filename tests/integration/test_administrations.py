"""Recording what was given (issue 17) over real HTTP on both databases: a nurse of the unit
records planned doses given and not given and lists them; every refused case answers an
OperationOutcome and writes nothing; a controlled drug needs a second signer; another
unit's nurse is refused and logged; a correction is a new version (entered-in-error)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pll.domain.administration import OSLO
from pll.fhir.validate import validate
from pll.store.schema import fest_drug, medication_administration, medication_administration_version
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import (
    DRUGS,
    SMALL_FEST,
    new_fnr,
    new_list,
    ok,
    outcome_text,
    patient,
    statement,
)
from tests.integration.conftest import evening_today
from tests.integration.test_care_units import audit_of, unit

# the clock at 19:30 today, where every planned dose of the day but the night's may be recorded
pytestmark = pytest.mark.usefixtures("evening_round")

PLANNED = "http://pll.invalid/fhir/StructureDefinition/administration-planned-dose"
NOT_GIVEN = "http://pll.invalid/fhir/CodeSystem/administration-not-given"
HPR = "urn:oid:2.16.578.1.12.4.1.4.4"
FEST = "http://ehelse.no/fhir/CodeSystem/FEST"


def setup(server: LiveServer, *entries: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """A patient of Ullern sykehjem with a list of ``entries``: (pid, list id, entries)."""
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        pid = ok(gp.post("/fhir/Patient", json=patient(new_fnr())), 201)["id"]
        list_id = new_list(gp, pid)["id"]
        made = [
            ok(
                gp.post(
                    "/fhir/MedicationStatement",
                    json={**e, "subject": {"reference": f"Patient/{pid}"}},
                ),
                201,
            )
            for e in entries
        ]
        ok(nurse.post(f"/fhir/Patient/{pid}/$care-unit-register", json=unit()), 201)
    return pid, list_id, made


def today() -> str:
    return datetime.now(OSLO).date().isoformat()


def given(
    pid: str,
    entry: dict[str, Any],
    slot: str | None = "morgen/1",
    status: str = "completed",
    **extra: Any,
) -> dict[str, Any]:
    version = entry["meta"]["versionId"]
    body: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "status": status,
        "medicationCodeableConcept": entry["medicationCodeableConcept"],
        "subject": {"reference": f"Patient/{pid}"},
        "supportingInformation": [
            {"reference": f"MedicationStatement/{entry['id']}/_history/{version}"}
        ],
        # the time the clock of the ``evening_round`` fixture stands at
        "effectiveDateTime": evening_today().astimezone(UTC).isoformat(timespec="seconds"),
    }
    if slot:
        body["extension"] = [{"url": PLANNED, "valueString": f"{entry['id']}/{today()}/{slot}"}]
    return {**body, **extra}


def med(name: str = DRUGS[0][0], atc: str = DRUGS[0][1], amount: float = 1) -> dict[str, Any]:
    return statement("Patient/x", name, atc, amount, "MORN", "EVE")


def rows(server: LiveServer, pid: str) -> list[tuple[Any, ...]]:
    with server.db.read() as conn:
        t = medication_administration
        query = sa.select(t.c.status, t.c.slot_key, t.c.amount, t.c.version).where(
            t.c.patient_id == pid
        )
        return sorted(tuple(r) for r in conn.execute(query))


def refused(server: LiveServer, client: httpx.Client, body: dict[str, Any], status: int) -> str:
    """Post ``body``; it must be refused with ``status`` and change nothing but the audit
    trail. A rule's refusal names where it stands; the access policy's is about the caller."""
    before = snapshot(server.db, audit=False)
    r = client.post("/fhir/MedicationAdministration", json=body)
    assert r.status_code == status, r.text
    assert status == 403 or r.json()["issue"][0].get("expression"), r.text
    assert snapshot(server.db, audit=False) == before
    return outcome_text(r)


def test_the_round_given_not_given_partly_and_listed(server: LiveServer) -> None:
    pid, _, (entry,) = setup(server, med(amount=2))
    with server.client("nursing-home-nurse") as nurse:
        r = nurse.post("/fhir/MedicationAdministration", json=given(pid, entry))
        made = ok(r, 201)
        validate(made, "MedicationAdministration")
        assert r.headers["Location"].endswith(f"/MedicationAdministration/{made['id']}/_history/1")
        assert made["dosage"]["dose"] == {"value": 2.0, "unit": "tablett"}
        giver = made["performer"][0]
        assert giver["function"]["coding"][0]["code"] == "performer"
        assert giver["actor"]["identifier"]["system"] == HPR
        assert made["medicationCodeableConcept"] == entry["medicationCodeableConcept"]
        # evening: not given, the patient refused
        reason = [{"coding": [{"system": NOT_GIVEN, "code": "refused"}]}]
        not_given = ok(
            nurse.post(
                "/fhir/MedicationAdministration",
                json=given(pid, entry, "kveld/1", "not-done", statusReason=reason),
            ),
            201,
        )
        assert not_given["statusReason"][0]["coding"][0]["display"]
        listed = ok(nurse.get(f"/fhir/MedicationAdministration?patient={pid}&date={today()}"))
        assert listed["total"] == 2
        assert {e["resource"]["status"] for e in listed["entry"]} == {"completed", "not-done"}
        assert (
            ok(nurse.get(f"/fhir/MedicationAdministration?patient={pid}&date=2001-01-01"))["total"]
            == 0
        )
    assert rows(server, pid) == sorted(
        [
            ("completed", f"{entry['id']}/{today()}/morgen/1", "2", 1),
            ("not-done", f"{entry['id']}/{today()}/kveld/1", None, 1),
        ]
    )
    assert ("search", "0") in [(a, o) for a, o, _ in audit_of(server, pid)]


def test_a_partial_dose_is_marked(server: LiveServer) -> None:
    pid, _, (entry,) = setup(server, med(amount=2))
    with server.client("care-worker") as worker:
        made = ok(
            worker.post(
                "/fhir/MedicationAdministration",
                json=given(pid, entry, dosage={"dose": {"value": 1, "unit": "tablett"}}),
            ),
            201,
        )
    assert any(e["url"].endswith("administration-partial") for e in made["extension"])


def test_refused_cases_write_nothing(server: LiveServer) -> None:
    pid, list_id, (entry, other) = setup(server, med(), med(*DRUGS[1]))
    with server.client("nursing-home-nurse") as nurse, server.client("gp") as gp:
        too_much = given(pid, entry, dosage={"dose": {"value": 3, "unit": "tablett"}})
        assert "more than the planned" in refused(server, nurse, too_much, 422)
        assert "no planned dose" in refused(server, nurse, given(pid, entry, "middag/1"), 400)
        no_reason = given(pid, entry, status="not-done")
        assert "statusReason" in refused(server, nurse, no_reason, 400)
        stale = given(pid, entry)
        stale["supportingInformation"][0]["reference"] = (
            f"MedicationStatement/{entry['id']}/_history/9"
        )
        assert "has changed" in refused(server, nurse, stale, 409)
        # twice for the same slot
        ok(nurse.post("/fhir/MedicationAdministration", json=given(pid, entry)), 201)
        assert "already recorded" in refused(server, nurse, given(pid, entry), 409)
        # a paused entry, then a discontinued one
        paused = ok(
            gp.put(
                f"/fhir/MedicationStatement/{other['id']}",
                json={**other, "status": "on-hold"},
                headers={"If-Match": 'W/"1"'},
            )
        )
        assert "paused" in refused(server, nurse, given(pid, paused), 409)
        stopped = ok(
            gp.put(
                f"/fhir/MedicationStatement/{other['id']}",
                json={
                    **paused,
                    "status": "stopped",
                    "statusReason": [{"text": "Ikke lenger indisert"}],
                },
                headers={"If-Match": 'W/"2"'},
            )
        )
        assert "no longer in use" in refused(server, nurse, given(pid, stopped), 409)
        # the whole list paused
        pause = {
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "Innlagt"}],
        }
        ok(gp.post(f"/fhir/List/{list_id}/$pause", json=pause))
        assert "paused (Pause PLL)" in refused(server, nurse, given(pid, entry, "kveld/1"), 409)


def test_as_needed_above_the_daily_maximum_is_refused(server: LiveServer) -> None:
    prn = med(*DRUGS[2])
    prn["dosage"] = [
        {
            "text": "1 tablett ved behov, høyst 2 per døgn",
            "asNeededBoolean": True,
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
            "maxDosePerPeriod": {
                "numerator": {"value": 2, "unit": "tablett"},
                "denominator": {"value": 1, "unit": "døgn", "code": "d"},
            },
        }
    ]
    pid, _, (entry,) = setup(server, prn)
    dose = {"dose": {"value": 1, "unit": "tablett"}}
    why = [{"text": "Smerter"}]
    with server.client("nursing-home-nurse") as nurse:
        assert "reason" in refused(server, nurse, given(pid, entry, None, dosage=dose), 400)
        first = ok(
            nurse.post(
                "/fhir/MedicationAdministration",
                json=given(pid, entry, None, dosage=dose, reasonCode=why),
            ),
            201,
        )
        # one dose at a time is the dose the list gives, however much remains of the maximum
        two = {"dose": {"value": 2, "unit": "tablett"}}
        assert "more than the as-needed dose of 1 tablett" in refused(
            server, nurse, given(pid, entry, None, dosage=two, reasonCode=why), 422
        )
        ok(
            nurse.post(
                "/fhir/MedicationAdministration",
                json=given(pid, entry, None, dosage=dose, reasonCode=why),
            ),
            201,
        )
        assert "the maximum is" in refused(
            server, nurse, given(pid, entry, None, dosage=dose, reasonCode=why), 422
        )
        # later: the effect, as a new version with a note
        effect = {**first, "note": [{"text": "God effekt etter 30 min"}]}
        later = ok(
            nurse.put(
                f"/fhir/MedicationAdministration/{first['id']}",
                json=effect,
                headers={"If-Match": 'W/"1"'},
            )
        )
        assert later["meta"]["versionId"] == "2"
        assert later["note"] == [{"text": "God effekt etter 30 min"}]


def test_a_controlled_drug_needs_a_second_signer(server: LiveServer) -> None:
    from pll.catalog.importer import import_fest

    with SMALL_FEST.open("rb") as extract:
        import_fest(server.db, extract, SMALL_FEST.name, now=datetime(2026, 11, 22, tzinfo=UTC))
    with server.db.write() as conn:  # the catalogue says: Reseptgruppe A
        conn.execute(sa.update(fest_drug).where(fest_drug.c.code == "081234").values(rx_group="A"))
    drug = med("Warfarin Nordfarma Tab 2,5 mg", "B01AA03")
    drug["medicationCodeableConcept"]["coding"].insert(0, {"system": FEST, "code": "081234"})
    pid, _, (entry,) = setup(server, drug)
    with server.client("nursing-home-nurse") as nurse:
        assert "second signature" in refused(server, nurse, given(pid, entry), 422)
        second = [
            {
                "function": {"coding": [{"code": "verifier"}]},
                "actor": {"identifier": {"system": HPR, "value": "9144943"}},
            }
        ]
        made = ok(
            nurse.post("/fhir/MedicationAdministration", json=given(pid, entry, performer=second)),
            201,
        )
        assert made["performer"][1]["actor"]["identifier"]["value"] == "9144943"


def test_another_units_nurse_is_refused_and_logged(server: LiveServer) -> None:
    pid, _, (entry,) = setup(server, med())
    with server.client("nurse") as other:
        text = refused(server, other, given(pid, entry), 403)
    assert "not registered with your care unit" in text
    assert audit_of(server, pid)[-1][:2] == ("create", "4")


def test_a_correction_is_a_new_version_entered_in_error(server: LiveServer) -> None:
    pid, _, (entry,) = setup(server, med())
    with server.client("nursing-home-nurse") as nurse:
        made = ok(nurse.post("/fhir/MedicationAdministration", json=given(pid, entry)), 201)
        path = f"/fhir/MedicationAdministration/{made['id']}"
        edited = {**made, "dosage": {"dose": {"value": 0.5, "unit": "tablett"}}}
        r = nurse.put(path, json=edited, headers={"If-Match": 'W/"1"'})
        assert r.status_code == 400
        assert "never edited" in outcome_text(r)
        r = nurse.put(
            path, json={**made, "status": "entered-in-error"}, headers={"If-Match": 'W/"1"'}
        )
        assert r.status_code == 400
        assert "reason" in outcome_text(r)
        wrong = {**made, "status": "entered-in-error", "statusReason": [{"text": "Feil pasient"}]}
        assert nurse.put(path, json=wrong).status_code == 428
        fixed = ok(nurse.put(path, json=wrong, headers={"If-Match": 'W/"1"'}))
        assert fixed["status"] == "entered-in-error"
        assert fixed["meta"]["versionId"] == "2"
        history = ok(nurse.get(f"{path}/_history"))
        assert [e["resource"]["status"] for e in history["entry"]] == [
            "entered-in-error",
            "completed",
        ]
        # the slot is free again: the dose can be recorded anew
        ok(nurse.post("/fhir/MedicationAdministration", json=given(pid, entry)), 201)
    # the versions are append-only in the database itself, whatever the application does
    for change in (
        sa.update(medication_administration_version).values(status="completed"),
        sa.delete(medication_administration_version),
    ):
        with pytest.raises(sa.exc.DBAPIError), server.db.write() as conn:
            conn.execute(
                change.where(medication_administration_version.c.administration_id == made["id"])
            )


# -- when a planned dose may be recorded, and what comes in (review of issue 17) ----------------


def keys(client: httpx.Client, list_id: str, day: date) -> list[str]:
    """The planned doses' keys of ``day`` on the caller's chart."""
    bundle = ok(client.get(f"/fhir/List/{list_id}/$administration-schedule?date={day}"))
    return [
        r["resource"]["identifier"][0]["value"]
        for r in bundle["entry"]
        if r["resource"].get("identifier")
    ]


def server_now(server: LiveServer) -> str:
    return server.service.clock().astimezone(UTC).isoformat(timespec="seconds")


def local(hour: int, minute: int) -> str:
    """Today in Norway at ``hour:minute``, as a FHIR dateTime."""
    moment = datetime.combine(date.fromisoformat(today()), time(hour, minute), OSLO)
    return moment.isoformat(timespec="seconds")


def with_key(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {**body, "extension": [{"url": PLANNED, "valueString": key}]}


def morning() -> dict[str, Any]:
    return statement("Patient/x", *DRUGS[0], 1, "MORN")


def test_a_later_days_planned_dose_is_not_recorded_today(server: LiveServer) -> None:
    """Today's morning dose and tomorrow's both 'given' this evening would be a double dose
    today and a missed one tomorrow: a planned dose is recorded from an hour before it."""
    pid, list_id, (entry,) = setup(server, morning())
    today_ = date.fromisoformat(today())
    with server.client("nursing-home-nurse") as nurse:
        ok(nurse.post("/fhir/MedicationAdministration", json=given(pid, entry)), 201)
        for later in (today_ + timedelta(days=1), today_ + timedelta(days=7)):
            (key,) = keys(nurse, list_id, later)
            said = refused(server, nurse, with_key(given(pid, entry), key), 422)
            assert "it is recorded from 60 minutes before that" in said


def test_a_planned_dose_is_given_late_up_to_12_hours_and_not_given_in_its_window_only(
    server: LiveServer, clock: Clock
) -> None:
    pid, _, (entry,) = setup(server, med())
    reason = [{"coding": [{"system": NOT_GIVEN, "code": "absent"}]}]
    with server.client("nursing-home-nurse") as nurse:
        early = given(pid, entry, "kveld/1", "not-done", statusReason=reason)
        early["effectiveDateTime"] = local(18, 55)  # 65 minutes before 20:00
        assert "60 minutes before" in refused(server, nurse, early, 422)
        clock.advance(hours=1)  # 20:30
        late = given(pid, entry, effectiveDateTime=server_now(server))
        assert "no longer given late" in refused(server, nurse, late, 422)
        twelve_hours = given(pid, entry, effectiveDateTime=local(20, 0))
        ok(nurse.post("/fhir/MedicationAdministration", json=twelve_hours), 201)


def test_days_outside_the_chart_and_odd_times_are_refused_never_a_5xx(server: LiveServer) -> None:
    pid, _, (entry,) = setup(server, morning())
    with server.client("nursing-home-nurse") as nurse:
        for day in ("9999-12-31", "0001-01-01"):
            body = with_key(given(pid, entry), f"{entry['id']}/{day}/morgen/1")
            assert "outside the days the chart covers" in refused(server, nurse, body, 400)
        for moment in (
            "0001-01-01T00:30:00+01:00",
            "0001-01-01T00:30:00Z",
            "2026-06-30T23:59:60Z",
            "2026-01-01T10:00:00+14:59",
        ):
            refused(server, nurse, given(pid, entry, effectiveDateTime=moment), 400)
        search = nurse.get(f"/fhir/MedicationAdministration?patient={pid}&date=9999-12-31")
        assert search.status_code == 400


def test_a_second_signer_is_named_by_4_to_9_digits_alike_on_both_databases(
    server: LiveServer,
) -> None:
    pid, _, (entry,) = setup(server, morning())
    with server.client("nursing-home-nurse") as nurse:
        for number in ("9" * 40, "123", "12345678901"):
            second = [
                {
                    "function": {"coding": [{"code": "verifier"}]},
                    "actor": {"identifier": {"system": HPR, "value": number}},
                }
            ]
            said = refused(server, nurse, given(pid, entry, performer=second), 422)
            assert "4 to 9 digits" in said


def test_the_as_needed_maximum_per_24_hours_holds_across_midnight(
    server: LiveServer, clock: Clock
) -> None:
    """'Høyst 2 per 24 timer': 2 tablets at 23:30 and 2 more at 00:30 are 4 within one hour."""
    prn = statement("Patient/x", *DRUGS[2], 1, "MORN")
    prn["dosage"] = [
        {
            "text": "1-2 tabletter ved behov, høyst 2 per 24 timer",
            "asNeededBoolean": True,
            "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablett"}}],
            "maxDosePerPeriod": {
                "numerator": {"value": 2, "unit": "tablett"},
                "denominator": {"value": 24, "unit": "timer", "code": "h"},
            },
        }
    ]
    pid, list_id, (entry,) = setup(server, prn)
    clock.advance(hours=4)  # 23:30
    two = {"dose": {"value": 2, "unit": "tablett"}}
    why = [{"text": "Smerter"}]
    with server.client("nursing-home-nurse") as nurse:
        at_2330 = given(pid, entry, None, dosage=two, reasonCode=why)
        ok(
            nurse.post(
                "/fhir/MedicationAdministration",
                json=at_2330 | {"effectiveDateTime": server_now(server)},
            ),
            201,
        )
        clock.advance(hours=1)  # 00:30, the next day
        at_0030 = at_2330 | {"effectiveDateTime": server_now(server)}
        assert "the maximum is 2 tablett per 24 timer" in refused(server, nurse, at_0030, 422)
        # what remains now is over the 24 hours ending now: nothing
        tomorrow = server.service.clock().astimezone(OSLO).date()
        bundle = ok(nurse.get(f"/fhir/List/{list_id}/$administration-schedule?date={tomorrow}"))
    (item,) = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]
    parts = {p["url"]: p for p in item["extension"][0]["extension"]}
    assert parts["remaining"]["valueQuantity"]["value"] == 0
    assert item["dosageInstruction"][0]["maxDosePerPeriod"]["denominator"]["code"] == "d"


def test_two_dosage_elements_in_one_round_are_one_dose_given_at_once(server: LiveServer) -> None:
    """'1 tablett morgen og kveld' plus '1 tablett morgen' (two elements, one step) is one
    morning dose of 2 tablets, its text showing both parts."""
    both = morning()
    twice_daily = {
        "sequence": 1,
        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
    }
    both["dosage"] = [twice_daily, {**both["dosage"][0], "sequence": 1}]
    pid, list_id, (entry,) = setup(server, both)
    with server.client("nursing-home-nurse") as nurse:
        bundle = ok(nurse.get(f"/fhir/List/{list_id}/$administration-schedule?date={today()}"))
        planned = [
            e["resource"]
            for e in bundle["entry"]
            if "/morgen/" in str(e["resource"].get("identifier", [{}])[0].get("value"))
        ]
        (dose,) = planned
        assert dose["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 2
        assert dose["dosageInstruction"][0]["text"].endswith("(1 + 1)")
        whole = {"dose": {"value": 2, "unit": "tablett"}}
        ok(nurse.post("/fhir/MedicationAdministration", json=given(pid, entry, dosage=whole)), 201)
        assert "already recorded" in refused(server, nurse, given(pid, entry), 409)
