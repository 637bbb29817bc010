"""e-multidose and dispensing over real HTTP on both databases (DESIGN §3 rule 4; M25, M27).

The cycle first: the doctor registers as responsible multidose doctor with one pharmacy,
sends the list, the pharmacy proposes, the doctor accepts one item and rejects another, the
pharmacy reports what it packed, the list is paused at a hospital admission (the pharmacy
sees it and may not pack) and resumed with a confirmed list (packing goes on). Then each
rule on its own, and bad input that must change nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from pll.domain.multidose import ADMINISTRATION, PAPER_RISK
from pll.fhir.validate import validate
from pll.store.schema import audit_event, outbox
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration import test_web_reconcile as web
from tests.integration.builders import (
    DRUGS,
    dose,
    fest_coded,
    multidose_catalogue,
    new_fnr,
    new_list,
    ok,
    outcome_text,
    patient,
    prescribed,
    prescription,
    statement,
)

ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101"
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
BERGEN = "985563756"  # the "pharmacist" persona's pharmacy
TRONDHEIM = "987654325"  # the "other-pharmacist" persona's
GP_HPR = "9144889"
EXT = "http://pll.invalid/fhir/StructureDefinition"


def params(*parameters: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Parameters"}
    if parameters:
        body["parameter"] = list(parameters)
    return body


def pharmacy(org: str = BERGEN, name: str = "Apotek 1 Bergen multidose") -> dict[str, Any]:
    return {
        "name": "pharmacy",
        "valueReference": {"identifier": {"system": ORGNR, "value": org}, "display": name},
    }


def value(answer: dict[str, Any], name: str) -> Any:
    """The value of a top-level parameter of an operation's answer."""
    for p in answer["parameter"]:
        if p["name"] == name:
            return next(v for k, v in p.items() if k.startswith(("value", "resource", "part")))
    raise KeyError(name)


def parts(param: dict[str, Any]) -> dict[str, Any]:
    return {
        p["name"]: next(v for k, v in p.items() if k.startswith(("value", "resource", "part")))
        for p in param["part"]
    }


def items_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    found = [parts(p) for p in answer["parameter"] if p["name"] == "item"]
    for p in answer["parameter"]:
        if p["name"] == "proposal":
            found += [parts(i) for i in p["part"] if i["name"] == "item"]
    return found


def packed(resource: dict[str, Any], yes: bool = True) -> dict[str, Any]:
    """An entry marked as packed in multidose (or not), as SFM marks it."""
    resource["extension"] = [
        {"url": ADMINISTRATION, "extension": [{"url": "mddispensed", "valueBoolean": yes}]}
    ]
    return resource


