"""Samstemming: compare the list with another source, take or leave each difference, confirm.

The pages call :class:`~pll.services.reconcile.Reconciliation`, the same service behind
``List/$compare`` and ``List/$reconcile`` (docs/reconciliation.md). The other source is the
patient's dispensing history in PLL, a list the patient reports (typed in, one medicine a
line, and sent on as the FHIR a journal system would send), or a hospital discharge list
uploaded as FHIR JSON. The source travels with the form between the two steps, so the second
step compares again with exactly what the doctor saw and nothing is kept on the server.

The second step's form is sent as ``multipart/form-data``: a discharge list may be as large
as an upload (2 MB), and url-encoding would roughly double it past what a form field may hold.
Two answers of the service have pages of their own, as for the doctor's other changes:

- **findings** (:class:`ChecksRefused`): a medicine taken in from the source brings a severe
  finding; the doctor's findings page asks for the reason to override it (DESIGN §3 rule 6)
  and posts the same decisions back here;
- **the comparison no longer stands** (:class:`VersionConflict`, or a :class:`Conflict`
  naming differences that are gone): the list or the source moved on since the doctor
  compared; the page offers to compare again with the same source.

Taking the source's side on a medicine that is on the list but not in the source
(``not-in-source``) discontinues it: the page says so in the choice ("Seponer — ikke i
kilden") and asks for the reason, which is required when that choice is made and is kept
with the entry's status, followed by what the source said. A refused form (no decision on a
row, no reason) comes back as the comparison with the doctor's choices kept
(:func:`pll.web.edge.refused_form`).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.responses import Response
from starlette.routing import Route

from pll.domain.errors import (
    ChecksRefused,
    Conflict,
    DomainError,
    InvalidInput,
    VersionConflict,
)
from pll.domain.limits import MAX_SOURCE_ITEMS
from pll.domain.prescriptions import local_day
from pll.domain.reconcile import MAX_REASON, Origin, Source
from pll.fhir.reconcile import source_size
from pll.fhir.validate import parse_json
from pll.services.reconcile import Reconciliation
from pll.web import forms
from pll.web.doctor import findings_page, override_of
from pll.web.edge import Web, doctors, require
from pll.web.views import list_view

#: Largest discharge list accepted as a file, and lines of a patient's own list.
MAX_UPLOAD = 2 * 1024 * 1024
MAX_LINES = 100
#: A list version as the form carries it: digits only, and small enough to be one.
VERSION = re.compile(r"[0-9]{1,9}")
KIND_NAMES = {
    "missing-on-list": "Mangler på listen",
    "not-in-source": "Ikke i kilden",
    "dosage-differs": "Ulik dosering",
    "status-differs": "Ulik status",
}


def _url(pid: str, rest: str = "") -> str:
    return f"/lege/pasient/{pid}/samstemming{rest}"


#: Fields of the second step's form: one decision and (for a discontinuation) one reason
#: per difference, and the ids of the differences shown and of those that discontinue.
DECISION = "decision-"
REASON = "reason-"
OTHER_REASON = "reason-other-"
SHOWN = "difference"
DISCONTINUES = "discontinues"
OTHER = "annet"
_LINE = re.compile(r"entry\[([0-9]+)\]")


def start_page(web: Web) -> Response:
    pid = web.path_id("pid")
    return web.render(
        "doctor/reconcile_start.html",
        pid=pid,
        fnr=web.fnr(pid),
        values={"origin": Origin.DISPENSING.value},
    )


def _patient_list(pid: str, text: str) -> dict[str, Any]:
    """A patient's own list, typed one medicine a line ("Paracet 500 mg; 2 tabletter ved
    behov"), as the FHIR Bundle a journal system would send."""
    entries = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    require(bool(lines), "Skriv minst ett legemiddel, ett per linje.", "patient-list")
    require(len(lines) <= MAX_LINES, f"Høyst {MAX_LINES} linjer.", "patient-list")
    for number, line in enumerate(lines, 1):
        name, _, dosage = line.partition(";")
        require(
            bool(name.strip()),
            f"Linje {number}: skriv legemidlets navn før semikolonet "
            "(for eksempel «Paracet 500 mg; 2 tabletter ved behov»).",
            "patient-list",
        )
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


