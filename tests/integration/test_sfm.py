"""SFM Basis compatibility: the reference response imports, reads back the same, and a
``$sendMedication`` is held to the SFM rules — over real HTTP, on both databases.

The reference is the ``$getMedication`` response of the national test environment in
``shared/reference/sfm-basis``, kept in ``tests/fixtures/sfm``. The facts compared are read
from the raw JSON here, not with PLL's own reader, so a fault in the reader cannot hide itself.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pll.fhir.sfm.lenient_json import parse_lenient
from pll.fhir.validate import validate
from pll.services.sfm import SfmService
from pll.store.schema import outbox, pll_version
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import (
    new_fnr,
    new_patient_with_list,
    ok,
    outcome_text,
    patient,
    prescription,
    statement,
)

REFERENCE = (
    Path(__file__).resolve().parents[2]
    / "tests/fixtures/sfm/getMedication-response-e-multidose.json"
)
SD = "http://ehelse.no/fhir/StructureDefinition"
FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
REFERENCE_FNR = "25039296929"
#: the moment the reference response was made: stopped entries are within their 90 days
READ_AT = datetime(2024, 1, 25, 11, 32, 47, tzinfo=UTC)


def reference() -> dict[str, Any]:
    data, warnings = parse_lenient(REFERENCE.read_text(encoding="utf-8"))
    assert warnings
    assert "line 4893" in warnings[0]
    return dict(data)


def at_reference_time(server: LiveServer, clock: Any) -> None:
    clock.offset = READ_AT + timedelta(minutes=5) - datetime.now(UTC)


def imported(server: LiveServer, data: dict[str, Any] | None = None) -> Any:
    return SfmService(server.service).import_document(data or reference())


def get_medication(client: httpx.Client, fnr: str = REFERENCE_FNR, **extra: Any) -> httpx.Response:
    params: list[dict[str, Any]] = [
        {
            "name": "patient",
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": FNR_SYSTEM, "value": fnr}],
            },
        }
    ]
    params += [{"name": k, **v} for k, v in extra.items()]
    return client.post(
        "/fhir/Patient/$getMedication", json={"resourceType": "Parameters", "parameter": params}
    )


# -- reading an SFM document as plain JSON --------------------------------------------------


def bundle_of(parameters: dict[str, Any]) -> dict[str, Any]:
    return next(p["resource"] for p in parameters["parameter"] if p["name"] == "medication")


def resources(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def section(bundle: dict[str, Any], code: str) -> list[dict[str, Any]]:
    comp = bundle["entry"][0]["resource"]
    by_url = resources(bundle)
    for s in comp["section"]:
        if s["code"]["coding"][0]["code"] == code:
            return [by_url[r["reference"]] for r in s.get("entry", [])]
    raise AssertionError(f"no {code}")


def ext(resource: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension", []) if e["url"] == url]


def recallinfo(code: str, recall_id: str | None = None) -> dict[str, Any]:
    """``recallinfo`` as a journal system sends it: why a prescription is recalled (kodeverk
    7500), and for a renewal which one it renews."""
    parts: list[dict[str, Any]] = []
    if recall_id is not None:
        parts.append({"url": "recallId", "valueString": recall_id})
    parts.append(
        {
            "url": "recallcode",
            "valueCodeableConcept": {
                "coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7500", "code": code}]
            },
        }
    )
    return {"url": "recallinfo", "extension": parts}


def amendment_of(statement: dict[str, Any]) -> dict[str, Any]:
    return ext(statement, f"{SD}/sfm-reseptamendment")[0]


def renewed(bundle: dict[str, Any], prefix: str, old_id: str, new_id: str, code: str) -> None:
    """Renew the prescription of the statement named ``prefix``: a new ReseptId, flagged
    createeresept, with recallinfo naming the old one."""
    st = statement_named(bundle, prefix)
    for i in st["identifier"]:
        if i["type"]["text"] == "ReseptId":
            i["value"] = new_id
    amendment = amendment_of(st)
    amendment["extension"] = [
        e for e in amendment["extension"] if e["url"] not in ("rfstatus", "reseptdate")
    ] + [
        {"url": "createeresept", "valueBoolean": True},
        {"url": "reseptdate", "valueDate": "2024-01-25"},
        recallinfo(code, old_id),
    ]


def sub(extension: dict[str, Any] | None, url: str) -> Any:
    for e in (extension or {}).get("extension", []):
        if e["url"] == url:
            return next((v for k, v in e.items() if k.startswith("value")), e)
    return None


def ident(resource: dict[str, Any], kind: str) -> str | None:
    return next(
        (
            i["value"]
            for i in resource.get("identifier", [])
            if i.get("type", {}).get("text") == kind
        ),
        None,
    )


def code(concept: Any) -> str | None:
    return concept["coding"][0].get("code") if concept else None


def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def statement_facts(bundle: dict[str, Any], st: dict[str, Any]) -> dict[str, Any]:
    """Everything PLL models of one SFM statement, as comparable values."""
    by_url = resources(bundle)
    med = by_url[st["medicationReference"]["reference"]]
    amendment = next(iter(ext(st, f"{SD}/sfm-reseptamendment")), None)
    discontinuation = next(iter(ext(st, f"{SD}/sfm-discontinuation")), None)
    dosage = st.get("dosage", [{}])[0]
    use = next((e for e in dosage.get("extension", []) if e["url"] == f"{SD}/sfm-use"), None)
    area = next(
        (e for e in dosage.get("extension", []) if e["url"] == f"{SD}/sfm-application-area"), None
    )
    reg = [
        (code(sub(r, "type")), by_url[sub(r, "provider")["reference"]]["identifier"][0]["value"])
        for r in ext(st, f"{SD}/sfm-regInfo")
    ]
    summary = next(iter(ext(st, f"{SD}/sfm-deliverysummary")), None)
    return {
        "status": st["status"],
        "pll": ident(st, "PLL"),
        "resept": ident(st, "ReseptId"),
        "codes": sorted((c["system"], c["code"]) for c in med["code"]["coding"]),
        "name": st["medicationReference"]["display"],
        "dosage": dosage.get("text"),
        "patientInstruction": dosage.get("patientInstruction"),
        "additionalInstruction": dosage.get("additionalInstruction"),
        "use": code(use["valueCodeableConcept"]) if use else None,
        "area": sub(area, "text"),
        "effective": st.get("effectiveDateTime")
        or next((e["valueDate"] for e in ext(st, "effectiveDateTime")), None),
        "reseptdate": sub(amendment, "reseptdate"),
        "expirationdate": sub(amendment, "expirationdate"),
        "dssn": sub(amendment, "dssn"),
        "reit": sub(amendment, "reit"),
        "amount": sub(amendment, "amount"),
        "typeresept": code(sub(amendment, "typeresept")),
        "itemgroup": code(sub(amendment, "itemgroup")),
        "rfstatus": code(sub(sub(amendment, "rfstatus"), "status")),
        "recall": code(sub(sub(amendment, "recallinfo"), "recallcode")),
        "ended": moment(sub(discontinuation, "timedate")),
        "ended_reason": code(sub(discontinuation, "reason")),
        "substitution": sub(
            next(iter(ext(st, f"{SD}/sfm-generic-substitution")), None),
            "genericSubstitutionAccepted",
        ),
        "multidose": sub(next(iter(ext(st, f"{SD}/sfm-administration")), None), "mddispensed"),
        "prescriber": sorted(r for r in reg if r[0] == "1"),
        "delivery": {
            e["url"]: next(v for k, v in e.items() if k.startswith("value"))
            for e in (summary or {}).get("extension", [])
        },
    }


def role_facts(bundle: dict[str, Any], ref: dict[str, Any]) -> tuple[Any, ...]:
    by_url = resources(bundle)
    role = by_url[ref["reference"]]
    hpr = role.get("practitioner", {}).get("identifier", {}).get("value")
    org = by_url[role["organization"]["reference"]] if "organization" in role else {}
    her = next(
        (
            i["value"]
            for i in org.get("identifier", [])
            if i.get("system") == "urn:oid:2.16.578.1.12.4.1.2"
        ),
        None,
    )
    return (
        code(role.get("code", [None])[0]) if role.get("code") else None,
        hpr,
        her,
        org.get("name"),
    )


def info_facts(bundle: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for basic in section(bundle, "sectionPLLinfo"):
        info = ext(basic, f"{SD}/sfm-pllInformation")[0]
        parties = sorted(
            role_facts(bundle, e["valueReference"])
            for e in info["extension"]
            if e["url"] == "relatedparties"
        )
        deliveries = [
            (
                ident(resources(bundle)[sub(d, "prescriptionId")["reference"]], "ReseptId"),
                moment(sub(d, "datefirstdose")),
                moment(sub(d, "datelastdose")),
                resources(bundle)[sub(d, "deliverydoc")["reference"]]["identifier"][0]["value"],
                sub(d, "refM10"),
            )
            for d in info["extension"]
            if d["url"] == "deliveryinformation"
        ]
        out[code(basic["code"])] = {
            "identifier": basic["identifier"][0]["value"],
            "date": moment(sub(info, "PLLdate")),
            "author": role_facts(bundle, basic["author"])[1:],
            "parties": parties,
            "deliveries": deliveries,
        }
    return out


def dispense_facts(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    by_url = resources(bundle)
    out = []
    for md in section(bundle, "sectionDispense"):
        med = by_url[md["medicationReference"]["reference"]]
        performer = by_url[md["performer"][0]["actor"]["reference"]]
        out.append(
            {
                "id": md["identifier"][0]["value"],
                "status": md["status"],
                "codes": sorted((c["system"], c["code"]) for c in med["code"]["coding"]),
                "quantity": md["quantity"],
                "handed": md["whenHandedOver"],
                "performer": performer["identifier"][0]["value"],
                "prescription": ident(
                    by_url[md["authorizingPrescription"][0]["reference"]], "ReseptId"
                ),
                "info": ext(md, f"{SD}/sfm-dispenseinfo"),
                "intervention": ext(md, f"{SD}/sfm-Intervention"),
                "dosage": md.get("dosageInstruction"),
                "substitution": md.get("substitution"),
            }
        )
    return out


def same_statements(mine: dict[Any, dict[str, Any]], theirs: dict[Any, dict[str, Any]]) -> None:
    """Field by field, so a failure names the statement and the field."""
    assert set(mine) == set(theirs)
    wrong = [
        (key, field, mine[key][field], value)
        for key, facts in theirs.items()
        for field, value in facts.items()
        if mine[key][field] != value
    ]
    assert not wrong, wrong


def by_key(bundle: dict[str, Any]) -> dict[tuple[Any, Any], dict[str, Any]]:
    out = {}
    for st in section(bundle, "sectionMedication"):
        facts = statement_facts(bundle, st)
        out[(facts["pll"], facts["resept"])] = facts
    return out


# -- import and round trip ----------------------------------------------------------------


def test_reference_imports_and_reads_back_field_by_field(server: LiveServer, clock: Any) -> None:
    at_reference_time(server, clock)
    done = imported(server)
    assert (done.entries, done.prescriptions, done.dispenses, done.messages) == (9, 9, 1, 3)

    with server.client("gp") as gp:
        # Atorvastatin ended 2023-10-24, 93 days before the reference was read: it has left
        # the list (rule 3); SFM showed it as history, which historyTimestamp asks for.
        plain = by_key(bundle_of(get_medication(gp).json()))
        since = {"valueDateTime": "2023-01-01T00:00:00+01:00"}
        r = get_medication(gp, historyTimestamp=since)
    assert r.status_code == 200, r.text
    assert {f["name"] for f in plain.values()} == {
        f["name"] for f in by_key(bundle_of(r.json())).values()
    } - {"Atorvastatin tab 40 mg"}
    out = r.json()
    validate(out, "Parameters")  # the whole answer is valid FHIR (R4B models)
    ours, theirs = bundle_of(out), bundle_of(reference())
    validate(ours, "Bundle")
    assert ours["type"] == "document"
    assert [s["code"]["coding"][0]["code"] for s in ours["entry"][0]["resource"]["section"]] == [
        "sectionMedication",
        "sectionPLLinfo",
        "sectionAllergies",
        "sectionDispense",
        "sectionOtherPrescriptions",
    ]

    same_statements(by_key(ours), by_key(theirs))
    assert info_facts(ours) == info_facts(theirs)
    assert dispense_facts(ours) == dispense_facts(theirs)


def test_stopped_entries_keep_their_real_end(server: LiveServer, clock: Any) -> None:
    """An entry that ended in 2023 counts its 90 days from then (rule 3), not from the
    import: read a year later, the stopped entries have left the list."""
    at_reference_time(server, clock)
    imported(server)
    clock.advance(days=365)
    with server.client("gp") as gp:
        shown = by_key(bundle_of(get_medication(gp).json()))
        assert {f["status"] for f in shown.values()} == {"active"}
        assert len(shown) == 5
        # historyTimestamp reaches back for what ended since then (SFM's KJ history)
        since = {"valueDateTime": "2023-11-02T00:00:00+01:00"}
        again = by_key(bundle_of(get_medication(gp, historyTimestamp=since).json()))
    stopped = sorted(f["name"] for f in again.values() if f["status"] == "stopped")
    assert stopped == [
        "Liotyronin tab 20 mikrog",
        "Nilotinib kaps 200 mg",
        "Rivaroksaban tab 10 mg",
    ]


def test_import_is_written_under_the_sending_doctor_and_logged(
    server: LiveServer, clock: Any
) -> None:
    at_reference_time(server, clock)
    done = imported(server)
    with server.client("gp") as gp:
        lst = gp.get(f"/fhir/List/{done.list_id}").json()
        prov = gp.get("/fhir/Provenance", params={"target": f"List/{done.list_id}"}).json()
    assert lst["source"]["identifier"]["value"] == "431001110"  # the M25.1 author holds the baton
    provenance = prov["entry"][0]["resource"]
    assert provenance["activity"]["text"] == "create-list+import"
    assert "SFM Basis" in provenance["reason"][0]["text"]
    with server.db.read() as conn:
        events = conn.execute(sa.select(outbox.c.kind)).scalars().all()
    assert events == ["list-changed"]


def test_import_refuses_a_patient_who_has_a_list_and_changes_nothing(
    server: LiveServer, clock: Any
) -> None:
    at_reference_time(server, clock)
    imported(server)
    before = snapshot(server.db)
    with pytest.raises(Exception, match="already"):
        imported(server)
    assert snapshot(server.db) == before


def test_import_brings_in_reactions(server: LiveServer, clock: Any) -> None:
    data = reference()
    bundle = bundle_of(data)
    patient_urn = bundle["entry"][0]["resource"]["subject"]["reference"]
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:0b7c43a4-5f0e-4d8e-9d7e-3a1a2b3c4d5e",
            "resource": {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"coding": [{"system": "http://www.whocc.no/atc", "code": "J01CA04"}]},
                "patient": {"reference": patient_urn},
            },
        }
    )
    allergies = next(
        s for s in bundle["entry"][0]["resource"]["section"] if s["title"] == "Allergies"
    )
    allergies.pop("emptyReason")
    allergies["entry"] = [{"reference": "urn:uuid:0b7c43a4-5f0e-4d8e-9d7e-3a1a2b3c4d5e"}]
    at_reference_time(server, clock)
    assert imported(server, data).allergies == 1
    with server.client("gp") as gp:
        shown = section(bundle_of(get_medication(gp).json()), "sectionAllergies")
    assert [a["code"]["coding"][0]["code"] for a in shown] == ["J01CA04"]


# -- $sendMedication ------------------------------------------------------------------------


def send_from(read: dict[str, Any], edit: Any = None) -> dict[str, Any]:
    """What a journal system sends back: the read's document with a new Composition
    identifier relating to the read's, after ``edit`` changed the statements."""
    out = copy.deepcopy(read)
    bundle = bundle_of(out)
    comp = bundle["entry"][0]["resource"]
    target = comp["identifier"]["value"]
    comp["identifier"] = {"use": "official", "value": str(uuid.uuid4())}
    comp["relatesTo"] = [
        {"code": "replaces", "targetIdentifier": {"use": "official", "value": target}}
    ]
    if edit is not None:
        edit(bundle)
    return out


