"""An SFM Basis ``document`` Bundle read into PLL's own terms.

A ``$getMedication`` response (or the Bundle of a ``$sendMedication``) shows each medicine as
an SFM ``MedicationStatement`` that carries both the list entry (*LIB*, identifier ``PLL``)
and the head of its prescription chain (identifier ``ReseptId`` and the
``sfm-reseptamendment`` extension). :func:`read_document` splits each one into the
``MedicationStatement`` and ``MedicationRequest`` content PLL keeps, resolves the Bundle's
``urn:uuid`` references, and reads the dispensings and the M25 messages (``sfm-PLL-info``)
with their multidose parties.

What PLL models is taken into its own elements; what it does not model is kept verbatim as
the SFM extension it came in (a prescription's content never changes after it is written,
so the copy cannot go stale). Nothing here touches a database.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from pll.domain.errors import InvalidInput
from pll.fhir import systems
from pll.fhir.medication import FEST
from pll.fhir.sfm import codes as c
from pll.fhir.sfm.parties import Party, display_party, organization, practitioner
from pll.fhir.sfm.pause import read_resume
from pll.fhir.sfm.terms import Delivery, Dispense, Document, Item, Message, Recall
from pll.fhir.validate import validate

#: Identifier ``type.text`` values SFM gives a statement (matched without case, as SFM does).
PLL_ID = "PLL"
RESEPT_ID = "ReseptId"


class _Bundle:
    """The Bundle's resources by ``fullUrl`` and by ``Type/id``."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.by_ref: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, entry in enumerate(bundle.get("entry") or []):
            resource = entry.get("resource") or {}
            if entry.get("fullUrl"):
                self.by_ref[entry["fullUrl"]] = (i, resource)
            if resource.get("resourceType") and resource.get("id"):
                self.by_ref.setdefault(
                    f"{resource['resourceType']}/{resource['id']}", (i, resource)
                )

    def get(self, ref: Any, rtype: str | None = None) -> tuple[int, dict[str, Any]] | None:
        value = (ref or {}).get("reference") if isinstance(ref, dict) else ref
        if not value:
            return None
        found = self.by_ref.get(str(value))
        if found is None or (rtype and found[1].get("resourceType") != rtype):
            return None
        return found


def medication_document(parameters: Any) -> dict[str, Any]:
    """The ``medication`` Bundle of SFM's ``Parameters`` (or the Bundle itself)."""
    if not isinstance(parameters, dict):
        raise InvalidInput("Send SFM Basis Parameters (a JSON object) with a 'medication' Bundle.")
    if parameters.get("resourceType") == "Bundle":
        return parameters
    if parameters.get("resourceType") != "Parameters":
        raise InvalidInput(
            "Send SFM Basis Parameters with a 'medication' document Bundle.", "resourceType"
        )
    items = parameters.get("parameter")
    for i, p in enumerate(items if isinstance(items, list) else []):
        if isinstance(p, dict) and p.get("name") == "medication":
            bundle = p.get("resource")
            if (
                not isinstance(bundle, dict)
                or bundle.get("resourceType") != "Bundle"
                or bundle.get("type") != "document"
            ):
                raise InvalidInput(
                    "The 'medication' parameter must be a Bundle of type 'document'.",
                    f"Parameters.parameter[{i}].resource",
                )
            return dict(bundle)
    raise InvalidInput("The Parameters have no 'medication' document Bundle.", "Parameters")


