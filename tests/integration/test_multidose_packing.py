"""An entry marked for multidose packing must be packable (issue 18: "Mange feil knyttet til
forskrivningsmetode for multidose"): a solid oral form from FEST, a structured dosage at fixed
times of day, an active prescription. Refused with the reason at the REST API, in
``$sendMedication`` and in the pharmacy's proposals (M25.2), over real HTTP on both
databases; a refusal changes nothing, and only what a change brings is judged.

The catalogue is ``tests/fixtures/fest/multidose.xml``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pll.domain.multidose import ADMINISTRATION, PACKED
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import (
    CAPSULE,
    DRUGS,
    EFFERVESCENT,
    LIQUID,
    ORODISPERSIBLE,
    dose,
    fest_coded,
    multidose_catalogue,
    new_patient_with_list,
    ok,
    outcome_text,
    prescribed,
    prescription,
    statement,
)
from tests.integration.test_multidose import items_of, new_item, params
from tests.integration.test_sfm import (
    _prescribe_new,
    bundle_of,
    get_medication,
    set_dosage,
    statement_named,
)
from tests.integration.test_sfm_dosing import MORNING, dosed, new_pll, repeating, sent

MARK = [{"url": ADMINISTRATION, "extension": [{"url": PACKED, "valueBoolean": True}]}]
UNMARK = [{"url": ADMINISTRATION, "extension": [{"url": PACKED, "valueBoolean": False}]}]
METFORMIN = DRUGS[0]
TABLET = ("520001", METFORMIN[1], METFORMIN[0])
EVERY_8_HOURS = [
    {
        "timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
    }
]
AS_NEEDED = [
    {
        "asNeededBoolean": True,
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
    }
]


@pytest.fixture
def gp(server: LiveServer) -> Any:
    multidose_catalogue(server.db)
    with server.client("gp") as client:
        yield client


#: the dose unit of each form of the catalogue (the unit checks refuse any other)
UNITS = {CAPSULE[0]: "kapsel", LIQUID[0]: "ml"}


def _prescribed(
    gp: httpx.Client,
    pid: str,
    drug: tuple[str, str, str] | None,
    status: str | None,
    dosage: list[dict[str, Any]] | None = None,
) -> list[str]:
    """The prescription a marked entry is based on, dosed as the entry, left in ``status``
    (``None``: none)."""
    if status is None:
        return []
    code, atc, name = drug or (None, METFORMIN[1], METFORMIN[0])
    request = prescription(f"Patient/{pid}", name, atc)
    request["dosageInstruction"] = dosage or dose(1, "MORN", unit=UNITS.get(code or "", "tablett"))
    if code is not None:
        fest_coded(request, code)
    made = ok(gp.post("/fhir/MedicationRequest", json=request), 201)
    if status not in ("active", "expired"):
        made["status"] = status
        ok(
            gp.put(
                f"/fhir/MedicationRequest/{made['id']}",
                json=made,
                headers={"If-Match": f'W/"{made["meta"]["versionId"]}"'},
            )
        )
    return [f"MedicationRequest/{made['id']}"]


def _marked(
    gp: httpx.Client,
    pid: str,
    based_on: list[str],
    *,
    drug: tuple[str, str, str] | None = None,
    dosage: list[dict[str, Any]] | None = None,
    rx: str | None = "active",
) -> httpx.Response:
    """POST a marked entry of ``drug`` (Varenr, ATC, name; ``None``: Metformin named by ATC
    only), dosed ``dosage`` (one in the morning unless given), ``based_on`` these."""
    code, atc, name = drug or (None, METFORMIN[1], METFORMIN[0])
    body = statement(f"Patient/{pid}", name, atc)
    body["dosage"] = dosage or dose(1, "MORN", unit=UNITS.get(code or "", "tablett"))
    if code is not None:
        fest_coded(body, code)
    if based_on:
        body["basedOn"] = [{"reference": r} for r in based_on]
    body["extension"] = MARK
    return gp.post("/fhir/MedicationStatement", json=body)


def test_tablets_and_capsules_on_a_prescription_at_fixed_times_are_packed(
    server: LiveServer, gp: httpx.Client
) -> None:
    pid, _ = new_patient_with_list(gp)
    tablet = prescribed(gp, pid, *METFORMIN, extension=MARK, when=("MORN", "EVE"))
    assert tablet["extension"] == MARK
    capsule = ok(_marked(gp, pid, _prescribed(gp, pid, CAPSULE, "active"), drug=CAPSULE), 201)
    assert capsule["extension"] == MARK


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ({"drug": EFFERVESCENT}, "its form (Brusetablett) is not a solid form"),
        ({"drug": ORODISPERSIBLE}, "its form (Smeltetablett)"),
        (
            {"drug": LIQUID, "dosage": dose(10, "MORN", unit="ml")},
            "its form (Mikstur, oppløsning)",
        ),
        ({}, "not known from FEST"),
        ({"drug": TABLET, "dosage": AS_NEEDED}, "dosed as needed"),
        ({"drug": CAPSULE, "dosage": [{"text": "1 kapsel morgen"}]}, "free text"),
        ({"drug": TABLET, "dosage": EVERY_8_HOURS}, "names no times of day"),
        ({"drug": CAPSULE, "rx": None}, "based on no prescription"),
        ({"drug": CAPSULE, "rx": "expired"}, "none of its prescriptions is active"),
    ],
)
def test_what_cannot_be_packed_is_refused_with_the_reason(
    server: LiveServer,
    gp: httpx.Client,
    clock: Clock,
    case: dict[str, Any],
    words: str,
) -> None:
    pid, _ = new_patient_with_list(gp)
    based_on = _prescribed(gp, pid, case.get("drug"), case.get("rx", "active"), case.get("dosage"))
    if case.get("rx") == "expired":  # a year and more later, the prescription has expired
        clock.advance(days=400)
    before = snapshot(server.db, audit=False)
    r = _marked(gp, pid, based_on, **case)
    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "business-rule"
    assert issue["expression"] == ["MedicationStatement.extension"]
    assert "is marked as packed in multidose (mddispensed), but" in issue["diagnostics"]
    assert words in issue["diagnostics"]
    assert snapshot(server.db, audit=False) == before


def test_only_what_a_change_brings_is_judged(server: LiveServer, gp: httpx.Client) -> None:
    """A recall of a packed entry's prescription is never blocked, nor is a change that
    does not touch what the rule judges; the next change of its dosage is, until the mark
    is taken off."""
    pid, _ = new_patient_with_list(gp)
    entry = prescribed(gp, pid, *METFORMIN, extension=MARK)
    rx_id = entry["basedOn"][0]["reference"].split("/")[1]
    rx = ok(gp.get(f"/fhir/MedicationRequest/{rx_id}"))
    rx.update(status="stopped", statusReason={"text": "Tilbakekalt"})
    ok(gp.put(f"/fhir/MedicationRequest/{rx_id}", json=rx, headers={"If-Match": 'W/"1"'}))

    def put(changes: dict[str, Any]) -> httpx.Response:
        current = ok(gp.get(f"/fhir/MedicationStatement/{entry['id']}"))
        version = current["meta"]["versionId"]
        return gp.put(
            f"/fhir/MedicationStatement/{entry['id']}",
            json={**current, **changes},
            headers={"If-Match": f'W/"{version}"'},
        )

    ok(put({"note": [{"text": "Tas med mat"}]}))  # the rule's facts unchanged: not judged
    ok(gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[2])), 201)
    before = snapshot(server.db, audit=False)
    r = put({"dosage": dose(2, "MORN")})
    assert r.status_code == 422, r.text
    assert "none of its prescriptions is active" in outcome_text(r)
    assert f"MedicationStatement/{entry['id']}" in outcome_text(r)
    assert snapshot(server.db, audit=False) == before
    ok(put({"dosage": dose(2, "MORN"), "extension": UNMARK}))  # taken out of the bags


def test_marking_an_entry_judges_it(server: LiveServer, gp: httpx.Client) -> None:
    pid, _ = new_patient_with_list(gp)
    entry = prescribed(gp, pid, *METFORMIN)
    assert "extension" not in entry
    changed = {**entry, "extension": MARK, "dosage": AS_NEEDED}
    r = gp.put(
        f"/fhir/MedicationStatement/{entry['id']}", json=changed, headers={"If-Match": 'W/"1"'}
    )
    assert r.status_code == 422, r.text
    assert "dosed as needed" in outcome_text(r)
    changed["dosage"] = entry["dosage"]
    marked = ok(
        gp.put(
            f"/fhir/MedicationStatement/{entry['id']}", json=changed, headers={"If-Match": 'W/"1"'}
        )
    )
    assert marked["extension"] == MARK


# -- the pharmacy's proposals (M25.2) --------------------------------------------------------


def _register(gp: httpx.Client, pid: str) -> None:
    pharmacy = {
        "name": "pharmacy",
        "valueReference": {
            "identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.101", "value": "985563756"},
            "display": "Apotek 1 Bergen multidose",
        },
    }
    ok(gp.post(f"/fhir/Patient/{pid}/$multidose-register", json=params(pharmacy)))


def test_a_proposal_to_pack_what_cannot_be_packed_is_refused(
    server: LiveServer, gp: httpx.Client
) -> None:
    pid, list_id = new_patient_with_list(gp)
    _register(gp, pid)
    ref = f"Patient/{pid}"
    rx = ok(gp.post("/fhir/MedicationRequest", json=fest_coded(prescription(ref, *DRUGS[3]))), 201)
    entry = prescribed(gp, pid, *METFORMIN, extension=MARK)
    with server.client("pharmacist") as pharmacist:
        before = snapshot(server.db, audit=False)
        # a new medicine packed, on no prescription
        r = pharmacist.post(
            f"/fhir/List/{list_id}/$propose",
            json=params(new_item(pid, *DRUGS[4], based_on="MedicationRequest/none")),
        )
        assert r.status_code == 422, r.text
        issue = r.json()["issue"][0]
        assert issue["expression"] == ["Parameters.parameter[0].statement.extension"]
        assert "The new entry is marked as packed" in issue["diagnostics"]
        assert "based on no prescription" in issue["diagnostics"]
        # a packed entry changed to as needed
        change = {k: v for k, v in entry.items() if k != "meta"}
        change["dosage"] = AS_NEEDED
        item = {
            "name": "item",
            "part": [
                {"name": "action", "valueCode": "change"},
                {
                    "name": "entry",
                    "valueReference": {
                        "reference": f"MedicationStatement/{entry['id']}/_history/1"
                    },
                },
                {"name": "statement", "resource": change},
                {"name": "reason", "valueString": "Pasienten tar den bare ved behov"},
            ],
        }
        r = pharmacist.post(f"/fhir/List/{list_id}/$propose", json=params(item))
        assert r.status_code == 422, r.text
        assert "dosed as needed" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before

        # a new medicine packed on the patient's active prescription: proposed, accepted
        good = new_item(pid, *DRUGS[3], based_on=f"MedicationRequest/{rx['id']}")
        (proposed,) = items_of(
            ok(pharmacist.post(f"/fhir/List/{list_id}/$propose", json=params(good)))
        )
    decision = {
        "name": "decision",
        "part": [
            {"name": "item", "valueString": proposed["id"]},
            {"name": "outcome", "valueCode": "accept"},
        ],
    }
    (accepted,) = items_of(ok(gp.post(f"/fhir/List/{list_id}/$decide", json=params(decision))))
    made = ok(gp.get(f"/fhir/{accepted['result']['reference']}"))
    assert made["extension"] == MARK


# -- $sendMedication ---------------------------------------------------------------------------


def instructed(bundle: dict[str, Any], prefix: str, text: str) -> None:
    """A send's edit: the statement's patient instruction (no new dose)."""
    statement_named(bundle, prefix)["dosage"][0]["patientInstruction"] = text


SFM_METFORMIN = ("520001", "A10BA02", "Metformin Fjordpharma Tab 500 mg")
SFM_MARK = {
    "url": "http://ehelse.no/fhir/StructureDefinition/sfm-administration",
    "extension": [{"url": "mddispensed", "valueBoolean": True}],
}


def _packed_prescribing(drug: tuple[str, str, str], text: str, *doses: dict[str, Any]) -> Any:
    """A send's edit: a new prescription of ``drug`` marked packed in multidose."""

    def edit(bundle: dict[str, Any]) -> None:
        resept = _prescribe_new(bundle, drug)
        st = dosed(bundle, resept, text, *doses)
        st["extension"].append(SFM_MARK)
        if not doses:  # the e-resept dosing left out: the dosage is the text alone
            amendment = st["extension"][0]
            amendment["extension"] = [
                x for x in amendment["extension"] if x["url"] != "ereseptdosing"
            ]

    return edit