def statement_named(bundle: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(
        st
        for st in section(bundle, "sectionMedication")
        if st["medicationReference"]["display"].startswith(prefix)
    )


def set_dosage(bundle: dict[str, Any], prefix: str, text: str) -> None:
    st = statement_named(bundle, prefix)
    st["dosage"][0]["text"] = text


def drop(bundle: dict[str, Any], prefix: str) -> None:
    st = statement_named(bundle, prefix)
    comp = bundle["entry"][0]["resource"]
    medication = comp["section"][0]
    medication["entry"] = [
        r for r in medication["entry"] if resources(bundle)[r["reference"]] is not st
    ]


def send(
    client: httpx.Client, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post("/fhir/Patient/$sendMedication", json=body, headers=headers)


def params(answer: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in answer["parameter"]:
        out.setdefault(p["name"], []).append(p.get("valueInteger", p.get("part")))
    return out


@pytest.fixture
def read(server: LiveServer, clock: Any) -> dict[str, Any]:
    """The reference imported, read by the GP's journal system just now."""
    at_reference_time(server, clock)
    imported(server)
    with server.client("gp") as gp:
        r = get_medication(gp)
    assert r.status_code == 200, r.text
    return dict(r.json())


def entry_text(server: LiveServer, prefix: str) -> str:
    with server.client("gp") as gp:
        bundle = bundle_of(get_medication(gp).json())
    return str(statement_named(bundle, prefix)["dosage"][0]["text"])


def test_send_changes_a_dose_as_one_list_version(server: LiveServer, read: dict[str, Any]) -> None:
    body = send_from(read, lambda b: set_dosage(b, "Lapatinib", "4 tabletter morgen daglig"))
    with server.client("gp") as gp:
        r = send(gp, body)
    assert r.status_code == 200, r.text
    validate(r.json(), "Parameters")  # SFM's answer is valid FHIR too
    got = params(r.json())
    assert got["prescriptionCount"] == [0]
    assert got["recallCount"] == [0]
    result = {p["name"]: p.get("valueCoding", p.get("valueString")) for p in got["PllResult"][0]}
    assert result["resultCode"]["code"] == "0"
    assert r.headers["X-PLL-List-Version"] == "2"
    assert entry_text(server, "Lapatinib") == "4 tabletter morgen daglig"
    with server.db.read() as conn:
        activity = conn.execute(
            sa.select(pll_version.c.activity).where(pll_version.c.version == 2)
        ).scalar_one()
    assert activity == "update-entry"


def test_send_with_nothing_changed_writes_nothing(server: LiveServer, read: dict[str, Any]) -> None:
    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        r = send(gp, send_from(read))
    assert r.status_code == 200, r.text
    assert "PllResult" not in params(r.json())
    after = snapshot(server.db, audit=False)
    assert {k: v for k, v in after.items() if k != "sfm_read"} == {
        k: v for k, v in before.items() if k != "sfm_read"
    }


def test_send_prescribes_a_new_medicine(server: LiveServer, read: dict[str, Any]) -> None:
    new_id = str(uuid.uuid4())

    def prescribe(bundle: dict[str, Any]) -> None:
        st = copy.deepcopy(statement_named(bundle, "Lapatinib"))
        st["id"] = "new"
        st["identifier"] = [{"use": "usual", "type": {"text": "ReseptId"}, "value": new_id}]
        amendment = ext(st, f"{SD}/sfm-reseptamendment")[0]
        amendment["extension"].append({"url": "createeresept", "valueBoolean": True})
        bundle["entry"].append({"fullUrl": "urn:uuid:" + new_id, "resource": st})
        bundle["entry"][0]["resource"]["section"][0]["entry"].append(
            {"reference": "urn:uuid:" + new_id}
        )

    with server.client("gp") as gp:
        r = send(gp, send_from(read, prescribe))
        assert r.status_code == 200, r.text
        got = params(r.json())
        assert got["prescriptionCount"] == [1]
        results = [
            {x["name"]: x.get("valueString", x.get("valueCoding")) for x in p}
            for p in got["prescriptionOperationResult"]
        ]
        assert results == [{"reseptID": new_id, "resultCode": results[0]["resultCode"]}]
        assert results[0]["resultCode"]["code"] == "0"
        shown = by_key(bundle_of(get_medication(gp).json()))
    new = [f for (pll, resept), f in shown.items() if resept == new_id]
    assert len(new) == 1
    assert new[0]["pll"] is not None
    assert new[0]["status"] == "active"
    assert new[0]["prescriber"] == [("1", "9144889")]  # the gp persona's HPR number


def test_send_discontinues_and_recalls(server: LiveServer, read: dict[str, Any]) -> None:
    def discontinue(bundle: dict[str, Any]) -> None:
        st = statement_named(bundle, "Deksametason")
        st["status"] = "stopped"
        amendment_of(st)["extension"].append(recallinfo("2"))
        st["extension"].append(
            {
                "url": f"{SD}/sfm-discontinuation",
                "extension": [
                    {"url": "timedate", "valueDateTime": "2024-01-25T12:40:00+01:00"},
                    {
                        "url": "reason",
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": "urn:oid:2.16.578.1.12.4.1.1.7494",
                                    "code": "A",
                                    "display": "Avsluttet behandling",
                                }
                            ]
                        },
                    },
                ],
            }
        )

    with server.client("gp") as gp:
        r = send(gp, send_from(read, discontinue))
        assert r.status_code == 200, r.text
        got = params(r.json())
        assert got["recallCount"] == [1]
        codes = [
            {x["name"]: x.get("valueString", x.get("valueCoding")) for x in p}
            for p in got["prescriptionOperationResult"]
        ]
        assert [(c["reseptID"], c["resultCode"]["code"]) for c in codes] == [
            ("c536ed7b-1857-4e0f-8522-435ef8bd5898", "1")
        ]
        facts = by_key(bundle_of(get_medication(gp).json()))
    done = facts[("6e8935f8-9884-47da-2821-08dba2e0e758", "c536ed7b-1857-4e0f-8522-435ef8bd5898")]
    assert done["status"] == "stopped"
    assert done["recall"] == "2"
    assert done["ended_reason"] == "A"
    assert done["rfstatus"] == "T"  # PLL's recall, not the imported "Ekspederbar"


