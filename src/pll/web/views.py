"""What the pages show, read from the FHIR the services return.

The pages read the same FHIR documents a journal system gets (the list document of
``GET /fhir/List?...&_include=List:item``), so what a doctor sees on screen is exactly what
the API says. Nothing here decides anything: it only names and orders what is there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from pll.domain.multidose import ADMINISTRATION
from pll.domain.prescriptions import PACKAGE, end_of
from pll.fhir import systems
from pll.fhir.expiry import expired_on

STATUS_NAMES = {
    "active": "I bruk",
    "on-hold": "Pauset",
    "stopped": "Seponert",
    "completed": "Avsluttet",
    "entered-in-error": "Feilregistrert",
}
RX_STATUS_NAMES = {
    "active": "Gyldig",
    "on-hold": "Pauset",
    "stopped": "Tilbakekalt",
    "completed": "Fornyet/avsluttet",
    "cancelled": "Kansellert",
}
FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
#: What a list version did, in words (activities joined with "+" when one change did more).
ACTIVITY_NAMES = {
    "create-list": "Opprettet listen",
    "add-entry": "Nytt legemiddel",
    "update-entry": "Endret legemiddel",
    "pause-entry": "Pauset legemiddel",
    "resume-entry": "Gjenopptatt legemiddel",
    "discontinue-entry": "Seponert",
    "remove-entry": "Fjernet (feilregistrert)",
    "expire-entries": "Seponerte legemidler fjernet etter 90 dager",
    "prescribe": "Ny resept",
    "renew": "Fornyet resept",
    "recall": "Tilbakekalt resept",
    "confirm": "Bekreftet listen",
    "pause-list": "Pauset listen",
    "resume-list": "Gjenopptatt listen",
    "import": "Hentet inn",
    "fest-withdrawn": "Avregistrert i FEST",
    "update": "Endret",
}


def activity_text(activity: str) -> str:
    parts = activity.split("+")
    return ", ".join(dict.fromkeys(ACTIVITY_NAMES.get(p, p) for p in parts))


#: FHIR elements as a history page names them; elements not named here are not shown.
FIELD_NAMES = {
    "status": "Status",
    "statusReason": "Grunn",
    "dosage": "Dosering",
    "dosageInstruction": "Dosering",
    "medicationCodeableConcept": "Legemiddel",
    "category": "Behandlingstype",
    "reasonCode": "Bruksområde",
    "effectivePeriod": "Periode",
    "basedOn": "Resept",
    "priorPrescription": "Fornyer",
    "authoredOn": "Forskrevet",
    "extension": "Tillegg",
    "paused": "Pause",
    "confirmed": "Bekreftet",
    "baton": "Stafettpinnen",
}


def _sub(extension: dict[str, Any], name: str) -> Any:
    """The value of a sub-extension, whatever its type."""
    for sub in extension.get("extension", []):
        if sub.get("url") == name:
            return next((v for k, v in sub.items() if k.startswith("value")), None)
    return None


def _ext(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in resource.get("extension", []) if e.get("url") == url), None)


def _display(ref: Any) -> str:
    if isinstance(ref, dict):
        return str(ref.get("display") or ref.get("reference") or "")
    return str(ref or "")


def _reason_text(resource: dict[str, Any]) -> str:
    reason = resource.get("statusReason")
    concepts = reason if isinstance(reason, list) else [reason] if reason else []
    return "; ".join(
        c.get("text") or next((x.get("display", "") for x in c.get("coding", [])), "")
        for c in concepts
        if isinstance(c, dict)
    )


@dataclass
class PrescriptionView:
    id: str
    version: int
    status: str
    authored: str
    renews: str | None
    last_dispensed: str | None = None
    remaining: str | None = None
    reason: str = ""
    #: the last day it can be dispensed (``dispenseRequest.validityPeriod.end``), ISO date
    valid_until: str = ""
    #: past its validity end: as the API marks it when read (pll.fhir.expiry), or by its end
    #: against today for a document stored without the marker
    expired: bool = False
    #: what one dispensing hands out ("2 pakninger", "100 ml"), and the reit
    quantity: str = ""
    repeats: int | None = None
    #: the MedicationRequest as read, for a renewal that starts from it
    content: dict[str, Any] = field(default_factory=dict)

    @property
    def status_name(self) -> str:
        return RX_STATUS_NAMES.get(self.status, self.status)

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def dispensing(self) -> str:
        """What it gives, as a GP writes it: "2 pakninger, reit 3"."""
        parts = [self.quantity] if self.quantity else []
        if self.repeats is not None:
            parts.append(f"reit {self.repeats}")
        return ", ".join(parts)


@dataclass
class EntryView:
    id: str
    version: int
    status: str
    drug: str
    atc: str | None
    fest_id: str | None
    dosage: str
    treatment: str
    indication: str
    start: str
    last_changed: str
    reason: str
    multidose: bool
    withdrawn: bool
    content: dict[str, Any]
    prescriptions: list[PrescriptionView] = field(default_factory=list)
    #: the treatment's planned end (``effectivePeriod.end``), ISO date or ""
    stop: str = ""

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, self.status)

    @property
    def prescription_expired(self) -> bool:
        """In use, and the prescription it is dispensed on has expired: the patient may be
        without the medicine."""
        rx = self.current_prescription
        return self.in_use and rx is not None and rx.expired and rx.status in ("active", "on-hold")

    @property
    def in_use(self) -> bool:
        return self.status in ("active", "on-hold")

    @property
    def current_prescription(self) -> PrescriptionView | None:
        """The head of the renewal chain: what a renewal or a recall acts on."""
        renewed = {p.renews for p in self.prescriptions if p.renews}
        heads = [p for p in self.prescriptions if p.id not in renewed]
        return next((p for p in heads if p.active), heads[0] if heads else None)


@dataclass
class ListView:
    id: str
    version: int
    patient_id: str
    updated: str
    baton: str
    confirmed_at: str | None
    confirmed_by: str | None
    confirmed_version: int | None
    paused_at: str | None
    paused_by: str | None
    paused_reason: str | None
    multidose_doctor: str | None
    multidose_pharmacy: str | None
    paper_risk: str | None
    paper_pharmacy: str | None
    entries: list[EntryView]

    @property
    def in_use(self) -> list[EntryView]:
        return [e for e in self.entries if e.in_use]

    @property
    def ended(self) -> list[EntryView]:
        return [e for e in self.entries if not e.in_use]

    def entry(self, entry_id: str) -> EntryView | None:
        return next((e for e in self.entries if e.id == entry_id), None)


def _coding(concept: dict[str, Any], system: str) -> str | None:
    return next(
        (c.get("code") for c in concept.get("coding", []) if c.get("system") == system), None
    )


def _prescription(resource: dict[str, Any], today: date | None) -> PrescriptionView:
    prior = resource.get("priorPrescription", {}).get("reference", "")
    request = resource.get("dispenseRequest") or {}
    repeats = request.get("numberOfRepeatsAllowed")
    marked_end = expired_on(resource)
    # the marker knows the end of one stored with no date of its own (from when PLL first
    # recorded it); a document stored before the marker existed has only its dates
    end = end_of(resource) or marked_end
    expired = marked_end is not None or (today is not None and end is not None and end < today)
    return PrescriptionView(
        id=resource["id"],
        version=int(resource.get("meta", {}).get("versionId", "1")),
        status=resource.get("status", ""),
        authored=resource.get("authoredOn", ""),
        renews=prior.removeprefix("MedicationRequest/") or None,
        reason=_reason_text(resource),
        valid_until=end.isoformat() if end else "",
        expired=expired,
        quantity=_quantity_text(request.get("quantity") or {}),
        repeats=repeats if isinstance(repeats, int) else None,
        content=resource,
    )


def _quantity_text(quantity: dict[str, Any]) -> str:
    value, unit = quantity.get("value"), str(quantity.get("unit") or "")
    if value is None:
        return ""
    if unit == PACKAGE:
        unit = "pakning" if value == 1 else "pakninger"
    return f"{value:g} {unit}".strip().replace(".", ",") if isinstance(value, int | float) else ""


def _entry(resource: dict[str, Any], item: dict[str, Any]) -> EntryView:
    concept = resource.get("medicationCodeableConcept", {})
    category = resource.get("category", {})
    treatment = next((c.get("code") for c in category.get("coding", [])), None)
    dosage = resource.get("dosage") or []
    administration = _ext(resource, ADMINISTRATION)
    return EntryView(
        id=resource["id"],
        version=int(resource.get("meta", {}).get("versionId", "1")),
        status=resource.get("status", ""),
        drug=concept.get("text")
        or next((c.get("display", "") for c in concept.get("coding", [])), ""),
        atc=_coding(concept, systems.ATC),
        fest_id=_coding(concept, FEST),
        dosage="; ".join(d.get("text", "") for d in dosage if d.get("text")),
        treatment=systems.TREATMENT_TYPES.get(treatment or "", ""),
        indication="; ".join(r.get("text", "") for r in resource.get("reasonCode", [])),
        start=resource.get("effectivePeriod", {}).get("start", ""),
        stop=resource.get("effectivePeriod", {}).get("end", ""),
        last_changed=item.get("date", ""),
        reason=_reason_text(resource),
        multidose=bool(administration and _sub(administration, "mddispensed")),
        withdrawn="flag" in item,
        content=resource,
    )


def list_view(document: str | bytes, today: date | None = None) -> ListView:
    """The list document (List, its entries and prescriptions) as the pages show it on
    ``today``: a prescription past its end is expired whether or not the stored document
    marks it. ``None`` only for a document PLL has just marked (the packing basis)."""
    bundle = orjson.loads(document)
    resources = [e["resource"] for e in bundle.get("entry", [])]
    lst = next(r for r in resources if r["resourceType"] == "List")
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in resources}
    prescriptions = {
        r["id"]: _prescription(r, today)
        for r in resources
        if r["resourceType"] == "MedicationRequest"
    }
    for item in lst.get("entry", []):
        ext = _ext(item, systems.EXT_DISPENSED)
        if ext is None:
            continue
        rx_id = _display(_sub(ext, "prescription")).removeprefix("MedicationRequest/")
        if rx_id in prescriptions:
            remaining = _sub(ext, "remaining")
            prescriptions[rx_id].last_dispensed = _sub(ext, "whenHandedOver")
            if remaining:
                prescriptions[
                    rx_id
                ].remaining = f"{remaining.get('value')} {remaining.get('unit', '')}"
    entries = []
    for item in lst.get("entry", []):
        ref = item["item"]["reference"].rsplit("/_history/", 1)[0]
        resource = by_ref.get(ref)
        if resource is None:
            continue
        entry = _entry(resource, item)
        entry.prescriptions = [
            prescriptions[r["reference"].removeprefix("MedicationRequest/")]
            for r in resource.get("basedOn", [])
            if r.get("reference", "").removeprefix("MedicationRequest/") in prescriptions
        ]
        _with_chain(entry, prescriptions)
        entries.append(entry)
    confirmed = _ext(lst, systems.EXT_CONFIRMED) or {}
    paused = _ext(lst, systems.EXT_PAUSED) or {}
    multidose = _ext(lst, systems.EXT_MULTIDOSE) or {}
    paper = _ext(lst, systems.EXT_PAPER_MULTIDOSE) or {}
    return ListView(
        id=lst["id"],
        version=int(lst["meta"]["versionId"]),
        patient_id=lst["subject"]["reference"].removeprefix("Patient/"),
        updated=lst.get("date", ""),
        baton=_display(lst.get("source")),
        confirmed_at=_sub(confirmed, "at"),
        confirmed_by=_display(_sub(confirmed, "by")) or None,
        confirmed_version=_sub(confirmed, "version"),
        paused_at=_sub(paused, "at"),
        paused_by=_display(_sub(paused, "by")) or None,
        paused_reason=_sub(paused, "reason"),
        multidose_doctor=_display(_sub(multidose, "doctor")) or None,
        multidose_pharmacy=_display(_sub(multidose, "pharmacy")) or None,
        paper_risk=_sub(paper, "risk"),
        paper_pharmacy=_sub(paper, "pharmacy"),
        entries=entries,
    )


def _with_chain(entry: EntryView, prescriptions: dict[str, PrescriptionView]) -> None:
    """An entry names the prescriptions it was based on; a renewal names the one it renews.
    Show the whole chain, newest first, so the head of chain is what a renewal acts on."""
    known = {p.id for p in entry.prescriptions}
    grew = True
    while grew:
        grew = False
        for rx in prescriptions.values():
            if rx.id not in known and rx.renews in known:
                entry.prescriptions.append(rx)
                known.add(rx.id)
                grew = True
    entry.prescriptions.sort(key=lambda p: p.authored, reverse=True)
