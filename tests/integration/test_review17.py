"""Review of issue 17 (giving the medicines): each test here states what the issue or
DESIGN §3 asks and fails while the code does otherwise (docs: /work/notes/review-17.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from pll.domain.administration import OSLO
from pll.store.schema import medication_administration
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import DRUGS, ok, statement
from tests.integration.test_administrations import PLANNED, setup
from tests.integration.test_care_unit_settings import SETTINGS, settings
from tests.integration.test_care_units import BERGEN_HOME_CARE, unit

MA = "/fhir/MedicationAdministration"


def local_day(server: LiveServer, days: int = 0) -> date:
    return server.service.clock().astimezone(OSLO).date() + timedelta(days=days)


def now_iso(server: LiveServer) -> str:
    return server.service.clock().astimezone(UTC).isoformat(timespec="seconds")


def body(
    server: LiveServer,
    pid: str,
    entry: dict[str, Any],
    key: str | None,
    status: str = "completed",
    **extra: Any,
) -> dict[str, Any]:
    version = entry["meta"]["versionId"]
    out: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "status": status,
        "medicationCodeableConcept": entry["medicationCodeableConcept"],
        "subject": {"reference": f"Patient/{pid}"},
        "supportingInformation": [
            {"reference": f"MedicationStatement/{entry['id']}/_history/{version}"}
        ],
        "effectiveDateTime": now_iso(server),
    }
    if key is not None:
        out["extension"] = [{"url": PLANNED, "valueString": key}]
    return {**out, **extra}


def keys(client: httpx.Client, list_id: str, day: date) -> list[str]:
    """The planned doses' keys of ``day`` on the caller's chart."""
    bundle = ok(client.get(f"/fhir/List/{list_id}/$administration-schedule?date={day}"))
    return [
        r["resource"]["identifier"][0]["value"]
        for r in bundle["entry"]
        if r["resource"].get("identifier")
    ]


def completed(server: LiveServer, pid: str) -> list[tuple[Any, ...]]:
    with server.db.read() as conn:
        t = medication_administration
        query = sa.select(t.c.entry_id, t.c.day, t.c.slot_key).where(
            t.c.patient_id == pid, t.c.status == "completed"
        )
        return sorted(tuple(r) for r in conn.execute(query))


def morning_only() -> dict[str, Any]:
    return statement("Patient/x", *DRUGS[0], 1, "MORN")


# -- a planned dose recorded twice ------------------------------------------------------------


def test_one_morning_dose_is_not_recorded_twice_by_two_units_with_other_clock_times(
    server: LiveServer, clock: Clock
) -> None:
    """A patient may be registered with two units at once (home care and a short stay).
    When one unit has moved its morning round, the same morning dose has two keys (one
    per unit's clock time) and each unit's nurse can record it: the patient gets it twice."""
    pid, list_id, (entry,) = setup(server, morning_only())
    with server.client("nurse") as home_care, server.client("nursing-home-nurse") as ullern:
        ok(
            home_care.post(
                f"/fhir/Patient/{pid}/$care-unit-register",
                json=unit(BERGEN_HOME_CARE, "hjemmetjeneste"),
            ),
            201,
        )
        ok(ullern.post(SETTINGS, json=settings()))  # Ullern: morgen 07:30 from tomorrow
        clock.advance(days=1)
        day = local_day(server)
        (at_ullern,) = keys(ullern, list_id, day)
        (at_home,) = keys(home_care, list_id, day)
        ok(ullern.post(MA, json=body(server, pid, entry, at_ullern)), 201)
        r = home_care.post(MA, json=body(server, pid, entry, at_home))
    assert r.status_code == 409, (r.status_code, completed(server, pid))
    assert len(completed(server, pid)) == 1


def test_tomorrows_planned_dose_is_not_given_today(server: LiveServer) -> None:
    """A planned dose of a later day is recorded as given now: today's morning dose and
    tomorrow's both 'given' this morning (a double dose today, a missed one tomorrow)."""
    pid, list_id, (entry,) = setup(server, morning_only())
    with server.client("nursing-home-nurse") as nurse:
        (today_key,) = keys(nurse, list_id, local_day(server))
        (tomorrow_key,) = keys(nurse, list_id, local_day(server, 1))
        ok(nurse.post(MA, json=body(server, pid, entry, today_key)), 201)
        before = snapshot(server.db, audit=False)
        r = nurse.post(MA, json=body(server, pid, entry, tomorrow_key))
        assert r.status_code in (400, 409, 422), r.text
        assert snapshot(server.db, audit=False) == before


def test_a_planned_dose_a_week_ahead_is_not_given_now(server: LiveServer) -> None:
    pid, list_id, (entry,) = setup(server, morning_only())
    with server.client("nursing-home-nurse") as nurse:
        (ahead,) = keys(nurse, list_id, local_day(server, 7))
        before = snapshot(server.db, audit=False)
        r = nurse.post(MA, json=body(server, pid, entry, ahead))
        assert r.status_code in (400, 409, 422), r.text
        assert snapshot(server.db, audit=False) == before


# -- hostile input: never a 5xx, nothing written -----------------------------------------------


def test_the_schedule_of_the_last_and_first_days_of_the_calendar_is_no_5xx(
    server: LiveServer,
) -> None:
    _, list_id, _ = setup(server, morning_only())
    with server.client("nursing-home-nurse") as nurse:
        for query in (
            "date=9999-12-31",
            "start=9999-12-30&end=9999-12-31",
            "date=0001-01-01",
        ):
            r = nurse.get(f"/fhir/List/{list_id}/$administration-schedule?{query}")
            assert r.status_code < 500, (query, r.status_code, r.text[:300])


def test_a_planned_dose_key_at_the_end_of_the_calendar_is_no_5xx(server: LiveServer) -> None:
    pid, _, (entry,) = setup(server, morning_only())
    with server.client("nursing-home-nurse") as nurse:
        for day in ("9999-12-31", "0001-01-01"):
            before = snapshot(server.db, audit=False)
            r = nurse.post(MA, json=body(server, pid, entry, f"{entry['id']}/{day}/morgen/08:00"))
            assert r.status_code < 500, (day, r.status_code, r.text[:300])
            assert snapshot(server.db, audit=False) == before


def test_odd_effective_times_are_no_5xx(server: LiveServer) -> None:
    pid, list_id, (entry,) = setup(server, morning_only())
    with server.client("nursing-home-nurse") as nurse:
        (key,) = keys(nurse, list_id, local_day(server))
        for moment in (
            "0001-01-01T00:30:00+01:00",
            "0001-01-01T00:30:00Z",
            "2026-06-30T23:59:60Z",
            "2026-01-01T10:00:00+14:59",
        ):
            before = snapshot(server.db, audit=False)
            r = nurse.post(MA, json=body(server, pid, entry, key, effectiveDateTime=moment))
            assert r.status_code < 500, (moment, r.status_code, r.text[:300])
            assert snapshot(server.db, audit=False) == before


def test_a_long_second_signer_number_is_refused_alike_on_both_databases(
    server: LiveServer,
) -> None:
    """The verifier's HPR number is checked for digits only; the column holds 16
    characters. SQLite stores 40 digits, PostgreSQL fails with a 5xx."""
    pid, list_id, (entry,) = setup(server, morning_only())
    second = [
        {
            "function": {"coding": [{"code": "verifier"}]},
            "actor": {"identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.4", "value": "9" * 40}},
        }
    ]
    with server.client("nursing-home-nurse") as nurse:
        (key,) = keys(nurse, list_id, local_day(server))
        before = snapshot(server.db, audit=False)
        r = nurse.post(MA, json=body(server, pid, entry, key, performer=second))
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert snapshot(server.db, audit=False) == before


