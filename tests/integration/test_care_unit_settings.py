"""A care unit's settings over real HTTP on both databases (issue 17): a nurse of the unit
sets its rounds' clock times and the group B second-signature rule, from the next day on;
the schedule of a caller acting for that unit plans with them (others get the defaults),
recording follows them; every refusal answers an OperationOutcome and writes nothing (a
refused caller is logged)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from pll.domain.administration import OSLO
from pll.fhir.validate import validate
from pll.store.schema import audit_event, care_unit_settings, fest_drug, patient
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import DRUGS, SMALL_FEST, ok, outcome_text, statement
from tests.integration.test_administrations import FEST, HPR, PLANNED, setup
from tests.integration.test_care_units import BERGEN_HOME_CARE, ORGNR, ULLERN, unit

SETTINGS = "/fhir/Organization/$care-unit-settings"
EARLY = {
    "morgen": "07:30:00",
    "formiddag": "10:00:00",
    "middag": "13:00:00",
    "ettermiddag": "16:00:00",
    "kveld": "19:00:00",
    "natt": "21:30:00",
}


def settings(orgnr: str = ULLERN, group_b: bool = False, **times: str) -> dict[str, Any]:
    parameter: list[dict[str, Any]] = [
        {"name": "organization", "valueIdentifier": {"system": ORGNR, "value": orgnr}}
    ]
    parameter += [{"name": k, "valueTime": v} for k, v in (EARLY | times).items()]
    parameter.append({"name": "secondSignatureGroupB", "valueBoolean": group_b})
    return {"resourceType": "Parameters", "parameter": parameter}


def values(answer: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for p in answer["parameter"]:
        out[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
    return out


def local_day(server: LiveServer, days: int = 0) -> date:
    return server.service.clock().astimezone(OSLO).date() + timedelta(days=days)


def morning(client: httpx.Client, list_id: str, day: date) -> list[str]:
    """The planned times of the morning round on ``day``."""
    bundle = ok(client.get(f"/fhir/List/{list_id}/$administration-schedule?date={day}"))
    return [
        r["resource"]["dosageInstruction"][0]["timing"]["event"][0][11:16]
        for r in bundle["entry"]
        if r["resource"].get("identifier") and "/morgen/" in r["resource"]["identifier"][0]["value"]
    ]


def settings_rows(server: LiveServer) -> list[tuple[Any, ...]]:
    with server.db.read() as conn:
        t = care_unit_settings
        query = sa.select(t.c.orgnr, t.c.valid_from, t.c.morgen, t.c.group_b_second_signature)
        return sorted(tuple(r) for r in conn.execute(query))


def test_the_units_rounds_apply_from_the_next_day_to_its_own_chart(
    server: LiveServer, clock: Clock
) -> None:
    pid, list_id, _ = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    tomorrow = local_day(server, 1)
    with server.client("nursing-home-nurse") as nurse, server.client("gp") as gp:
        made = ok(nurse.post(SETTINGS, json=settings(kveld="19:15:00")))
        validate(made, "Parameters")
        got = values(made)
        assert got["morgen"] == "07:30:00"
        assert got["kveld"] == "19:15:00"
        assert got["validFrom"] == tomorrow.isoformat()
        assert got["setBy"]["identifier"] == {"system": HPR, "value": "9144935"}
        # today keeps the times its doses were planned and recorded with
        assert values(ok(nurse.get(f"{SETTINGS}?organization={ULLERN}")))["morgen"] == "08:00:00"
        ahead = ok(gp.get(f"{SETTINGS}?organization={ORGNR}|{ULLERN}&date={tomorrow}"))
        assert values(ahead)["morgen"] == "07:30:00"
        assert morning(nurse, list_id, local_day(server)) == ["08:00"]
        # a range over the change: each day with the times that apply to it
        both = ok(
            nurse.get(
                f"/fhir/List/{list_id}/$administration-schedule?start={local_day(server)}"
                f"&end={tomorrow}"
            )
        )
        events = [
            r["resource"]["dosageInstruction"][0]["timing"]["event"][0][11:16]
            for r in both["entry"]
            if r["resource"].get("identifier")
        ]
        assert events == ["08:00", "07:30"]
        clock.advance(days=1)
        assert morning(nurse, list_id, tomorrow) == ["07:30"]
        # the doctor does not act for the unit: the default rounds
        assert morning(gp, list_id, tomorrow) == ["08:00"]
    with server.client("nurse") as other:  # another unit's nurse reads with the defaults
        assert morning(other, list_id, tomorrow) == ["08:00"]
    assert settings_rows(server) == [(ULLERN, tomorrow.isoformat(), "07:30", False)]
    with server.db.read() as conn:
        logged = conn.execute(
            sa.select(audit_event.c.resource_id, audit_event.c.outcome, audit_event.c.actor).where(
                audit_event.c.action == "care-unit-settings"
            )
        ).all()
    assert [(r, o, orjson.loads(a)["hpr"]) for r, o, a in logged] == [(ULLERN, "0", "9144935")]
    del pid


def test_setting_again_before_the_day_replaces_what_was_set(server: LiveServer) -> None:
    setup(server, statement("Patient/x", *DRUGS[0]))
    with server.client("nursing-home-nurse") as nurse:
        ok(nurse.post(SETTINGS, json=settings()))
        ok(nurse.post(SETTINGS, json=settings(morgen="07:00:00", group_b=True)))
    assert settings_rows(server) == [(ULLERN, local_day(server, 1).isoformat(), "07:00", True)]


def refused(server: LiveServer, client: httpx.Client, body: Any, status: int) -> httpx.Response:
    before = snapshot(server.db, audit=False)
    r = client.post(SETTINGS, json=body)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert snapshot(server.db, audit=False) == before
    return r


def test_refused_settings_write_nothing(server: LiveServer) -> None:
    setup(server, statement("Patient/x", *DRUGS[0]))
    with server.client("nursing-home-nurse") as nurse:
        r = refused(server, nurse, settings(middag="09:30:00"), 400)
        assert "must come after formiddag" in outcome_text(r)
        # the expression names the round's own parameter
        assert r.json()["issue"][0]["expression"] == ["Parameters.parameter[3].valueTime"]
        r = refused(server, nurse, settings(morgen="07:30:15"), 400)
        assert "seconds" in outcome_text(r)
        assert r.json()["issue"][0]["expression"] == ["Parameters.parameter[1].valueTime"]
        r = refused(server, nurse, settings(morgen="25:00:00"), 400)
        missing = settings()
        missing["parameter"] = [p for p in missing["parameter"] if p["name"] != "natt"]
        assert "'natt' is required" in outcome_text(refused(server, nurse, missing, 400))
        no_b = settings()
        no_b["parameter"].pop()
        assert "secondSignatureGroupB" in outcome_text(refused(server, nurse, no_b, 400))
        assert "nine digits" in outcome_text(refused(server, nurse, settings("12345"), 400))
        r = refused(server, nurse, settings(BERGEN_HOME_CARE), 403)
        assert "not for the care unit" in outcome_text(r)
    with server.client("care-worker") as worker:
        assert "nurse or doctor" in outcome_text(refused(server, worker, settings(), 403))
    with server.client("nurse") as bergen:  # its own unit, which has registered no one
        r = refused(server, bergen, settings(BERGEN_HOME_CARE), 404)
        assert "not known to PLL" in outcome_text(r)
    with server.db.read() as conn:
        logged = conn.execute(
            sa.select(audit_event.c.outcome).where(audit_event.c.action == "care-unit-settings")
        ).all()
    assert [o for (o,) in logged] == ["4", "4"]  # the two refused callers, nothing else
    assert settings_rows(server) == []


def test_reading_settings(server: LiveServer) -> None:
    with server.client("nursing-home-nurse") as nurse:
        r = nurse.get(f"{SETTINGS}?organization={ULLERN}")
        assert r.status_code == 404  # no patient registered yet: unknown unit
    pid, _, _ = setup(server, statement("Patient/x", *DRUGS[0]))
    with server.client("care-worker") as worker:
        got = values(ok(worker.get(f"{SETTINGS}?organization={ULLERN}")))
        assert got["natt"] == "22:00:00"
        assert got["secondSignatureGroupB"] is False
        assert "setBy" not in got  # the defaults: nobody set them
        assert worker.get(f"{SETTINGS}?organization=883416032").status_code == 400
        assert worker.get(f"{SETTINGS}?organization={ULLERN}&date=2026-02-30").status_code == 400
        assert worker.get(f"{SETTINGS}?organization={ULLERN}&x=1").status_code == 400
    with server.client("patient", pid=fnr_of(server, pid)) as patient:
        assert patient.get(f"{SETTINGS}?organization={ULLERN}").status_code == 403


def fnr_of(server: LiveServer, pid: str) -> str:
    with server.db.read() as conn:
        return str(
            conn.execute(
                sa.select(patient.c.identifier_value).where(patient.c.id == pid)
            ).scalar_one()
        )


def body(pid: str, entry: dict[str, Any], key: str, at: datetime, **extra: Any) -> dict[str, Any]:
    version = entry["meta"]["versionId"]
    return {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "extension": [{"url": PLANNED, "valueString": key}],
        "medicationCodeableConcept": entry["medicationCodeableConcept"],
        "subject": {"reference": f"Patient/{pid}"},
        "supportingInformation": [
            {"reference": f"MedicationStatement/{entry['id']}/_history/{version}"}
        ],
        "effectiveDateTime": at.isoformat(timespec="seconds"),
        **extra,
    }


def noon(clock: Clock) -> None:
    """The clock at 12:00 today in Norway: the morning dose may be recorded now (from an
    hour before it to 12 hours after)."""
    target = datetime.combine(datetime.now(OSLO).date(), time(12), OSLO)
    clock.offset = target.astimezone(UTC) - datetime.now(UTC)


def test_group_b_needs_a_second_signer_where_the_unit_chose_it(
    server: LiveServer, clock: Clock
) -> None:
    from pll.catalog.importer import import_fest

    noon(clock)

    with SMALL_FEST.open("rb") as extract:
        import_fest(server.db, extract, SMALL_FEST.name, now=datetime(2026, 11, 22, tzinfo=UTC))
    with server.db.write() as conn:  # the catalogue says: Reseptgruppe B
        conn.execute(sa.update(fest_drug).where(fest_drug.c.code == "081234").values(rx_group="B"))
    drug = statement("Patient/x", "Warfarin Nordfarma Tab 2,5 mg", "B01AA03", 1, "MORN")
    drug["medicationCodeableConcept"]["coding"].insert(0, {"system": FEST, "code": "081234"})
    pid, _, (entry,) = setup(server, drug)
    today = local_day(server)
    with server.client("nursing-home-nurse") as nurse:
        # group B, the unit has not chosen it: one signature is enough
        now = server.service.clock()
        ok(
            nurse.post(
                "/fhir/MedicationAdministration",
                json=body(pid, entry, f"{entry['id']}/{today}/morgen/1", now),
            ),
            201,
        )
        ok(nurse.post(SETTINGS, json=settings(group_b=True)))
        clock.advance(days=1)
        now, day = server.service.clock(), local_day(server)
        key = f"{entry['id']}/{day}/morgen/1"  # the morning round, at the unit's 07:30
        before = snapshot(server.db, audit=False)
        r = nurse.post("/fhir/MedicationAdministration", json=body(pid, entry, key, now))
        assert r.status_code == 422, r.text
        assert "second signature" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        second = [
            {
                "function": {"coding": [{"code": "verifier"}]},
                "actor": {"identifier": {"system": HPR, "value": "9144943"}},
            }
        ]
        # a key of PLL's first shape (with the clock time) is refused with a message
        old = body(pid, entry, f"{entry['id']}/{day}/morgen/08:00", now, performer=second)
        assert nurse.post("/fhir/MedicationAdministration", json=old).status_code == 400
        made = ok(
            nurse.post(
                "/fhir/MedicationAdministration", json=body(pid, entry, key, now, performer=second)
            ),
            201,
        )
        assert made["performer"][1]["actor"]["identifier"]["value"] == "9144943"


def test_the_operation_is_in_the_capability_statement(server: LiveServer) -> None:
    with server.client("gp") as gp:
        cap = ok(gp.get("/fhir/metadata"))
    ops = [
        op["name"]
        for r in cap["rest"][0]["resource"]
        if r["type"] == "Organization"
        for op in r.get("operation", [])
    ]
    assert ops == ["care-unit-settings"]


def test_one_morning_dose_is_recorded_once_by_two_units_with_other_clock_times(
    server: LiveServer, clock: Clock
) -> None:
    """A patient registered with two units at once (home care and a short stay): one unit
    gives the morning round at 07:30, the other at 08:00. The morning dose is one dose, with
    one key on both charts, and is recorded once."""
    noon(clock)
    pid, list_id, (entry,) = setup(server, statement("Patient/x", *DRUGS[0], 1, "MORN"))
    with server.client("nurse") as home_care, server.client("nursing-home-nurse") as ullern:
        ok(
            home_care.post(
                f"/fhir/Patient/{pid}/$care-unit-register",
                json=unit(BERGEN_HOME_CARE, "hjemmetjeneste"),
            ),
            201,
        )
        ok(ullern.post(SETTINGS, json=settings(**EARLY)))  # Ullern: from tomorrow
        clock.advance(days=1)
        now, day = server.service.clock(), local_day(server)
        (at_ullern,) = planned_doses(ullern, list_id, day)
        (at_home,) = planned_doses(home_care, list_id, day)
        assert at_ullern[0] == at_home[0] == f"{entry['id']}/{day}/morgen/1"
        assert (at_ullern[1][11:16], at_home[1][11:16]) == ("07:30", "08:00")
        ok(ullern.post(MA, json=body(pid, entry, at_ullern[0], now)), 201)
        before = snapshot(server.db, audit=False)
        r = home_care.post(MA, json=body(pid, entry, at_home[0], now))
        assert r.status_code == 409, r.text
        assert "already recorded" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before


MA = "/fhir/MedicationAdministration"


def planned_doses(client: httpx.Client, list_id: str, day: date) -> list[tuple[str, str]]:
    """(key, planned time) of each planned dose of ``day`` on the caller's chart."""
    bundle = ok(client.get(f"/fhir/List/{list_id}/$administration-schedule?date={day}"))
    return [
        (
            r["resource"]["identifier"][0]["value"],
            r["resource"]["dosageInstruction"][0]["timing"]["event"][0],
        )
        for r in bundle["entry"]
        if r["resource"].get("identifier")
    ]