def test_send_medication_refuses_to_pack_what_cannot_be_packed(server: LiveServer) -> None:
    multidose_catalogue(server.db)
    patient = new_pll(server)
    morning = repeating(1, "tablett", (1, "Døgn"), MORNING)
    for edit, words in (
        (_packed_prescribing(EFFERVESCENT, "1 brusetablett morgen", morning), "Brusetablett"),
        (_packed_prescribing(SFM_METFORMIN, "1 tablett morgen"), "free text"),
        (
            _packed_prescribing(
                SFM_METFORMIN, "1 tablett daglig", repeating(1, "tablett", (1, "Døgn"), None)
            ),
            "names no times of day",
        ),
    ):
        r, _body = sent(server, patient["fnr"], edit)
        assert r.status_code == 422, r.text
        issue = r.json()["issue"][0]
        assert issue["code"] == "business-rule"
        assert words in issue["diagnostics"]
        where = issue["expression"][0]
        assert where.startswith("Bundle.entry[")
        assert where.endswith("].resource.extension")

    r, _ = sent(
        server, patient["fnr"], _packed_prescribing(SFM_METFORMIN, "1 tablett morgen", morning)
    )
    assert r.status_code == 200, r.text
    with server.client("gp") as gp:
        bundle = bundle_of(ok(get_medication(gp, patient["fnr"])))
    shown = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement"
        and any(x.get("url") == SFM_MARK["url"] for x in e["resource"].get("extension", []))
    ]
    assert len(shown) == 1  # the one accepted send; the refused ones left nothing

    # a new dosage text of the packed entry alone: the prescription's structured dosing says
    # the dose as it was, so the new one is free text, and refused (send a new e-resept)
    r, _ = sent(
        server, patient["fnr"], lambda b: set_dosage(b, "Metformin", "1 tablett morgen til mat")
    )
    assert r.status_code == 422, r.text
    assert "free text" in outcome_text(r)
    # a change of something else of the packed entry judges it by its prescription's
    # structured dosing (morning): accepted
    r, _ = sent(server, patient["fnr"], lambda b: instructed(b, "Metformin", "Tas med mat"))
    assert r.status_code == 200, r.text


