"""The administration chart's pages (``/kurve``, issue 17) over real HTTP on both databases:
a nursing-home nurse starts on the unit's patients with what is due and late, records a
planned dose given with one button, one not given with a reason, an as-needed dose within
its daily maximum; the refusals (twice, above the maximum, a controlled drug without a
second signer) come back in Norwegian with what was typed and change nothing; a paused
list shows no doses; another unit's nurse is refused and logged; the printable chart names
the list version it was made from."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from html import unescape
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa

from pll.domain.administration import OSLO
from pll.store.schema import audit_event, fest_drug, medication_administration
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import DRUGS, SMALL_FEST, ok
from tests.integration.test_administrations import FEST, med, rows, setup
from tests.integration.test_web import csrf, logged_in


def at(clock: Clock, hour: int, minute: int = 0) -> str:
    """Move the server's clock to today (in Norway) at ``hour:minute``; today's date."""
    today = datetime.now(OSLO).date()
    target = datetime.combine(today, time(hour, minute), OSLO)
    clock.offset = target.astimezone(UTC) - datetime.now(UTC)
    return today.isoformat()


def prn() -> dict[str, Any]:
    drug = med(*DRUGS[2])
    drug["dosage"] = [
        {
            "text": "1 tablett ved behov, høyst 2 per døgn",
            "asNeededBoolean": True,
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
            "maxDosePerPeriod": {
                "numerator": {"value": 2, "unit": "tablett"},
                "denominator": {"value": 1, "unit": "døgn", "code": "d"},
            },
        }
    ]
    return drug


def text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def post(client: httpx.Client, path: str, chart: str, **fields: str) -> httpx.Response:
    return client.post(path, data={"csrf": csrf(client, chart), **fields})


def test_a_nurse_starts_on_the_unit_and_sees_what_is_due_and_late(
    server: LiveServer, clock: Clock
) -> None:
    at(clock, 8, 30)
    pid, _, _ = setup(server, med(amount=2))
    with logged_in(server, "nursing-home-nurse") as nurse:
        assert nurse.get("/").headers["location"] == "/kurve"
        page = text(nurse.get("/kurve").text)
        assert "Oslo kommune sykehjem Ullern" in page or "883416031" in page
        assert "morgen 08:00" in page
        assert "For sent" in page
        row = re.search(rf'<tr id="pasient-{pid}".*?</tr>', nurse.get("/kurve").text, re.S)
        assert row is not None
        due, late = re.findall(r'<td class="(?:due|late)">(.*?)</td>', row.group(0), re.S)
        assert "morgen 08:00" in due
        assert "morgen" not in late
    at(clock, 9, 30)  # an hour and a half after the morning round: late
    with logged_in(server, "nursing-home-nurse") as nurse:
        row = re.search(rf'<tr id="pasient-{pid}".*?</tr>', nurse.get("/kurve").text, re.S)
        assert row is not None
        due, late = re.findall(r'<td class="(?:due|late)">(.*?)</td>', row.group(0), re.S)
        assert "morgen 08:00" in late
        assert "morgen" not in due
    # a care worker starts there too; a nurse of a unit PLL does not know keeps her home
    with logged_in(server, "care-worker") as worker:
        assert worker.get("/").headers["location"] == "/kurve"
    with logged_in(server, "nurse") as other:
        assert other.get("/").headers["location"] == "/lege"


def test_the_morning_round_through_the_pages(server: LiveServer, clock: Clock) -> None:
    today = at(clock, 8, 10)
    pid, _, (entry, needed) = setup(server, med(amount=2), prn())
    chart = f"/kurve/{pid}"
    morning = f"{entry['id']}/{today}/morgen/1"
    evening = f"{entry['id']}/{today}/kveld/1"
    version = entry["meta"]["versionId"]
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(chart)
        assert page.status_code == 200
        shown = text(page.text)
        assert "CAVE" in shown
        assert (
            "Maksimum 2 tabletter per døgn: gitt 0 tabletter siste døgn, 2 tabletter igjen nå"
            in shown
        )
        # one tap: the morning dose given as planned
        r = post(nurse, f"{chart}/gitt", chart, dose=morning, versjon=version)
        assert r.status_code == 303, r.text
        assert rows(server, pid) == [("completed", morning, "2", 1)]
        after = text(nurse.get(chart).text)
        assert "Registrert: planlagt dose gitt" in after
        assert "2 tabletter kl. 08:10, Nora Sykepleier" in after
        # the same dose again (another tab, a colleague): refused in Norwegian, nothing written
        before = snapshot(server.db, audit=False)
        r = post(nurse, f"{chart}/gitt", chart, dose=morning, versjon=version)
        assert r.status_code == 409
        assert "Denne dosen er allerede registrert" in text(r.text)
        assert snapshot(server.db, audit=False) == before
    # the evening round (a new login: the morning's session has expired): its dose not
    # given, from its page, with a reason
    at(clock, 19, 30)
    with logged_in(server, "nursing-home-nurse") as nurse:
        dose_page = nurse.get(f"{chart}/dose?dose={quote(evening)}&ikke=1")
        assert dose_page.status_code == 200
        assert "Pasienten ville ikke ta legemidlet" in text(dose_page.text)
        fields = {"dose": evening, "versjon": version, "utfall": "ikke-gitt", "tid": ""}
        r = post(nurse, f"{chart}/dose", chart, **fields)
        assert r.status_code == 400  # no reason chosen: the form again
        assert "Velg hvorfor dosen ikke ble gitt" in text(r.text)
        r = post(nurse, f"{chart}/dose", chart, **fields, grunn="refused")
        assert r.status_code == 303, r.text
        # as needed: above what remains is refused with the typed values kept
        eid = needed["id"]
        prn_fields = {
            "legemiddel": eid,
            "versjon": needed["meta"]["versionId"],
            f"enhet-{eid}": "tablett",
            f"hvorfor-{eid}": "Smerter i hoften",
        }
        before = snapshot(server.db, audit=False)
        r = post(nurse, f"{chart}/ved-behov", chart, **prn_fields, **{f"mengde-{eid}": "3"})
        assert r.status_code == 422
        said = text(r.text)
        assert "3 er mer enn dosen ved behov, 1 tablett." in said
        assert 'value="Smerter i hoften"' in r.text
        assert f'id="mengde-{eid}" name="mengde-{eid}" inputmode="decimal" size="6" value="3"' in (
            r.text
        )
        assert snapshot(server.db, audit=False) == before
        r = post(nurse, f"{chart}/ved-behov", chart, **prn_fields, **{f"mengde-{eid}": "1"})
        assert r.status_code == 303, r.text
        shown = text(nurse.get(chart).text)
        assert "gitt 1 tablett siste døgn, 1 tablett igjen nå" in shown
        assert "Smerter i hoften" in shown
    with server.db.read() as conn:
        t = medication_administration
        query = sa.select(t.c.status).where(t.c.patient_id == pid)
        statuses = sorted(r.status for r in conn.execute(query))
    assert statuses == ["completed", "completed", "not-done"]


def test_a_controlled_drug_needs_the_second_signature_on_the_page(
    server: LiveServer, clock: Clock
) -> None:
    from pll.catalog.importer import import_fest

    today = at(clock, 8, 5)
    with SMALL_FEST.open("rb") as extract:
        import_fest(server.db, extract, SMALL_FEST.name, now=datetime(2026, 11, 22, tzinfo=UTC))
    with server.db.write() as conn:
        conn.execute(sa.update(fest_drug).where(fest_drug.c.code == "081234").values(rx_group="A"))
    drug = med("Warfarin Nordfarma Tab 2,5 mg", "B01AA03")
    drug["medicationCodeableConcept"]["coding"].insert(0, {"system": FEST, "code": "081234"})
    pid, _, (entry,) = setup(server, drug)
    chart = f"/kurve/{pid}"
    key = f"{entry['id']}/{today}/morgen/1"
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(chart).text
        assert "Reseptgruppe A" in page
        assert f'action="{chart}/gitt"' not in page  # no one-tap: the dose page asks
        fields = {
            "dose": key,
            "versjon": entry["meta"]["versionId"],
            "utfall": "gitt",
            "enhet": "tablett",
        }
        r = post(nurse, f"{chart}/dose", chart, **fields, mengde="1", tid="08:05")
        assert r.status_code == 422
        assert "krever kontrollsignatur" in text(r.text)
        assert 'id="kontroll-error"' in r.text
        r = post(nurse, f"{chart}/dose", chart, **fields, mengde="1", kontroll="9144943")
        assert r.status_code == 303, r.text
    assert rows(server, pid) == [("completed", key, "1", 1)]


def test_a_paused_list_shows_no_doses(server: LiveServer, clock: Clock) -> None:
    at(clock, 8, 0)
    pid, list_id, _ = setup(server, med())
    with server.client("gp") as gp:
        version = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueString": "Innlagt"}],
        }
        headers = {"If-Match": f'W/"{version}"'}
        ok(gp.post(f"/fhir/List/{list_id}/$pause", json=body, headers=headers))
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(f"/kurve/{pid}").text
        assert "Ingen doser gis fra en pauset liste" in text(page)
        assert "/gitt" not in page
        assert "Listen er pauset – ingen doser" in text(nurse.get("/kurve").text)


def test_another_units_nurse_is_refused_and_logged(server: LiveServer, clock: Clock) -> None:
    at(clock, 8, 0)
    pid, _, _ = setup(server, med())
    with logged_in(server, "nurse") as other:
        r = other.get(f"/kurve/{pid}")
        assert r.status_code == 403
        assert "Tore" not in r.text
        assert "Ingen pasienter er registrert ved enheten" in text(other.get("/kurve").text)
    with logged_in(server, "gp") as gp:
        assert gp.get(f"/kurve/{pid}").status_code == 403  # not a page for doctors
    with server.db.read() as conn:
        last = conn.execute(
            sa.select(audit_event.c.outcome, audit_event.c.actor)
            .where(audit_event.c.patient_id == pid)
            .order_by(audit_event.c.id.desc())
        ).first()
    assert last is not None
    assert "Siri Sykepleier" in last.actor
    assert last.outcome != "0"


def test_every_page_view_is_one_record_in_the_access_log(server: LiveServer, clock: Clock) -> None:
    at(clock, 8, 0)
    pid, _, _ = setup(server, med())

    def count() -> int:
        with server.db.read() as conn:
            query = sa.select(sa.func.count()).where(audit_event.c.patient_id == pid)
            return int(conn.execute(query).scalar_one())

    with logged_in(server, "care-worker") as worker:
        before = count()
        assert worker.get(f"/kurve/{pid}").status_code == 200
        assert count() == before + 1
        assert worker.get("/kurve").status_code == 200
        assert count() == before + 2


def test_the_printed_chart_names_the_list_version_and_the_patient(
    server: LiveServer, clock: Clock
) -> None:
    at(clock, 7, 0)
    pid, list_id, _ = setup(server, med(), prn())
    with server.client("gp") as gp:
        version = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
        fnr = ok(gp.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"]
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(f"/kurve/{pid}/utskrift")
        assert page.status_code == 200
        shown = text(page.text)
        assert f"Laget fra listeversjon {version}" in shown
        assert fnr in shown
        assert "CAVE" in shown
        assert "☐ gitt ☐ ikke gitt" in shown
        assert "Ved behov" in shown


def test_the_demo_has_a_nursing_home_with_patients_on_the_chart(server: LiveServer) -> None:
    from pll.services.demo import create_demo
    from pll.services.demo_care import RESIDENTS

    numbers = create_demo(server.service, RESIDENTS + 2, seed=2026)
    with logged_in(server, "nursing-home-nurse") as nurse:
        assert nurse.get("/").headers["location"] == "/kurve"
        page = nurse.get("/kurve").text
        listed = re.findall(r'<tr id="pasient-([0-9a-f-]+)"', page)
        assert len(listed) == RESIDENTS
        for fnr in numbers[1 : RESIDENTS + 1]:
            assert fnr in page
        assert numbers[0] not in page  # the GP persona's patient lives at home
        assert nurse.get(f"/kurve/{listed[0]}").status_code == 200