def read_document(bundle: dict[str, Any], *, check: bool = True) -> Document:
    """Read an SFM document Bundle. Raises :class:`InvalidInput` naming the element that
    makes it unreadable. ``check=False`` skips validating what each statement becomes, for
    documents PLL wrote itself."""
    index = _Bundle(bundle)
    entries = bundle.get("entry") or []
    if not entries or (entries[0].get("resource") or {}).get("resourceType") != "Composition":
        raise InvalidInput(
            "A document Bundle starts with its Composition.", "Bundle.entry[0].resource"
        )
    composition = entries[0]["resource"]
    sections = {}
    for j, section in enumerate(composition.get("section") or []):
        code = c.code_of(section.get("code"), c.SECTION_TYPES)
        if code:
            sections[code] = (j, section)
    if "sectionMedication" not in sections:
        raise InvalidInput(
            "The Composition has no sectionMedication (sfm-section-types).",
            "Bundle.entry[0].resource.section",
        )
    author = None
    for ref in composition.get("author") or []:
        found = index.get(ref, "Practitioner")
        if found:
            author = practitioner(found[1])
    for ref in composition.get("author") or []:
        found = index.get(ref, "Organization")
        if found and author is not None:
            org = organization(found[1])
            author.org_name, author.her = org.org_name, org.her
    patient = index.get(composition.get("subject"), "Patient")
    items = []
    for ref in _section_refs(sections, "sectionMedication"):
        found = index.get(ref, "MedicationStatement")
        if found is None:
            raise InvalidInput(
                f"sectionMedication names {ref.get('reference')!r}, which is not a "
                "MedicationStatement of this Bundle.",
                "Bundle.entry[0].resource.section",
            )
        items.append(_item(index, found[0], ref["reference"], found[1], check))
    older = _older(index, items, check)
    messages = [
        _message(index, found[1], f"Bundle.entry[{found[0]}].resource")
        for ref in _section_refs(sections, "sectionPLLinfo")
        if (found := index.get(ref, "Basic")) is not None
    ]
    dispenses = [
        _dispense(index, ref["reference"], found[1])
        for ref in _section_refs(sections, "sectionDispense")
        if (found := index.get(ref, "MedicationDispense")) is not None
    ]
    allergies = [
        found[1]
        for ref in _section_refs(sections, "sectionAllergies")
        if (found := index.get(ref, "AllergyIntolerance")) is not None
    ]
    other = [
        found[1]
        for ref in _section_refs(sections, "sectionOtherPrescriptions")
        if (found := index.get(ref)) is not None
    ]
    relates = None
    for rel in composition.get("relatesTo") or []:
        target = (rel.get("targetIdentifier") or {}).get("value")
        if target:
            relates = str(target)
    return Document(
        composition_identifier=(composition.get("identifier") or {}).get("value"),
        relates_to=relates,
        author=author,
        patient=patient[1] if patient else None,
        items=items,
        older=older,
        messages=messages,
        dispenses=dispenses,
        allergies=allergies,
        other=other,
    )


def _section_refs(
    sections: dict[str, tuple[int, dict[str, Any]]], code: str
) -> list[dict[str, Any]]:
    found = sections.get(code)
    return [r for r in (found[1].get("entry") or []) if r.get("reference")] if found else []


def _older(index: _Bundle, items: list[Item], check: bool) -> list[Item]:
    """The statements the section's heads of chain renew, and those they renew, …"""
    seen = {i.ref for i in items}
    out: list[Item] = []
    todo = [ref for i in items for ref in i.based_on]
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        found = index.get(ref, "MedicationStatement")
        if found is None:
            raise InvalidInput(
                f"basedOn names {ref!r}, which is not a MedicationStatement of this Bundle.",
                "Bundle.entry",
            )
        item = _item(index, found[0], ref, found[1], check)
        out.append(item)
        todo += item.based_on
    return out


def _identifier(resource: dict[str, Any], kind: str) -> str | None:
    for ident in resource.get("identifier") or []:
        text = str(((ident.get("type") or {}).get("text")) or "")
        if text.lower() == kind.lower() and ident.get("value"):
            return str(ident["value"])
    return None


def medication_concept(index: _Bundle, resource: dict[str, Any], where: str) -> dict[str, Any]:
    """The drug as PLL keeps it: FEST and ATC codings and the name as text."""
    if resource.get("medicationCodeableConcept"):
        return copy.deepcopy(resource["medicationCodeableConcept"])
    ref = resource.get("medicationReference") or {}
    found = index.get(ref, "Medication")
    codings: list[dict[str, Any]] = []
    if found is not None:
        for coding in (found[1].get("code") or {}).get("coding") or []:
            if coding.get("system") in (FEST, systems.ATC) and coding.get("code"):
                codings.append(
                    {
                        k: coding[k]
                        for k in ("system", "code", "display")
                        if coding.get(k) is not None
                    }
                )
    name = ref.get("display") or next(
        (x.get("display") for x in codings if x["system"] == FEST and x.get("display")), None
    )
    if not codings and not name:
        raise InvalidInput(
            "The statement names no drug: give medicationReference to a Medication of the "
            "Bundle with a FEST or ATC coding.",
            f"{where}.medicationReference",
        )
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    if name:
        concept["text"] = name
    return concept


