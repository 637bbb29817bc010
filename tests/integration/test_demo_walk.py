"""Demo data a doctor believes (issue 16, walked as a GP on ``pll demo``): a woman's name
comes with a woman's fødselsnummer; patients have drug reactions (CAVE), one met by a drug
the GP prescribed with an override; courses end; one list holds a pair that interacts. On
both databases."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from pll.catalog.generate import generate
from pll.catalog.importer import import_fest
from pll.domain.prescriptions import local_day
from pll.fhir import systems
from pll.services import demo_stories as stories
from pll.services.demo import MEN, WOMEN, create_demo
from tests.conftest import LiveServer
from tests.integration.builders import ok
from tests.integration.test_web import logged_in, opened
from tests.integration.test_web_banner import _banner
from tests.integration.test_web_overrides import entry_row, text


def test_each_demo_patients_name_follows_the_sex_their_number_encodes(
    server: LiveServer,
) -> None:
    numbers = create_demo(server.service, 12, seed=2026)
    seen = set()
    with server.client("gp") as api:
        for fnr in numbers:
            found = ok(api.get("/fhir/Patient", params={"identifier": fnr}))
            given = found["entry"][0]["resource"]["name"][0]["given"][0]
            man = int(fnr[8]) % 2 == 1  # the 9th digit: odd a man, even a woman
            assert given in (MEN if man else WOMEN), (fnr, given)
            seen.add(man)
    assert seen == {True, False}  # both sexes among them


def _demo(server: LiveServer, patients: int) -> list[str]:
    """``pll demo`` on a small catalogue: the catalogue with the demo's drugs, then the lists."""
    extract = io.BytesIO()
    generate(extract, scale=0.02, seed=2026, demo=True)
    extract.seek(0)
    import_fest(server.db, extract, "demo", now=datetime.now(UTC))
    return create_demo(server.service, patients, seed=2026)


def _patient(api: httpx.Client, fnr: str) -> str:
    found = ok(api.get("/fhir/Patient", params={"identifier": fnr}))
    return str(found["entry"][0]["resource"]["id"])


def _entries(api: httpx.Client, pid: str) -> list[dict[str, Any]]:
    bundle = ok(api.get("/fhir/MedicationStatement", params={"patient": pid, "_count": 100}))
    return [e["resource"] for e in bundle.get("entry", [])]


def _atc(entry: dict[str, Any]) -> str:
    codings = entry["medicationCodeableConcept"]["coding"]
    return next(str(c["code"]) for c in codings if c["system"] == systems.ATC)


def _issues(outcome: dict[str, Any], code: str) -> list[dict[str, Any]]:
    """The findings of one kind in a ``$check``'s OperationOutcome."""
    return [
        i
        for i in outcome["issue"]
        if i.get("details", {}).get("coding", [{}])[0].get("code") == code
    ]


def test_demo_patients_have_drug_reactions_one_met_with_the_gps_override(
    server: LiveServer,
) -> None:
    numbers = _demo(server, 3)
    with server.client("gp") as api:
        first, second = (_patient(api, fnr) for fnr in numbers[:2])
        reactions = {
            pid: ok(api.get("/fhir/AllergyIntolerance", params={"patient": pid}))["entry"]
            for pid in (first, second)
        }
        penicillin = [r["resource"] for r in reactions[first]]
        statins = [r["resource"] for r in reactions[second]]
        assert [r["code"]["coding"][0]["code"] for r in penicillin] == ["J01C"]
        assert [r["code"]["coding"][0]["code"] for r in statins] == ["C10AA"]
        # the penicillin allergy: no penicillin on that list, in use or not
        assert not [e for e in _entries(api, first) if _atc(e).startswith("J01C")]
        # the statin reaction is met by atorvastatin, in use, prescribed over the CAVE
        atorvastatin = [e for e in _entries(api, second) if _atc(e) == stories.STATIN_DRUG]
        assert [e["status"] for e in atorvastatin] == ["active"]
        list_id = ok(api.get("/fhir/List", params={"patient": second}))["entry"][0]["resource"][
            "id"
        ]
        check = ok(api.get(f"/fhir/List/{list_id}/$check"))
        cave = _issues(check, "cave")
        assert len(cave) == 1
        assert "Statiner (myalgi på simvastatin)" in cave[0]["diagnostics"]
        # the reaction was there before the drug: the review overrode it, with a reason
        history = ok(api.get("/fhir/Provenance", params={"target": f"List/{list_id}"}))
        kept = [
            x["valueString"]
            for e in history["entry"]
            for x in e["resource"].get("extension", [])
            if x["url"].endswith("check-override")
        ]
        assert any(k.startswith(stories.STATIN_OVERRIDE) and "cave" in k for k in kept), kept

    with logged_in(server, "gp") as gp:
        banner = _banner(gp.get(opened(gp, numbers[0])).text)
        assert "Penicilliner (Urtikaria" in banner
        listed = gp.get(opened(gp, numbers[1])).text
    assert "Statiner (myalgi på simvastatin)" in _banner(listed)
    row = entry_row(listed, "Lipitor Tab 20 mg")
    assert f"Overstyrt: {stories.STATIN_OVERRIDE}" in row, row
    assert "CAVE" in row


def test_no_demo_course_is_in_use_past_its_end(server: LiveServer) -> None:
    numbers = _demo(server, 12)
    today = local_day(server.service.clock())
    courses = []
    with server.client("gp") as api:
        for fnr in numbers:
            for e in _entries(api, _patient(api, fnr)):
                codes = [c["code"] for c in e["category"]["coding"]]
                if stories.COURSE in codes:
                    courses.append(e)
    assert len(courses) >= 3
    completed = 0
    for e in courses:
        period = e["effectivePeriod"]
        start, end = date.fromisoformat(period["start"]), date.fromisoformat(period["end"])
        # Apocillin a week, Prednisolon its two steps of five days
        days = 7 if e["medicationCodeableConcept"]["text"].startswith("Apocillin") else 10
        assert end == start + timedelta(days=days), e
        if e["status"] == "active":
            assert end >= today, f"{e['medicationCodeableConcept']['text']} in use past {end}"
        else:
            assert e["status"] == "stopped"
            reason = e["statusReason"][0]["text"]
            completed += reason == stories.COURSE_DONE
    assert completed >= 1


def test_a_demo_list_holds_a_pair_that_interacts(server: LiveServer) -> None:
    numbers = _demo(server, 3)
    with server.client("gp") as api:
        pid = _patient(api, numbers[0])
        in_use = {_atc(e) for e in _entries(api, pid) if e["status"] == "active"}
        assert set(stories.INTERACTING) <= in_use
        list_id = ok(api.get("/fhir/List", params={"patient": pid}))["entry"][0]["resource"]["id"]
        check = ok(api.get(f"/fhir/List/{list_id}/$check"))
    found = _issues(check, "interaction")
    said = [i["diagnostics"] for i in found]
    pair = [d for d in said if "Eliquis Tab 5 mg" in d and "Zoloft Tab 50 mg" in d]
    assert len(pair) == 1, said
    assert "(Ta forholdsregler): Økt blødningsrisiko" in pair[0], pair
    assert [i["severity"] for i in found if i["diagnostics"] == pair[0]] == ["warning"]
    with logged_in(server, "gp") as gp:
        shown = text(gp.get(opened(gp, numbers[0])).text)
    assert "Eliquis Tab 5 mg" in shown
    assert "Zoloft Tab 50 mg" in shown
