"""SFM Basis documents are bounded (issue 15; DESIGN §3 rule 8), over HTTP on both
databases and in ``pll import sfm``: a document holds at most ``MAX_SFM_ENTRIES`` entries,
``MAX_SFM_STATEMENTS`` statements and ``MAX_SFM_REQUESTS`` requests, counted before any of
it is read; a send that would leave more than ``MAX_LIST_ENTRIES`` medicines on the list, or
that writes more than ``MAX_SFM_WRITES`` resources, is refused before it is written. Each
refusal is a 422 naming the limit, and nothing is written. JSON nested deeper than any FHIR
resource is a clean error for the import, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from pll.domain import limits
from pll.fhir.sfm import bounds
from tests.conftest import LiveServer, snapshot
from tests.integration.builders import ok, outcome_text
from tests.integration.test_sfm import (
    _prescribe_new,
    at_reference_time,
    bundle_of,
    get_medication,
    imported,
    reference,
    renewed,
    send,
    send_from,
    set_dosage,
)
from tests.integration.test_sfm_cli import PLL


@pytest.fixture
def read(server: LiveServer, clock: Any) -> dict[str, Any]:
    """The reference imported, read by the GP's journal system just now."""
    at_reference_time(server, clock)
    imported(server)
    with server.client("gp") as gp:
        return ok(get_medication(gp))


def in_use_entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The section's statements that are entries in use (a PLL id, not discontinued)."""
    by_url = {e.get("fullUrl"): e["resource"] for e in bundle["entry"]}
    section = bundle["entry"][0]["resource"]["section"][0]["entry"]
    return [
        st
        for st in (by_url[ref["reference"]] for ref in section)
        if st["status"] in ("active", "on-hold")
        and any(i.get("type", {}).get("text") == "PLL" for i in st.get("identifier", []))
        and not any(x["url"].endswith("sfm-discontinuation") for x in st.get("extension", []))
    ]


def detail(r: Any) -> dict[str, str]:
    return {
        e["url"]: e["valueString"]
        for d in r.json()["issue"][0].get("extension", [])
        for e in d["extension"]
    }


def padded(read: dict[str, Any], rtype: str | None, total: int) -> dict[str, Any]:
    """The read sent back with resources nobody could accept added until the Bundle holds
    ``total`` resources of ``rtype`` (or entries, for ``rtype`` None)."""

    def pad(bundle: dict[str, Any]) -> None:
        kind = rtype or "Basic"
        have = sum(
            1 for e in bundle["entry"] if rtype is None or e["resource"]["resourceType"] == rtype
        )
        bundle["entry"] += [{"resource": {"resourceType": kind, "bogus": True}}] * (total - have)

    return send_from(read, pad)


@pytest.mark.parametrize(
    ("rtype", "limit", "counted"),
    [
        (None, limits.MAX_SFM_ENTRIES, "entries"),
        ("MedicationStatement", limits.MAX_SFM_STATEMENTS, "MedicationStatement"),
        ("MedicationRequest", limits.MAX_SFM_REQUESTS, "MedicationRequest"),
    ],
)
def test_a_document_past_a_limit_is_refused_before_any_of_it_is_read(
    server: LiveServer, read: dict[str, Any], rtype: str | None, limit: int, counted: str
) -> None:
    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        r = send(gp, padded(read, rtype, limit + 1))
        assert r.status_code == 422, r.text
        assert f"more than the {limit} an SFM document may hold" in outcome_text(r)
        assert detail(r) == {"limit": str(limit), "found": str(limit + 1), "counted": counted}
    assert snapshot(server.db, audit=False) == before


