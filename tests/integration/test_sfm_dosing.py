"""An SFM Basis ``$sendMedication`` is dose-checked like every other change (issue 16, DESIGN
§3 rule 6): the structured e-resept dosing a statement carries (``ereseptdosing``) is judged
beside its dosage text, so a unit that does not fit the drug's form is refused, and an
implausible amount or methotrexate dosed more than weekly needs the same override as at the
REST API — over real HTTP, on both databases. What PLL keeps and shows is what was sent.
The catalogue is ``tests/fixtures/fest/dose.xml`` (a cream, methotrexate and a tablet)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pll.catalog.importer import import_fest
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import new_fnr, new_patient_with_list, ok, outcome_text
from tests.integration.test_dose_safety import (
    DOSE_FEST,
    LYA,
    MTX,
    PARACET,
    WHY,
    finding_kinds,
    kept_overrides,
    override,
)
from tests.integration.test_sfm import (
    SD,
    _prescribe_new,
    bundle_of,
    get_medication,
    send,
    send_from,
)

TIME_RANGE = "urn:oid:2.16.578.1.12.4.1.1.8325"
MORNING, NOON, EVENING = ("1", "Morgen"), ("3", "Midt på dagen"), ("5", "Kveld")


def repeating(
    amount: float, unit: str, every: tuple[float, str], at: tuple[str, str] | None
) -> dict[str, Any]:
    """One ``repeatingdosage``: ``amount`` of ``unit`` every ``every``, at a time range."""
    subs: list[dict[str, Any]] = [
        {"url": "amount", "valueQuantity": {"value": amount, "unit": unit}},
        {"url": "interval", "valueQuantity": {"value": every[0], "unit": every[1]}},
        {"url": "accurate", "valueBoolean": False},
    ]
    if at is not None:
        code, display = at
        concept = {"coding": [{"system": TIME_RANGE, "code": code, "display": display}]}
        subs.append({"url": "timerange", "valueCodeableConcept": concept})
    return {"url": "repeatingdosage", "extension": subs}


def dosed(bundle: dict[str, Any], ident: str, text: str, *doses: dict[str, Any]) -> dict[str, Any]:
    """The statement identified by ``ident`` says ``text``, structured as ``doses``."""
    st = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement"
        and any(i.get("value") == ident for i in e["resource"].get("identifier", []))
    )
    st["dosage"] = [{"text": text}]
    amendment = next(x for x in st["extension"] if x["url"] == f"{SD}/sfm-reseptamendment")
    amendment["extension"] = [x for x in amendment["extension"] if x["url"] != "dssn"]
    amendment["extension"] += [
        {"url": "dssn", "valueString": text},
        {
            "url": "ereseptdosing",
            "extension": [{"url": "starttime", "valueDate": "2026-11-22"}, *doses],
        },
    ]
    return st


def prescribing(drug: tuple[str, str, str], text: str, *doses: dict[str, Any]) -> Any:
    """A send's edit: a new prescription of ``drug`` dosed ``text``, structured as ``doses``."""

    def edit(bundle: dict[str, Any]) -> None:
        dosed(bundle, _prescribe_new(bundle, drug), text, *doses)

    return edit


def without_prescription(drug: tuple[str, str, str], text: str, *doses: dict[str, Any]) -> Any:
    """A send's edit: ``drug`` put on the list without a prescription (typeresept U)."""

    def edit(bundle: dict[str, Any]) -> None:
        resept = _prescribe_new(bundle, drug)
        st = dosed(bundle, resept, text, *doses)
        st["identifier"] = [{"use": "usual", "type": {"text": "PLL"}, "value": str(uuid.uuid4())}]
        amendment = st["extension"][0]
        amendment["extension"] = [
            x for x in amendment["extension"] if x["url"] not in ("createeresept", "reit")
        ] + [
            {
                "url": "typeresept",
                "valueCodeableConcept": {
                    "coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7491", "code": "U"}]
                },
            }
        ]

    return edit


