"""The demo shows an expired prescription (issue 16: "a prescription issued 19.07.2023 is
shown on 06.12.2026 as 'Gyldig'"): the first demo patient, the GP persona's, has a medicine
prescribed in the pilot more than a year before the demo's today and never renewed. It is
issued on the demo's own clock of that day, as PLL issues any prescription, so the list
shows it "Utløpt <date>" and flags the entry, on both databases."""

from __future__ import annotations

import re
from datetime import date, timedelta

from pll.domain.prescriptions import local_day
from pll.fhir.expiry import EXT_EXPIRED
from pll.services.demo import create_demo
from tests.conftest import LiveServer
from tests.integration.builders import ok
from tests.integration.test_web import logged_in, opened


def _shown(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def test_the_first_demo_patient_has_an_expired_prescription_on_the_list(
    server: LiveServer,
) -> None:
    numbers = create_demo(server.service, 3, seed=2026)
    today = local_day(server.service.clock())
    with server.client("gp") as api:
        found = ok(api.get("/fhir/Patient", params={"identifier": numbers[0]}))
        pid = found["entry"][0]["resource"]["id"]
        bundle = ok(api.get("/fhir/MedicationRequest", params={"patient": pid}))
    prescriptions = [e["resource"] for e in bundle["entry"]]
    expired = [
        rx for rx in prescriptions if any(x["url"] == EXT_EXPIRED for x in rx.get("extension", []))
    ]
    assert len(expired) == 1, prescriptions
    rx = expired[0]
    issued = date.fromisoformat(rx["authoredOn"])
    end = date.fromisoformat(rx["dispenseRequest"]["validityPeriod"]["end"])
    # issued more than a year back on the demo's clock, valid its year, and expired by now
    assert issued < today - timedelta(days=365)
    assert end < today
    assert rx["status"] == "active"
    drug = rx["medicationCodeableConcept"]["text"]

    with logged_in(server, "gp") as gp:
        listed = gp.get(opened(gp, numbers[0])).text
    row = re.search(rf'<tr id="entry-[^"]+" data-drug="{re.escape(drug)}">.*?</tr>', listed, re.S)
    assert row, f"{drug} is not in use on the list"
    assert f"Utløpt {_shown(end)}" in row.group(0)
    assert "Resepten er utløpt — pasienten kan være uten legemidlet" in row.group(0)
    # the other prescriptions of the demo's later visits are still valid
    assert listed.count("rx-expired-flag") == 1