def _dosage(statement: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """PLL's dosage, the treatment type (9101) and the application area (bruksområde)."""
    out = []
    use = area = None
    for dosage in statement.get("dosage") or []:
        kept: dict[str, Any] = {}
        extensions = []
        for e in dosage.get("extension") or []:
            if e.get("url") == c.USE:
                use = c.code_of(e.get("valueCodeableConcept"))
            elif e.get("url") == c.APPLICATION_AREA:
                area = c.sub_value(e, "text")
            else:
                extensions.append(e)
        if extensions:
            kept["extension"] = extensions
        for key in ("text", "patientInstruction", "additionalInstruction"):
            if dosage.get(key):
                kept[key] = dosage[key]
        if kept:
            out.append(kept)
    return out, use, area


def _moment(text: Any, where: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date-time.", where) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{text!r} has no time zone.", where)
    return moment


def _item(index: _Bundle, position: int, ref: str, st: dict[str, Any], check: bool = True) -> Item:
    where = f"Bundle.entry[{position}].resource"
    status = str(st.get("status") or "")
    if not status:
        raise InvalidInput("The statement has no status.", f"{where}.status")
    medication = medication_concept(index, st, where)
    dosage, use, area = _dosage(st)
    amendment = next(iter(c.ext(st, c.AMENDMENT)), None)
    discontinuation = next(iter(c.ext(st, c.DISCONTINUATION)), None)
    entry: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": status,
        "medicationCodeableConcept": medication,
    }
    ended_at = _discontinued(discontinuation, entry, where)
    if use:
        entry["category"] = {"coding": [{"system": systems.TREATMENT_TYPE, "code": use}]}
    # SFM writes the start of the treatment as a plain-named extension (the test
    # environment's response), some systems as the element
    start = st.get("effectiveDateTime") or next(
        (c.value(e) for e in c.ext(st, "effectiveDateTime")), None
    )
    if start:
        entry["effectiveDateTime"] = start
    if area:
        entry["reasonCode"] = [{"text": str(area)}]
    if dosage:
        entry["dosage"] = dosage
    resept_id = _identifier(st, RESEPT_ID)
    # multidose packing, and for a medicine without prescription its substitution
    kept = c.ext(st, c.ADMINISTRATION) + (c.ext(st, c.SUBSTITUTION) if not resept_id else [])
    if kept:
        entry["extension"] = copy.deepcopy(kept)
    prescriber = _prescriber(index, st)
    if resept_id is None and prescriber is not None and (prescriber.hpr or prescriber.name):
        # who registered a medicine that has no prescription: FHIR's informationSource
        entry["informationSource"] = _reference(prescriber)
    recall = _recall(amendment)
    prescription = None
    if resept_id is not None:
        prescription = _prescription(st, amendment, medication, recall, prescriber, resept_id)
        # a prescription shown without an entry carries the statement's use and area
        if use:
            prescription["category"] = [
                {"coding": [{"system": systems.TREATMENT_TYPE, "code": use}]}
            ]
        if area:
            prescription["reasonCode"] = [{"text": str(area)}]
    elif amendment is not None and c.code_of(c.sub_value(amendment, "typeresept")) not in (
        None,
        "U",
    ):
        raise InvalidInput(
            "A prescription (typeresept other than U) needs a ReseptId identifier.",
            f"{where}.identifier",
        )
    item = Item(
        index=position,
        ref=ref,
        status=status,
        pll_id=_identifier(st, PLL_ID),
        resept_id=resept_id,
        entry=entry,
        prescription=prescription,
        ended_at=ended_at,
        create=c.sub_value(amendment, "createeresept") is True,
        recall=recall,
        discontinued=discontinuation is not None,
        based_on=[str(r["reference"]) for r in st.get("basedOn") or [] if r.get("reference")],
        prescriber=prescriber,
    )
    if check:
        check_item(item)
    return item


def check_item(item: Item) -> None:
    """What the statement says, as PLL will keep it, is valid FHIR: a value of the wrong
    type in an SFM extension is refused here, not found later by a reader. A statement
    checked ahead is not checked again: what was found then is raised."""
    if item.checked:
        if item.refusal is not None:
            raise item.refusal
        return
    _valid(item.entry, "MedicationStatement", item.where)
    if item.prescription is not None:
        _valid(item.prescription, "MedicationRequest", item.where)


