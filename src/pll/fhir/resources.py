"""PLL's rules on incoming resources, and how the domain is shown as FHIR R4 JSON.

Incoming: :func:`statement_content` and :func:`request_content` turn a validated
``MedicationStatement`` / ``MedicationRequest`` into the *content* the domain keeps (no
``id``/``meta``, canonical references, dosage text generated from the structure).

Outgoing: the ``List`` (https://hl7.org/fhir/R4/list.html) carries the baton holder in
``source`` (the author of the last accepted change), the last change in ``date``, version-
specific references to its entries, and PLL extensions for Pause PLL and confirmation.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from pll.domain.dosage import dosage_text
from pll.domain.errors import InvalidInput
from pll.domain.model import (
    Author,
    Dispensed,
    Entry,
    ListVersion,
    MedicationList,
    Multidose,
    Pharmacy,
    Prescription,
    ReceivingUnit,
)
from pll.domain.multidose import ADMINISTRATION, PACKED, PAPER_RISK
from pll.fhir import systems
from pll.fhir.expiry import marked, unmarked
from pll.fhir.findings import EXT_OVERRIDE

ATC_CODE = re.compile(r"^[A-Z](\d{2}([A-Z]([A-Z](\d{2})?)?)?)?$")


def instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- incoming ------------------------------------------------------------------------------


def _strip(resource: dict[str, Any]) -> dict[str, Any]:
    # The server owns id, meta and the narrative; a client's copies of them are not content.
    return {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}


def _check_medication(content: dict[str, Any], rtype: str) -> None:
    concept = content.get("medicationCodeableConcept")
    if content.get("medicationReference") is not None:
        raise InvalidInput(
            "Give the drug as medicationCodeableConcept (FEST id and/or ATC coding, or text).",
            f"{rtype}.medicationReference",
        )
    if not concept or not (concept.get("coding") or concept.get("text")):
        raise InvalidInput(
            "The drug is missing: give medicationCodeableConcept with a FEST or ATC coding, "
            "or at least a text.",
            f"{rtype}.medicationCodeableConcept",
        )
    for i, coding in enumerate(concept.get("coding", [])):
        where = f"{rtype}.medicationCodeableConcept.coding[{i}]"
        if not coding.get("code"):
            raise InvalidInput("A drug coding needs a code.", where + ".code")
        if coding.get("system") == systems.ATC and not ATC_CODE.match(coding["code"]):
            raise InvalidInput(
                f"{coding['code']!r} is not an ATC code (such as N02BE01).", where + ".code"
            )


def _with_dosage_text(content: dict[str, Any], key: str, where: str) -> None:
    """Write the dosage text from the structure (new Dosage dicts; the input stays as is)."""
    dosages = content.get(key)
    if not dosages:
        return
    text = dosage_text(dosages, where)
    structured = any(set(d) - {"text", "sequence", "patientInstruction"} for d in dosages)
    if structured:
        # The regimen's text describes all its elements together, so it sits on the first.
        rewritten = [{k: v for k, v in d.items() if k != "text"} for d in dosages]
        rewritten[0]["text"] = text
        content[key] = rewritten


def _check_treatment_type(content: dict[str, Any], rtype: str) -> None:
    for i, concept in enumerate((content.get("category") and [content["category"]]) or []):
        for j, coding in enumerate(concept.get("coding", [])):
            if coding.get("system") != systems.TREATMENT_TYPE:
                continue
            display = systems.TREATMENT_TYPES.get(coding.get("code", ""))
            if display is None:
                raise InvalidInput(
                    "Treatment type must be 1 (Fast), 2 (Kur) or 3 (Behov), code system 9101.",
                    f"{rtype}.category.coding[{j}].code" if i == 0 else f"{rtype}.category",
                )
            coding["display"] = display


def _check_references(content: dict[str, Any], key: str, target: str, rtype: str) -> None:
    refs = content.get(key)
    items = refs if isinstance(refs, list) else [refs] if refs else []
    for i, ref in enumerate(items):
        value = ref.get("reference", "")
        if not re.fullmatch(rf"{target}/[A-Za-z0-9\-.]{{1,64}}", value):
            where = f"{rtype}.{key}[{i}]" if isinstance(refs, list) else f"{rtype}.{key}"
            raise InvalidInput(
                f"Expected a reference to {target}/<id>, got {value!r}.", where + ".reference"
            )


def _check_period(content: dict[str, Any], rtype: str) -> None:
    period = content.get("effectivePeriod") or {}
    start, end = period.get("start"), period.get("end")
    if not (start and end):
        return
    if "T" in start and "T" in end:
        # Both are instants; they may be in different time zones.
        try:
            ends_first = datetime.fromisoformat(end) < datetime.fromisoformat(start)
        except (TypeError, ValueError):  # one with a time zone, one without: not comparable
            return
    else:
        # FHIR dates may be partial (2024, 2024-05): compare the parts both give.
        ends_first = end[:10][: len(start[:10])] < start[:10][: len(end[:10])]
    if ends_first:
        raise InvalidInput("The period ends before it starts.", f"{rtype}.effectivePeriod.end")


def _check_multidose_mark(content: dict[str, Any], rtype: str) -> None:
    """One ``sfm-administration`` at most, with one ``mddispensed`` at most: the mark must
    say one thing. With two, one reader (the packing rule) could take the first and another
    (the pharmacy) the second, and an unpackable entry would go out marked (issue 18)."""
    marks = [
        e
        for e in content.get("extension") or []
        if isinstance(e, dict) and e.get("url") == ADMINISTRATION
    ]
    if len(marks) > 1:
        raise InvalidInput(
            "The entry has sfm-administration more than once; give it once, with one mddispensed.",
            f"{rtype}.extension",
        )
    packed = [
        s
        for m in marks
        for s in m.get("extension") or []
        if isinstance(s, dict) and s.get("url") == PACKED
    ]
    if len(packed) > 1:
        raise InvalidInput(
            "The entry's sfm-administration has mddispensed more than once; give it once.",
            f"{rtype}.extension",
        )


def statement_content(resource: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """The domain content of a validated ``MedicationStatement`` for ``patient_id``."""
    content = _strip(resource)
    content["subject"] = {"reference": f"Patient/{patient_id}"}
    _check_multidose_mark(content, "MedicationStatement")
    _check_period(content, "MedicationStatement")
    _check_medication(content, "MedicationStatement")
    _check_treatment_type(content, "MedicationStatement")
    _check_references(content, "basedOn", "MedicationRequest", "MedicationStatement")
    _with_dosage_text(content, "dosage", "MedicationStatement.dosage")
    return content


def request_content(resource: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """The domain content of a validated ``MedicationRequest`` (an e-prescription)."""
    # the expired marker is computed when read, never content (pll.fhir.expiry)
    content = unmarked(_strip(resource))
    content["subject"] = {"reference": f"Patient/{patient_id}"}
    _check_medication(content, "MedicationRequest")
    _check_references(content, "priorPrescription", "MedicationRequest", "MedicationRequest")
    _with_dosage_text(content, "dosageInstruction", "MedicationRequest.dosageInstruction")
    return content


# -- outgoing ------------------------------------------------------------------------------


def with_meta(
    rtype: str, rid: str, version: int, updated: datetime, content: dict[str, Any]
) -> dict[str, Any]:
    return {
        "resourceType": rtype,
        "id": rid,
        "meta": {"versionId": str(version), "lastUpdated": instant(updated)},
        **{k: v for k, v in content.items() if k != "resourceType"},
    }


def entry_resource(entry: Entry) -> dict[str, Any]:
    return with_meta(
        "MedicationStatement", entry.id, entry.version, entry.last_changed, entry.content
    )


def prescription_resource(rx: Prescription) -> dict[str, Any]:
    return with_meta("MedicationRequest", rx.id, rx.version, rx.last_changed, rx.content)


def author_reference(author: Author) -> dict[str, Any]:
    ref: dict[str, Any] = {"display": author.label()}
    if author.hpr:
        ref["identifier"] = {"system": systems.HPR, "value": author.hpr}
    elif author.pid:
        ref["identifier"] = {"system": systems.FNR, "value": author.pid}
    return ref


def organization_reference(author: Author) -> dict[str, Any] | None:
    if not author.org_id:
        return None
    ref: dict[str, Any] = {"identifier": {"system": systems.ORGNR, "value": author.org_id}}
    if author.org_name:
        ref["display"] = author.org_name
    return ref


#: List.entry.flag of an entry whose medicine the drug catalogue no longer has as active.
WITHDRAWN_FLAG = {
    "coding": [
        {"system": f"{systems.PLL_BASE}/CodeSystem/list-entry-flag", "code": "fest-withdrawn"}
    ],
    "text": "Ikke lenger aktivt legemiddel i FEST",
}


def list_resource(lst: MedicationList, entries: list[Entry]) -> dict[str, Any]:
    """The PLL as a FHIR ``List`` at its current version."""
    extensions: list[dict[str, Any]] = []
    if lst.pause is not None:
        extensions.append(
            {
                "url": systems.EXT_PAUSED,
                "extension": [
                    {"url": "at", "valueDateTime": instant(lst.pause.at)},
                    {"url": "by", "valueReference": author_reference(lst.pause.by)},
                    {"url": "reason", "valueString": lst.pause.reason},
                ],
            }
        )
    if lst.confirmation is not None:
        extensions.append(
            {
                "url": systems.EXT_CONFIRMED,
                "extension": [
                    {"url": "at", "valueDateTime": instant(lst.confirmation.at)},
                    {"url": "by", "valueReference": author_reference(lst.confirmation.by)},
                    {"url": "version", "valueInteger": lst.confirmation.version},
                ],
            }
        )
    extensions += multidose_extensions(lst.multidose)
    resource: dict[str, Any] = {
        "resourceType": "List",
        "id": lst.id,
        "meta": {"versionId": str(lst.version), "lastUpdated": instant(lst.updated)},
    }
    if extensions:
        resource["extension"] = extensions
    resource |= {
        "status": "current",
        "mode": "working",
        "title": "Pasientens legemiddelliste",
        "code": {
            "coding": [
                {
                    "system": systems.LOINC,
                    "code": "10160-0",
                    "display": "History of Medication use Narrative",
                }
            ],
            "text": "Pasientens legemiddelliste (PLL)",
        },
        "subject": {"reference": f"Patient/{lst.patient_id}"},
        "date": instant(lst.updated),
        # The baton holder: whoever made the last accepted change (relay-baton principle).
        "source": author_reference(lst.baton),
        "orderedBy": {"text": "Status og legemiddel"},
    }
    ordered = sorted(entries, key=_entry_order)
    if ordered:
        resource["entry"] = [_list_entry(lst, e) for e in ordered]
    else:
        resource["emptyReason"] = {"text": "Ingen legemidler i bruk"}
    if lst.multidose.paper is not None:
        # a note as well as the extension: every reader shows a note, not every one an
        # extension it does not know
        resource["note"] = [{"text": PAPER_RISK}]
    return resource


def _list_entry(lst: MedicationList, e: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {}
    dispensed = [
        dispensed_extension(rx_id, lst.dispensed[rx_id])
        for rx_id in e.prescription_ids
        if rx_id in lst.dispensed
    ]
    if dispensed:
        item["extension"] = dispensed
    if e.id in lst.withdrawn:
        item["flag"] = WITHDRAWN_FLAG
    item["date"] = instant(e.last_changed)
    item["item"] = {"reference": f"MedicationStatement/{e.id}/_history/{e.version}"}
    return item


def _quantity(value: float, unit: str | None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": int(value) if value == int(value) else value}
    if unit:
        quantity["unit"] = unit
    return quantity


def dispensed_extension(rx_id: str, d: Dispensed) -> dict[str, Any]:
    """What the list says of a prescription's dispensings: the last one and what remains."""
    subs: list[dict[str, Any]] = [
        {"url": "prescription", "valueReference": {"reference": f"MedicationRequest/{rx_id}"}},
        {"url": "lastDispense", "valueReference": {"reference": f"MedicationDispense/{d.last}"}},
        {"url": "whenHandedOver", "valueDateTime": d.handed_over},
        {"url": "quantity", "valueQuantity": _quantity(d.quantity, d.unit)},
        {"url": "dispensedTotal", "valueQuantity": _quantity(d.total, d.unit)},
        {"url": "dispensings", "valueInteger": d.count},
    ]
    if d.remaining is not None:
        subs.append({"url": "remaining", "valueQuantity": _quantity(d.remaining, d.unit)})
    return {"url": systems.EXT_DISPENSED, "extension": subs}