def test_a_send_that_would_take_the_list_past_its_limit_is_refused_before_it_is_written(
    server: LiveServer, read: dict[str, Any]
) -> None:
    """The reference's list holds some medicines in use; the send adds enough new ones to
    pass the real limit by one, and is refused before the transaction opens."""
    in_use = len(in_use_entries(bundle_of(read)))

    def more(bundle: dict[str, Any]) -> None:
        for n in range(limits.MAX_LIST_ENTRIES + 1 - in_use):
            _prescribe_new(bundle, (f"{900000 + n}", "C10AA01", f"Legemiddel {n}"))

    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        gp.timeout = 120
        r = send(gp, send_from(read, more))
        assert r.status_code == 422, r.text
        said = outcome_text(r)
        assert f"the list would hold at least {limits.MAX_LIST_ENTRIES + 1} medicines" in said
        assert f"a list holds at most {limits.MAX_LIST_ENTRIES}" in said
        assert detail(r) == {
            "limit": str(limits.MAX_LIST_ENTRIES),
            "size": str(limits.MAX_LIST_ENTRIES + 1),
        }
    assert snapshot(server.db, audit=False) == before


def test_a_send_that_writes_more_than_allowed_changes_nothing(
    server: LiveServer, read: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewal writes three resources (the new prescription, the one it completes, the
    entry that moves to it); with a dose change besides, one too many."""
    monkeypatch.setattr(bounds, "MAX_SFM_WRITES", 3)
    lapatinib = "26e1fef6-3c6b-4558-a009-22c7e4b6970f"

    def renewal(bundle: dict[str, Any]) -> None:
        renewed(bundle, "Lapatinib", lapatinib, str(uuid.uuid4()), "1")

    def renewal_and_dose(bundle: dict[str, Any]) -> None:
        renewal(bundle)
        set_dosage(bundle, "Akamprosat", "2 tabletter morgen")

    before = snapshot(server.db, audit=False)
    with server.client("gp") as gp:
        r = send(gp, send_from(read, renewal_and_dose))
        assert r.status_code == 422, r.text
        assert "one send writes at most 3" in outcome_text(r)
        assert detail(r) == {"limit": "3", "writes": "4"}
        assert snapshot(server.db, audit=False) == before

        # more new prescriptions than writes allowed: refused before the send is planned
        def four_new(bundle: dict[str, Any]) -> None:
            for n in range(4):
                _prescribe_new(bundle, (f"{930000 + n}", "C10AA01", f"Legemiddel {n}"))

        r = send(gp, send_from(read, four_new))
        assert r.status_code == 422, r.text
        assert "the send writes at least 4 prescriptions and entries" in outcome_text(r)
        assert snapshot(server.db, audit=False) == before
        # the renewal alone is taken
        r = send(gp, send_from(read, renewal))
        assert r.status_code == 200, r.text


# -- pll import sfm ------------------------------------------------------------------------------


def _import(tmp_path: Path, document: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "document.json"
    text = document if isinstance(document, str) else json.dumps(document)
    path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PLL_DATABASE_URL"}
    env["PLL_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [PLL, "import", "sfm", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_refuses_json_nested_too_deep_without_a_traceback(tmp_path: Path) -> None:
    data = reference()
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for n in range(200):
        extension = {"url": f"http://example.org/e{n}", "extension": [extension]}
    bundle = data["parameter"][0]["resource"]
    statement = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement"
    )
    statement.setdefault("extension", []).append(extension)
    strict = json.dumps(data)
    for text in (strict, strict[:-1] + ",}"):  # strict JSON, and JSON5 (a trailing comma)
        r = _import(tmp_path, text)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr
        assert "nothing was imported" in r.stderr
        assert "more than 100 levels deep" in r.stderr


def test_import_refuses_a_document_past_its_limit(tmp_path: Path) -> None:
    data = reference()
    bundle = data["parameter"][0]["resource"]
    bundle["entry"] += [{"resource": {"resourceType": "Basic", "bogus": True}}] * (
        limits.MAX_SFM_ENTRIES + 1 - len(bundle["entry"])
    )
    r = _import(tmp_path, data)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    over = limits.MAX_SFM_ENTRIES + 1
    assert f"nothing was imported: Nothing was read: the document holds {over} entries" in (
        r.stderr.replace("\n", " ")
    )
