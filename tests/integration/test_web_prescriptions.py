"""The prescription parts of the pages over real HTTP, on both databases: the renewal form's
quantity and reit, a refused field kept beside its field with nothing changed, and the
pharmacy's packing basis showing a prescription's validity and expiry. Dates are relative
to the test's own today (the server's clock)."""

from __future__ import annotations

from datetime import date, timedelta

from pll.domain.prescriptions import add_duration, local_day
from tests.conftest import Clock, LiveServer, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.e2e.test_pharmacy import multidose_patient
from tests.integration.builders import ok
from tests.integration.test_web import csrf, logged_in, opened


def _shown(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def _head(server: LiveServer, pid: str) -> dict[str, object]:
    with server.client("gp") as api:
        found = ok(api.get("/fhir/MedicationRequest", params={"patient": pid}))
    return next(e["resource"] for e in found["entry"] if e["resource"]["status"] == "active")


def test_a_renewal_takes_quantity_and_reit_and_an_absurd_one_is_kept_and_refused(
    server: LiveServer, clock: Clock
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    rx_id = scene.prescriptions[METFORMIN[2]]
    today = local_day(clock())
    with logged_in(server, "gp") as gp:
        page = opened(gp, scene.fnr)
        form = gp.get(f"{page}/legemiddel/{entry_id}/forny").text
        assert 'id="rx-repeats" name="rx-repeats" value="0"' in form
        # the default validity is a year only where FEST gives the drug no shorter one
        assert "eller kortere der legemidlets reseptgyldighet i FEST er kortere" in form
        assert f"Gyldig til {_shown(add_duration(today, 'P1Y'))}" in form
        token = csrf(gp, page)
        renew = {"csrf": token, "prescription": rx_id, "version": "1", "rx-quantity": "3"}
        before = snapshot(server.db, audit=False)
        for field, typed, words in (
            ("rx-repeats", "-1", "Reit"),
            ("rx-stop", "2020-01-01", "Stopp: datoen kan ikke være før start"),
            ("rx-stop", "9999-12-31", "Stopp: mer enn 10 år fram i tid er ikke mulig"),
            ("rx-start", "1850-01-01", "Start: datoen må være etter 1900"),
            ("rx-valid-until", "9999-12-31", "Gyldig til: en e-resept skrevet i dag"),
            ("rx-quantity", "0", "Mengde"),
        ):
            r = gp.post(f"{page}/legemiddel/{entry_id}/forny", data={**renew, field: typed})
            assert r.status_code == 400, (field, r.text)
            assert f'id="{field}-error"><strong>Feil:</strong> {words}' in r.text
            assert f'value="{typed}"' in r.text
            assert snapshot(server.db, audit=False) == before
        valid_until = today + timedelta(days=90)
        r = gp.post(
            f"{page}/legemiddel/{entry_id}/forny",
            data={**renew, "rx-repeats": "2", "rx-valid-until": valid_until.isoformat()},
        )
        assert r.status_code == 303, r.text
        listed = gp.get(page).text
        assert "3 pakninger, reit 2" in listed
        assert f"Gyldig til {_shown(valid_until)}" in listed
    renewal = _head(server, scene.pid)
    assert renewal["priorPrescription"] == {"reference": f"MedicationRequest/{rx_id}"}
    assert renewal["dispenseRequest"] == {
        "quantity": {"value": 3, "unit": "pakning"},
        "numberOfRepeatsAllowed": 2,
        "validityPeriod": {"start": today.isoformat(), "end": valid_until.isoformat()},
    }
    # the treatment's period was left as it was: the entry did not change
    with server.client("gp") as api:
        entry = ok(api.get(f"/fhir/MedicationStatement/{entry_id}"))
    assert entry["effectivePeriod"] == {"start": "2026-10-01"}


def test_the_pharmacy_and_the_patient_see_when_a_prescription_expires(
    server: LiveServer, clock: Clock
) -> None:
    p = multidose_patient(server)
    with server.client("gp") as api:
        rx = ok(
            api.post(
                "/fhir/MedicationRequest",
                json={
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {"text": "Metformin tab 500 mg"},
                    "subject": {"reference": f"Patient/{p.pid}"},
                },
            ),
            201,
        )
        entry = ok(api.get(f"/fhir/MedicationStatement/{p.entries['Metformin']}"))
        entry["basedOn"] = [{"reference": f"MedicationRequest/{rx['id']}"}]
        ok(
            api.put(
                f"/fhir/MedicationStatement/{entry['id']}",
                json=entry,
                headers={"If-Match": f'W/"{entry["meta"]["versionId"]}"'},
            )
        )
    end = date.fromisoformat(rx["dispenseRequest"]["validityPeriod"]["end"])

    def pages() -> tuple[str, str]:
        with logged_in(server, "pharmacist") as pharmacy:
            basis = pharmacy.get(f"/apotek/pasient/{p.pid}")
            assert basis.status_code == 200, basis.text
        with logged_in(server, "patient", p.fnr) as me:
            mine = me.get(f"/pasient/{p.pid}")
            assert mine.status_code == 200, mine.text
        return basis.text, mine.text

    basis, mine = pages()
    assert f"Gyldig til {_shown(end)}" in basis
    assert "Resepten er gyldig til" in mine
    clock.advance(days=(end - local_day(clock())).days + 1)
    basis, mine = pages()
    assert f"Utløpt {_shown(end)}" in basis
    assert "Kan ikke ekspederes" in basis
    assert "Resepten er utløpt" in mine