def extension(resource: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((e for e in resource.get("extension", []) if e["url"] == f"{EXT}/{name}"), None)


@dataclass
class Patient:
    pid: str
    fnr: str
    list_id: str
    entries: dict[str, dict[str, Any]]


def new_patient(server: LiveServer, gp: httpx.Client, *, register: bool = True) -> Patient:
    """A patient registered for e-multidose with the Bergen pharmacy, whose doctor has sent
    the list: Metformin and Atorvastatin packed in multidose, Amlodipin not — each tablets
    from the catalogue (:data:`MULTIDOSE_FEST`, imported here), on an active prescription,
    dosed in the morning, so packable (issue 18)."""
    multidose_catalogue(server.db)
    fnr = new_fnr()
    pid = ok(gp.post("/fhir/Patient", json=patient(fnr)), 201)["id"]
    if register:
        ok(gp.post(f"/fhir/Patient/{pid}/$multidose-register", json=params(pharmacy())))
    lst = new_list(gp, pid)
    entries = {}
    for (name, atc), in_bag in zip(DRUGS[:3], (True, True, False), strict=True):
        mark = packed({}, in_bag)["extension"]
        entries[name.split()[0]] = prescribed(gp, pid, name, atc, extension=mark)
    return Patient(pid, fnr, lst["id"], entries)


def version_of(client: httpx.Client, list_id: str) -> int:
    return int(ok(client.get(f"/fhir/List/{list_id}"))["meta"]["versionId"])


def change_item(entry: dict[str, Any], amount: float) -> dict[str, Any]:
    changed = {k: v for k, v in entry.items() if k != "meta"}
    changed["dosage"] = [
        {
            "timing": {"repeat": {"when": ["MORN"]}},
            "doseAndRate": [{"doseQuantity": {"value": amount, "unit": "tablett"}}],
        }
    ]
    return _item(
        "change",
        _seen(entry),
        {"name": "statement", "resource": changed},
        {"name": "reason", "valueString": "Pasienten deler tabletten"},
    )


def new_item(pid: str, name: str, atc: str, based_on: str | None = None) -> dict[str, Any]:
    """A proposed new medicine: packed in multidose when it names the active prescription
    it is ``based_on`` (FEST-coded, dosed in the morning), else not (issue 18)."""
    resource = statement(f"Patient/{pid}", name, atc)
    if based_on is not None:
        resource = packed(fest_coded(resource))
        resource["basedOn"] = [{"reference": based_on}]
    return _item(
        "new",
        {"name": "statement", "resource": resource},
        {"name": "reason", "valueString": "Står på papirresept fra sykehuset"},
    )


def remove_item(entry: dict[str, Any], reason: str = "Pasienten bruker den ikke") -> dict:
    return _item("remove", _seen(entry), {"name": "reason", "valueString": reason})


def _item(action: str, *parts: dict[str, Any]) -> dict[str, Any]:
    """One proposed item: its action and its parts."""
    return {"name": "item", "part": [{"name": "action", "valueCode": action}, *parts]}


def _seen(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry version the pharmacy saw."""
    version = entry["meta"]["versionId"]
    return {
        "name": "entry",
        "valueReference": {"reference": f"MedicationStatement/{entry['id']}/_history/{version}"},
    }


def decision(item_id: str, outcome: str, reason: str | None = None) -> dict[str, Any]:
    p: list[dict[str, Any]] = [
        {"name": "item", "valueString": item_id},
        {"name": "outcome", "valueCode": outcome},
    ]
    if reason:
        p.append({"name": "reason", "valueString": reason})
    return {"name": "decision", "part": p}


def report(*entry_ids: str, start: str = "2025-03-03", end: str = "2025-03-16") -> dict:
    return params(
        {"name": "period", "valuePeriod": {"start": start, "end": end}},
        *[
            {
                "name": "item",
                "part": [
                    {"name": "entry", "valueReference": {"reference": f"MedicationStatement/{e}"}}
                ],
            }
            for e in entry_ids
        ],
    )


def get_medication(client: httpx.Client, fnr: str) -> dict[str, Any]:
    answer = ok(
        client.post(
            "/fhir/Patient/$getMedication",
            json=params(
                {
                    "name": "patient",
                    "resource": {
                        "resourceType": "Patient",
                        "identifier": [{"system": FNR, "value": fnr}],
                    },
                }
            ),
        )
    )
    validate(answer, "Parameters")
    bundle: dict[str, Any] = answer["parameter"][0]["resource"]
    return bundle


# -- the cycle ---------------------------------------------------------------------------------


def test_the_e_multidose_cycle(server: LiveServer) -> None:
    with (
        server.client("gp") as gp,
        server.client("pharmacist") as pharmacy_client,
        server.client("hospital-doctor") as hospital,
    ):
        # register (M27) and send the list (M25.1)
        p = new_patient(server, gp)
        shown = ok(gp.get(f"/fhir/List/{p.list_id}"))
        md = extension(shown, "pll-multidose")
        assert md is not None
        by_url = {e["url"]: e for e in md["extension"]}
        assert by_url["doctor"]["valueReference"]["identifier"]["value"] == GP_HPR
        assert by_url["pharmacy"]["valueReference"]["identifier"]["value"] == BERGEN
        basis = ok(pharmacy_client.get(f"/fhir/List/{p.list_id}/$packing-basis"))
        assert value(basis, "packingAllowed") is True
        assert value(basis, "author")["identifier"]["value"] == GP_HPR
        assert value(basis, "responsibleDoctorHoldsBaton") is True
        in_bag = {
            parts(e)["statement"]["id"]: parts(e)["packed"]
            for e in basis["parameter"]
            if e["name"] == "entry"
        }
        assert sorted(in_bag.values()) == [False, True, True]
        assert in_bag[p.entries["Amlodipin"]["id"]] is False
        before = version_of(gp, p.list_id)

        # the pharmacy proposes (M25.2): one change, one new medicine
        metformin = p.entries["Metformin"]
        proposal = ok(
            pharmacy_client.post(
                f"/fhir/List/{p.list_id}/$propose",
                json=params(
                    change_item(metformin, 0.5),
                    new_item(p.pid, *DRUGS[3]),
                    {"name": "note", "valueString": "Fra multidoseapoteket"},
                ),
            )
        )
        change, new = items_of(proposal)
        assert (change["status"], new["status"]) == ("pending", "pending")
        assert version_of(gp, p.list_id) == before  # a proposal changes nothing on the list
        pending = ok(gp.get(f"/fhir/List/{p.list_id}/$proposals?status=pending"))
        assert value(pending, "pending") == 2

        # the doctor accepts the change and rejects the new medicine
        r = gp.post(
            f"/fhir/List/{p.list_id}/$decide",
            json=params(
                decision(change["id"], "accept"),
                decision(new["id"], "reject", "Sertralin er seponert"),
            ),
        )
        decided = ok(r)
        assert int(r.headers["X-PLL-List-Version"]) == before + 1
        statuses = {i["id"]: i["status"] for i in items_of(decided)}
        assert statuses == {change["id"]: "accepted", new["id"]: "rejected"}
        entry = ok(gp.get(f"/fhir/MedicationStatement/{metformin['id']}"))
        assert entry["meta"]["versionId"] == "2"
        assert entry["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 0.5
        history = ok(gp.get(f"/fhir/Provenance?target=List/{p.list_id}"))
        newest = history["entry"][0]["resource"]
        assert newest["agent"][0]["who"]["identifier"]["value"] == GP_HPR  # the doctor's name
        listed = ok(gp.get(f"/fhir/MedicationStatement?patient={p.pid}"))
        names = {e["resource"]["medicationCodeableConcept"]["text"] for e in listed["entry"]}
        assert DRUGS[3][0] not in names  # the rejected medicine is not on the list

        # the pharmacy reports what it packed (M25.3)
        packed_ids = [metformin["id"], p.entries["Atorvastatin"]["id"]]
        reported = ok(
            pharmacy_client.post(
                f"/fhir/List/{p.list_id}/$packing-report", json=report(*packed_ids)
            )
        )
        assert value(reported, "changedSince") is False
        document = get_medication(gp, p.fnr)
        kinds = {
            e["resource"]["code"]["coding"][0]["code"]
            for e in document["entry"]
            if e["resource"]["resourceType"] == "Basic"
        }
        assert kinds == {"M25.1", "M25.2", "M25.3"}

        # a hospital admission pauses the list: the pharmacy sees it and may not pack
        version = version_of(hospital, p.list_id)
        ok(
            hospital.post(
                f"/fhir/List/{p.list_id}/$pause",
                json=params({"name": "reason", "valueString": "Innlagt på sykehus"}),
            )
        )
        seen = ok(pharmacy_client.get(f"/fhir/List/{p.list_id}"))
        assert extension(seen, "pll-paused") is not None
        basis = ok(pharmacy_client.get(f"/fhir/List/{p.list_id}/$packing-basis"))
        assert (value(basis, "paused"), value(basis, "packingAllowed")) == (True, False)
        assert "paused" in value(basis, "notAllowedBecause")
        unchanged = snapshot(server.db, audit=False)
        r = pharmacy_client.post(
            f"/fhir/List/{p.list_id}/$packing-report", json=report(*packed_ids)
        )
        assert r.status_code == 409, r.text
        assert "paused" in outcome_text(r)
        assert snapshot(server.db, audit=False) == unchanged

        # resumed with a confirmed list at discharge: packing goes on
        ok(
            hospital.post(
                f"/fhir/List/{p.list_id}/$resume", headers={"If-Match": f'W/"{version + 1}"'}
            )
        )
        basis = ok(pharmacy_client.get(f"/fhir/List/{p.list_id}/$packing-basis"))
        assert (value(basis, "paused"), value(basis, "packingAllowed")) == (False, True)
        assert value(basis, "responsibleDoctorHoldsBaton") is False  # the hospital resumed
        ok(
            pharmacy_client.post(
                f"/fhir/List/{p.list_id}/$packing-report",
                json=report(*packed_ids, start="2025-03-17", end="2025-03-30"),
            )
        )

    with server.db.read() as conn:
        kinds = [r.kind for r in conn.execute(sa.select(outbox.c.kind).order_by(outbox.c.id))]
    # every accepted step wrote its event, in the same transaction
    assert kinds.count("multidose-proposal") == 1
    assert kinds.count("multidose-packed") == 2
    assert kinds[-1] == "multidose-packed"


# -- the registration (M27) ----------------------------------------------------------------


def test_only_the_registered_doctor_ends_the_registration(server: LiveServer) -> None:
    with (
        server.client("gp") as gp,
        server.client("hospital-doctor") as hospital,
        server.client("pharmacist") as pharmacist,
    ):
        p = new_patient(server, gp)
        before = snapshot(server.db, audit=False)
        for other in (hospital, pharmacist):
            r = other.post(f"/fhir/Patient/{p.pid}/$multidose-end")
            assert r.status_code == 403, r.text
            assert snapshot(server.db, audit=False) == before
        r = hospital.post(f"/fhir/Patient/{p.pid}/$multidose-end")
        assert "9144889" in outcome_text(r)  # names who is responsible
        ended = ok(
            gp.post(
                f"/fhir/Patient/{p.pid}/$multidose-end",
                json=params({"name": "reason", "valueString": "Flyttet til sykehjem"}),
            )
        )
        assert value(ended, "registered") is False
        shown = ok(gp.get(f"/fhir/List/{p.list_id}"))
        assert extension(shown, "pll-multidose") is None
        assert int(shown["meta"]["versionId"]) == value(ended, "listVersion")
        assert shown["source"]["identifier"]["value"] == GP_HPR
        # no registration: no pharmacy proposes, no doctor decides
        r = pharmacist.post(
            f"/fhir/List/{p.list_id}/$propose", json=params(new_item(p.pid, *DRUGS[3]))
        )
        assert r.status_code == 403, r.text
    with server.db.read() as conn:
        refused = conn.execute(
            sa.select(audit_event.c.action).where(audit_event.c.outcome == "4")
        ).all()
    # every refusal is in the patient's access log
    assert sorted(r.action for r in refused) == [
        "multidose-end",
        "multidose-end",
        "multidose-end",
        "propose",
    ]


def test_one_pharmacy_per_patient(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("hospital-doctor") as hospital:
        p = new_patient(server, gp)
        version = version_of(gp, p.list_id)
        before = snapshot(server.db, audit=False)
        trondheim = params(pharmacy(TRONDHEIM, "Vitusapotek Trondheim"))
        r = gp.post(f"/fhir/Patient/{p.pid}/$multidose-register", json=trondheim)
        assert r.status_code == 409, r.text
        assert "one multidose pharmacy" in outcome_text(r)
        r = hospital.post(f"/fhir/Patient/{p.pid}/$multidose-register", json=trondheim)
        assert r.status_code == 409, r.text
        assert "Kari Fastlege" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        # the same registration again changes nothing
        again = ok(gp.post(f"/fhir/Patient/{p.pid}/$multidose-register", json=params(pharmacy())))
        assert value(again, "registered") is True
        assert version_of(gp, p.list_id) == version
        # after the registration has ended, another pharmacy can be registered
        ok(gp.post(f"/fhir/Patient/{p.pid}/$multidose-end"))
        moved = ok(gp.post(f"/fhir/Patient/{p.pid}/$multidose-register", json=trondheim))
        assert value(moved, "pharmacy")["identifier"]["value"] == TRONDHEIM
        state = ok(gp.get(f"/fhir/Patient/{p.pid}/$multidose"))
        assert value(state, "pharmacy")["identifier"]["value"] == TRONDHEIM


def test_a_registration_before_the_list_is_shown_when_the_list_is_made(server: LiveServer) -> None:
    with server.client("gp") as gp:
        p = new_patient(server, gp)  # registers first, then creates the list
        first = ok(gp.get(f"/fhir/List/{p.list_id}/_history/1"))
        assert extension(first, "pll-multidose") is not None


# -- the pharmacy's proposals and the doctor's decisions ----------------------------------------


def test_only_the_responsible_pharmacy_proposes_and_reports(server: LiveServer) -> None:
    with server.client("gp") as gp:
        p = new_patient(server, gp)
        metformin = p.entries["Metformin"]["id"]
        before = snapshot(server.db, audit=False)
        for persona in ("other-pharmacist", "gp", "nurse", "hospital-doctor"):
            with server.client(persona) as other:
                r = other.post(
                    f"/fhir/List/{p.list_id}/$propose", json=params(new_item(p.pid, *DRUGS[3]))
                )
                assert r.status_code == 403, (persona, r.text)
                r = other.post(f"/fhir/List/{p.list_id}/$packing-report", json=report(metformin))
                assert r.status_code == 403, (persona, r.text)
        assert snapshot(server.db, audit=False) == before
    with server.client("patient", pid=p.fnr) as own:
        r = own.post(f"/fhir/List/{p.list_id}/$propose", json=params(new_item(p.pid, *DRUGS[3])))
        assert r.status_code == 403


def test_only_the_responsible_doctor_decides(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        proposal = ok(
            pharmacist.post(
                f"/fhir/List/{p.list_id}/$propose", json=params(new_item(p.pid, *DRUGS[3]))
            )
        )
        (item,) = items_of(proposal)
        before = snapshot(server.db, audit=False)
        for persona in ("hospital-doctor", "pharmacist", "nurse"):
            with server.client(persona) as other:
                r = other.post(
                    f"/fhir/List/{p.list_id}/$decide", json=params(decision(item["id"], "accept"))
                )
                assert r.status_code == 403, (persona, r.text)
        assert snapshot(server.db, audit=False) == before


def test_a_rejected_item_changes_nothing(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        proposal = ok(
            pharmacist.post(
                f"/fhir/List/{p.list_id}/$propose",
                json=params(
                    change_item(p.entries["Metformin"], 3), remove_item(p.entries["Atorvastatin"])
                ),
            )
        )
        change, remove = items_of(proposal)
        lists = ("pll", "pll_version", "entry", "entry_version", "prescription")
        before = {k: v for k, v in snapshot(server.db).items() if k in lists}
        r = gp.post(
            f"/fhir/List/{p.list_id}/$decide",
            json=params(
                decision(change["id"], "reject", "Dosen står"), decision(remove["id"], "reject")
            ),
        )
        answer = ok(r)
        assert "X-PLL-List-Version" not in r.headers
        assert all(i["status"] == "rejected" for i in items_of(answer))
        assert {k: v for k, v in snapshot(server.db).items() if k in lists} == before
        # decided once: a second decision on the same item is refused
        again = snapshot(server.db, audit=False)
        r = gp.post(
            f"/fhir/List/{p.list_id}/$decide", json=params(decision(change["id"], "accept"))
        )
        assert r.status_code == 409, r.text
        assert "already rejected" in outcome_text(r)
        assert snapshot(server.db, audit=False) == again
    with server.db.read() as conn:
        assert conn.execute(sa.select(outbox.c.kind).order_by(outbox.c.id.desc())).first()[0] == (
            "multidose-decision"
        )


def test_an_accepted_removal_discontinues_the_entry_under_the_doctors_name(
    server: LiveServer,
) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        atorvastatin = p.entries["Atorvastatin"]
        proposal = ok(
            pharmacist.post(
                f"/fhir/List/{p.list_id}/$propose", json=params(remove_item(atorvastatin))
            )
        )
        (item,) = items_of(proposal)
        ok(gp.post(f"/fhir/List/{p.list_id}/$decide", json=params(decision(item["id"], "accept"))))
        entry = ok(gp.get(f"/fhir/MedicationStatement/{atorvastatin['id']}"))
        assert entry["status"] == "stopped"
        assert entry["statusReason"] == [{"text": "Pasienten bruker den ikke"}]
        done = ok(gp.get(f"/fhir/List/{p.list_id}/$proposals?status=accepted"))
        (accepted,) = items_of(done)
        assert accepted["decidedBy"].startswith("Kari Fastlege")


def test_an_item_on_an_entry_changed_since_cannot_be_accepted(server: LiveServer) -> None:
    """Relay baton: the pharmacy proposed on a version someone has changed since."""
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        metformin = p.entries["Metformin"]
        proposal = ok(
            pharmacist.post(
                f"/fhir/List/{p.list_id}/$propose", json=params(change_item(metformin, 0.5))
            )
        )
        (item,) = items_of(proposal)
        # structured at fixed times: Metformin is packed in multidose (issue 18)
        changed = {**metformin, "dosage": dose(1, "MORN", "EVE")}
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json=changed,
                headers={"If-Match": 'W/"1"'},
            )
        )
        before = snapshot(server.db, audit=False)
        r = gp.post(f"/fhir/List/{p.list_id}/$decide", json=params(decision(item["id"], "accept")))
        assert r.status_code == 409, r.text
        assert "reject the item" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        ok(gp.post(f"/fhir/List/{p.list_id}/$decide", json=params(decision(item["id"], "reject"))))


def test_an_accepted_new_medicine_is_checked_like_every_change(server: LiveServer) -> None:
    """Decision support runs on what the doctor accepts; the findings come back."""
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        proposal = ok(
            pharmacist.post(
                f"/fhir/List/{p.list_id}/$propose",
                json=params(new_item(p.pid, "Metformin tab 850 mg", "A10BA02")),
            )
        )
        (item,) = items_of(proposal)
        r = gp.post(f"/fhir/List/{p.list_id}/$decide", json=params(decision(item["id"], "accept")))
        answer = ok(r)
        assert int(r.headers["X-PLL-Findings"]) >= 1  # duplicate therapy with Metformin
        assert value(answer, "findings") >= 1
        (accepted,) = items_of(answer)
        assert accepted["result"]["reference"].startswith("MedicationStatement/")


# -- paper multidose ----------------------------------------------------------------------------


def test_paper_multidose_is_shown_as_a_risk_wherever_the_list_is_shown(
    server: LiveServer,
) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        r = ok(
            pharmacist.post(
                f"/fhir/Patient/{p.pid}/$paper-multidose",
                json=params(
                    {"name": "pharmacy", "valueString": "Vitusapotek Trondheim"},
                    {"name": "note", "valueString": "Multidosekort på papir fra 2019"},
                ),
            )
        )
        assert value(r, "paperMultidose") is True
        shown = ok(gp.get(f"/fhir/List/{p.list_id}"))
        risk = extension(shown, "pll-paper-multidose")
        assert risk is not None
        assert {"url": "risk", "valueString": PAPER_RISK} in risk["extension"]
        assert shown["note"] == [{"text": PAPER_RISK}]
        assert shown["source"]["identifier"]["value"] == GP_HPR  # the baton stays
        document = ok(gp.get(f"/fhir/List?patient={p.pid}&_include=List:item"))
        assert extension(document["entry"][0]["resource"], "pll-paper-multidose") is not None
        searched = ok(gp.get(f"/fhir/List?patient.identifier={FNR}|{p.fnr}"))
        assert extension(searched["entry"][0]["resource"], "pll-paper-multidose") is not None
        sfm = get_medication(gp, p.fnr)
        composition = sfm["entry"][0]["resource"]
        assert extension(composition, "pll-paper-multidose") is not None
        info = next(s for s in composition["section"] if s["title"] == "PllInfo")
        assert PAPER_RISK in info["text"]["div"]
        # recorded twice is refused; ended, the risk is gone
        before = snapshot(server.db, audit=False)
        r = gp.post(f"/fhir/Patient/{p.pid}/$paper-multidose")
        assert r.status_code == 409, r.text
        assert snapshot(server.db, audit=False) == before
        ok(gp.post(f"/fhir/Patient/{p.pid}/$paper-multidose-end"))
        shown = ok(gp.get(f"/fhir/List/{p.list_id}"))
        assert extension(shown, "pll-paper-multidose") is None
        assert "note" not in shown
    with server.client("nurse") as nurse:
        r = nurse.post(f"/fhir/Patient/{p.pid}/$paper-multidose")
        assert r.status_code == 403


def test_paper_multidose_before_the_list(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]
        answer = ok(gp.post(f"/fhir/Patient/{pid}/$paper-multidose"))
        assert "listVersion" not in {p["name"] for p in answer["parameter"]}
        lst = new_list(gp, pid)
        assert extension(lst, "pll-paper-multidose") is not None


# -- dispensing ----------------------------------------------------------------------------------


def dispensed(rx_id: str, pid: str, amount: float, when: str = "2025-03-01T10:00:00Z") -> dict:
    return {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "subject": {"reference": f"Patient/{pid}"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx_id}"}],
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.whocc.no/atc", "code": DRUGS[0][1]}],
            "text": DRUGS[0][0],
        },
        "quantity": {"value": amount, "unit": "tablett"},
        "whenHandedOver": when,
    }


def test_dispensings_show_the_last_one_and_what_remains(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp, register=False)
        rx = prescription(f"Patient/{p.pid}", *DRUGS[0])
        rx["dispenseRequest"] = {
            "quantity": {"value": 100, "unit": "tablett"},
            "numberOfRepeatsAllowed": 1,
        }
        rx = ok(gp.post("/fhir/MedicationRequest", json=rx), 201)
        metformin = p.entries["Metformin"]
        linked = {**metformin, "basedOn": [{"reference": f"MedicationRequest/{rx['id']}"}]}
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json=linked,
                headers={"If-Match": 'W/"1"'},
            )
        )
        version = version_of(gp, p.list_id)
        r = pharmacist.post("/fhir/MedicationDispense", json=dispensed(rx["id"], p.pid, 100))
        first = ok(r, 201)
        assert int(r.headers["X-PLL-List-Version"]) == version + 1
        assert first["performer"][0]["actor"]["identifier"]["value"] == BERGEN
        second = ok(
            pharmacist.post(
                "/fhir/MedicationDispense",
                json=dispensed(rx["id"], p.pid, 60, "2025-04-01T10:00:00Z"),
            ),
            201,
        )
        shown = ok(gp.get(f"/fhir/List/{p.list_id}"))
        item = next(e for e in shown["entry"] if metformin["id"] in e["item"]["reference"])
        summary = {e["url"]: e for e in item["extension"][0]["extension"]}
        assert summary["lastDispense"]["valueReference"]["reference"] == (
            f"MedicationDispense/{second['id']}"
        )
        assert summary["remaining"]["valueQuantity"] == {"value": 40, "unit": "tablett"}
        assert summary["dispensedTotal"]["valueQuantity"]["value"] == 160
        assert shown["source"]["identifier"]["value"] == GP_HPR  # the baton stays
        # more than remains is refused, and changes nothing
        before = snapshot(server.db, audit=False)
        r = pharmacist.post("/fhir/MedicationDispense", json=dispensed(rx["id"], p.pid, 50))
        assert r.status_code == 409, r.text
        assert "40 remains" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        # read back, one and all
        ok(gp.get(f"/fhir/MedicationDispense/{first['id']}"))
        found = ok(gp.get(f"/fhir/MedicationDispense?patient={p.pid}"))
        assert found["total"] == 2
        # the SFM document shows them, as valid FHIR
        sfm = get_medication(gp, p.fnr)
        dispenses = [
            e for e in sfm["entry"] if e["resource"]["resourceType"] == "MedicationDispense"
        ]
        assert len(dispenses) == 2
        # a doctor does not dispense
        r = gp.post("/fhir/MedicationDispense", json=dispensed(rx["id"], p.pid, 1))
        assert r.status_code == 403


def test_a_recalled_prescription_is_not_dispensed(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp, register=False)
        rx = ok(
            gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{p.pid}", *DRUGS[4])),
            201,
        )
        recalled = {**rx, "status": "stopped", "statusReason": {"text": "Feil legemiddel"}}
        ok(
            gp.put(
                f"/fhir/MedicationRequest/{rx['id']}", json=recalled, headers={"If-Match": 'W/"1"'}
            )
        )
        before = snapshot(server.db, audit=False)
        r = pharmacist.post("/fhir/MedicationDispense", json=dispensed(rx["id"], p.pid, 30))
        assert r.status_code == 409, r.text
        assert "stopped" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before


# -- bad input ---------------------------------------------------------------------------------


def _bad_requests(p: Patient, rx_id: str) -> list[tuple[str, str, str, Any, int, str]]:
    """(persona, method, path, body, status, words in the answer)"""
    metformin = p.entries["Metformin"]
    amlodipin = p.entries["Amlodipin"]
    lst = f"/fhir/List/{p.list_id}"
    pat = f"/fhir/Patient/{p.pid}"
    unversioned = change_item(metformin, 2)
    unversioned["part"][1]["valueReference"]["reference"] = f"MedicationStatement/{metformin['id']}"
    no_drug = new_item(p.pid, *DRUGS[3])
    del no_drug["part"][1]["resource"]["medicationCodeableConcept"]
    return [
        ("gp", "POST", f"{pat}/$multidose-register", params(), 400, "'pharmacy' is required"),
        (
            "gp",
            "POST",
            f"{pat}/$multidose-register",
            params(pharmacy("985563757")),
            400,
            "check digit",
        ),
        (
            "gp",
            "POST",
            f"{pat}/$multidose-register",
            params({"name": "pharmacy", "valueString": "Apoteket"}),
            400,
            "valueReference",
        ),
        (
            "gp",
            "POST",
            f"{pat}/$multidose-register",
            params(pharmacy(), {"name": "x", "valueString": "y"}),
            400,
            "Unknown parameter",
        ),
        (
            "gp",
            "POST",
            "/fhir/Patient/nobody/$multidose-register",
            params(pharmacy()),
            404,
            "does not exist",
        ),
        ("pharmacist", "POST", f"{lst}/$propose", params(), 400, "at least one item"),
        ("pharmacist", "POST", f"{lst}/$propose", params(unversioned), 400, "_history"),
        (
            "pharmacist",
            "POST",
            f"{lst}/$propose",
            params(no_drug),
            400,
            "medicationCodeableConcept",
        ),
        (
            "pharmacist",
            "POST",
            f"{lst}/$propose",
            params({"name": "item", "part": [{"name": "action", "valueCode": "swap"}]}),
            400,
            "Unknown action",
        ),
        (
            "pharmacist",
            "POST",
            f"{lst}/$propose",
            params(remove_item(metformin), remove_item(metformin)),
            400,
            "two items",
        ),
        (
            "pharmacist",
            "POST",
            "/fhir/List/nolist/$propose",
            params(new_item(p.pid, *DRUGS[3])),
            404,
            "does not exist",
        ),
        ("pharmacist", "POST", f"{lst}/$propose", {"resourceType": "Patient"}, 400, "Parameters"),
        (
            "gp",
            "POST",
            f"{lst}/$decide",
            params(decision("no-such-item", "accept")),
            400,
            "not an item",
        ),
        ("gp", "POST", f"{lst}/$decide", params(), 400, "at least one item"),
        ("gp", "POST", f"{lst}/$decide", params(decision("x", "maybe")), 400, "accept or reject"),
        (
            "pharmacist",
            "POST",
            f"{lst}/$packing-report",
            report(amlodipin["id"]),
            409,
            "not marked as packed",
        ),
        (
            "pharmacist",
            "POST",
            f"{lst}/$packing-report",
            report(metformin["id"], start="2025-03-16", end="2025-03-03"),
            400,
            "ends before",
        ),
        (
            "pharmacist",
            "POST",
            f"{lst}/$packing-report",
            {"resourceType": "Parameters", "parameter": report(metformin["id"])["parameter"][1:]},
            400,
            "'period' is required",
        ),
        (
            "pharmacist",
            "POST",
            f"{lst}/$packing-report",
            report("nosuchentry"),
            400,
            "not on this patient's list",
        ),
        (
            "pharmacist",
            "POST",
            "/fhir/MedicationDispense",
            {**dispensed("nosuchrx", p.pid, 1)},
            400,
            "not a prescription of this patient",
        ),
        (
            "pharmacist",
            "POST",
            "/fhir/MedicationDispense",
            {**dispensed("x", p.pid, 1), "status": "in-progress"},
            400,
            "completed",
        ),
        (
            "pharmacist",
            "POST",
            "/fhir/MedicationDispense",
            {**dispensed("x", p.pid, 1), "quantity": {"value": "3"}},
            400,
            "not valid FHIR",
        ),
        (
            "pharmacist",
            "POST",
            "/fhir/MedicationDispense",
            {k: v for k, v in dispensed("x", p.pid, 1).items() if k != "whenHandedOver"},
            400,
            "whenHandedOver",
        ),
        (
            "pharmacist",
            "POST",
            "/fhir/MedicationDispense",
            {**dispensed(rx_id, p.pid, 1), "whenHandedOver": "2999-01-01T00:00:00Z"},
            400,
            "future",
        ),
    ]


def test_bad_input_gets_a_clear_outcome_and_changes_nothing(server: LiveServer) -> None:
    with server.client("gp") as gp:
        p = new_patient(server, gp)
        # a real prescription for the dispensing cases that need one
        rx = gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{p.pid}", *DRUGS[4]))
        rx_id = ok(rx, 201)["id"]
    for persona, method, path, body, status, words in _bad_requests(p, rx_id):
        before = snapshot(server.db, audit=False)
        with server.client(persona) as client:
            r = client.request(method, path, json=body)
        assert r.status_code == status, (path, r.text)
        assert words in outcome_text(r), (path, r.text)
        assert r.json()["issue"][0].get("expression") or status in (404, 409), (path, r.text)
        assert snapshot(server.db, audit=False) == before, path


@pytest.mark.parametrize("persona", ["gp", "pharmacist"])
def test_the_capability_statement_names_the_operations(server: LiveServer, persona: str) -> None:
    with server.client(persona) as client:
        meta = ok(client.get("/fhir/metadata"))
    ops = {o["name"] for r in meta["rest"][0]["resource"] for o in r.get("operation", [])}
    assert {"multidose-register", "propose", "decide", "packing-report", "packing-basis"} <= ops
    types = {r["type"] for r in meta["rest"][0]["resource"]}
    assert "MedicationDispense" in types


def test_a_packing_report_names_the_dispensing_it_went_out_with(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        rx = ok(
            gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{p.pid}", *DRUGS[0])),
            201,
        )
        metformin = p.entries["Metformin"]
        linked = {**metformin, "basedOn": [{"reference": f"MedicationRequest/{rx['id']}"}]}
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{metformin['id']}",
                json=linked,
                headers={"If-Match": 'W/"1"'},
            )
        )
        given = ok(
            pharmacist.post("/fhir/MedicationDispense", json=dispensed(rx["id"], p.pid, 28)), 201
        )
        other = new_patient(server, gp, register=False)
        other_rx = ok(
            gp.post(
                "/fhir/MedicationRequest", json=prescription(f"Patient/{other.pid}", *DRUGS[0])
            ),
            201,
        )
        foreign = ok(
            pharmacist.post(
                "/fhir/MedicationDispense", json=dispensed(other_rx["id"], other.pid, 1)
            ),
            201,
        )

        def with_dispense(dispense_id: str) -> dict[str, Any]:
            body = report(metformin["id"])
            body["parameter"][1]["part"].append(
                {
                    "name": "dispense",
                    "valueReference": {"reference": f"MedicationDispense/{dispense_id}"},
                }
            )
            return body

        before = snapshot(server.db, audit=False)
        r = pharmacist.post(
            f"/fhir/List/{p.list_id}/$packing-report", json=with_dispense(foreign["id"])
        )
        assert r.status_code == 400, r.text
        assert "not a dispensing of this patient" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        ok(
            pharmacist.post(
                f"/fhir/List/{p.list_id}/$packing-report", json=with_dispense(given["id"])
            )
        )
        sfm = get_medication(gp, p.fnr)
        m253 = next(
            e["resource"]
            for e in sfm["entry"]
            if e["resource"]["resourceType"] == "Basic"
            and e["resource"]["code"]["coding"][0]["code"] == "M25.3"
        )
        lines = [
            sub["url"]
            for ext in m253["extension"][0]["extension"]
            if ext["url"] == "deliveryinformation"
            for sub in ext["extension"]
        ]
        assert lines == ["prescriptionId", "datefirstdose", "datelastdose", "deliverydoc"]


def test_two_registrations_at_once_leave_one_pharmacy(server: LiveServer) -> None:
    with server.client("gp") as gp:
        pid = ok(gp.post("/fhir/Patient", json=patient()), 201)["id"]

    def register(org_name: tuple[str, str]) -> int:
        with server.client("gp") as client:
            body = params(pharmacy(*org_name))
            return client.post(f"/fhir/Patient/{pid}/$multidose-register", json=body).status_code

    pharmacies = [(BERGEN, "Apotek 1 Bergen multidose"), (TRONDHEIM, "Vitusapotek Trondheim")]
    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(register, pharmacies * 3))
    assert statuses[0] == 200
    assert 409 in statuses
    with server.client("gp") as gp:
        state = ok(gp.get(f"/fhir/Patient/{pid}/$multidose"))
    winner = value(state, "pharmacy")["identifier"]["value"]
    assert statuses.count(200) == 3  # the winner's own repeats change nothing
    assert winner in (BERGEN, TRONDHEIM)


def test_a_pharmacys_pending_proposals_end_with_its_registration(server: LiveServer) -> None:
    """A later responsible doctor must not accept what another pharmacy asked for."""
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        proposal = ok(
            pharmacist.post(
                f"/fhir/List/{p.list_id}/$propose",
                json=params(change_item(p.entries["Metformin"], 3)),
            )
        )
        [item] = items_of(proposal)
        ok(gp.post(f"/fhir/Patient/{p.pid}/$multidose-end"))
        ok(gp.post(f"/fhir/Patient/{p.pid}/$multidose-register", json=params(pharmacy())))
        r = gp.post(f"/fhir/List/{p.list_id}/$decide", json=params(decision(item["id"], "accept")))
        assert r.status_code == 409, r.text
        assert "already rejected" in outcome_text(r)


def test_paper_multidose_is_ended_only_by_those_who_know_of_it(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("other-pharmacist") as other:
        p = new_patient(server, gp)
        ok(gp.post(f"/fhir/Patient/{p.pid}/$paper-multidose", json=params()))
        before = snapshot(server.db, audit=False)
        r = other.post(f"/fhir/Patient/{p.pid}/$paper-multidose-end")
        assert r.status_code == 403, r.text
        assert snapshot(server.db, audit=False) == before
        ok(gp.post(f"/fhir/Patient/{p.pid}/$paper-multidose-end"))


def test_the_pharmacys_report_form_starts_on_the_norwegian_day_of_the_service_clock(
    server: LiveServer, clock: Clock
) -> None:
    """At 00:30 in Oslo it is still yesterday in UTC: the packing period the pharmacy page
    offers starts on the day it is in Norway, by the service's clock, not the wall clock."""
    with server.client("gp") as gp:
        p = new_patient(server, gp)
    target = datetime(2026, 3, 2, 0, 30, tzinfo=ZoneInfo("Europe/Oslo"))
    clock.offset = target.astimezone(UTC) - datetime.now(UTC)
    with web.logged_in(server, "pharmacist") as browser:
        page = browser.get(f"/apotek/pasient/{p.pid}")
    assert page.status_code == 200, page.text
    assert 'name="start" value="2026-03-02"' in page.text
    assert 'name="end" value="2026-03-15"' in page.text