def new_pll(server: LiveServer) -> dict[str, str]:
    """A patient with an empty list: fødselsnummer and list id."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        _, list_id = new_patient_with_list(gp, fnr)
    return {"fnr": fnr, "list": list_id}


@pytest.fixture
def pll(server: LiveServer) -> dict[str, str]:
    """A patient with an empty list, and the dose catalogue in use."""
    with DOSE_FEST.open("rb") as extract:
        import_fest(server.db, extract, DOSE_FEST.name, now=datetime(2026, 11, 22, tzinfo=UTC))
    return new_pll(server)


def sent(
    server: LiveServer, fnr: str, edit: Any, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, dict[str, Any]]:
    """The send of ``edit`` on a fresh read; refused sends must change nothing."""
    with server.client("gp") as gp:
        body = send_from(ok(get_medication(gp, fnr)), edit)
        before = snapshot(server.db, audit=False)
        r = send(gp, body, headers=headers)
        if r.status_code != 200:
            assert snapshot(server.db, audit=False) == before
    return r, body


def test_methotrexate_daily_in_structured_dosing_needs_an_override_weekly_not(
    server: LiveServer, pll: dict[str, str]
) -> None:
    # the text names 4 tablets (no finding); the structure says every day
    daily = prescribing(MTX, "4 tabletter morgen", repeating(4, "tablett", (1, "Døgn"), MORNING))
    r, body = sent(server, pll["fnr"], daily)
    assert r.status_code == 422, r.text
    assert finding_kinds(r) == {"weekly-drug-dosed-often"}
    assert (
        "Metotreksat Fjordpharma Tab 2,5 mg (metotreksat) gis normalt én gang i uken, men "
        "doseringen gir det hver dag." in outcome_text(r)
    )
    with server.client("gp") as gp:
        accepted = send(gp, body, headers=override(r))
        assert accepted.status_code == 200, accepted.text
        assert any(WHY in k and f"weekly-{MTX[0]}" in k for k in kept_overrides(gp, pll["list"]))
    # weekly, for another patient, is taken as it is: no finding
    other = new_pll(server)
    weekly = repeating(4, "tablett", (7, "Døgn"), MORNING)
    r, body = sent(server, other["fnr"], prescribing(MTX, "4 tabletter morgen hver 7. dag", weekly))
    assert r.status_code == 200, r.text
    assert r.headers["X-PLL-Findings"] == "0"
    # the structure was only judged, not stored: the next read shows the statement as sent
    with server.client("gp") as gp:
        shown = bundle_of(ok(get_medication(gp, other["fnr"])))
    statement = next(
        e["resource"]
        for e in shown["entry"]
        if e["resource"].get("resourceType") == "MedicationStatement"
    )
    assert statement["dosage"][0]["text"] == "4 tabletter morgen hver 7. dag"
    assert [x for x in statement["extension"][0]["extension"] if x["url"] == "ereseptdosing"] == [
        x
        for x in bundle_of(body)["entry"][-1]["resource"]["extension"][0]["extension"]
        if x["url"] == "ereseptdosing"
    ]


def test_a_cream_in_tablets_is_refused_where_sfm_says_it_even_with_an_override(
    server: LiveServer, pll: dict[str, str]
) -> None:
    said = "Lya Krem 0,1 % er krem, salve eller gel (Krem) og doseres i påføring, ikke i tabletter."
    tablets = repeating(3, "tablett", (1, "Døgn"), MORNING)
    forced = {"X-PLL-Override": WHY, "X-PLL-Override-Findings": f"unit-{LYA[0]}"}
    r, body = sent(server, pll["fnr"], prescribing(LYA, "3 tabletter morgen", tablets), forced)
    assert r.status_code == 422, r.text
    assert outcome_text(r) == said
    # the statement is the last entry of the Bundle; its amendment's new ereseptdosing the
    # last sub-extension, whose repeatingdosage (after starttime) holds the amount first
    st = len(bundle_of(body)["entry"]) - 1
    k = len(bundle_of(body)["entry"][st]["resource"]["extension"][0]["extension"]) - 1
    assert r.json()["issue"][0]["expression"] == [
        f"Bundle.entry[{st}].resource.extension[0].extension[{k}]"
        ".extension[1].extension[0].valueQuantity.unit"
    ]
    applied = repeating(1, "påføring", (1, "Døgn"), EVENING)
    fine, _ = sent(server, pll["fnr"], prescribing(LYA, "1 påføring kveld", applied))
    assert fine.status_code == 200, fine.text


def test_an_implausible_amount_in_structured_dosing_needs_an_override(
    server: LiveServer, pll: dict[str, str]
) -> None:
    # 8 tablets four times a day: no one amount in the text is implausible, the day's is
    four = [repeating(8, "tablett", (1, "Døgn"), at) for at in (MORNING, NOON, EVENING)]
    four.append(repeating(8, "tablett", (1, "Døgn"), ("4", "Ettermiddag")))
    text = "8 tabletter morgen, midt på dagen, ettermiddag og kveld"
    r, body = sent(server, pll["fnr"], prescribing(PARACET, text, *four))
    assert r.status_code == 422, r.text
    assert finding_kinds(r) == {"implausible-dose"}
    assert "32 tabletter per døgn; mer enn 20 tabletter per døgn er usannsynlig" in (
        outcome_text(r)
    )
    with server.client("gp") as gp:
        assert send(gp, body, headers=override(r)).status_code == 200
    sane = [repeating(2, "tablett", (1, "Døgn"), at) for at in (MORNING, NOON, EVENING)]
    fine, _ = sent(
        server,
        pll["fnr"],
        prescribing(PARACET, "2 tabletter morgen, midt på dagen og kveld", *sane),
    )
    assert fine.status_code == 200, fine.text


def test_a_medicine_without_prescription_is_judged_by_its_structure_if_it_is_exact(
    server: LiveServer, pll: dict[str, str]
) -> None:
    daily = repeating(4, "tablett", (1, "Døgn"), MORNING)
    r, _ = sent(server, pll["fnr"], without_prescription(MTX, "4 tabletter morgen", daily))
    assert r.status_code == 422, r.text
    assert finding_kinds(r) == {"weekly-drug-dosed-often"}
    # a time range PLL does not know is not guessed at: the text is judged, as before
    odd = repeating(4, "tablett", (1, "Døgn"), ("99", "Ukjent"))
    r, _ = sent(server, pll["fnr"], without_prescription(MTX, "4 tabletter 1 gang i uken", odd))
    assert r.status_code == 200, r.text