# -- changes the unit has not taken in ---------------------------------------------------------

SCT = "http://snomed.info/sct"
ORAL = {"coding": [{"system": SCT, "code": "26643006", "display": "Oral"}]}
SUBCUT = {"coding": [{"system": SCT, "code": "34206005", "display": "Subkutan"}]}


def test_a_change_of_route_is_unacknowledged_for_the_unit(server: LiveServer) -> None:
    """The same amount at the same time by another route (by mouth → under the skin) changes
    what the nurse does: it must be 'Endret — ikke kvittert' until a nurse takes it in."""
    from tests.integration.test_administration_round import marks, schedule

    oral = morning_only()
    oral["dosage"][0]["route"] = ORAL
    _, list_id, (entry,) = setup(server, oral)
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        assert marks(schedule(nurse, list_id)) == {}
        changed = {**entry, "dosage": [{**entry["dosage"][0], "route": SUBCUT}]}
        r = gp.put(
            f"/fhir/MedicationStatement/{entry['id']}", json=changed, headers={"If-Match": 'W/"1"'}
        )
        now = ok(r)
        assert now["dosage"][0]["route"]["coding"][0]["code"] == "34206005"
        assert entry["id"] in marks(schedule(nurse, list_id))


# -- as-needed maximum -------------------------------------------------------------------------


