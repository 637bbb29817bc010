"""A second review of issue 16's dose and quantity rules, over real HTTP on both
databases: free-text methotrexate "mandag til fredag" is not weekly; the national test
environment's "92 stk" of a tablet prescription is sent without a refusal; an absurd amount
stored before the catalogue knew the drug's form is a finding on a whole-list read, never
a 400 on a GET or on registering a drug reaction."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pll.catalog.importer import import_fest
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import new_fnr, new_patient_with_list, ok, reactions
from tests.integration.test_dose_safety import DOSE_FEST, MTX, PARACET, entry, finding_kinds
from tests.integration.test_dose_safety import pll as dose_patient
from tests.integration.test_sfm import _prescribe_new, get_medication, send, send_from

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "sfm"
REFERENCE /= "getMedication-response-e-multidose.json"


@pytest.fixture
def pll(server: LiveServer) -> dict[str, str]:
    """A patient with a list, and the dose catalogue imported."""
    return dose_patient.__wrapped__(server)  # type: ignore[attr-defined,no-any-return]


def test_free_text_methotrexate_monday_to_friday_needs_an_override(
    server: LiveServer, pll: dict[str, str]
) -> None:
    body = entry(pll["pid"], MTX, {"text": "1 tablett mandag til fredag"})
    with server.client("gp") as gp:
        before = snapshot(server.db, audit=False)
        r = gp.post("/fhir/MedicationStatement", json=body)
        assert snapshot(server.db, audit=False) == before
    assert r.status_code == 422, r.text
    assert finding_kinds(r) == {"weekly-drug-dosed-often"}


def _reference_amount() -> dict[str, Any]:
    """The ``amount`` of a tablet prescription in the national $getMedication: 92 stk (the
    document is not strict JSON, so its text is searched)."""
    text = re.sub(r"\s+", "", REFERENCE.read_text(encoding="utf-8"))
    amount = {"url": "amount", "valueQuantity": {"value": 92.0, "unit": "stk"}}
    assert json.dumps(amount, separators=(",", ":")) in text
    return amount


def test_a_tablet_prescription_of_92_stk_as_the_reference_gives_it_is_sent(
    server: LiveServer, pll: dict[str, str]
) -> None:
    fnr = new_fnr()
    amount = _reference_amount()
    with server.client("gp") as gp:
        new_patient_with_list(gp, fnr)
        read = ok(get_medication(gp, fnr))

        def prescribe(bundle: dict[str, Any]) -> None:
            resept = _prescribe_new(bundle, PARACET)
            st = next(
                e["resource"]
                for e in bundle["entry"]
                if e["resource"].get("resourceType") == "MedicationStatement"
                and any(i.get("value") == resept for i in e["resource"].get("identifier", []))
            )
            st["extension"][0]["extension"].append(amount)

        r = send(gp, send_from(read, prescribe))
        assert r.status_code == 200, r.text
        after = ok(get_medication(gp, fnr))
    assert '"valueQuantity":{"value":92' in json.dumps(after, separators=(",", ":"))


def _paracet_without_a_form(server: LiveServer) -> None:
    """The dose catalogue with Paracet's form one PLL cannot sort: "stk" then says nothing."""
    xml = DOSE_FEST.read_text(encoding="utf-8").replace('DN="Tablett"', 'DN="Ukjent"')
    import_fest(
        server.db,
        io.BytesIO(xml.encode()),
        "dose-ukjent.xml",
        now=datetime(2026, 11, 23, tzinfo=UTC),
    )


def test_an_absurd_stored_amount_is_a_finding_on_reads_not_a_refusal(
    server: LiveServer, pll: dict[str, str]
) -> None:
    pid = pll["pid"]
    _paracet_without_a_form(server)
    absurd = entry(pid, PARACET, {"text": "2 000 000 000 000 stk morgen"})
    with server.client("gp") as gp:
        ok(gp.post("/fhir/MedicationStatement", json=absurd), 201)
        # the next catalogue says Paracet is a tablet: the stored text is now 2e12 tablets
        with DOSE_FEST.open("rb") as extract:
            import_fest(server.db, extract, "dose-2.xml", now=datetime(2026, 11, 24, tzinfo=UTC))
        found = gp.get(f"/fhir/List/{pll['list']}/$check")
        assert found.status_code == 200, found.text
        kinds = {i["details"]["coding"][0]["code"] for i in found.json()["issue"] if "details" in i}
        assert "implausible-dose" in kinds
        # a drug reaction registered meanwhile: its conflicts are looked up, not refused
        reactions(gp, pid, "M01AE", 1)
        # a change that brings such an amount is still refused
        again = gp.post("/fhir/MedicationStatement", json=absurd)
        assert again.status_code == 400, again.text