# -- the mark says one thing (review of issue 18) ------------------------------------------------

TWICE = {
    "mddispensed-twice": [
        {
            "url": ADMINISTRATION,
            "extension": [
                {"url": PACKED, "valueBoolean": False},
                {"url": PACKED, "valueBoolean": True},
            ],
        }
    ],
    "administration-twice": [*UNMARK, *MARK],
}


@pytest.mark.parametrize("extension", TWICE.values(), ids=TWICE.keys())
def test_a_mark_given_twice_is_refused(
    server: LiveServer, gp: httpx.Client, extension: list[dict[str, Any]]
) -> None:
    """A liquid dosed as needed, marked 'not packed' then 'packed': one reader would take
    the first mark, the pharmacy perhaps the second. The mark must say one thing (400)."""
    pid, _ = new_patient_with_list(gp)
    based_on = _prescribed(gp, pid, LIQUID, "active")
    body = fest_coded(statement(f"Patient/{pid}", LIQUID[2], LIQUID[1]), LIQUID[0])
    body["basedOn"] = [{"reference": r} for r in based_on]
    body["dosage"] = [
        {"asNeededBoolean": True, "doseAndRate": [{"doseQuantity": {"value": 10, "unit": "ml"}}]}
    ]
    body["extension"] = extension
    before = snapshot(server.db, audit=False)
    r = gp.post("/fhir/MedicationStatement", json=body)
    assert r.status_code == 400, r.text
    assert "more than once" in outcome_text(r)
    assert r.json()["issue"][0]["expression"] == ["MedicationStatement.extension"]
    assert snapshot(server.db, audit=False) == before


