"""``pll import sfm`` never records an override its named author did not see (issue 16,
DESIGN §3 rule 6): a document whose list has a blocking finding is refused, the findings
listed, and nothing is written. On both databases."""

from __future__ import annotations

from typing import Any

import pytest

from pll.domain.errors import ChecksRefused
from tests.conftest import LiveServer, snapshot
from tests.integration.test_sfm import bundle_of, imported, reference


def _dosed_as(data: dict[str, Any], text: str) -> None:
    """The document's first medicine dosed with ``text`` (its entry and its prescription)."""
    bundle = bundle_of(data)
    st = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"].get("resourceType") == "MedicationStatement"
    )
    st["dosage"] = [{"text": text}]
    for amendment in st.get("extension", []):
        for sub in amendment.get("extension", []):
            if sub.get("url") == "dssn":
                sub["valueString"] = text


def test_an_import_with_a_blocking_finding_is_refused_listing_it(server: LiveServer) -> None:
    data = reference()
    _dosed_as(data, "99999 tabletter morgen")
    before = snapshot(server.db, audit=False)
    with pytest.raises(ChecksRefused) as refused:
        imported(server, data)
    assert snapshot(server.db, audit=False) == before
    said = str(refused.value)
    assert "need a doctor's deliberate override, which an import cannot give" in said
    assert "99999 tabletter per døgn" in said
    # the same document without the strange dose imports
    assert imported(server, reference()).entries > 0
