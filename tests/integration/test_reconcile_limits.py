"""Reconciliation is bounded (issue 15; DESIGN §3 rule 8), over HTTP on both databases: a
source list holds at most ``MAX_SOURCE_ITEMS`` resources, in ``List/$compare``,
``$reconcile`` and the web's samstemming alike; a larger one is refused with 422 naming the
limit before any of it is read, and nothing is written. JSON nested too deep for any FHIR
resource is refused on the web page as in the API, not answered with a server error."""

from __future__ import annotations

import json
from typing import Any

from pll.domain import limits
from tests.conftest import LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration import test_web_reconcile as web
from tests.integration.builders import ok, outcome_text
from tests.integration.test_reconcile_api import (
    ATORVASTATIN,
    accept,
    bundle,
    compared,
    contained_list,
    differences,
    line,
    new_patient,
    params,
    reconcile,
    source,
    version_of,
)

OVER = limits.MAX_SOURCE_ITEMS + 1


def detail(response: Any) -> dict[str, str]:
    return {
        e["url"]: e["valueString"]
        for d in response.json()["issue"][0].get("extension", [])
        for e in d["extension"]
    }


def test_a_source_past_the_limit_is_refused_before_any_of_it_is_read(
    server: LiveServer,
) -> None:
    with server.client("gp") as gp:
        pid, list_id, _ = new_patient(gp)
        version = version_of(gp, list_id)
        # resources nobody could accept: the count is refused before any of them is read
        bogus = {"resourceType": "MedicationStatement", "bogus": True}
        too_many: list[tuple[dict[str, Any], str]] = [
            (
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": bogus}] * OVER,
                },
                "entry",
            ),
            (contained_list(pid, *[line(pid, ATORVASTATIN)] * OVER), "entry"),
            (
                {**contained_list(pid, line(pid, ATORVASTATIN)), "contained": [bogus] * OVER},
                "contained",
            ),
        ]
        before = snapshot(server.db, audit=False)
        for resource, element in too_many:
            for r in (
                gp.post(
                    f"/fhir/List/{list_id}/$compare", json=params(*source("discharge", resource))
                ),
                reconcile(gp, list_id, version, *source("discharge", resource), *accept()),
            ):
                assert r.status_code == 422, r.text
                said = outcome_text(r)
                assert f"more than the {limits.MAX_SOURCE_ITEMS} a source list may hold" in said
                assert r.json()["issue"][0]["expression"] == [
                    f"Parameters.parameter[1].resource.{element}"
                ]
                assert detail(r) == {"limit": str(limits.MAX_SOURCE_ITEMS), "entries": str(OVER)}
        assert snapshot(server.db, audit=False) == before


def test_a_source_at_the_limit_is_compared_and_reconciled(server: LiveServer) -> None:
    """The largest source allowed: every line the same medicine, so every line matches
    every entry of that drug (the shape that paired every line with every entry)."""
    with server.client("gp") as gp:
        pid, list_id, _ = new_patient(gp)
        version = version_of(gp, list_id)
        full = bundle(*[line(pid, ATORVASTATIN)] * limits.MAX_SOURCE_ITEMS)
        found = differences(compared(gp, list_id, *source("discharge", full)))
        # one line pairs with the entry; the rest are one medicine missing, many times over
        missing = [d for d in found if d["kind"] == "missing-on-list"]
        assert len(missing) == limits.MAX_SOURCE_ITEMS - 1
        kept = [d["id"] for d in found if d["kind"] == "not-in-source"]
        r = reconcile(gp, list_id, version, *source("discharge", full), *accept(*kept))
        assert ok(r)["meta"]["versionId"] == str(version + 1)


def test_the_web_holds_an_upload_and_a_carried_source_to_the_limit(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    statement = web.statement(METFORMIN, "2 tabletter morgen")
    too_many = web.discharge(*[statement] * OVER)
    with web.logged_in(server, "gp") as gp:
        page = web.opened(gp, scene.fnr)
        step, choices = web.decided(
            web.ok_page(web.compare(gp, page, web.discharge(statement))),
            **{METFORMIN[2]: "accept"},
        )
        before = snapshot(server.db, audit=False)
        r = web.compare(gp, page, too_many)
        assert r.status_code == 400, r.text  # beside the upload field, the form kept
        assert f"høyst {limits.MAX_SOURCE_ITEMS} kan sammenlignes" in r.text
        assert f"Listen har {OVER} oppføringer" in r.text
        fields = [(k, too_many.decode() if k == "source-json" else v) for k, v in step["fields"]]
        r = web.send(gp, {**step, "fields": fields}, *choices)
        assert r.status_code == 400, r.text
        assert f"høyst {limits.MAX_SOURCE_ITEMS} kan sammenlignes" in r.text
        assert snapshot(server.db, audit=False) == before


def deep(levels: int) -> bytes:
    """A discharge Bundle whose statement nests ``levels`` extensions, one in the other."""
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for n in range(levels):
        extension = {"url": f"http://example.org/e{n}", "extension": [extension]}
    statement = web.statement(METFORMIN, "2 tabletter morgen")
    statement["extension"] = [extension]
    return json.dumps(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": statement}]}
    ).encode()


def test_json_nested_too_deep_is_refused_beside_the_field_and_changes_nothing(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    too_deep = deep(200)
    with web.logged_in(server, "gp") as gp:
        page = web.opened(gp, scene.fnr)
        step, choices = web.decided(
            web.ok_page(web.compare(gp, page, web.discharge(web.statement(METFORMIN, "2 x")))),
            **{METFORMIN[2]: "accept"},
        )
        before = snapshot(server.db, audit=False)
        r = web.compare(gp, page, too_deep)
        assert r.status_code == 400, r.text
        assert "Filen er ikke FHIR JSON" in r.text
        fields = [(k, too_deep.decode() if k == "source-json" else v) for k, v in step["fields"]]
        r = web.send(gp, {**step, "fields": fields}, *choices)
        assert r.status_code == 400, r.text
        assert "Skjemaet er ødelagt" in r.text
        assert "Begynn samstemmingen på nytt" in r.text
        assert snapshot(server.db, audit=False) == before