def test_send_renews_and_shows_the_chain(server: LiveServer, read: dict[str, Any]) -> None:
    new_id = str(uuid.uuid4())
    old_id = "26e1fef6-3c6b-4558-a009-22c7e4b6970f"  # Lapatinib

    def renew(bundle: dict[str, Any]) -> None:
        renewed(bundle, "Lapatinib", old_id, new_id, "1")

    with server.client("gp") as gp:
        r = send(gp, send_from(read, renew))
        assert r.status_code == 200, r.text
        got = params(r.json())
        assert (got["prescriptionCount"], got["recallCount"]) == ([1], [1])
        after = bundle_of(get_medication(gp).json())
    head = statement_named(after, "Lapatinib")
    assert ident(head, "ReseptId") == new_id
    assert ident(head, "PLL") == "b750ae07-afef-496f-3936-08dba23c807a"
    older = resources(after)[head["basedOn"][0]["reference"]]
    assert ident(older, "ReseptId") == old_id
    assert older["status"] == "completed"
    assert older["partOf"][0]["reference"] in resources(after)
    assert ident(older, "PLL") is None
    # only heads of chain are listed in the section
    assert older not in section(after, "sectionMedication")


def test_send_on_a_superseded_read_is_refused(server: LiveServer, read: dict[str, Any]) -> None:
    with server.client("gp") as gp:
        assert get_medication(gp).status_code == 200  # a newer read by the same system
        before = snapshot(server.db, audit=False)
        r = send(gp, send_from(read, lambda b: set_dosage(b, "Lapatinib", "2 tabletter")))
    assert r.status_code == 422
    assert "latest read" in r.json()["issue"][0]["diagnostics"]
    assert snapshot(server.db, audit=False) == before


