"""Multidose bags on the administration schedule (issue 17) over real HTTP on both databases:
the doctor names the nursing home that receives the bags, the pharmacy reports what it
packed, and the schedule shows per round what is in the bag and what is given separately;
a dose changed after packing, a packed entry discontinued and an entry marked packed but not
in the report are flagged. Refused input answers an OperationOutcome and writes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pll.fhir.administration import EXT_PLANNED, PLANNED_DOSE
from pll.fhir.validate import validate
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import ok, outcome_text
from tests.integration.test_care_units import ULLERN
from tests.integration.test_multidose import (
    ORGNR,
    Patient,
    new_patient,
    params,
    pharmacy,
    report,
    value,
)

DAY = "2030-03-05"  # inside the packing period below
PERIOD = {"start": "2030-03-04", "end": "2030-03-17"}


def care_unit(orgnr: str = ULLERN, name: str = "Ullern sykehjem") -> dict[str, Any]:
    return {
        "name": "careUnit",
        "valueReference": {"identifier": {"system": ORGNR, "value": orgnr}, "display": name},
    }


def registered(server: LiveServer, gp: httpx.Client) -> Patient:
    """A multidose patient (Metformin and Atorvastatin packed, Amlodipin not) whose bags go
    to Ullern sykehjem."""
    p = new_patient(server, gp)
    ok(gp.post(f"/fhir/Patient/{p.pid}/$multidose-register", json=params(pharmacy(), care_unit())))
    return p


def pack(server: LiveServer, p: Patient, *names: str) -> str:
    with server.client("pharmacist") as pharmacist:
        ids = [p.entries[n]["id"] for n in names]
        answer = ok(
            pharmacist.post(f"/fhir/List/{p.list_id}/$packing-report", json=report(*ids, **PERIOD))
        )
    return str(value(answer, "identifier"))


def schedule(client: httpx.Client, p: Patient, day: str = DAY) -> dict[str, Any]:
    bundle = ok(client.get(f"/fhir/List/{p.list_id}/$administration-schedule?date={day}"))
    validate(bundle, "Bundle")
    return bundle


def bags(bundle: dict[str, Any], p: Patient) -> dict[str, dict[str, Any]]:
    """Per planned dose ``<medicine>`` (every entry here is given in the morning round):
    the bag parts of its extension (``bagMismatch`` as a list)."""
    names = {e["id"]: name for name, e in p.entries.items()}
    out: dict[str, dict[str, Any]] = {}
    for item in bundle["entry"]:
        resource = item["resource"]
        if resource["resourceType"] != "MedicationRequest":
            continue
        key = next(i["value"] for i in resource["identifier"] if i["system"] == PLANNED_DOSE)
        ext = next(e for e in resource["extension"] if e["url"] == EXT_PLANNED)
        found: dict[str, Any] = {"bagMismatch": []}
        for part in ext["extension"]:
            got = next(v for k, v in part.items() if k.startswith("value"))
            if part["url"] == "bagMismatch":
                found["bagMismatch"].append(got)
            elif part["url"] in ("bag", "packingReport", "packedAt", "source"):
                found[part["url"]] = got
        out[names[key.split("/")[0]]] = found
    return out


def issues(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    """(diagnostics, expression) of the schedule's notice."""
    notice = next(
        (
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "OperationOutcome"
        ),
        {"issue": []},
    )
    return [(i["diagnostics"], i.get("expression", [""])[0]) for i in notice["issue"]]


def test_the_receiving_unit_is_named_shown_and_changed(server: LiveServer) -> None:
    with server.client("gp") as gp:
        p = registered(server, gp)
        state = ok(gp.get(f"/fhir/Patient/{p.pid}/$multidose"))
        unit = value(state, "careUnit")
        assert unit["identifier"] == {"system": ORGNR, "value": ULLERN}
        assert "Ullern sykehjem" in unit["display"]
        # the list shows it on its multidose extension
        lst = ok(gp.get(f"/fhir/List/{p.list_id}"))
        multidose = next(e for e in lst["extension"] if e["url"].endswith("/pll-multidose"))
        assert any(s["url"] == "careUnit" for s in multidose["extension"])
        version = int(lst["meta"]["versionId"])
        # the same again changes nothing
        same = ok(
            gp.post(
                f"/fhir/Patient/{p.pid}/$multidose-register", json=params(pharmacy(), care_unit())
            )
        )
        assert "listVersion" not in {q["name"] for q in same["parameter"]}
        # registering again with another unit changes it: a list version, since kept
        home_care = care_unit("964338531", "Bergen hjemmetjeneste")
        moved = ok(
            gp.post(
                f"/fhir/Patient/{p.pid}/$multidose-register", json=params(pharmacy(), home_care)
            )
        )
        assert value(moved, "careUnit")["identifier"]["value"] == "964338531"
        assert value(moved, "listVersion") == version + 1
        assert value(moved, "since") == value(state, "since")
        # and without a unit the patient gets the bags
        none = ok(gp.post(f"/fhir/Patient/{p.pid}/$multidose-register", json=params(pharmacy())))
        assert "careUnit" not in {q["name"] for q in none["parameter"]}


