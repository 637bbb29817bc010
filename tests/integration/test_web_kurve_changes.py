"""What the ``/kurve`` chart shows beside the doses (issue 17), over real HTTP on both
databases: a doctor's change at the top of the chart with the affected doses marked, the
count on the unit's overview, one acknowledgement by a nurse (never a care worker) of the
list version the page was made from — a change that arrives while she reads stays
unacknowledged —, the printout with the changes and the bag column; a multidose patient's
bags per dose and their differences from the list; deviations reported from the chart; a
unit's own round times on the chart and under the one-tap "Gitt"."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa

from pll.domain.administration import OSLO
from pll.store.schema import care_acknowledgement, discrepancy_case
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import dose, ok
from tests.integration.test_administrations import med, rows, setup
from tests.integration.test_care_unit_settings import SETTINGS, settings
from tests.integration.test_care_units import unit
from tests.integration.test_multidose import new_patient, report
from tests.integration.test_web import logged_in
from tests.integration.test_web_kurve import at, post, text

MARK = "Endret — ikke kvittert"
ACKNOWLEDGE = "Kvitter for endringene"


def change_dose(server: LiveServer, entry: dict[str, Any], amount: float) -> int:
    """The doctor changes the entry's dose (morning and evening); the list's new version."""
    with server.client("gp") as gp:
        current = ok(gp.get(f"/fhir/MedicationStatement/{entry['id']}"))
        version = current["meta"]["versionId"]
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{entry['id']}",
                json={**current, "dosage": dose(amount, "MORN", "EVE")},
                headers={"If-Match": f'W/"{version}"'},
            )
        )
        return int(ok(gp.get(f"/fhir/List/{current_list(gp, entry)}"))["meta"]["versionId"])


def current_list(gp: httpx.Client, entry: dict[str, Any]) -> str:
    pid = entry["subject"]["reference"].split("/")[1]
    return str(ok(gp.get(f"/fhir/List?patient={pid}"))["entry"][0]["resource"]["id"])


def overview_count(client: httpx.Client, pid: str) -> str:
    row = re.search(rf'<tr id="pasient-{pid}".*?</tr>', client.get("/kurve").text, re.S)
    assert row is not None
    cell = re.search(r'<td class="unacknowledged">(.*?)</td>', row.group(0), re.S)
    assert cell is not None
    return text(cell.group(1)).strip()


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, name
    return found.group(1)


def acknowledgements(server: LiveServer, pid: str) -> list[int]:
    with server.db.read() as conn:
        t = care_acknowledgement
        query = sa.select(t.c.list_version).where(t.c.patient_id == pid)
        return sorted(int(v) for v in conn.execute(query).scalars())


def test_a_doctors_change_is_at_the_top_and_a_nurse_acknowledges_it(
    server: LiveServer, clock: Clock
) -> None:
    today = at(clock, 8, 10)
    pid, _, (entry,) = setup(server, med())
    chart = f"/kurve/{pid}"
    with logged_in(server, "nursing-home-nurse") as nurse:
        assert MARK not in nurse.get(chart).text  # the unit took the list in as registered
        assert overview_count(nurse, pid) == "–"
    version = change_dose(server, entry, 2)
    with logged_in(server, "care-worker") as worker:
        assert overview_count(worker, pid) == "1 endring"
        page = worker.get(chart).text
        shown = text(page)
        assert f"{MARK}: 1 endring siden enheten sist kvitterte" in shown
        assert "Metformin tab 500 mg: endret dose" in shown
        assert "1 tablett morgen og kveld → 2 tabletter morgen og kveld" in shown
        assert "Kari Fastlege" in shown
        assert f"listeversjon {version}" in shown
        # both of the entry's doses today are marked
        assert page.count('<p class="changed">') == 2
        # the dose's page says it too
        morning = f"{entry['id']}/{today}/morgen/1"
        dose_page = text(worker.get(f"{chart}/dose?dose={quote(morning)}").text)
        assert f"{MARK}: Metformin tab 500 mg: endret dose" in dose_page
        # a care worker sees the changes, and that a nurse must acknowledge them
        assert ACKNOWLEDGE not in page
        assert "En sykepleier ved enheten må lese og kvittere for endringene" in shown
        before = snapshot(server.db, audit=False)
        fields = {"liste": current_list_of(server, pid), "listeversjon": str(version)}
        r = post(worker, f"{chart}/kvitter", chart, **fields)
        assert r.status_code == 403
        assert snapshot(server.db, audit=False) == before
        # the printout carries the change and marks the doses
        printed = text(worker.get(f"{chart}/utskrift").text)
        assert "1 tablett morgen og kveld → 2 tabletter morgen og kveld" in printed
        assert printed.count(MARK) >= 3  # the heading, the row, each dose
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(chart).text
        assert ACKNOWLEDGE in page
        assert hidden(page, "listeversjon") == str(version)
        r = post(
            nurse,
            f"{chart}/kvitter",
            chart,
            liste=hidden(page, "liste"),
            listeversjon=hidden(page, "listeversjon"),
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"{chart}#endringer"
        after = nurse.get(chart).text
        assert f"Kvittert for 1 endring til og med listeversjon {version}" in text(after)
        assert MARK not in after
        assert ACKNOWLEDGE not in after
        assert overview_count(nurse, pid) == "–"
        # the same form again (a second tablet): nothing written, said plainly
        r = post(nurse, f"{chart}/kvitter", chart, **fields)
        assert r.status_code == 303
        said = text(nurse.get(chart).text)
        assert f"Endringene til og med listeversjon {version} var allerede kvittert" in said
    assert acknowledgements(server, pid) == [version]


def current_list_of(server: LiveServer, pid: str) -> str:
    with server.client("gp") as gp:
        return str(ok(gp.get(f"/fhir/List?patient={pid}"))["entry"][0]["resource"]["id"])


def test_a_change_made_while_the_nurse_reads_stays_unacknowledged(
    server: LiveServer, clock: Clock
) -> None:
    at(clock, 8, 10)
    pid, _, (entry,) = setup(server, med())
    chart = f"/kurve/{pid}"
    read = change_dose(server, entry, 2)
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(chart).text
        assert hidden(page, "listeversjon") == str(read)
        # while she reads, the doctor changes the dose again
        later = change_dose(server, entry, 3)
        r = post(
            nurse,
            f"{chart}/kvitter",
            chart,
            liste=hidden(page, "liste"),
            listeversjon=hidden(page, "listeversjon"),
        )
        assert r.status_code == 303, r.text
        after = nurse.get(chart).text
        shown = text(after)
        assert f"Kvittert for 1 endring til og med listeversjon {read}" in shown
        assert (
            "Listen er endret etter at du åpnet kurven: 1 endring kom til mens du leste og er "
            "ikke kvittert" in shown
        )
        # the newer change is at the top again, from 2 to 3 tablets, with its version
        assert f"{MARK}: 1 endring" in shown
        assert "2 tabletter morgen og kveld → 3 tabletter morgen og kveld" in shown
        assert f"listeversjon {later}" in shown
        assert hidden(after, "listeversjon") == str(later)
        assert overview_count(nurse, pid) == "1 endring"
    assert acknowledgements(server, pid) == [read]


def test_a_multidose_patients_bags_on_the_chart_and_the_printout(
    server: LiveServer, clock: Clock
) -> None:
    today = date_of(at(clock, 7, 30))
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        p = new_patient(server, gp)  # Metformin and Atorvastatin packed, Amlodipin not
        ok(nurse.post(f"/fhir/Patient/{p.pid}/$care-unit-register", json=unit()), 201)
    ids = [p.entries[n]["id"] for n in ("Metformin", "Atorvastatin")]
    period = {"start": today.isoformat(), "end": (today + timedelta(days=13)).isoformat()}
    with server.client("pharmacist") as pharmacist:
        ok(pharmacist.post(f"/fhir/List/{p.list_id}/$packing-report", json=report(*ids, **period)))
    chart = f"/kurve/{p.pid}"
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(chart).text
        assert cell_of(page, p.entries["Metformin"], today).count("I posen") == 1
        assert "Gis fra egen pakning" in cell_of(page, p.entries["Amlodipin"], today)
        assert "Posen stemmer ikke med listen" not in page
    # the doctor changes Metformin after packing: the bag no longer matches the list
    change_dose(server, p.entries["Metformin"], 2)
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(chart).text
        assert "Multidoseposene stemmer ikke med listen" in text(page)
        metformin = text(cell_of(page, p.entries["Metformin"], today))
        assert "Posen stemmer ikke med listen: morgen" in metformin
        assert MARK in metformin
        printed = nurse.get(f"{chart}/utskrift").text
        assert '<th scope="col" class="bag-column">Pose</th>' in printed
        assert "Posen stemmer ikke med listen" in text(printed)
        assert "(gis fra egen pakning)" in text(printed)


def date_of(iso: str) -> Any:
    return datetime.fromisoformat(iso).date()


def cell_of(page: str, entry: dict[str, Any], day: Any, slot: str = "morgen/1") -> str:
    anchor = f"dose-{entry['id']}-{day.isoformat()}-{slot.replace('/', '-').replace(':', '')}"
    found = re.search(rf'<div class="dose [a-z-]+" id="{anchor}">(.*?)</td>', page, re.S)
    assert found is not None, anchor
    return found.group(1)


def cases(server: LiveServer, pid: str) -> list[tuple[Any, ...]]:
    with server.db.read() as conn:
        t = discrepancy_case
        query = sa.select(t.c.kind, t.c.administration_id, t.c.planned_dose, t.c.description)
        found = conn.execute(query.where(t.c.patient_id == pid))
        return sorted((tuple(r) for r in found), key=lambda c: tuple(str(x) for x in c))


def test_deviations_are_reported_from_the_chart(server: LiveServer, clock: Clock) -> None:
    today = at(clock, 9, 30)  # the morning dose is late
    pid, _, (entry,) = setup(server, med())
    chart = f"/kurve/{pid}"
    morning = f"{entry['id']}/{today}/morgen/1"
    about_entry = f"MedicationStatement/{entry['id']}/_history/{entry['meta']['versionId']}"
    with logged_in(server, "care-worker") as worker:
        page = worker.get(chart).text
        assert f"/avvik?gjelder={quote(about_entry, safe='/')}" in page
        assert f"/avvik?gjelder={quote('planned-dose|' + morning, safe='/')}" in page
        # the list is unclear about the entry: the form, a refusal keeping what was typed
        form = worker.get(f"{chart}/avvik?gjelder={quote(about_entry)}")
        assert form.status_code == 200
        assert "Listen er feil eller uklar om legemidlet" in text(form.text)
        before = snapshot(server.db, audit=False)
        r = post(worker, f"{chart}/avvik", chart, gjelder=about_entry, beskrivelse="")
        assert r.status_code == 400
        assert "Skriv hva som er feil eller uklart" in text(r.text)
        long = "Dosen er uklar. " * 260
        r = post(worker, f"{chart}/avvik", chart, gjelder=about_entry, beskrivelse=long)
        assert r.status_code == 400
        assert "Skriv høyst 4000 tegn" in text(r.text)
        assert long.strip() in r.text  # what was typed is kept
        assert snapshot(server.db, audit=False) == before
        said = "Står morgen og kveld, men legen sa bare morgen"
        r = post(worker, f"{chart}/avvik", chart, gjelder=about_entry, beskrivelse=said)
        assert r.status_code == 303, r.text
        assert "Avviket er meldt til" in text(worker.get(chart).text)
        # the missed morning dose
        missed = f"planned-dose|{morning}"
        form = worker.get(f"{chart}/avvik?gjelder={quote(missed)}")
        assert "En planlagt dose som ikke ble gitt" in text(form.text)
        assert "morgen kl. 08:00" in text(form.text)
        r = post(worker, f"{chart}/avvik", chart, gjelder=missed, beskrivelse="Glemt i morges")
        assert r.status_code == 303, r.text
        # a dose not on the chart (a stale link): refused in Norwegian, nothing written
        before = snapshot(server.db, audit=False)
        gone = f"planned-dose|{entry['id']}/{today}/middag/1"
        assert worker.get(f"{chart}/avvik?gjelder={quote(gone)}").status_code == 404
        r = post(worker, f"{chart}/avvik", chart, gjelder=gone, beskrivelse="Noe")
        assert r.status_code == 400
        assert "Avviket kunne ikke meldes" in text(r.text)
        assert "Noe" in r.text
        assert snapshot(server.db, audit=False) == before
    with logged_in(server, "nursing-home-nurse") as nurse:
        # a recorded administration: the late morning dose given, then reported as wrong
        fields = {"dose": morning, "versjon": entry["meta"]["versionId"], "utfall": "gitt"}
        r = post(nurse, f"{chart}/dose", chart, **fields, tid="09:30")
        assert r.status_code == 303, r.text
        page = nurse.get(chart).text
        record = re.search(r"gjelder=MedicationAdministration/([A-Za-z0-9\-.]+)", page)
        assert record is not None
        about_record = f"MedicationAdministration/{record.group(1)}"
        form = nurse.get(f"{chart}/avvik?gjelder={quote(about_record)}")
        assert "Feil ved en registrert utdeling" in text(form.text)
        wrong = {"gjelder": about_record, "beskrivelse": "Gitt for sent"}
        r = post(nurse, f"{chart}/avvik", chart, **wrong)
        assert r.status_code == 303, r.text
    assert cases(server, pid) == sorted(
        [
            ("administration", None, morning, "Glemt i morges"),
            ("administration", record.group(1), None, "Gitt for sent"),
            ("discrepancy", None, None, said),
        ],
        key=lambda c: tuple(str(x) for x in c),
    )


def test_the_units_own_round_times_are_on_the_chart_and_under_gitt(
    server: LiveServer, clock: Clock
) -> None:
    at(clock, 12, 0)
    pid, _, (entry,) = setup(server, med())
    with server.client("nursing-home-nurse") as nurse:
        ok(nurse.post(SETTINGS, json=settings()))  # morgen 07:30 from tomorrow
    chart = f"/kurve/{pid}"
    with logged_in(server, "nursing-home-nurse") as nurse:
        assert "08:00" in text(nurse.get(chart).text)  # today keeps its times
    # the next morning at 07:40
    tomorrow = datetime.now(OSLO).date() + timedelta(days=1)
    moment = datetime.combine(tomorrow, time(7, 40), OSLO)
    clock.offset = moment.astimezone(UTC) - datetime.now(UTC)
    key = f"{entry['id']}/{tomorrow}/morgen/1"
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(chart).text
        assert "morgen 07:30" in text(nurse.get("/kurve").text)
        assert f'name="dose" value="{key}"' in page
        assert "08:00" not in text(page)
        assert "Gi: Metformin tab 500 mg kveld 19:00" in page
        r = post(nurse, f"{chart}/gitt", chart, dose=key, versjon=entry["meta"]["versionId"])
        assert r.status_code == 303, r.text
        assert "1 tablett kl. 07:40" in text(nurse.get(chart).text)
    assert rows(server, pid) == [("completed", key, "1", 1)]


def test_an_acknowledgement_names_the_charts_own_patients_list(
    server: LiveServer, clock: Clock
) -> None:
    """The list id comes from the form: one that is not the chart's patient's list is
    refused (the page of patient A cannot acknowledge patient B's changes)."""
    at(clock, 8, 10)
    pid, _, (entry,) = setup(server, med())
    other, _, (their_entry,) = setup(server, med())
    change_dose(server, entry, 2)
    change_dose(server, their_entry, 2)
    with logged_in(server, "nursing-home-nurse") as nurse:
        theirs = nurse.get(f"/kurve/{other}").text
        r = post(
            nurse,
            f"/kurve/{pid}/kvitter",
            f"/kurve/{pid}",
            liste=hidden(theirs, "liste"),
            listeversjon=hidden(theirs, "listeversjon"),
        )
        assert r.status_code == 404, r.text
    assert acknowledgements(server, pid) == []
    assert acknowledgements(server, other) == []
