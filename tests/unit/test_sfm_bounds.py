"""What an SFM document may hold, counted before it is read, and its statements checked
ahead of the transaction with the same outcome as checking them in it (issue 15)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pll.domain import limits
from pll.domain.errors import InvalidInput, RuleRefused
from pll.fhir.sfm import bounds
from pll.fhir.sfm.lenient_json import parse_lenient
from pll.fhir.sfm.reading import check_item, medication_document, read_document

REFERENCE = (
    Path(__file__).resolve().parents[2]
    / "tests/fixtures/sfm/getMedication-response-e-multidose.json"
)


def reference_bundle() -> dict[str, Any]:
    data, _ = parse_lenient(REFERENCE.read_text(encoding="utf-8"))
    return medication_document(data)


def test_a_document_is_counted_before_it_is_read() -> None:
    bundle = reference_bundle()
    bounds.within_limits(bundle)
    over = copy.deepcopy(bundle)
    over["entry"] += [{"resource": {"resourceType": "MedicationStatement"}}] * (
        limits.MAX_SFM_STATEMENTS + 1
    )
    with pytest.raises(RuleRefused) as refused:
        bounds.within_limits(over)
    assert refused.value.details["limit"] == str(limits.MAX_SFM_STATEMENTS)
    # whatever the entries are, they are only counted
    odd = {"entry": [None, 1, {"resource": []}] * (limits.MAX_SFM_ENTRIES // 3 + 1)}
    with pytest.raises(RuleRefused, match="entries"):
        bounds.within_limits(odd)


def test_a_statement_checked_ahead_raises_only_where_it_is_checked_again() -> None:
    doc = read_document(reference_bundle(), check=False)
    bad = doc.items[0]
    bad.entry["effectiveDateTime"] = "not a date"
    with pytest.raises(InvalidInput) as direct:
        check_item(bad)
    bounds.check_ahead(doc)  # nothing raised here: the send may leave the statement as it is
    assert all(item.checked for item in doc.items)
    assert bad.refusal is not None
    with pytest.raises(InvalidInput) as ahead:
        check_item(bad)
    assert (ahead.value.message, ahead.value.expression) == (
        direct.value.message,
        direct.value.expression,
    )
    for item in doc.items[1:]:
        check_item(item)  # the good ones pass


def test_the_projected_list_counts_entries_in_use() -> None:
    doc = read_document(reference_bundle(), check=False)
    counted = [
        i
        for i in doc.items
        if i.entry["status"] in ("active", "on-hold") and not i.discontinued and i.pll_id
    ]
    assert bounds.projected_size(doc) == len(counted) > 0
    bounds.within_list_limit(doc)
