"""e-multidose in a real browser (issue 7): the multidose pharmacy sees its patients and the
packing basis (M25.1), proposes a dose change (M25.2) that the responsible doctor accepts,
stops packing while the list is paused and reports packing (M25.3) once it is resumed; another
pharmacy is refused. Registration and list are set up over the FHIR API, as the GP's journal
system would."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from playwright.sync_api import expect

from pll.domain.multidose import ADMINISTRATION
from pll.store.schema import audit_event
from tests.conftest import LiveServer
from tests.e2e.conftest import Screen, login, open_patient
from tests.e2e.scenes import entry_row
from tests.integration.builders import (
    DRUGS,
    block_consent,
    multidose_catalogue,
    new_fnr,
    new_patient_with_list,
    ok,
    prescribed,
)

BERGEN = "985563756"  # the "pharmacist" persona's pharmacy
PHARMACIST_HPR = "9144919"
ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101"


@dataclass
class MultidosePatient:
    fnr: str
    pid: str
    list_id: str
    #: entry ids by the drug's first word
    entries: dict[str, str]


def multidose_patient(server: LiveServer) -> MultidosePatient:
    """The GP registers as responsible multidose doctor with the Bergen pharmacy and sends
    the list: Metformin and Atorvastatin packed in multidose, Amlodipin not."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, list_id = new_patient_with_list(gp, fnr)
        ok(
            gp.post(
                f"/fhir/Patient/{pid}/$multidose-register",
                json={
                    "resourceType": "Parameters",
                    "parameter": [
                        {
                            "name": "pharmacy",
                            "valueReference": {
                                "identifier": {"system": ORGNR, "value": BERGEN},
                                "display": "Apotek 1 Bergen multidose",
                            },
                        }
                    ],
                },
            )
        )
        # packable (issue 18): tablets from the catalogue, on prescriptions, in the morning
        multidose_catalogue(server.db)
        entries = {}
        for (name, atc), in_bag in zip(DRUGS[:3], (True, True, False), strict=True):
            mark = [
                {
                    "url": ADMINISTRATION,
                    "extension": [{"url": "mddispensed", "valueBoolean": in_bag}],
                }
            ]
            entries[name.split()[0]] = prescribed(gp, pid, name, atc, extension=mark)["id"]
    return MultidosePatient(fnr, pid, list_id, entries)


def _entry(server: LiveServer, entry_id: str) -> dict[str, Any]:
    with server.client("gp") as api:
        return ok(api.get(f"/fhir/MedicationStatement/{entry_id}"))