def test_send_on_a_read_older_than_four_hours_is_refused(
    server: LiveServer, read: dict[str, Any], clock: Any
) -> None:
    clock.advance(hours=4, minutes=1)
    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        r = send(gp, send_from(read, lambda b: set_dosage(b, "Lapatinib", "2 tabletter")))
    assert r.status_code == 422
    assert "more than 4 hours ago" in r.json()["issue"][0]["diagnostics"]
    assert snapshot(server.db, audit=False) == before


def test_send_that_omits_a_head_of_chain_is_refused(
    server: LiveServer, read: dict[str, Any]
) -> None:
    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        r = send(gp, send_from(read, lambda b: drop(b, "Myalepta")))
    assert r.status_code == 422
    message = r.json()["issue"][0]["diagnostics"]
    assert "ReseptId 3443ea32-0b2c-4b61-9d41-234c2b15ef20" in message
    assert snapshot(server.db, audit=False) == before


def test_send_that_omits_an_entry_is_refused(server: LiveServer, read: dict[str, Any]) -> None:
    with server.client("gp") as gp:
        r = send(gp, send_from(read, lambda b: drop(b, "Metode")))
    assert r.status_code == 422
    assert "PLL 09aa545b-69a5-422b-e481-08dbf58895f8" in r.json()["issue"][0]["diagnostics"]