def _discontinued(
    discontinuation: dict[str, Any] | None, entry: dict[str, Any], where: str
) -> datetime | None:
    """``sfm-discontinuation``: when the entry ended, and why (into ``statusReason``)."""
    if discontinuation is None:
        return None
    reasons = []
    reason = c.sub_value(discontinuation, "reason")
    if reason:
        reasons.append(copy.deepcopy(reason))
    note = c.sub_value(discontinuation, "note")
    if note:
        reasons.append({"text": str(note)})
    if reasons:
        entry["statusReason"] = reasons
    return _moment(c.sub_value(discontinuation, "timedate"), f"{where}.extension")


def _valid(content: dict[str, Any], rtype: str, where: str) -> None:
    try:
        validate({**content, "subject": {"reference": "Patient/x"}}, rtype)
    except InvalidInput as exc:
        raise InvalidInput(f"{where} does not give a valid {rtype}: {exc.message}", where) from None


def _prescriber(index: _Bundle, st: dict[str, Any]) -> Party | None:
    """``sfm-regInfo`` of type 1, *Forskrevet av*: who prescribed or registered it."""
    for reg in c.ext(st, c.REG_INFO):
        if c.code_of(c.sub_value(reg, "type"), c.PERFORMER_ROLES) == "1":
            found = index.get(c.sub_value(reg, "provider"), "Practitioner")
            return practitioner(found[1]) if found else display_party(reg)
    return None


def _reference(party: Party) -> dict[str, Any]:
    ref: dict[str, Any] = {}
    if party.hpr:
        ref["identifier"] = {"system": systems.HPR, "value": party.hpr}
    if party.name:
        ref["display"] = party.name
    return ref


def _recall(amendment: dict[str, Any] | None) -> Recall | None:
    info = c.first(amendment, "recallinfo")
    if info is None:
        return None
    code = c.code_of(c.sub_value(info, "recallcode"), c.RECALL_CODE)
    if code is None:
        raise InvalidInput(
            "recallinfo needs a recallcode (urn:oid:2.16.578.1.12.4.1.1.7500).",
            "MedicationStatement.extension",
        )
    recall_id = c.sub_value(info, "recallId")
    text = c.sub_value(info, "text")
    return Recall(code, str(recall_id) if recall_id else None, str(text) if text else None)


def _prescription_status(
    st: dict[str, Any], amendment: dict[str, Any] | None, recall: Recall | None
) -> str:
    """``stopped`` when recalled; ``active`` while the prescription intermediary can
    dispense it (rfstatus E or U) or when it is new; otherwise ``completed``: an older link
    of a renewal chain, or a prescription no longer in the intermediary (dispensed in full
    or expired)."""
    rf = c.code_of(c.sub_value(c.first(amendment, "rfstatus"), "status"), c.RF_STATUS)
    renewal = recall is not None and recall.code in (c.RECALL_RENEW, c.RECALL_RENEW_CHANGED)
    if st.get("status") == "completed" and st.get("partOf"):
        return "completed"
    if (recall is not None and not renewal) or rf == "T":
        return "stopped"
    if rf in ("E", "U") or c.sub_value(amendment, "createeresept") is True:
        return "active"
    return "completed"


def _prescription(  # noqa: PLR0912 - one branch per optional SFM element
    st: dict[str, Any],
    amendment: dict[str, Any] | None,
    medication: dict[str, Any],
    recall: Recall | None,
    prescriber: Party | None,
    resept_id: str,
) -> dict[str, Any]:
    status = _prescription_status(st, amendment, recall)
    content: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "identifier": [{"use": "usual", "type": {"text": RESEPT_ID}, "value": resept_id}],
        "status": status,
    }
    if status == "stopped" and recall is not None:
        reason = c.concept(c.RECALL_CODE, recall.code, c.RECALLS.get(recall.code))
        if recall.text:
            reason["text"] = recall.text
        content["statusReason"] = reason
    content["intent"] = "order"
    content["medicationCodeableConcept"] = medication
    if c.sub_value(amendment, "reseptdate"):
        content["authoredOn"] = c.sub_value(amendment, "reseptdate")
    if prescriber is not None and (prescriber.hpr or prescriber.name):
        content["requester"] = _reference(prescriber)
    dssn = c.sub_value(amendment, "dssn")
    if dssn:
        content["dosageInstruction"] = [{"text": str(dssn)}]
    dispense: dict[str, Any] = {}
    if c.sub_value(amendment, "expirationdate"):
        dispense["validityPeriod"] = {"end": c.sub_value(amendment, "expirationdate")}
    reit = str(c.sub_value(amendment, "reit") or "")
    if reit.isdigit():
        dispense["numberOfRepeatsAllowed"] = int(reit)
    amount = c.sub_value(amendment, "amount")
    if isinstance(amount, dict) and amount.get("value") is not None:
        dispense["quantity"] = dict(amount)
    if dispense:
        content["dispenseRequest"] = dispense
    for sub in c.ext(st, c.SUBSTITUTION):
        allowed = c.sub_value(sub, "genericSubstitutionAccepted")
        if isinstance(allowed, bool):
            content["substitution"] = {"allowedBoolean": allowed}
    note = c.sub_value(amendment, "note")
    if note:
        content["note"] = [{"text": str(note)}]
    if amendment is not None:
        # What PLL has no element for (structured e-resept dosing, item group, reimbursement,
        # status in the prescription intermediary, …) stays as SFM sent it.
        content["extension"] = [copy.deepcopy(amendment)]
    return content