def test_the_pharmacy_proposes_the_doctor_accepts_and_packing_stops_while_paused(
    server: LiveServer, screens
) -> None:
    p = multidose_patient(server)

    # the pharmacy's work list, then the packing basis
    pharmacy: Screen = screens("pharmacist")
    login(pharmacy, "pharmacist")
    expect(pharmacy.page.get_by_role("heading", name="Mine multidosepasienter")).to_be_visible()
    row = pharmacy.page.locator(f"#patient-{p.pid}")
    expect(row).to_contain_text(p.fnr)
    expect(row).to_contain_text("I bruk")
    expect(row).to_contain_text("Kari Fastlege")
    pharmacy.shot("apotek-pasienter")
    row.get_by_role("link", name=p.fnr).click()
    expect(pharmacy.page.get_by_role("heading", name=re.compile("Pakkegrunnlag"))).to_be_visible()
    expect(pharmacy.page.locator("#baton")).to_contain_text("Kari Fastlege")
    expect(pharmacy.page.locator("#baton")).to_contain_text("multidoseansvarlig lege")
    # no doctor has confirmed this list: packing is allowed, with a warning
    expect(pharmacy.page.locator("#packing-allowed")).to_have_text(
        "Kan pakkes, men listen er aldri bekreftet"
    )
    expect(pharmacy.page.locator("#never-confirmed")).to_contain_text("Ingen lege har bekreftet")
    expect(pharmacy.page.locator("#patient-banner")).to_contain_text(p.fnr)
    expect(pharmacy.page.locator("#cave")).to_contain_text("Ingen registrerte legemiddelreaksjoner")
    expect(entry_row(pharmacy, "Metformin")).to_contain_text("Multidose")
    expect(entry_row(pharmacy, "Amlodipin")).to_contain_text("Ikke i multidose")
    pharmacy.shot("apotek-pakkegrunnlag")

    # a dose change, proposed on the version the pharmacy sees
    entry_row(pharmacy, "Metformin").get_by_role("link", name=re.compile("Foreslå ny dose")).click()
    pharmacy.page.locator("#dose-MORN").fill("")
    pharmacy.type("#dose-MORN", "2")
    expect(pharmacy.page.locator("#dose-preview")).to_have_text("2 tabletter morgen")
    pharmacy.page.locator("#reason").fill("Blodsukkeret er høyt; legen sa to tabletter")
    pharmacy.page.locator("#note").fill("Ring apoteket ved spørsmål")
    pharmacy.shot("apotek-forslag")
    pharmacy.page.get_by_role("button", name="Send forslaget til legen").click()
    expect(pharmacy.page.locator(".notice").first).to_contain_text("Forslaget er sendt")
    expect(pharmacy.page.locator("main")).to_contain_text("Venter på legen")
    assert _entry(server, p.entries["Metformin"])["meta"]["versionId"] == "1"  # not yet

    # the GP sees it waiting, and accepts it
    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, p.fnr)
    waiting = gp.page.get_by_role("link", name=re.compile("1 forslag venter"))
    expect(waiting).to_be_visible()
    waiting.click()
    expect(gp.page.get_by_role("heading", name=re.compile("Forslag fra"))).to_be_visible()
    item = gp.page.locator("fieldset", has_text="Endre: Metformin")
    expect(item).to_contain_text("1 tablett morgen")
    expect(item).to_contain_text("2 tabletter morgen")
    expect(item).to_contain_text("Blodsukkeret er høyt")
    gp.shot("lege-forslag")
    item.get_by_label("Godta", exact=True).check()
    gp.page.get_by_role("button", name="Send svarene").click()
    expect(gp.page.locator(".notice").first).to_contain_text("1 forslag er godtatt")
    expect(entry_row(gp, "Metformin")).to_contain_text("2 tabletter morgen")
    expect(gp.page.locator("#baton")).to_contain_text("Kari Fastlege")
    expect(gp.page.get_by_role("link", name=re.compile("forslag venter"))).to_have_count(0)
    entry = _entry(server, p.entries["Metformin"])
    assert entry["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 2

    # the pharmacy sees the answer, and the list's new version
    pharmacy.page.reload()
    expect(pharmacy.page.locator("main")).to_contain_text("Godtatt")
    expect(entry_row(pharmacy, "Metformin")).to_contain_text("2 tabletter morgen")

    # the GP pauses the list (a hospital admission): packing must stop
    gp.page.get_by_text("Pause eller gjenoppta hele listen").click()
    gp.page.locator("#pause-reason").fill("Innlagt på Haukeland")
    gp.page.get_by_role("button", name="Pause listen").click()
    expect(gp.page.locator(".notice").first).to_contain_text("pauset")
    pharmacy.page.reload()
    banner = pharmacy.page.locator("#paused")
    expect(banner).to_contain_text("Listen er pauset – stopp pakkingen")
    expect(banner).to_contain_text("Innlagt på Haukeland")
    expect(pharmacy.page.locator("#packing-allowed")).to_contain_text("Skal ikke pakkes")
    pharmacy.shot("apotek-pauset")
    pharmacy.expect_status(409)
    with pharmacy.page.expect_response(re.compile("/pakking$")) as answer:
        pharmacy.page.get_by_role("button", name="Send pakkerapport").click()
    assert answer.value.status == 409
    # the report's form again, the refusal at its top
    refusal = pharmacy.page.locator(".error-summary")
    expect(refusal).to_contain_text("Pakkerapporten ble ikke tatt imot")
    # the pause's time as the page's banner says it (Norwegian time, not UTC)
    paused_at = re.search(r"Pauset \S+ kl\. \d\d:\d\d", banner.inner_text())
    assert paused_at is not None
    expect(refusal).to_contain_text(paused_at.group(0))
    expect(refusal).to_contain_text("listen er pauset, og pakkingen må stoppe")
    expect(refusal).to_contain_text("Innlagt på Haukeland")
    expect(refusal).to_contain_text("Ingenting ble endret")
    pharmacy.shot("apotek-pakking-avvist")

    # resumed with a confirmed list: the report is taken
    gp.page.get_by_text("Pause eller gjenoppta hele listen").click()
    gp.page.get_by_role("button", name="Gjenoppta og bekreft").click()
    expect(gp.page.locator(".notice").first).to_contain_text("gjenopptatt og bekreftet")
    pharmacy.go(f"/apotek/pasient/{p.pid}")
    expect(pharmacy.page.locator("#paused")).to_have_count(0)
    pharmacy.page.locator("#start").fill("2026-11-23")
    pharmacy.page.locator("#end").fill("2026-12-06")
    pharmacy.page.get_by_role("button", name="Send pakkerapport").click()
    expect(pharmacy.page.locator(".notice").first).to_contain_text(
        "Pakkerapporten for 23.11.2026–06.12.2026 er mottatt (2 legemidler"
    )
    with server.client("gp") as api:
        document = ok(
            api.post(
                "/fhir/Patient/$getMedication",
                json={
                    "resourceType": "Parameters",
                    "parameter": [
                        {
                            "name": "patient",
                            "resource": {
                                "resourceType": "Patient",
                                "identifier": [
                                    {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": p.fnr}
                                ],
                            },
                        }
                    ],
                },
            )
        )
    kinds = {
        e["resource"]["code"]["coding"][0]["code"]
        for e in document["parameter"][0]["resource"]["entry"]
        if e["resource"]["resourceType"] == "Basic"
    }
    assert {"M25.2", "M25.3"} <= kinds


def test_the_pharmacy_proposes_a_new_medicine_and_a_removal_and_the_doctor_rejects_one(
    server: LiveServer, screens
) -> None:
    p = multidose_patient(server)
    pharmacy: Screen = screens("pharmacist")
    login(pharmacy, "pharmacist")
    pharmacy.go(f"/apotek/pasient/{p.pid}")
    pharmacy.page.get_by_role("link", name="Foreslå nytt legemiddel").click()
    pharmacy.page.locator("#drug").fill("Paracet tab 500 mg")
    pharmacy.page.get_by_label("Fritekst").check()
    pharmacy.page.locator("#dose-text").fill("1 tablett ved smerter, høyst 4 i døgnet")
    pharmacy.page.locator("#reason").fill("Står på papirresept fra legevakten")
    pharmacy.page.get_by_role("button", name="Send forslaget til legen").click()
    expect(pharmacy.page.locator(".notice").first).to_contain_text("Forslaget er sendt")
    entry_row(pharmacy, "Amlodipin").get_by_role(
        "link", name=re.compile("Foreslå seponering")
    ).click()
    pharmacy.page.locator("#reason").fill("Pasienten bruker den ikke")
    pharmacy.page.get_by_role("button", name="Send forslaget til legen").click()
    expect(pharmacy.page.locator(".notice").first).to_contain_text("Forslaget er sendt")

    gp: Screen = screens("gp")
    login(gp, "gp")
    open_patient(gp, p.fnr)
    gp.page.get_by_role("link", name=re.compile("2 forslag venter")).click()
    new = gp.page.locator("fieldset", has_text="Nytt legemiddel: Paracet")
    removal = gp.page.locator("fieldset", has_text="Seponere: Amlodipin")
    expect(new).to_contain_text("1 tablett ved smerter")
    # a rejection needs a reason for the pharmacy: without one nothing is decided
    new.get_by_label("Avvis", exact=True).check()
    removal.get_by_label("Godta", exact=True).check()
    gp.expect_status(400)
    with gp.page.expect_response(re.compile("/forslag$")) as answer:
        gp.page.get_by_role("button", name="Send svarene").click()
    assert answer.value.status == 400
    expect(gp.page.locator(".error")).to_contain_text("begrunnelse for apoteket")
    gp.page.go_back()
    new = gp.page.locator("fieldset", has_text="Nytt legemiddel: Paracet")
    new.get_by_label("Avvis", exact=True).check()
    new.get_by_label(re.compile("Begrunnelse til apoteket")).fill(
        "Paracet står allerede i FEST-resepten"
    )
    gp.page.locator("fieldset", has_text="Seponere: Amlodipin").get_by_label(
        "Godta", exact=True
    ).check()
    gp.page.get_by_role("button", name="Send svarene").click()
    expect(gp.page.locator(".notice").nth(0)).to_contain_text("1 forslag er godtatt")
    expect(gp.page.locator(".notice").nth(1)).to_contain_text("1 forslag er avvist")
    expect(gp.page.locator("table.ended")).to_contain_text("Amlodipin")
    expect(gp.page.locator("table.ended")).to_contain_text("Pasienten bruker den ikke")

    pharmacy.go(f"/apotek/pasient/{p.pid}")
    expect(pharmacy.page.locator("main")).to_contain_text("Avvist")
    expect(pharmacy.page.locator("main")).to_contain_text("Paracet står allerede i FEST-resepten")
    expect(entry_row(pharmacy, "Paracet")).to_have_count(0)


def test_another_pharmacy_is_refused_and_the_work_list_is_logged(
    server: LiveServer, screens
) -> None:
    p = multidose_patient(server)
    other: Screen = screens("other-pharmacist")
    login(other, "other-pharmacist")
    expect(other.page.locator(f"#patient-{p.pid}")).to_have_count(0)  # not on their list
    other.expect_status(403)
    response = other.page.goto(f"{other.base}/apotek/pasient/{p.pid}")
    assert response is not None
    assert response.status == 403
    expect(other.page.get_by_role("heading", name="Ingen tilgang")).to_be_visible()
    expect(other.page.locator(".error")).to_contain_text("multidoseapotek")
    other.shot("apotek-ingen-tilgang")
    with server.db.read() as conn:
        refused = conn.execute(
            sa.select(audit_event.c.action).where(
                audit_event.c.patient_id == p.pid, audit_event.c.outcome == "4"
            )
        ).all()
    assert [r.action for r in refused] == ["packing-basis"]

    # the own pharmacy's listing is a logged read of each patient shown; a patient who has
    # blocked the pharmacist is left out, and nothing of theirs is logged as read
    blocking = multidose_patient(server)
    with server.client("patient", blocking.fnr) as me:
        ok(me.post("/fhir/Consent", json=block_consent(PHARMACIST_HPR, blocking.pid)), 201)
    pharmacy: Screen = screens("pharmacist")
    login(pharmacy, "pharmacist")
    expect(pharmacy.page.locator(f"#patient-{p.pid}")).to_be_visible()
    expect(pharmacy.page.locator(f"#patient-{blocking.pid}")).to_have_count(0)
    expect(pharmacy.page.locator("main")).to_contain_text("1 pasient på denne siden vises ikke")
    with server.db.read() as conn:
        listed = conn.execute(
            sa.select(audit_event.c.patient_id, audit_event.c.actor).where(
                audit_event.c.patient_id.in_([p.pid, blocking.pid]),
                audit_event.c.action == "multidose-patients",
            )
        ).all()
    assert [r.patient_id for r in listed] == [p.pid]
    assert "Per Farmas" in listed[0].actor