def _entry_id(read: dict[str, Any], prefix: str) -> str:
    return str(ident(statement_named(bundle_of(read), prefix), "PLL"))


def _change_natively(server: LiveServer, entry_id: str, text: str) -> None:
    with server.client("hospital-doctor") as doctor:
        r = doctor.get(f"/fhir/MedicationStatement/{entry_id}")
        resource = r.json()
        resource["dosage"] = [{"text": text}]
        r = doctor.put(
            f"/fhir/MedicationStatement/{entry_id}",
            json=resource,
            headers={"If-Match": r.headers["ETag"]},
        )
        assert r.status_code == 200, r.text


def test_concurrent_change_to_another_entry_is_merged(
    server: LiveServer, read: dict[str, Any]
) -> None:
    _change_natively(server, _entry_id(read, "Lapatinib"), "3 tabletter morgen daglig")
    # Metode, not Akamprosat: the reference marks Akamprosat packed in multidose, and
    # a new dosage of a packed entry is judged against a catalogue this test does not load
    body = send_from(read, lambda b: set_dosage(b, "Metode", "1 tablett morgen"))
    with server.client("gp") as gp:
        r = send(gp, body)
    assert r.status_code == 200, r.text
    assert entry_text(server, "Lapatinib") == "3 tabletter morgen daglig"  # theirs stands
    assert entry_text(server, "Metode") == "1 tablett morgen"  # ours is added


def test_concurrent_change_to_the_same_entry_is_refused(
    server: LiveServer, read: dict[str, Any]
) -> None:
    _change_natively(server, _entry_id(read, "Lapatinib"), "3 tabletter morgen daglig")
    before = snapshot(server.db, audit=False)
    body = send_from(
        read,
        lambda b: (
            set_dosage(b, "Lapatinib", "1 tablett morgen"),
            set_dosage(b, "Akamprosat", "1 tablett morgen"),
        ),
    )
    with server.client("gp") as gp:
        r = send(gp, body)
    assert r.status_code == 409, r.text
    message = r.json()["issue"][0]["diagnostics"]
    assert "your $getMedication showed version 1" in message
    assert snapshot(server.db, audit=False) == before  # not even the other entry's change


def test_send_follows_the_access_rules(server: LiveServer, read: dict[str, Any]) -> None:
    before = snapshot(server.db, audit=False)
    with server.client("nurse") as nurse:
        r = send(nurse, send_from(read, lambda b: set_dosage(b, "Lapatinib", "2 tabletter")))
    assert r.status_code == 403
    assert snapshot(server.db, audit=False) == before


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"resourceType": "Patient"}, 400, "Parameters"),
        ({"resourceType": "Parameters", "parameter": []}, 400, "medication"),
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    {
                        "name": "medication",
                        "resource": {"resourceType": "Bundle", "type": "collection"},
                    }
                ],
            },
            400,
            "document",
        ),
    ],
)
def test_bad_sends_say_what_is_wrong(
    server: LiveServer, body: dict[str, Any], status: int, words: str
) -> None:
    with server.client("gp") as gp:
        r = send(gp, body)
    assert r.status_code == status
    assert words in r.json()["issue"][0]["diagnostics"]


def test_send_without_relates_to_or_with_an_unknown_read(
    server: LiveServer, read: dict[str, Any]
) -> None:
    body = send_from(read)
    comp = bundle_of(body)["entry"][0]["resource"]
    comp.pop("relatesTo")
    with server.client("gp") as gp:
        r = send(gp, body)
        assert r.status_code == 400
        assert "relatesTo" in r.json()["issue"][0]["diagnostics"]
        comp["relatesTo"] = [{"code": "replaces", "targetIdentifier": {"value": "no-such-read"}}]
        r = send(gp, body)
    assert r.status_code == 422
    assert "no-such-read" in r.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"SamtykkeKjernejournal": {"valueCode": "LOL"}}, "SamtykkeKjernejournal"),
        ({"historyTimestamp": {"valueDateTime": "yesterday"}}, "parameter[1].valueDateTime"),
        ({"whatever": {"valueString": "x"}}, "Unknown parameter"),
    ],
)
def test_bad_reads_say_what_is_wrong(
    server: LiveServer, read: dict[str, Any], extra: dict[str, Any], words: str
) -> None:
    with server.client("gp") as gp:
        r = get_medication(gp, **extra)
    assert r.status_code == 400
    issue = r.json()["issue"][0]
    assert words in issue["diagnostics"] + " ".join(issue.get("expression", []))