def pharmacy_reference(pharmacy: Pharmacy) -> dict[str, Any]:
    ref: dict[str, Any] = {"display": pharmacy.label()}
    if pharmacy.org_id:
        ref["identifier"] = {"system": systems.ORGNR, "value": pharmacy.org_id}
    return ref


def receiver_reference(unit: ReceivingUnit) -> dict[str, Any]:
    """The care unit that receives a multidose patient's bags, by organisation number."""
    return {
        "identifier": {"system": systems.ORGNR, "value": unit.orgnr},
        "display": unit.label(),
    }


def multidose_extensions(state: Multidose) -> list[dict[str, Any]]:
    """The list's e-multidose registration and paper multidose, as PLL extensions."""
    out: list[dict[str, Any]] = []
    reg = state.registration
    if reg is not None:
        out.append(
            {
                "url": systems.EXT_MULTIDOSE,
                "extension": [
                    {"url": "doctor", "valueReference": author_reference(reg.doctor)},
                    {"url": "pharmacy", "valueReference": pharmacy_reference(reg.pharmacy)},
                    {"url": "since", "valueDateTime": instant(reg.at)},
                    *(
                        [{"url": "careUnit", "valueReference": receiver_reference(reg.receiver)}]
                        if reg.receiver is not None
                        else []
                    ),
                ],
            }
        )
    paper = state.paper
    if paper is not None:
        subs: list[dict[str, Any]] = [
            {"url": "risk", "valueString": PAPER_RISK},
            {"url": "at", "valueDateTime": instant(paper.at)},
            {"url": "by", "valueReference": author_reference(paper.by)},
        ]
        if paper.pharmacy:
            subs.append({"url": "pharmacy", "valueString": paper.pharmacy})
        if paper.note:
            subs.append({"url": "note", "valueString": paper.note})
        out.append({"url": systems.EXT_PAPER_MULTIDOSE, "extension": subs})
    return out


