"""Samstemming: compare the list with another source, take or leave each difference, confirm.

The pages call :class:`~pll.services.reconcile.Reconciliation`, the same service behind
``List/$compare`` and ``List/$reconcile`` (docs/reconciliation.md). The other source is the
patient's dispensing history in PLL, a list the patient reports (typed in, one medicine a
line, and sent on as the FHIR a journal system would send), or a hospital discharge list
uploaded as FHIR JSON. The source travels with the form between the two steps, so the second
step compares again with exactly what the doctor saw and nothing is kept on the server.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.responses import Response
from starlette.routing import Route

from pll.domain.errors import InvalidInput
from pll.domain.reconcile import Origin, Source
from pll.fhir.reconcile import source_items
from pll.services.reconcile import Reconciliation
from pll.web.edge import Web, doctors, require
from pll.web.views import list_view

#: Largest discharge list accepted as a file, and lines of a patient's own list.
MAX_UPLOAD = 2 * 1024 * 1024
MAX_LINES = 100
KIND_NAMES = {
    "missing-on-list": "Mangler på listen",
    "not-in-source": "Ikke i kilden",
    "dosage-differs": "Ulik dosering",
    "status-differs": "Ulik status",
}


def _url(pid: str, rest: str = "") -> str:
    return f"/lege/pasient/{pid}/samstemming{rest}"


def start_page(web: Web) -> Response:
    pid = web.path_id("pid")
    return web.render(
        "doctor/reconcile_start.html",
        pid=pid,
        fnr=web.session.get("patients", {}).get(pid, ""),
    )


def _patient_list(pid: str, text: str) -> dict[str, Any]:
    """A patient's own list, typed one medicine a line ("Paracet 500 mg; 2 tabletter ved
    behov"), as the FHIR Bundle a journal system would send."""
    entries = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    require(bool(lines), "Skriv minst ett legemiddel, ett per linje.", "patient-list")
    require(len(lines) <= MAX_LINES, f"Høyst {MAX_LINES} linjer.", "patient-list")
    for line in lines:
        name, _, dosage = line.partition(";")
        statement: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {"text": name.strip()[:200]},
            "subject": {"reference": f"Patient/{pid}"},
        }
        if dosage.strip():
            statement["dosage"] = [{"text": dosage.strip()[:500]}]
        entries.append({"resource": statement})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _uploaded(web: Web) -> dict[str, Any]:
    upload = web.form.get("discharge")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("Velg epikrisens legemiddelliste (en FHIR JSON-fil).", "discharge")
    raw = upload.file.read(MAX_UPLOAD + 1)
    require(len(raw) <= MAX_UPLOAD, "Filen er større enn 2 MB.", "discharge")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput(
            "Filen er ikke FHIR JSON: last opp en Bundle eller en List med "
            "MedicationStatement-ressurser.",
            "discharge",
        ) from None
    require(isinstance(data, dict), "Filen må være en FHIR-ressurs (et JSON-objekt).", "discharge")
    return dict(data)


def _source(web: Web, pid: str) -> Source:
    """The source the form names: on the first step from the choice and its input, on the
    second from the hidden copy the first step sent along."""
    origin = web.field("origin")
    carried = web.field("source-json")
    if origin == Origin.DISPENSING.value:
        return Source.dispensing()
    if carried:
        try:
            resource = orjson.loads(carried)
        except orjson.JSONDecodeError:
            raise InvalidInput("Skjemaet er ødelagt; begynn samstemmingen på nytt.") from None
    elif origin == Origin.PATIENT.value:
        resource = _patient_list(pid, web.field("patient-list"))
    elif origin == Origin.DISCHARGE.value:
        resource = _uploaded(web)
    else:
        raise InvalidInput("Velg hva listen skal sammenlignes med.", "origin")
    try:
        return Source(Origin(origin), resource)
    except ValueError:
        raise InvalidInput("Velg hva listen skal sammenlignes med.", "origin") from None


def compare(web: Web) -> Response:
    """Step one: the list and the source side by side, and each difference to take or leave."""
    pid = web.path_id("pid")
    access = web.access(pid)
    stored = web.service.current(access, patient_id=pid, document=True)
    if stored is None:
        raise InvalidInput("Pasienten har ingen PLL å samstemme ennå.", "list")
    lst = list_view(stored.text)
    source = _source(web, pid)
    comparison = Reconciliation(web.service).compare(access, lst.id, source)
    items = source_items(source)[0] if source.resource is not None else []
    return web.render(
        "doctor/reconcile.html",
        pid=pid,
        fnr=web.session.get("patients", {}).get(pid, ""),
        lst=lst,
        origin=source.origin,
        items=items,
        differences=comparison.differences,
        version=comparison.list_version,
        source_json=orjson.dumps(source.resource).decode() if source.resource else "",
        kinds=KIND_NAMES,
    )


def resolve(web: Web) -> Response:
    """Step two: take the accepted differences and confirm the list, as one change."""
    pid = web.path_id("pid")
    raw = web.field("version")
    require(raw.isdigit(), "Skjemaet mangler listeversjonen; begynn på nytt.", "version")
    source = _source(web, pid)
    accepted = [
        key.removeprefix("decision-")
        for key, value in web.form.multi_items()
        if key.startswith("decision-") and value == "accept"
    ]
    stored = web.service.current(web.access(pid), patient_id=pid)
    if stored is None:
        raise InvalidInput("Pasienten har ingen PLL.", "list")
    list_id = orjson.loads(stored.text)["id"]
    done = Reconciliation(web.service).resolve(web.access(pid), list_id, source, accepted, int(raw))
    web.notice(
        f"Listen er samstemt og bekreftet: {len(done.accepted)} avvik tatt inn, "
        f"{len(done.rejected)} avvist. Listen er nå versjon {done.result.list_version}."
    )
    for finding in done.result.findings:
        web.notice(f"Merk: {finding.message}")
    return web.redirect(f"/lege/pasient/{pid}")


ROUTES = [
    Route("/lege/pasient/{pid}/samstemming", doctors(start_page), methods=["GET"]),
    Route("/lege/pasient/{pid}/samstemming", doctors(compare), methods=["POST"]),
    Route("/lege/pasient/{pid}/samstemming/bekreft", doctors(resolve), methods=["POST"]),
]