def _role(index: _Bundle, ref: Any) -> Party | None:
    found = index.get(ref, "PractitionerRole")
    if found is None:
        return None
    role = found[1]
    party = Party()
    person = index.get(role.get("practitioner"), "Practitioner")
    if person is not None:
        party = practitioner(person[1])
    office = index.get(role.get("organization"), "Organization")
    if office is not None:
        org = organization(office[1])
        party.org_name, party.her, party.ako, party.phone = (
            org.org_name,
            org.her,
            org.ako,
            org.phone,
        )
    for concept in role.get("code") or []:
        code = c.code_of(concept, c.PARTY_ROLE)
        if code:
            party.role = code
    return party


def _message(index: _Bundle, basic: dict[str, Any], where: str) -> Message:
    info = next(iter(c.ext(basic, c.PLL_INFORMATION)), None)
    parties = [
        p for e in c.sub(info, "relatedparties") if (p := _role(index, c.value(e))) is not None
    ]
    deliveries = []
    for d in c.sub(info, "deliveryinformation"):
        deliveries.append(
            Delivery(
                prescription=c.reference(c.sub_value(d, "prescriptionId")),
                first_dose=c.sub_value(d, "datefirstdose"),
                last_dose=c.sub_value(d, "datelastdose"),
                dispense=c.reference(c.sub_value(d, "deliverydoc")),
                ref_m10=c.sub_value(d, "refM10"),
            )
        )
    create = c.sub_value(info, "createPLL")
    substitute = c.sub_value(info, "substitute")
    return Message(
        kind=c.code_of(basic.get("code"), c.MESSAGE_TYPE) or "",
        identifier=next(
            (str(i["value"]) for i in basic.get("identifier") or [] if i.get("value")), None
        ),
        sent_at=c.sub_value(info, "PLLdate"),
        author=_role(index, basic.get("author")),
        parties=parties,
        create_pll=create if isinstance(create, bool) else None,
        substitute=substitute if isinstance(substitute, bool) else None,
        deliveries=deliveries,
        resume=read_resume(basic, where),
    )


def _dispense(index: _Bundle, ref: str, md: dict[str, Any]) -> Dispense:
    content = {
        k: copy.deepcopy(v)
        for k, v in md.items()
        if k not in ("id", "meta", "text", "subject", "performer", "authorizingPrescription")
    }
    medication = index.get(md.get("medicationReference"), "Medication")
    if medication is not None:
        contained = {k: v for k, v in medication[1].items() if k not in ("meta", "text")}
        contained["id"] = "med"
        content["contained"] = [contained]
        content["medicationReference"] = {
            "reference": "#med",
            "display": (md.get("medicationReference") or {}).get("display"),
        }
    performers = []
    for performer in md.get("performer") or []:
        found = index.get(performer.get("actor"), "Organization")
        if found is not None:
            org = organization(found[1])
            actor: dict[str, Any] = {"display": org.org_name or f"HER: {org.her}"}
            if org.her:
                actor["identifier"] = {"system": c.HER, "value": org.her}
            performers.append({"actor": actor})
    if performers:
        content["performer"] = performers
    info = next(iter(c.ext(md, c.DISPENSE_INFO)), None)
    prescription_id = c.sub_value(info, "prescriptionid")
    authorizing = next((r.get("reference") for r in md.get("authorizingPrescription") or []), None)
    return Dispense(
        ref=ref,
        id=str(md["id"]) if md.get("id") else None,
        prescription_id=str(prescription_id) if prescription_id else None,
        prescription_ref=authorizing,
        content=content,
    )
