"""What a nurse found walking ``/kurve`` (walk 17), fixed, over real HTTP on both databases:
a medicine that matches the patient's CAVE is marked on the chart row, the dose page and the
printout, with the doctor's override reason when there is one; a wrong tap is undone
("Registrert feil", with a reason, by the one who tapped) and the dose can be recorded again;
a paused list still shows what was recorded today; the printout lists the as-needed doses
given; the second signer is shown; Norwegian plurals; amounts typed as plain decimals only;
the changes in list-version order; the confirmation beside the dose; the way back to the
chart from an error page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import sqlalchemy as sa

from pll.domain.administration import OSLO
from pll.store.schema import fest_drug, medication_administration
from tests.conftest import Clock, LiveServer, snapshot
from tests.integration.builders import ATC, DRUGS, SMALL_FEST, new_fnr, new_list, ok, patient
from tests.integration.test_administrations import FEST, med, rows, setup
from tests.integration.test_care_units import unit
from tests.integration.test_web import logged_in
from tests.integration.test_web_kurve import at, post, prn, text
from tests.integration.test_web_kurve_changes import change_dose

STATINS = "Statiner (myalgi på simvastatin)"


def reaction(gp: httpx.Client, pid: str, atc: str, said: str) -> str:
    body = {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": ATC, "code": atc}], "text": said},
    }
    return str(ok(gp.post("/fhir/AllergyIntolerance", json=body), 201)["id"])


def marks(html: str) -> list[str]:
    """The CAVE marks of a page, in words."""
    return [text(m).strip() for m in re.findall(r'class="[^"]*cave-mark[^"]*"[^>]*>(.*?)<', html)]


def pause(server: LiveServer, list_id: str, why: str = "Innlagt på sykehus") -> None:
    with server.client("gp") as gp:
        version = ok(gp.get(f"/fhir/List/{list_id}"))["meta"]["versionId"]
        body = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": why}]}
        headers = {"If-Match": f'W/"{version}"'}
        ok(gp.post(f"/fhir/List/{list_id}/$pause", json=body, headers=headers))


def test_a_medicine_matching_cave_is_marked_in_words(server: LiveServer, clock: Clock) -> None:
    today = at(clock, 7, 30)
    statin, other = med(*DRUGS[1]), med(*DRUGS[0])
    pid, _, (atorva, metformin) = setup(server, statin, other)
    with server.client("gp") as gp:
        # recorded after the medicine: no doctor has weighed it
        reaction(gp, pid, "C10AA", STATINS)
    chart = f"/kurve/{pid}"
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(chart).text
        said = f"CAVE: {STATINS} – ikke vurdert av lege. Avklar med lege før dosen gis."
        assert marks(page) == [said]
        table = re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", page, re.S)
        rows_of = {drug: [r for r in table if drug in r] for drug in (DRUGS[0][0], DRUGS[1][0])}
        assert said in text(rows_of[DRUGS[1][0]][0])  # on its own row, not the other's
        assert "cave-mark" not in rows_of[DRUGS[0][0]][0]
        key = quote(f"{atorva['id']}/{today}/morgen/1")
        dose = nurse.get(f"{chart}/dose?dose={key}").text
        assert marks(dose) == [said]
        assert 'role="alert"' in dose.split(said)[0].rsplit("<p", 1)[1]
        key = quote(f"{metformin['id']}/{today}/morgen/1")
        assert marks(nurse.get(f"{chart}/dose?dose={key}").text) == []
        assert marks(nurse.get(f"{chart}/utskrift").text) == [said]


def test_a_doctors_override_of_the_cave_finding_is_shown(server: LiveServer, clock: Clock) -> None:
    at(clock, 7, 30)
    with server.client("gp") as gp, server.client("nursing-home-nurse") as nurse:
        pid = ok(gp.post("/fhir/Patient", json=patient(new_fnr())), 201)["id"]
        new_list(gp, pid)
        cave = reaction(gp, pid, "C10AA", STATINS)
        body = {**med(*DRUGS[1]), "subject": {"reference": f"Patient/{pid}"}}
        assert gp.post("/fhir/MedicationStatement", json=body).status_code == 422
        headers = {
            "X-PLL-Override": "Tåler atorvastatin i lav dose, avtalt med pasienten".encode(),
            "X-PLL-Override-Findings": cave,
        }
        ok(gp.post("/fhir/MedicationStatement", json=body, headers=headers), 201)
        ok(nurse.post(f"/fhir/Patient/{pid}/$care-unit-register", json=unit()), 201)
    with logged_in(server, "nursing-home-nurse") as nurse:
        (said,) = marks(nurse.get(f"/kurve/{pid}").text)
    assert said.startswith(f"CAVE: {STATINS} – legen har vurdert det: Tåler atorvastatin")
    assert "Kari Fastlege" in said


def test_a_wrong_tap_is_undone_by_the_one_who_tapped(server: LiveServer, clock: Clock) -> None:
    today = at(clock, 8, 10)
    pid, _, (entry,) = setup(server, med(amount=2))
    chart = f"/kurve/{pid}"
    key = f"{entry['id']}/{today}/morgen/1"
    version = entry["meta"]["versionId"]
    with logged_in(server, "nursing-home-nurse") as nurse:
        ok_tap = post(nurse, f"{chart}/gitt", chart, dose=key, versjon=version)
        assert ok_tap.status_code == 303
        page = nurse.get(chart).text
        found = re.search(r'href="/kurve/[^/]+/feil\?post=([^"]+)"', page)
        assert found is not None
        rid = found.group(1)
        form = nurse.get(f"{chart}/feil?post={rid}")
        assert form.status_code == 200
        assert "Gitt 2 tabletter kl. 08:10, Nora Sykepleier" in text(form.text)
    # another worker of the unit sees no such action on it, and is refused if she forges one
    with logged_in(server, "care-worker") as worker:
        assert "/feil?post=" not in worker.get(chart).text
        assert "Bare den som registrerte" in text(worker.get(f"{chart}/feil?post={rid}").text)
        before = snapshot(server.db, audit=False)
        r = post(worker, f"{chart}/feil", chart, post=rid, versjon="1", grunn="Feil pasient")
        assert r.status_code == 403
        assert "Bare den som registrerte" in text(r.text)
        assert "Tilbake til kurven" in r.text
        assert snapshot(server.db, audit=False) == before
    with logged_in(server, "nursing-home-nurse") as nurse:
        # no reason: the form again, in Norwegian, nothing written
        before = snapshot(server.db, audit=False)
        r = post(nurse, f"{chart}/feil", chart, post=rid, versjon="1", grunn="")
        assert r.status_code == 400
        assert "Skriv hvorfor registreringen er feil" in text(r.text)
        assert snapshot(server.db, audit=False) == before
        # a stale version (the record changed since): refused, the reason typed kept
        r = post(nurse, f"{chart}/feil", chart, post=rid, versjon="7", grunn="Feil rad trykket")
        assert r.status_code == 409
        assert "Registreringen er endret siden" in text(r.text)
        assert ">Feil rad trykket</textarea>" in r.text
        assert snapshot(server.db, audit=False) == before
        r = post(nurse, f"{chart}/feil", chart, post=rid, versjon="1", grunn="Feil rad trykket")
        assert r.status_code == 303, r.text
        assert rows(server, pid) == [("entered-in-error", key, "2", 2)]
        page = nurse.get(chart)
        assert "Registreringen er merket som feil (Feil rad trykket)" in text(page.text)
        assert f'name="dose" value="{key}"' in page.text  # the one tap is back
        # the correction is kept, and it cannot be made twice
        r = post(nurse, f"{chart}/feil", chart, post=rid, versjon="2", grunn="Igjen")
        assert r.status_code == 409
        assert "allerede merket som feil" in text(r.text)
        # the dose is free: recorded again
        r = post(nurse, f"{chart}/gitt", chart, dose=key, versjon=version)
        assert r.status_code == 303, r.text
    assert sorted(r[0] for r in rows(server, pid)) == ["completed", "entered-in-error"]


def test_a_paused_list_still_shows_what_was_given_today(server: LiveServer, clock: Clock) -> None:
    today = at(clock, 8, 10)
    pid, list_id, (entry, _) = setup(server, med(amount=2), prn())
    chart = f"/kurve/{pid}"
    key = f"{entry['id']}/{today}/morgen/1"
    with logged_in(server, "nursing-home-nurse") as nurse:
        r = post(nurse, f"{chart}/gitt", chart, dose=key, versjon=entry["meta"]["versionId"])
        assert r.status_code == 303
    pause(server, list_id, "Innlagt på Diakonhjemmet")
    with logged_in(server, "nursing-home-nurse") as nurse:
        for path in (chart, f"{chart}/utskrift"):
            page = nurse.get(path).text
            shown = text(page)
            assert "Listen er pauset" in shown
            assert "Registrert i dag før pausen" in shown
            given = re.search(r'<section class="given-today".*?</section>', page, re.S)
            assert given is not None
            said = text(given.group(0))
            assert "08:10" in said
            assert DRUGS[0][0] in said
            assert "Gitt 2 tabletter" in said
            assert "Nora Sykepleier" in said
            assert "/gitt" not in page
            assert "☐ gitt" not in page
        assert "Innlagt på Diakonhjemmet" in text(nurse.get(f"{chart}/utskrift").text)


def test_the_printout_lists_as_needed_doses_given(server: LiveServer, clock: Clock) -> None:
    at(clock, 9, 5)
    pid, _, (needed,) = setup(server, prn())
    chart, eid = f"/kurve/{pid}", needed["id"]
    with logged_in(server, "nursing-home-nurse") as nurse:
        fields = {
            "legemiddel": eid,
            "versjon": needed["meta"]["versionId"],
            f"enhet-{eid}": "tablett",
            f"hvorfor-{eid}": "Smerter i hoften",
            f"mengde-{eid}": "1",
        }
        assert post(nurse, f"{chart}/ved-behov", chart, **fields).status_code == 303
        page = nurse.get(f"{chart}/utskrift").text
    table = re.search(r'<table class="print-prn">.*?</table>', page, re.S)
    assert table is not None
    cells = [text(c).strip() for c in re.findall(r"<td>(.*?)</td>", table.group(0), re.S)]
    assert cells[:4] == ["09:05", "Gitt 1 tablett", "Smerter i hoften", "Nora Sykepleier"]
    assert cells[4:] == [""] * 12  # and three blank rows to fill in by hand
    remaining = "Igjen da kurven ble laget: 1 tablett (maks 2 tabletter per døgn)"
    assert remaining in text(table.group(0))


def test_the_second_signer_is_shown(server: LiveServer, clock: Clock) -> None:
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
    fields = {"dose": key, "versjon": entry["meta"]["versionId"], "utfall": "gitt"}
    with logged_in(server, "nursing-home-nurse") as nurse:
        r = post(nurse, f"{chart}/dose", chart, **fields, enhet="tablett", kontroll="9144943")
        assert r.status_code == 303, r.text
        signed = "Kontrollsignatur: HPR 9144943"
        assert signed in text(nurse.get(chart).text)
        assert signed in text(nurse.get(f"{chart}/dose?dose={quote(key)}").text)
        assert signed in text(nurse.get(f"{chart}/utskrift").text)


def test_amounts_are_plain_decimals(server: LiveServer, clock: Clock) -> None:
    at(clock, 9, 0)
    pid, _, (needed,) = setup(server, prn())
    chart, eid = f"/kurve/{pid}", needed["id"]
    fields = {
        "legemiddel": eid,
        "versjon": needed["meta"]["versionId"],
        f"enhet-{eid}": "tablett",
        f"hvorfor-{eid}": "Uro",
    }
    with logged_in(server, "nursing-home-nurse") as nurse:
        before = snapshot(server.db, audit=False)
        for typed in ("1e0", "1E+0", "inf", "nan", "Infinity", "-1", "0", "1,2,3", "1 000", "0x1"):
            r = post(nurse, f"{chart}/ved-behov", chart, **fields, **{f"mengde-{eid}": typed})
            assert r.status_code == 400, typed
            assert "skrevet med sifre og eventuelt komma" in text(r.text), typed
            assert f'name="mengde-{eid}" inputmode="decimal" size="6" value="{typed}"' in r.text
        assert snapshot(server.db, audit=False) == before
        r = post(nurse, f"{chart}/ved-behov", chart, **fields, **{f"mengde-{eid}": "0,5"})
        assert r.status_code == 303, r.text
        r = post(nurse, f"{chart}/ved-behov", chart, **fields, **{f"mengde-{eid}": "0.5"})
        assert r.status_code == 303, r.text
    with server.db.read() as conn:
        t = medication_administration
        amounts = conn.execute(sa.select(t.c.amount).where(t.c.patient_id == pid)).scalars()
        assert sorted(str(a) for a in amounts) == ["0.5", "0.5"]


def test_the_changes_are_in_list_version_order(server: LiveServer, clock: Clock) -> None:
    at(clock, 7, 0)
    pid, _, made = setup(server, med(), med(*DRUGS[2]))
    # the store gives the changes entry by entry (by id): change the later id first, so
    # only sorting by list version shows them in the order they were made
    first, second = sorted(made, key=lambda e: str(e["id"]), reverse=True)
    versions = [change_dose(server, first, 2), change_dose(server, second, 3)]
    with logged_in(server, "nursing-home-nurse") as nurse:
        page = nurse.get(f"/kurve/{pid}").text
    changes = re.search(r'<section class="changes".*?</section>', page, re.S)
    assert changes is not None
    shown = [int(v) for v in re.findall(r"listeversjon (\d+)</span>", changes.group(0))]
    assert shown == versions == sorted(versions)


def test_the_confirmation_is_beside_the_dose(server: LiveServer, clock: Clock) -> None:
    today = at(clock, 8, 10)
    pid, _, (entry,) = setup(server, med(amount=2))
    chart = f"/kurve/{pid}"
    key = f"{entry['id']}/{today}/morgen/1"
    anchor = "dose-" + key.replace("/", "-").replace(":", "")
    with logged_in(server, "nursing-home-nurse") as nurse:
        r = post(nurse, f"{chart}/gitt", chart, dose=key, versjon=entry["meta"]["versionId"])
        assert r.headers["location"] == f"{chart}#{anchor}"
        page = nurse.get(chart).text
        cell = re.search(rf'<div class="dose given" id="{anchor}">(.*?)</div>', page, re.S)
        assert cell is not None
        assert re.search(
            r'<p class="just-recorded" role="status">Registrert: planlagt dose gitt kl\. 08:10\.',
            cell.group(1),
        )
        # said once, beside the dose, and gone on the next showing
        assert page.count("Registrert: planlagt dose gitt") == 1
        assert "just-recorded" not in nurse.get(chart).text


def test_an_error_page_from_the_chart_leads_back_to_it(server: LiveServer, clock: Clock) -> None:
    at(clock, 8, 0)
    pid, _, _ = setup(server, med())
    with logged_in(server, "nursing-home-nurse") as nurse:
        r = nurse.get(f"/kurve/{pid}/dose?dose=nothing")
        assert r.status_code == 404
        assert f'<a href="/kurve/{pid}" class="chart-back">Tilbake til kurven</a>' in r.text
        r = nurse.get(f"/kurve/{pid}/avvik?gjelder=nothing")
        assert r.status_code == 404
        assert "Tilbake til kurven" in r.text
    with logged_in(server, "nurse") as other:  # another unit's nurse: back to her own unit
        r = other.get(f"/kurve/{pid}")
        assert r.status_code == 403
        assert '<a href="/kurve" class="chart-back">Til enhetens pasienter</a>' in r.text


def test_the_chart_counts_the_as_needed_maximum_over_the_last_24_hours(
    server: LiveServer, clock: Clock
) -> None:
    """Two tablets given at 23:30 leave none at 00:30 of a "høyst 2 per døgn" maximum: the
    chart counts the rolling period recording counts, not the calendar day."""
    today = at(clock, 0, 30)
    pid, _, (entry,) = setup(server, prn())
    # yesterday 23:30 in Norway
    yesterday = (
        datetime.fromisoformat(f"{today}T00:30:00")
        .replace(tzinfo=OSLO)
        .astimezone(UTC)
        .replace(microsecond=0)
    ) - timedelta(hours=1)
    with server.client("nursing-home-nurse") as nurse:
        body = {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": entry["medicationCodeableConcept"],
            "subject": {"reference": f"Patient/{pid}"},
            "supportingInformation": [
                {"reference": f"MedicationStatement/{entry['id']}/_history/1"}
            ],
            "effectiveDateTime": yesterday.isoformat(),
            "dosage": {"dose": {"value": 1, "unit": "tablett"}},
            "reasonCode": [{"text": "Smerter"}],
        }
        ok(nurse.post("/fhir/MedicationAdministration", json=body), 201)
        ok(nurse.post("/fhir/MedicationAdministration", json=body), 201)
    with logged_in(server, "nursing-home-nurse") as nurse:
        shown = text(nurse.get(f"/kurve/{pid}").text)
    assert "0 tabletter igjen" in shown, shown