def _json_object(raw: str | bytes, not_json: str, not_object: str, where: str) -> dict[str, Any]:
    """A FHIR resource as JSON: an object, or refused with ``not_json`` / ``not_object``;
    read as every request body is (:func:`parse_json`: nested at most ``MAX_DEPTH`` deep),
    and held to :data:`MAX_SOURCE_ITEMS` before anything of it is read."""
    try:
        data = parse_json(raw.encode() if isinstance(raw, str) else raw)
    except InvalidInput:
        raise InvalidInput(not_json, where) from None
    require(isinstance(data, dict), not_object, where)
    size, _ = source_size(data)
    if size > MAX_SOURCE_ITEMS:
        # beside the field, as the file's other faults are (the page says nothing changed)
        raise InvalidInput(
            f"Listen har {size} oppføringer; høyst {MAX_SOURCE_ITEMS} kan sammenlignes med "
            "PLL (en epikrise eller pasientens egen liste har titalls legemidler).",
            where,
            {"limit": str(MAX_SOURCE_ITEMS), "entries": str(size)},
        )
    return dict(data)


def _uploaded(web: Web) -> dict[str, Any]:
    upload = web.form.get("discharge")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("Velg epikrisens legemiddelliste (en FHIR JSON-fil).", "discharge")
    raw = upload.file.read(MAX_UPLOAD + 1)
    require(len(raw) <= MAX_UPLOAD, "Filen er større enn 2 MB.", "discharge")
    return _json_object(
        raw,
        "Filen er ikke FHIR JSON: last opp en Bundle eller en List med "
        "MedicationStatement-ressurser.",
        "Filen må være en FHIR-ressurs (et JSON-objekt).",
        "discharge",
    )


def _source(web: Web, pid: str) -> Source:
    """The source the form names: on the first step from the choice and its input, on the
    second from the hidden copy the first step sent along."""
    origin = web.field("origin")
    carried = web.field("source-json")
    if origin == Origin.DISPENSING.value:
        return Source.dispensing()
    if carried:
        # the page sent it, but the form comes from the browser: held to what an upload is
        resource = _json_object(
            carried,
            "Skjemaet er ødelagt: kilden som fulgte med, er ikke JSON. "
            "Begynn samstemmingen på nytt.",
            "Skjemaet er ødelagt: kilden som fulgte med, er ikke en FHIR-ressurs "
            "(et JSON-objekt). Begynn samstemmingen på nytt.",
            "source-json",
        )
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
    lst = list_view(stored.text, local_day(web.service.clock()))
    source = _source(web, pid)
    try:
        comparison = Reconciliation(web.service).compare(access, lst.id, source)
    except InvalidInput as exc:
        raise _unreadable(exc, source) from None
    return web.render(
        "doctor/reconcile.html",
        pid=pid,
        fnr=web.fnr(pid),
        lst=lst,
        origin=source.origin,
        items=comparison.items,
        differences=comparison.differences,
        version=comparison.list_version,
        source_json=orjson.dumps(source.resource).decode() if source.resource else "",
        kinds=KIND_NAMES,
        reasons=forms.DISCONTINUE_REASONS,
    )


def _unreadable(exc: InvalidInput, source: Source) -> InvalidInput:
    """A source the comparison could not read, said in Norwegian beside the field it came
    from: the patient's line by its number, the discharge list by the place in the file
    (FHIR's own words for what is wrong there are English; the place is enough to find it)."""
    if exc.norwegian:
        return exc
    where = exc.expression or ""
    if source.origin is Origin.PATIENT and (line := _LINE.search(where)):
        return InvalidInput(
            f"Linje {int(line.group(1)) + 1}: PLL kunne ikke lese linjen. Skriv navnet, "
            "eventuelt et semikolon og doseringen.",
            "patient-list",
        )
    return InvalidInput(
        "Epikrisens legemiddelliste kunne ikke leses: filen er ikke gyldig FHIR"
        + (f" (feil ved {where})." if where else "."),
        "discharge",
    )