def test_read_states_its_basis_and_is_logged(server: LiveServer, read: dict[str, Any]) -> None:
    with server.client("hospital-doctor", basis=None) as doctor:
        refused = get_medication(doctor)
        assert refused.status_code == 403
        allowed = get_medication(doctor, SamtykkeKjernejournal={"valueCode": "HPAKUTT"})
    assert allowed.status_code == 200, allowed.text
    from pll.store.schema import audit_event

    with server.db.read() as conn:
        rows = conn.execute(
            sa.select(audit_event.c.action, audit_event.c.basis, audit_event.c.outcome).where(
                audit_event.c.action == "getMedication"
            )
        ).all()
    assert ("getMedication", "HPAKUTT", "0") in [tuple(r) for r in rows]


# -- lists PLL kept itself, and the checks on a send ------------------------------------------


def _native_list(server: LiveServer) -> str:
    """A list made through the native API: structured dosage, a period, an indication, a
    prescription linked to its entry, and one with no entry. Returns the fødselsnummer."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
        ref = f"Patient/{pid}"
        rx = ok(
            gp.post(
                "/fhir/MedicationRequest", json=prescription(ref, "Metformin tab 500 mg", "A10BA02")
            ),
            201,
        )
        entry = statement(
            ref,
            "Metformin tab 500 mg",
            "A10BA02",
            1,
            "MORN",
            "EVE",
            based_on=[f"MedicationRequest/{rx['id']}"],
        )
        entry["effectivePeriod"] = {"start": "2026-01-01"}
        entry["reasonCode"] = [{"text": "Diabetes type 2"}]
        entry["category"] = {
            "coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.9101", "code": "1"}]
        }
        ok(gp.post("/fhir/MedicationStatement", json=entry), 201)
        ok(
            gp.post(
                "/fhir/MedicationStatement", json=statement(ref, "Amlodipin tab 5 mg", "C08CA01")
            ),
            201,
        )
        ok(
            gp.post(
                "/fhir/MedicationRequest", json=prescription(ref, "Sertralin tab 50 mg", "N06AB06")
            ),
            201,
        )
        # what SFM cannot say exactly: a period with a time and an end, a SNOMED coding,
        # a coded indication, and no dosage of its own (the prescription's is shown)
        rx2 = ok(
            gp.post(
                "/fhir/MedicationRequest",
                json=prescription(ref, "Levaxin tab 50 mikrog", "H03AA01"),
            ),
            201,
        )
        lossy = statement(
            ref, "Levaxin tab 50 mikrog", "H03AA01", based_on=[f"MedicationRequest/{rx2['id']}"]
        )
        del lossy["dosage"]
        lossy["medicationCodeableConcept"]["coding"].append(
            {"system": "http://snomed.info/sct", "code": "376999003"}
        )
        lossy["effectivePeriod"] = {"start": "2026-03-01T08:00:00+01:00", "end": "2026-09-01"}
        lossy["reasonCode"] = [
            {
                "coding": [
                    {
                        "system": "urn:oid:2.16.578.1.12.4.1.1.7170",
                        "code": "T86",
                        "display": "Hypotyreose",
                    }
                ]
            }
        ]
        ok(gp.post("/fhir/MedicationStatement", json=lossy), 201)
    return fnr


def test_a_list_kept_in_pll_reads_as_sfm_and_an_unchanged_send_changes_nothing(
    server: LiveServer,
) -> None:
    fnr = _native_list(server)
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))
        validate(read, "Parameters")
        shown = by_key(bundle_of(read))
        assert sorted(f["name"] for f in shown.values()) == [
            "Amlodipin tab 5 mg",
            "Levaxin tab 50 mikrog",
            "Metformin tab 500 mg",
            "Sertralin tab 50 mg",
        ]
        metformin = next(f for f in shown.values() if f["name"].startswith("Metformin"))
        assert metformin["dosage"] == "1 tablett morgen og kveld"  # written from the structure
        assert (metformin["use"], metformin["area"], metformin["effective"]) == (
            "1",
            "Diabetes type 2",
            "2026-01-01",
        )
        assert metformin["typeresept"] == "E"
        assert metformin["rfstatus"] == "E"
        sertralin = next(f for f in shown.values() if f["name"].startswith("Sertralin"))
        assert sertralin["pll"] is None  # a prescription not on the list, as SFM shows it
        before = snapshot(server.db, audit=False)
        r = send(gp, send_from(read))
    assert r.status_code == 200, r.text
    after = snapshot(server.db, audit=False)
    assert {k: v for k, v in after.items() if k != "sfm_read"} == {
        k: v for k, v in before.items() if k != "sfm_read"
    }


def test_a_send_keeps_what_sfm_cannot_say(server: LiveServer) -> None:
    """Pausing an entry through SFM keeps its structured dosage, period and indication."""
    fnr = _native_list(server)
    with server.client("gp") as gp:
        read = ok(get_medication(gp, fnr))

        def pause(bundle: dict[str, Any]) -> None:
            metformin = statement_named(bundle, "Metformin")
            metformin["status"] = "on-hold"
            metformin["dosage"][0]["patientInstruction"] = "Tas med mat"

        ok(send(gp, send_from(read, pause)))
        pid = gp.get("/fhir/Patient", params={"identifier": f"{FNR_SYSTEM}|{fnr}"}).json()["entry"][
            0
        ]["resource"]["id"]
        entries = gp.get("/fhir/MedicationStatement", params={"patient": pid}).json()["entry"]
    metformin = next(
        e["resource"]
        for e in entries
        if e["resource"]["medicationCodeableConcept"]["text"].startswith("Metformin")
    )
    assert metformin["status"] == "on-hold"
    assert metformin["dosage"][0]["timing"]["repeat"]["when"] == ["MORN", "EVE"]
    assert metformin["dosage"][0]["patientInstruction"] == "Tas med mat"
    assert metformin["effectivePeriod"] == {"start": "2026-01-01"}
    assert metformin["reasonCode"] == [{"text": "Diabetes type 2"}]


def _prescribe_new(bundle: dict[str, Any], drug: tuple[str, str, str]) -> str:
    """Add a new prescription to a send as a journal system does: a Medication and a
    statement flagged createeresept with a new ReseptId."""
    varenr, atc, name = drug
    resept, med = str(uuid.uuid4()), str(uuid.uuid4())
    patient_ref = bundle["entry"][0]["resource"]["subject"]
    bundle["entry"] += [
        {
            "fullUrl": f"urn:uuid:{med}",
            "resource": {
                "resourceType": "Medication",
                "code": {
                    "coding": [
                        {
                            "system": "http://ehelse.no/fhir/CodeSystem/FEST",
                            "code": varenr,
                            "display": name,
                        },
                        {"system": "http://www.whocc.no/atc", "code": atc},
                    ]
                },
            },
        },
        {
            "fullUrl": f"urn:uuid:{resept}",
            "resource": {
                "resourceType": "MedicationStatement",
                "extension": [
                    {
                        "url": f"{SD}/sfm-reseptamendment",
                        "extension": [
                            {"url": "createeresept", "valueBoolean": True},
                            {"url": "dssn", "valueString": "1 tablett morgen og kveld i 7 dager"},
                            {"url": "reit", "valueString": "0"},
                        ],
                    }
                ],
                "identifier": [{"use": "usual", "type": {"text": "ReseptId"}, "value": resept}],
                "status": "active",
                "medicationReference": {"reference": f"urn:uuid:{med}", "display": name},
                "subject": patient_ref,
                "dosage": [{"text": "1 tablett morgen og kveld i 7 dager"}],
            },
        },
    ]
    bundle["entry"][0]["resource"]["section"][0].setdefault("entry", []).append(
        {"reference": f"urn:uuid:{resept}"}
    )
    return resept


def test_a_send_gets_the_same_checks_as_any_change(server: LiveServer) -> None:
    import io

    from pll.catalog.importer import import_fest

    small = Path(__file__).resolve().parents[1] / "fixtures" / "fest" / "small.xml"
    import_fest(
        server.db,
        io.BytesIO(small.read_bytes()),
        "small.xml",
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )
    fnr = new_fnr()
    simva = ("046321", "C10AA01", "Simvastatin Fjordpharma Tab 20 mg")
    clarithro = ("173456", "J01FA09", "Klaritromycin Fjordpharma Tab 500 mg")
    with server.client("gp") as gp:
        new_patient_with_list(gp, fnr)
        first = ok(get_medication(gp, fnr))
        ok(send(gp, send_from(first, lambda b: _prescribe_new(b, simva))))
        read = ok(get_medication(gp, fnr))
        body = send_from(read, lambda b: _prescribe_new(b, clarithro))
        before = snapshot(server.db, audit=False)
        r = send(gp, body)
        assert r.status_code == 422, r.text
        assert "X-PLL-Override" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        codes = next(
            i["diagnostics"]
            for i in r.json()["issue"]
            if "X-PLL-Override-Findings" in i["diagnostics"]
        )
        findings = codes.rsplit("X-PLL-Override-Findings: ", 1)[1].split(". Both")[0]
        r = send(
            gp, body, headers={"X-PLL-Override": "Kort kur", "X-PLL-Override-Findings": findings}
        )
    assert r.status_code == 200, r.text
    assert r.headers["X-PLL-Findings"] != "0"


def test_a_send_is_audited_and_raises_an_event(server: LiveServer, read: dict[str, Any]) -> None:
    from pll.store.schema import audit_event

    with server.db.read() as conn:
        events_before = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
    with server.client("gp") as gp:
        ok(send(gp, send_from(read, lambda b: set_dosage(b, "Lapatinib", "2 tabletter"))))
    with server.db.read() as conn:
        events = conn.execute(sa.select(outbox.c.kind).order_by(outbox.c.id)).scalars().all()
        writes = (
            conn.execute(sa.select(audit_event.c.actor).where(audit_event.c.action == "update"))
            .scalars()
            .all()
        )
    assert len(events) == events_before + 1
    assert events[-1] == "list-changed"
    assert any("9144889" in actor for actor in writes)


def test_a_send_must_relate_to_a_read_of_the_same_client_system(
    server: LiveServer, read: dict[str, Any]
) -> None:
    from pll.auth.access import Access, Basis
    from pll.domain.errors import RuleRefused
    from pll.domain.model import Author, Role

    other = Access(
        Author("Kari Fastlege", Role.DOCTOR, hpr="9144889"), Basis.TREATMENT, "another-system"
    )
    before = snapshot(server.db, audit=False)
    body = send_from(read, lambda b: set_dosage(b, "Lapatinib", "2 tabletter"))
    with pytest.raises(RuleRefused, match="another client system"):
        SfmService(server.service).send_medication(other, body)
    assert snapshot(server.db, audit=False) == before


def test_a_renewal_chain_survives_export_and_import(
    server: LiveServer, read: dict[str, Any]
) -> None:
    """What PLL writes as SFM, PLL reads back: a chain exported after a renewal, imported
    into an empty PLL, reads out the same (head, older link, their link both ways)."""
    from tests.conftest import empty_tables

    new_id = str(uuid.uuid4())
    old_id = "26e1fef6-3c6b-4558-a009-22c7e4b6970f"

    def renew(bundle: dict[str, Any]) -> None:
        renewed(bundle, "Lapatinib", old_id, new_id, "3")

    since = {"valueDateTime": "2023-01-01T00:00:00+01:00"}
    with server.client("gp") as gp:
        ok(send(gp, send_from(read, renew)))
        exported = ok(get_medication(gp, historyTimestamp=since))
    empty_tables(server.db)
    done = imported(server, exported)
    assert (done.entries, done.prescriptions) == (9, 10)  # the reference's and the renewal
    with server.client("gp") as gp:
        again = bundle_of(ok(get_medication(gp, historyTimestamp=since)))
    same_statements(by_key(again), by_key(bundle_of(exported)))
    head = statement_named(again, "Lapatinib")
    older = resources(again)[head["basedOn"][0]["reference"]]
    assert ident(older, "ReseptId") == old_id
    assert older["status"] == "completed"
    assert resources(again)[older["partOf"][0]["reference"]] is head


def test_a_client_chooses_the_pll_id_of_what_it_puts_on_the_list(
    server: LiveServer, read: dict[str, Any]
) -> None:
    """SFM clients give a medicine its PLL id when they put it on the list, also a
    prescription that was not on it (Myalepta in the reference)."""
    chosen = str(uuid.uuid4())

    def put_on_list(bundle: dict[str, Any]) -> None:
        statement_named(bundle, "Myalepta")["identifier"].append(
            {"use": "usual", "type": {"text": "PLL"}, "value": chosen}
        )

    with server.client("gp") as gp:
        ok(send(gp, send_from(read, put_on_list)))
        shown = by_key(bundle_of(ok(get_medication(gp))))
    assert (chosen, "3443ea32-0b2c-4b61-9d41-234c2b15ef20") in shown
    assert (None, "3443ea32-0b2c-4b61-9d41-234c2b15ef20") not in shown


def test_a_recall_of_a_prescription_changed_since_the_read_is_refused(
    server: LiveServer, read: dict[str, Any]
) -> None:
    lapatinib = "26e1fef6-3c6b-4558-a009-22c7e4b6970f"
    with server.client("hospital-doctor") as doctor:
        r = doctor.get(f"/fhir/MedicationRequest/{lapatinib}")
        recalled = {**r.json(), "status": "stopped", "statusReason": {"text": "Feil styrke"}}
        ok(
            doctor.put(
                f"/fhir/MedicationRequest/{lapatinib}",
                json=recalled,
                headers={"If-Match": r.headers["ETag"]},
            )
        )

    def recall(bundle: dict[str, Any]) -> None:
        amendment_of(statement_named(bundle, "Lapatinib"))["extension"].append(recallinfo("4"))

    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        r = send(gp, send_from(read, recall))
    assert r.status_code == 409, r.text
    assert "after your $getMedication" in r.json()["issue"][0]["diagnostics"]
    assert snapshot(server.db, audit=False) == before


def test_the_first_send_creates_the_pll(server: LiveServer) -> None:
    fnr = new_fnr()
    simva = ("046321", "C10AA01", "Simvastatin Fjordpharma Tab 20 mg")
    chosen: list[str] = []
    with server.client("gp") as gp:
        ok(gp.post("/fhir/Patient", json=patient(fnr)), 201)
        first = ok(get_medication(gp, fnr))
        assert (
            "entry" not in first["parameter"][0]["resource"]["entry"][0]["resource"]["section"][0]
        )
        r = send(gp, send_from(first, lambda b: chosen.append(_prescribe_new(b, simva))))
        assert r.status_code == 200, r.text
        assert r.headers["X-PLL-List-Version"] == "1"
        shown = by_key(bundle_of(ok(get_medication(gp, fnr))))
    [(pll, rid)] = shown
    assert rid == chosen[0]
    assert pll is not None
    assert shown[(pll, rid)]["rfstatus"] == "E"  # a new prescription is dispensable


def test_reads_are_kept_per_user_of_a_client_system(
    server: LiveServer, read: dict[str, Any]
) -> None:
    """Another doctor on the same journal system reading the list does not make this
    doctor's read stale, and cannot send on it."""
    with server.client("hospital-doctor") as doctor:
        ok(get_medication(doctor))
        r = send(doctor, send_from(read))
        assert r.status_code == 422
        assert "another user" in r.json()["issue"][0]["diagnostics"]
    with server.client("gp") as gp:
        ok(send(gp, send_from(read, lambda b: set_dosage(b, "Lapatinib", "2 tabletter"))))