def as_needed_max_2_per_24h() -> dict[str, Any]:
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
    return prn


def test_the_as_needed_maximum_per_24_hours_holds_across_midnight(
    server: LiveServer, clock: Clock
) -> None:
    """'Høyst 2 per 24 timer': 2 tablets at 23:30 and 2 more at 00:30 are 4 within one hour.
    The maximum is counted per calendar day, so the second dose is accepted."""
    pid, _, (entry,) = setup(server, as_needed_max_2_per_24h())
    target = datetime.combine(local_day(server, 1), datetime.min.time(), OSLO).replace(
        hour=23, minute=30
    )
    clock.offset += target.astimezone(UTC) - server.service.clock()
    two = {"dose": {"value": 2, "unit": "tablett"}}
    why = [{"text": "Smerter"}]
    with server.client("nursing-home-nurse") as nurse:
        ok(nurse.post(MA, json=body(server, pid, entry, None, dosage=two, reasonCode=why)), 201)
        clock.advance(hours=1)
        before = snapshot(server.db, audit=False)
        r = nurse.post(MA, json=body(server, pid, entry, None, dosage=two, reasonCode=why))
        assert r.status_code == 422, (r.status_code, r.text[:200])
        assert snapshot(server.db, audit=False) == before


# -- deviations (Task of kind administration) --------------------------------------------------


def test_a_missed_dose_case_at_the_end_of_the_calendar_is_no_5xx(server: LiveServer) -> None:
    from pll.fhir.administration import PLANNED_DOSE
    from tests.integration.test_administration_cases import task

    _, _, (entry,) = setup(server, morning_only())
    with server.client("care-worker") as worker:
        key = {"system": PLANNED_DOSE, "value": f"{entry['id']}/9999-12-31/morgen/08:00"}
        before = snapshot(server.db, audit=False)
        r = worker.post("/fhir/Task", json=task({"identifier": key}, "administration"))
        assert r.status_code < 500, (r.status_code, r.text[:300])
        assert snapshot(server.db, audit=False) == before


def test_a_case_naming_another_patients_record_does_not_tell_who_that_patient_is(
    server: LiveServer,
) -> None:
    """The focus is looked up before access is decided: a patient (or any caller) naming a
    record of someone else with Task.for = themselves is told the other patient's id, and
    nothing is logged in that patient's access log."""
    from tests.integration.builders import new_fnr, patient
    from tests.integration.test_administration_cases import task
    from tests.integration.test_care_units import audit_of

    pid, list_id, (entry,) = setup(server, morning_only())
    with server.client("nursing-home-nurse") as nurse:
        (key,) = keys(nurse, list_id, local_day(server))
        record = ok(nurse.post(MA, json=body(server, pid, entry, key)), 201)
    fnr = new_fnr()
    with server.client("gp") as gp:
        me = ok(gp.post("/fhir/Patient", json=patient(fnr)), 201)["id"]
    logged = len(audit_of(server, pid))
    with server.client("patient", fnr) as stranger:
        bad = task({"reference": f"MedicationAdministration/{record['id']}"}, "administration")
        r = stranger.post("/fhir/Task", json={**bad, "for": {"reference": f"Patient/{me}"}})
    assert r.status_code in (403, 404), r.text
    assert pid not in r.text
    assert len(audit_of(server, pid)) > logged  # the refused attempt is in the log


def test_two_dosage_elements_in_one_round_are_two_doses_or_one_summed(server: LiveServer) -> None:
    """'1 tablett morgen og kveld' plus '1 tablett morgen' (two elements) is 2 tablets in the
    morning. The schedule plans two doses with one key (and two Bundle entries with one
    fullUrl): only one can be recorded; 2 tablets in one record are 'more than planned'."""
    from tests.integration.builders import dose

    both = morning_only()
    twice_daily = {
        "sequence": 1,
        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
    }
    both["dosage"] = [twice_daily, {**dose(1, "MORN")[0], "sequence": 1}]
    pid, list_id, (entry,) = setup(server, both)
    with server.client("nursing-home-nurse") as nurse:
        morning = [k for k in keys(nurse, list_id, local_day(server)) if "/morgen/" in k]
        assert len(morning) == 2  # two planned doses in the morning round ...
        made = [nurse.post(MA, json=body(server, pid, entry, k)) for k in morning]
    # ... and each can be recorded (the same key twice: the second is 'already recorded')
    assert [r.status_code for r in made] == [201, 201], made[1].text[:300]