def _entry_order(entry: Entry) -> tuple[int, str, str]:
    rank = {"active": 0, "on-hold": 1}.get(entry.status, 2)
    concept = entry.content.get("medicationCodeableConcept", {})
    name = concept.get("text") or next(
        (c.get("display", "") for c in concept.get("coding", [])), ""
    )
    return rank, str(name).lower(), entry.id


def document(
    list_json: dict[str, Any],
    entries: list[Entry],
    prescriptions: list[Prescription],
    today: date | None = None,
) -> dict[str, Any]:
    """The whole current list in one searchset Bundle: the List, its entries, their prescriptions.
    With ``today``, prescriptions expired by then carry the expired marker
    (:mod:`pll.fhir.expiry`).

    ``fullUrl`` is stored relative ("/List/..") and made absolute when served, so the stored
    document does not depend on the address the server is reached at.
    """
    items = [
        {"fullUrl": f"/List/{list_json['id']}", "resource": list_json, "search": {"mode": "match"}}
    ]
    for entry in sorted(entries, key=_entry_order):
        items.append(
            {
                "fullUrl": f"/MedicationStatement/{entry.id}",
                "resource": entry_resource(entry),
                "search": {"mode": "include"},
            }
        )
    for rx in sorted(prescriptions, key=lambda p: p.id):
        items.append(
            {
                "fullUrl": f"/MedicationRequest/{rx.id}",
                "resource": prescription_resource(rx)
                if today is None
                else marked(prescription_resource(rx), today, rx.recorded),
                "search": {"mode": "include"},
            }
        )
    return {"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": items}


def provenance(list_id: str, record: ListVersion) -> dict[str, Any]:
    """One accepted change as ``Provenance`` (https://hl7.org/fhir/R4/provenance.html)."""
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                }
            ]
        },
        "who": author_reference(record.author),
    }
    org = organization_reference(record.author)
    if org:
        agent["onBehalfOf"] = org
    targets = [
        {"reference": f"{t.resource_type}/{t.id}/_history/{t.version}"} for t in record.touched
    ]
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": f"{list_id}-{record.version}",
        "target": targets,
        "recorded": instant(record.recorded),
        "activity": {
            "coding": [{"system": systems.ACTIVITY, "code": record.activity}]
            if "+" not in record.activity
            else [],
            "text": record.activity,
        },
        "agent": [agent],
    }
    if not resource["activity"]["coding"]:
        del resource["activity"]["coding"]
    if record.reason:
        resource["reason"] = [{"text": record.reason}]
    if record.override:
        resource["extension"] = [{"url": EXT_OVERRIDE, "valueString": record.override}]
    return resource