def _decisions(web: Web) -> tuple[list[str], dict[str, str]]:
    """The differences the doctor accepted, and the reasons for those that discontinue a
    medicine; refused beside the row when a difference shown has no decision, or a
    discontinuation has no reason (every such row is named, the first is the message)."""
    chosen = {
        key.removeprefix(DECISION): value
        for key, value in web.form.multi_items()
        if key.startswith(DECISION) and isinstance(value, str)
    }
    accepted = [i for i, value in chosen.items() if value == "accept"]
    discontinues = set(web.fields(DISCONTINUES))
    problems: list[tuple[str, str | None]] = [
        ("Velg «Ta inn» eller «Avvis» for denne forskjellen.", f"{DECISION}{i}")
        for i in web.fields(SHOWN)
        if chosen.get(i) not in ("accept", "reject")
    ]
    reasons: dict[str, str] = {}
    for i in accepted:
        if i not in discontinues:
            continue
        reason = web.field(f"{REASON}{i}")
        if reason == OTHER:
            reason = web.field(f"{OTHER_REASON}{i}")
        if not reason:
            problems.append(
                ("Velg eller skriv grunnen til at legemidlet seponeres.", f"{REASON}{i}")
            )
        reasons[i] = reason[:MAX_REASON]
    if problems:
        (message, where), *rest = problems
        raise InvalidInput(message, where, others=rest)
    return accepted, reasons


def resolve(web: Web) -> Response:
    """Step two: take the accepted differences and confirm the list, as one change."""
    pid = web.path_id("pid")
    raw = web.field("version")
    require(
        VERSION.fullmatch(raw) is not None,
        "Skjemaet mangler listeversjonen, eller den er ugyldig; begynn samstemmingen på nytt.",
        "version",
    )
    source = _source(web, pid)
    accepted, reasons = _decisions(web)
    stored = web.service.current(web.access(pid), patient_id=pid)
    if stored is None:
        raise InvalidInput("Pasienten har ingen PLL.", "list")
    list_id = orjson.loads(stored.text)["id"]
    override, codes = override_of(web)
    try:
        done = Reconciliation(web.service).resolve(
            web.access(pid, override=override, accepted=codes),
            list_id,
            source,
            accepted,
            int(raw),
            reasons=reasons,
        )
    except ChecksRefused as exc:
        return findings_page(web, exc.issues)
    except (VersionConflict, Conflict) as exc:
        if not _no_longer_stands(exc):
            raise
        return _moved_page(web, pid, source, exc)
    web.notice(
        f"Listen er samstemt og bekreftet: {len(done.accepted)} avvik tatt inn, "
        f"{len(done.rejected)} avvist. Listen er nå versjon {done.result.list_version}."
    )
    web.notice_findings(done.result.findings)
    return web.redirect(f"/lege/pasient/{pid}")


def _no_longer_stands(exc: DomainError) -> bool:
    """Whether the service refused because the comparison the doctor saw has gone: the list
    moved on (a relay-baton conflict), or an accepted difference is not among those of the
    list and the source now (a conflict naming the differences). Other conflicts are rules
    the change broke and keep their own message."""
    return isinstance(exc, VersionConflict) or "differences" in exc.details


def _moved_page(web: Web, pid: str, source: Source, exc: DomainError) -> Response:
    """Nothing was saved: offer to compare again with the same source, on the list as it is."""
    return web.render(
        "doctor/reconcile_start.html",
        409,
        pid=pid,
        fnr=web.fnr(pid),
        moved=True,
        origin=source.origin,
        source_json=orjson.dumps(source.resource).decode() if source.resource else "",
        changed_by=exc.details.get("changedBy", ""),
        changed_at=exc.details.get("changedAt", ""),
    )


ROUTES = [
    Route("/lege/pasient/{pid}/samstemming", doctors(start_page), methods=["GET"]),
    Route("/lege/pasient/{pid}/samstemming", doctors(compare, form=start_page), methods=["POST"]),
    Route(
        "/lege/pasient/{pid}/samstemming/bekreft",
        doctors(resolve, form=compare),
        methods=["POST"],
    ),
]