@pytest.mark.parametrize(
    ("unit", "words", "where"),
    [
        (care_unit("883416032"), "check digit", "valueReference.identifier.value"),
        (care_unit("88341603"), "nine digits", "valueReference.identifier.value"),
        (
            {"name": "careUnit", "valueIdentifier": {"system": "urn:x", "value": ULLERN}},
            "organisation number",
            "valueIdentifier",
        ),
        ({"name": "careUnit", "valueString": "Ullern"}, "valueIdentifier", "parameter[1]"),
    ],
)
def test_a_bad_receiving_unit_is_refused_and_nothing_written(
    server: LiveServer, unit: dict[str, Any], words: str, where: str
) -> None:
    with server.client("gp") as gp:
        p = registered(server, gp)
        before = snapshot(server.db, audit=False)
        r = gp.post(f"/fhir/Patient/{p.pid}/$multidose-register", json=params(pharmacy(), unit))
        assert r.status_code == 400, r.text
        assert words in outcome_text(r)
        assert where in r.json()["issue"][0]["expression"][0]
        assert snapshot(server.db, audit=False) == before
        assert (
            value(ok(gp.get(f"/fhir/Patient/{p.pid}/$multidose")), "careUnit")["identifier"][
                "value"
            ]
            == ULLERN
        )


def test_the_schedule_shows_each_rounds_bag_and_what_is_given_separately(
    server: LiveServer,
) -> None:
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        p = registered(server, gp)
        report_id = pack(server, p, "Metformin", "Atorvastatin")
        shown = bags(schedule(nurse, p), p)
        assert shown["Metformin"]["bag"] == "in-bag"
        assert shown["Metformin"]["packingReport"] == report_id
        assert shown["Metformin"]["bagMismatch"] == []
        assert shown["Atorvastatin"]["bag"] == "in-bag"
        assert shown["Amlodipin"] == {"bagMismatch": [], "source": "package", "bag": "separate"} | {
            "packingReport": report_id,
            "packedAt": shown["Metformin"]["packedAt"],
        }
        assert issues(schedule(nurse, p)) == []
        # a day no report covers: the packed entries are in no bag
        later = bags(schedule(nurse, p, "2030-04-01"), p)
        assert later["Metformin"]["bag"] == "separate"
        assert later["Metformin"]["bagMismatch"] == ["no-report"]


def test_a_dose_change_after_packing_flags_the_bag(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        p = registered(server, gp)
        pack(server, p, "Metformin", "Atorvastatin")
        metformin = p.entries["Metformin"]
        changed = dict(metformin)
        changed["dosage"] = [
            {
                "timing": {"repeat": {"when": ["MORN"]}},
                "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablett"}}],
            }
        ]
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json=changed,
                headers={"If-Match": f'W/"{metformin["meta"]["versionId"]}"'},
            )
        )
        bundle = schedule(nurse, p)
        shown = bags(bundle, p)
        assert shown["Metformin"]["bag"] == "in-bag"
        assert shown["Metformin"]["bagMismatch"] == ["changed-after-packing"]
        assert shown["Atorvastatin"]["bagMismatch"] == []
        ((text, where),) = issues(bundle)
        assert text.startswith("Posen stemmer ikke med listen: morgen 05.03.2030:")
        assert "i posen: 1 tablett; på listen nå: 2 tablett" in text
        assert where == f"MedicationStatement/{metformin['id']}/_history/2"


def test_a_discontinued_packed_entry_is_to_be_taken_out_of_the_bag(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        p = registered(server, gp)
        pack(server, p, "Metformin", "Atorvastatin")
        ator = p.entries["Atorvastatin"]
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{ator['id']}",
                json={**ator, "status": "stopped", "statusReason": [{"text": "Myalgi"}]},
                headers={"If-Match": f'W/"{ator["meta"]["versionId"]}"'},
            )
        )
        bundle = schedule(nurse, p)
        assert "Atorvastatin" not in bags(bundle, p)
        ((text, where),) = issues(bundle)
        assert "Atorvastatin tab 20 mg ligger i posen, men den er seponert" in text
        assert "ta den ut av posen" in text
        assert where.startswith(f"MedicationStatement/{ator['id']}")


def test_an_entry_marked_packed_but_not_in_the_report(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        p = registered(server, gp)
        pack(server, p, "Metformin")
        bundle = schedule(nurse, p)
        shown = bags(bundle, p)
        assert shown["Atorvastatin"]["bag"] == "separate"
        assert shown["Atorvastatin"]["bagMismatch"] == ["not-in-report"]
        ((text, _),) = issues(bundle)
        assert "Atorvastatin tab 20 mg er merket for multidose" in text
        assert "Gi fra egen pakning eller kontakt apoteket" in text


def test_a_patient_without_multidose_gets_the_schedule_as_before(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        p = new_patient(server, gp, register=False)
        # nothing packed on this list: take the packed marks away
        for entry in p.entries.values():
            if entry.get("extension"):
                ok(
                    gp.put(
                        f"/fhir/MedicationStatement/{entry['id']}",
                        json={k: v for k, v in entry.items() if k != "extension"},
                        headers={"If-Match": f'W/"{entry["meta"]["versionId"]}"'},
                    )
                )
        shown = bags(schedule(nurse, p), p)
        assert all("bag" not in parts for parts in shown.values())


def test_a_removed_entry_over_a_range_is_one_issue_naming_its_days(server: LiveServer) -> None:
    """Not one issue per round per day: 13 packed days of a discontinued entry are one issue
    for the nurse, naming the days."""
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        p = registered(server, gp)
        pack(server, p, "Metformin", "Atorvastatin")
        ator = p.entries["Atorvastatin"]
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{ator['id']}",
                json={**ator, "status": "stopped", "statusReason": [{"text": "Myalgi"}]},
                headers={"If-Match": f'W/"{ator["meta"]["versionId"]}"'},
            )
        )
        query = f"start={PERIOD['start']}&end=2030-03-17"
        bundle = ok(nurse.get(f"/fhir/List/{p.list_id}/$administration-schedule?{query}"))
        ((text, where),) = issues(bundle)
        assert "Atorvastatin tab 20 mg ligger i posen, men den er seponert" in text
        assert "04.03.2030 morgen" in text
        assert "17.03.2030 morgen" in text
        assert where.startswith(f"MedicationStatement/{ator['id']}")