def test_the_same_entry_twice_in_a_send_is_refused(
    server: LiveServer, read: dict[str, Any]
) -> None:
    def twice(bundle: dict[str, Any]) -> None:
        medication = bundle["entry"][0]["resource"]["section"][0]
        medication["entry"].append(copy.deepcopy(medication["entry"][1]))

    with server.client("gp") as gp:
        r = send(gp, send_from(read, twice))
    assert r.status_code == 400
    assert "twice" in r.json()["issue"][0]["diagnostics"]


def _lapatinib_extension(bundle: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return ext(statement_named(bundle, "Lapatinib"), url)


def test_wrong_types_in_sfm_extensions_are_refused_not_crashes(
    server: LiveServer, read: dict[str, Any]
) -> None:
    def odd_start(bundle: dict[str, Any]) -> None:
        start = _lapatinib_extension(bundle, "effectiveDateTime")[0]
        start.pop("valueDate")
        start["valueString"] = "sometime"

    def odd_reason(bundle: dict[str, Any]) -> None:
        statement_named(bundle, "Lapatinib")["status"] = "stopped"
        statement_named(bundle, "Lapatinib")["extension"].append(
            {
                "url": f"{SD}/sfm-discontinuation",
                "extension": [
                    {"url": "timedate", "valueDateTime": "2024-01-25T12:40:00+01:00"},
                    {"url": "reason", "valueString": "because"},
                ],
            }
        )

    def odd_role(bundle: dict[str, Any]) -> None:
        for reg in _lapatinib_extension(bundle, f"{SD}/sfm-regInfo"):
            for part in reg["extension"]:
                if part["url"] in ("type", "provider"):
                    part.pop("valueCodeableConcept", None)
                    part.pop("valueReference", None)
                    part["valueString"] = "x"

    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        for edit in (odd_start, odd_reason):
            r = send(gp, send_from(read, edit))
            assert r.status_code == 400, r.text
            assert "Bundle.entry[" in r.json()["issue"][0]["diagnostics"]
        assert snapshot(server.db, audit=False) == before
        r = send(gp, send_from(read, odd_role))  # an unreadable role is no role, not a crash
        assert r.status_code == 200, r.text
        r = gp.post(
            "/fhir/Patient/$getMedication", json={"resourceType": "Parameters", "parameter": "x"}
        )
        assert r.status_code == 400