def test_send_medication_refuses_a_mark_given_twice(server: LiveServer) -> None:
    multidose_catalogue(server.db)
    patient = new_pll(server)
    morning = repeating(1, "tablett", (1, "Døgn"), MORNING)
    marked_twice = _packed_prescribing(SFM_METFORMIN, "1 tablett morgen", morning)

    def edit(bundle: dict[str, Any]) -> None:
        marked_twice(bundle)
        for e in bundle["entry"]:
            exts = e["resource"].get("extension", [])
            if SFM_MARK in exts:
                exts.append(SFM_MARK)

    r, _ = sent(server, patient["fnr"], edit)
    assert r.status_code == 400, r.text
    assert "more than once" in outcome_text(r)
    with server.client("gp") as gp:
        bundle = bundle_of(ok(get_medication(gp, patient["fnr"])))
    assert not [e for e in bundle["entry"] if SFM_MARK in e["resource"].get("extension", [])]


def test_free_text_dosage_is_not_packed_even_on_a_structured_prescription(
    server: LiveServer, gp: httpx.Client
) -> None:
    """Issue 18: 'not free text'. Over REST (and in the web UI) the entry states its own
    dosage: 'ved behov' as text is refused even when the prescription it is based on has a
    structured morning dose (only an SFM send, whose statement keeps the dosage as text
    beside the e-resept's dosing, is judged by the prescription's)."""
    pid, _ = new_patient_with_list(gp)
    based_on = _prescribed(gp, pid, TABLET, "active")
    before = snapshot(server.db, audit=False)
    r = _marked(
        gp, pid, based_on, drug=TABLET, dosage=[{"text": "1 tablett ved behov, høyst 3 i døgnet"}]
    )
    assert r.status_code == 422, r.text
    assert "free text" in outcome_text(r)
    assert snapshot(server.db, audit=False) == before
