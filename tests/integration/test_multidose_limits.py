"""e-multidose requests are bounded (issue 15; DESIGN §3 rule 8), over HTTP on both
databases: a proposal holds at most ``MAX_PROPOSAL_ITEMS`` items, a packing report
``MAX_PACKING_ITEMS`` and a decision ``MAX_PENDING_ITEMS`` (counted before any of them is
read), and no more than ``MAX_PENDING_ITEMS`` items wait for the doctor at once: a proposal
past that is refused until the doctor has decided. Each refusal is a 422 naming the limit,
and nothing is written."""

from __future__ import annotations

from typing import Any

import httpx

from pll.domain import limits
from tests.conftest import LiveServer, snapshot
from tests.integration import test_web_reconcile as web
from tests.integration.builders import DRUGS, ok, outcome_text
from tests.integration.test_multidose import (
    decision,
    items_of,
    new_item,
    new_patient,
    params,
    report,
    value,
)


def detail(r: httpx.Response) -> dict[str, str]:
    return {
        e["url"]: e["valueString"]
        for d in r.json()["issue"][0].get("extension", [])
        for e in d["extension"]
    }


def bogus(name: str, n: int) -> dict[str, Any]:
    """``n`` parameters nobody could accept: only counted, never read."""
    return params(*[{"name": name, "part": [{"name": "bogus", "valueString": "x"}]}] * n)


def test_requests_past_their_limits_are_refused_before_any_of_them_is_read(
    server: LiveServer,
) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        before = snapshot(server.db, audit=False)
        for client, operation, name, limit in (
            (pharmacist, "$propose", "item", limits.MAX_PROPOSAL_ITEMS),
            (pharmacist, "$packing-report", "item", limits.MAX_PACKING_ITEMS),
            (gp, "$decide", "decision", limits.MAX_PENDING_ITEMS),
        ):
            r = client.post(f"/fhir/List/{p.list_id}/{operation}", json=bogus(name, limit + 1))
            assert r.status_code == 422, (operation, r.text)
            assert f"more than the {limit} one {operation} may hold" in outcome_text(r)
            assert detail(r) == {"limit": str(limit), f"{name}s": str(limit + 1)}
        assert snapshot(server.db, audit=False) == before


def propose(client: httpx.Client, list_id: str, pid: str, n: int) -> httpx.Response:
    drug = DRUGS[3]
    return client.post(
        f"/fhir/List/{list_id}/$propose",
        json=params(*[new_item(pid, f"{drug[0]} ({i})", drug[1]) for i in range(n)]),
    )


def test_no_more_items_wait_for_the_doctor_than_the_limit(server: LiveServer) -> None:
    """The largest proposals allowed, until as many items wait as may; the next proposal is
    refused, and taken once the doctor has decided."""
    full, left = divmod(limits.MAX_PENDING_ITEMS, limits.MAX_PROPOSAL_ITEMS)
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        gp.timeout = pharmacist.timeout = 120
        p = new_patient(server, gp)
        taken = []
        for size in [limits.MAX_PROPOSAL_ITEMS] * full + ([left] if left else []):
            taken += items_of(ok(propose(pharmacist, p.list_id, p.pid, size)))
        assert len(taken) == limits.MAX_PENDING_ITEMS
        waiting = ok(pharmacist.get(f"/fhir/List/{p.list_id}/$proposals?status=pending"))
        assert value(waiting, "pending") == limits.MAX_PENDING_ITEMS

        before = snapshot(server.db, audit=False)
        r = propose(pharmacist, p.list_id, p.pid, 1)
        assert r.status_code == 422, r.text
        said = outcome_text(r)
        assert f"{limits.MAX_PENDING_ITEMS} items of the pharmacy's proposals are waiting" in said
        assert detail(r) == {
            "limit": str(limits.MAX_PENDING_ITEMS),
            "pending": str(limits.MAX_PENDING_ITEMS),
            "items": "1",
        }
        assert snapshot(server.db, audit=False) == before

        # the doctor rejects two: two more may wait
        rejected = [decision(i["id"], "reject", "Ikke aktuelt") for i in taken[:2]]
        ok(gp.post(f"/fhir/List/{p.list_id}/$decide", json=params(*rejected)))
        assert propose(pharmacist, p.list_id, p.pid, 3).status_code == 422
        ok(propose(pharmacist, p.list_id, p.pid, 2))


