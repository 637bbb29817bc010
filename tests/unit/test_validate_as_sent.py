"""Validation proves a resource reads as sent without serialising the model (issue 20), and
still refuses every value the model had to change (DESIGN §3 rule 8).

``validate`` first tries a cheap proof that the model's reading of the body is what was sent
(``_reads_as_sent``) and only when that fails compares the body with the model's own JSON
(``model_dump``), which finds where they differ. The proof must never pass a body whose
model JSON differs: Hypothesis mutates resources PLL takes (values given another type,
nulls, empty elements, dates in other forms, keys under a field's Python name, primitive
extensions) and checks the proof against the comparison on every body the model accepts.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pll.domain.errors import InvalidInput
from pll.fhir.validate import _first_difference, _reads_as_sent, validate

SEEDS: list[dict[str, Any]] = [
    {
        "resourceType": "MedicationStatement",
        "id": "e1",
        "status": "active",
        "_status": {"extension": [{"url": "http://example.org/x", "valueDecimal": 1.50}]},
        "category": {"coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.9101", "code": "1"}]},
        "medicationCodeableConcept": {"coding": [{"code": "N06AB06"}], "text": "Zoloft"},
        "subject": {"reference": "Patient/p1"},
        "effectivePeriod": {"start": "2026-01-13", "end": "2026-02-01T10:00:00+01:00"},
        "dateAsserted": "2026-01-01T10:00:00Z",
        "contained": [{"resourceType": "Patient", "active": True}],
        "dosage": [
            {
                "sequence": 1,
                "timing": {"repeat": {"when": ["MORN", "EVE"], "timeOfDay": ["08:00:00"]}},
                "doseAndRate": [{"doseQuantity": {"value": 1.5, "unit": "tablett"}}],
                "text": "1 tablett morgen",
            }
        ],
    },
    {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Paracet"},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-01-13T08:00:00.250+01:00",
        "dispenseRequest": {"numberOfRepeatsAllowed": 3, "quantity": {"value": 30}},
        "substitution": {"allowedBoolean": False},
        "extension": [{"url": "http://example.org/b", "valueBase64Binary": "aGVsbG8="}],
    },
]
#: values a client might send in place of another: other JSON types, nulls, empty elements,
#: strings a model may coerce, dates and times in other forms
CHANGES: list[Any] = [
    None,
    [],
    {},
    "",
    " x ",
    0,
    1,
    1.0,
    1.5,
    2**70,
    True,
    False,
    "true",
    "1",
    "1.5",
    [None],
    [{}],
    {"id": "x"},
    "2026-01-13",
    "2026-01-13T00:00:00Z",
    "2026-01-13T00:00:00+00:00",
    "2026-01",
    "1700000000",
    "08:00",
    "aGVsbG8=",
]
VALUES = st.sampled_from(CHANGES)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``value`` but the root and the root's ``resourceType``."""
    out = [here] if here not in ((), ("resourceType",)) else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*here, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*here, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    body = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(_paths(body)))
        parent = body
        for step in where[:-1]:
            parent = parent[step]
        key = where[-1]
        action = draw(st.sampled_from(["value", "string", "wrap", "rename", "extension"]))
        if action == "value":
            parent[key] = copy.deepcopy(draw(VALUES))
        elif action == "string" and not isinstance(parent[key], dict | list):
            parent[key] = str(parent[key])
        elif action == "wrap":
            parent[key] = [parent[key]]
        elif action == "rename" and isinstance(key, str):
            suffix = draw(st.sampled_from(["__ext", "_", "x"]))
            parent[key + suffix if suffix != "_" else "_" + key] = parent.pop(key)
        elif action == "extension" and isinstance(key, str):
            parent["_" + key] = copy.deepcopy(draw(st.sampled_from([{}, {"id": "e"}, [None]])))
    return body


def _single_changes(seed: dict[str, Any]) -> list[dict[str, Any]]:
    """The seed changed in one place, every way :data:`CHANGES` and a key can be."""
    out = []
    for where in _paths(seed):
        for value in [*CHANGES, "wrap", "string", "rename", "extension"]:
            body = copy.deepcopy(seed)
            parent = body
            for step in where[:-1]:
                parent = parent[step]
            _change(parent, where[-1], value)
            out.append(body)
    return out


def _change(parent: Any, key: Any, how: Any) -> None:
    if how == "wrap":
        parent[key] = [parent[key]]
    elif how == "string":
        parent[key] = str(parent[key])
    elif how == "rename" and isinstance(key, str):
        parent[key + "__ext"] = parent.pop(key)
    elif how == "extension" and isinstance(key, str):
        parent["_" + key] = {}
    else:
        parent[key] = copy.deepcopy(how)


def _check(body: dict[str, Any]) -> bool:
    """Whether the model takes ``body``; if it does, the proof passes it only when the
    model's JSON is the body."""
    model = get_fhir_model_class(body["resourceType"])
    try:
        parsed = model.model_validate(body)
    except (ValidationError, ValueError, TypeError, KeyError, AttributeError):
        return False  # refused by the model (or by validate before or after it)
    changed = _first_difference(
        body, parsed.model_dump(mode="json", exclude_none=True), body["resourceType"]
    )
    if changed is not None:
        assert not _reads_as_sent(body, parsed), changed
    return True


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: str(s["resourceType"]))
def test_the_proof_never_passes_a_single_change_the_model_made(seed: dict[str, Any]) -> None:
    taken = sum(_check(body) for body in _single_changes(seed))
    assert taken > 100  # the model takes many of them: the proof is put to the test


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated())
def test_the_proof_never_passes_what_the_model_changed(body: dict[str, Any]) -> None:
    _check(body)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: str(s["resourceType"]))
def test_a_resource_as_sent_is_proven_so(seed: dict[str, Any]) -> None:
    """Decimals, dates, instants, times, base64, primitive extensions and contained
    resources all read as sent: the everyday body never needs the model's JSON."""
    model = get_fhir_model_class(seed["resourceType"])
    assert _reads_as_sent(seed, model.model_validate(seed))
    assert validate(seed, seed["resourceType"]) is seed


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"dispenseRequest": {"numberOfRepeatsAllowed": "3"}}, "dispenseRequest"),
        ({"substitution": {"allowedBoolean": 0}}, "substitution.allowedBoolean"),
        ({"status__ext": {"id": "x"}}, "_status"),
        ({"note": []}, "note"),
        ({"authoredOn": None}, "authoredOn"),
    ],
)
def test_a_value_the_model_changed_is_refused_where_it_is(
    change: dict[str, Any], where: str
) -> None:
    body = copy.deepcopy(SEEDS[1]) | change
    with pytest.raises(InvalidInput) as refused:
        validate(body, "MedicationRequest")
    assert refused.value.expression is not None
    assert refused.value.expression.startswith(f"MedicationRequest.{where}")


@pytest.mark.parametrize("value", ["true", "1", "1.5"])
def test_a_primitive_extension_that_is_no_object_is_refused(value: Any) -> None:
    """The model library parsed ``"true"`` as JSON there and failed with an AttributeError
    of its own: a 500 (DESIGN §3 rule 8)."""
    body = copy.deepcopy(SEEDS[1]) | {"_status": value}
    with pytest.raises(InvalidInput, match="not valid FHIR JSON"):
        validate(body, "MedicationRequest")
