"""Reading SFM Basis documents: what is forgiven, what is refused and where."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import json5
import pytest

from pll.domain.errors import InvalidInput
from pll.fhir.sfm.lenient_json import parse_lenient
from pll.fhir.sfm.reading import medication_document, read_document

REFERENCE = (
    Path(__file__).resolve().parents[2]
    / "tests/fixtures/sfm/getMedication-response-e-multidose.json"
)


def reference_bundle() -> dict[str, Any]:
    data, _ = parse_lenient(REFERENCE.read_text(encoding="utf-8"))
    return medication_document(data)


def test_trailing_commas_are_forgiven_and_named() -> None:
    value, warnings = parse_lenient('{"a": [1, 2,],}')
    assert value == {"a": [1, 2]}
    assert "line 1" in warnings[0]
    assert parse_lenient('{"a": 1}') == ({"a": 1}, [])
    with pytest.raises(InvalidInput, match="not JSON"):
        parse_lenient('{"a": ')


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # commas and brackets inside strings are text, an escaped quote does not end one
        ('{"a": "x,]", "b": [",}",],}', {"a": "x,]", "b": [",}"]}),
        ('{"a": "q\\",]", "b": "\\\\",}', {"a": 'q",]', "b": "\\"}),
        (
            "[[1,\n  ],\t]",
            [
                [1],
            ],
        ),
        # what only the full JSON5 reader takes: comments, single quotes, bare keys
        ("{a: 'x', // note\n}", {"a": "x"}),
    ],
)
def test_what_is_forgiven_reads_as_json5_reads_it(text: str, value: Any) -> None:
    assert parse_lenient(text)[0] == value == json5.loads(text)


def test_a_comma_before_nothing_and_a_number_json_cannot_hold_are_refused() -> None:
    for text in ('{"a": 1,,}', "[,]", '{,"a": 1}', "[NaN,]", "[Infinity]", '{"dose": 1e999,}'):
        with pytest.raises(InvalidInput, match=r"not JSON|cannot be taken"):
            parse_lenient(text)


def test_prescription_status_follows_the_prescription_intermediary() -> None:
    doc = read_document(reference_bundle())
    status = {i.entry["medicationCodeableConcept"]["text"][:10]: i for i in doc.items}
    # recalled (recallinfo 2), dispensable (rfstatus E), no longer in the intermediary
    assert status["Rivaroksab"].prescription["status"] == "stopped"  # type: ignore[index]
    assert status["Akamprosat"].prescription["status"] == "active"  # type: ignore[index]
    assert status["Liotyronin"].prescription["status"] == "completed"  # type: ignore[index]
    assert status["Metode fol"].prescription is None  # uten resept: an entry only
    assert status["Myalepta p"].pll_id is None  # a prescription not on the list


def test_the_document_must_start_with_its_composition() -> None:
    bundle = reference_bundle()
    bundle["entry"] = bundle["entry"][1:]
    with pytest.raises(InvalidInput) as caught:
        read_document(bundle)
    assert caught.value.expression == "Bundle.entry[0].resource"


def test_a_section_entry_that_is_not_in_the_bundle_is_named() -> None:
    bundle = reference_bundle()
    comp = bundle["entry"][0]["resource"]
    comp["section"][0]["entry"].append({"reference": "urn:uuid:nowhere"})
    with pytest.raises(InvalidInput, match="urn:uuid:nowhere"):
        read_document(bundle)


def test_a_prescription_without_a_resept_id_is_refused() -> None:
    bundle = reference_bundle()
    statement = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"].get("medicationReference", {}).get("display", "").startswith("Lapatinib")
    )
    statement["identifier"] = [
        i for i in statement["identifier"] if i["type"]["text"] != "ReseptId"
    ]
    with pytest.raises(InvalidInput, match="ReseptId"):
        read_document(bundle)


def test_parameters_without_a_document_are_refused() -> None:
    with pytest.raises(InvalidInput, match="medication"):
        medication_document({"resourceType": "Parameters", "parameter": []})
    with pytest.raises(InvalidInput, match="Parameters"):
        medication_document({"resourceType": "Patient"})
    bundle = copy.deepcopy(reference_bundle())
    bundle["type"] = "collection"
    with pytest.raises(InvalidInput, match="document"):
        medication_document(
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "medication", "resource": bundle}],
            }
        )


def test_a_string_that_never_closes_is_refused_in_one_pass() -> None:
    """A truncated export, cut inside a narrative full of escaped quotes: each quote used to
    start a scan to the end (32 kB took 6 s)."""
    with pytest.raises(InvalidInput, match="not JSON"):
        parse_lenient('{"text": {"div": "<div class=\\"x\\">' + '\\"a\\", ' * 3_000)
    value, _ = parse_lenient('{"a": "line \\\none",}')  # a JSON5 line continuation
    assert value == {"a": "line one"}