def test_a_packing_report_at_its_limit_is_taken(server: LiveServer) -> None:
    """Every item counts, named or not: the limit itself is not refused for its count."""
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        p = new_patient(server, gp)
        metformin = p.entries["Metformin"]["id"]
        body = report(metformin)
        body["parameter"] += [body["parameter"][1]] * (limits.MAX_PACKING_ITEMS - 1)
        r = pharmacist.post(f"/fhir/List/{p.list_id}/$packing-report", json=body)
        # read in full, and refused by the rules (an entry named twice), not by the count
        assert r.status_code == 400, r.text
        assert "more than the" not in outcome_text(r)


def test_metadata_states_the_operations_limits(server: LiveServer) -> None:
    with server.client() as gp:
        capability = ok(gp.get("/fhir/metadata"))
    (ext,) = [e for e in capability["extension"] if e["url"].endswith("/request-limits")]
    stated = {e["url"]: e["valueInteger"] for e in ext["extension"]}
    assert {
        "maxSourceItems": limits.MAX_SOURCE_ITEMS,
        "maxSfmEntries": limits.MAX_SFM_ENTRIES,
        "maxSfmStatements": limits.MAX_SFM_STATEMENTS,
        "maxSfmRequests": limits.MAX_SFM_REQUESTS,
        "maxSfmWrites": limits.MAX_SFM_WRITES,
        "maxProposalItems": limits.MAX_PROPOSAL_ITEMS,
        "maxPendingItems": limits.MAX_PENDING_ITEMS,
        "maxPackingItems": limits.MAX_PACKING_ITEMS,
    }.items() <= stated.items()
    text = capability["rest"][0]["documentation"]
    assert f"a source list of at most {limits.MAX_SOURCE_ITEMS} resources" in text
    assert f"holds at most {limits.MAX_SFM_ENTRIES} entries" in text
    assert f"writes at most {limits.MAX_SFM_WRITES} prescriptions and entries" in text
    assert f"proposal holds at most {limits.MAX_PROPOSAL_ITEMS} items" in text
    assert f"at most {limits.MAX_PENDING_ITEMS} proposed items wait" in text


def test_the_pharmacy_pages_say_the_limits_in_norwegian(server: LiveServer) -> None:
    with server.client("gp") as gp, server.client("pharmacist") as pharmacist:
        pharmacist.timeout = 120
        p = new_patient(server, gp)
        for _ in range(limits.MAX_PENDING_ITEMS // limits.MAX_PROPOSAL_ITEMS):
            ok(propose(pharmacist, p.list_id, p.pid, limits.MAX_PROPOSAL_ITEMS))
        version = ok(gp.get(f"/fhir/List/{p.list_id}"))["meta"]["versionId"]
    page = f"/apotek/pasient/{p.pid}"
    before = snapshot(server.db, audit=False)
    with web.logged_in(server, "pharmacist") as browser:
        form = {
            "csrf": web.csrf(browser, f"{page}/nytt"),
            "drug": "Paracet 500 mg",
            "dose-mode": "text",
            "dose-text": "1 tablett ved behov",
        }
        r = browser.post(f"{page}/nytt", data=form)
        assert r.status_code == 422, r.text
        assert f"{limits.MAX_PENDING_ITEMS} forslag venter allerede på legens avgjørelse" in r.text
        over = [p.entries["Metformin"]["id"]] * (limits.MAX_PACKING_ITEMS + 1)
        packing = {
            "csrf": web.csrf(browser, page),
            "start": "2026-11-23",
            "end": "2026-12-06",
            "version": version,
            "entry": over,
        }
        r = browser.post(f"{page}/pakking", data=packing)
        assert r.status_code == 422, r.text
        assert f"Høyst {limits.MAX_PACKING_ITEMS} legemidler kan sendes på én gang" in r.text
    assert snapshot(server.db, audit=False) == before
