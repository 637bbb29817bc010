"""``pll import sfm``: a ``$getMedication`` response (SFM Basis,
https://simplifier.net/guide/SFMAPIBasis) brought in as the new list of a patient who has none.

The patient is registered if PLL does not know them; the prescriptions (oldest link of each
renewal chain first), the entries, the multidose parties, the dispensings, the M25 messages and
the drug reactions are written in one transaction, the list version under the name of the doctor
who sent the list, through :meth:`PLLService.apply_in` like every other change. The ids the
sender used are kept where they are FHIR ids PLL does not already hold. If anything is refused,
nothing is imported.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from pll.auth.access import Access, Basis
from pll.domain.errors import ChecksRefused, Conflict, InvalidInput
from pll.domain.model import ENDED, Role
from pll.fhir.sfm import bounds
from pll.fhir.sfm import codes as c
from pll.fhir.sfm.reading import medication_document, read_document
from pll.fhir.sfm.terms import Document
from pll.fhir.validate import validate
from pll.services.allergies import Allergies
from pll.services.lists import ChangeResult, Op, PLLService
from pll.services.sfm.shared import FHIR_ID
from pll.store import repository as repo
from pll.store import sfm as store


@dataclass
class Imported:
    """What ``pll import sfm`` brought in."""

    patient_id: str
    list_id: str
    entries: int
    prescriptions: int
    dispenses: int
    messages: int
    allergies: int
    warnings: list[str] = field(default_factory=list)


def _refused_on_import(exc: ChecksRefused, author: str) -> ChecksRefused:
    """The refusal of an import whose list has blocking findings, each of them listed: an
    override is a clinician's deliberate act with a reason, which a file cannot carry."""
    found = [
        str(i.get("diagnostics"))
        for i in exc.issues
        if i.get("severity") == "error" and i.get("diagnostics")
    ]
    return ChecksRefused(
        f"the list has {len(found)} finding(s) that need a doctor's deliberate override, which "
        f"an import cannot give in the name of {author}: " + " | ".join(found) + ". Bring the "
        "patient in through the API or $sendMedication, where the doctor overrides with a "
        "reason, or correct the document.",
        exc.expression,
        exc.details,
        issues=exc.issues,
    )


def import_document(
    svc: PLLService,
    data: Any,
    reason: str | None = None,
    also: Callable[[Connection], None] | None = None,
) -> Imported:
    """Bring in a ``$getMedication`` response as the list of a patient who has none.

    ``also`` runs last in the import's transaction: a bulk import records there that the
    file is done (:mod:`pll.services.bulk_import`), so a stopped import neither repeats
    nor skips one.

    The list version is written under the name of the doctor who sent the list (the
    M25.1 author), as the change that created it; decision-support findings are recorded
    as accepted, since the medicines are already in use."""
    bundle = medication_document(data)
    bounds.within_limits(bundle)
    validate(bundle, "Bundle")
    doc = read_document(bundle)
    if doc.patient is None:
        raise InvalidInput("The document names no Patient.", "Bundle.entry[0].resource.subject")
    sender = next((m.author for m in doc.messages if m.kind == "M25.1" and m.author), None)
    sender = sender or doc.author
    if sender is None or not sender.hpr:
        raise InvalidInput(
            "The document names no doctor (an M25.1 author or a Composition author with "
            "an HPR number) to write the list under.",
            "Bundle.entry[0].resource.author",
        )
    author = sender.author(Role.DOCTOR)
    why = (
        reason
        or f"Importert fra SFM Basis $getMedication (Composition {doc.composition_identifier})"
    )
    # No override: an import must not record, under its named author, an override of
    # findings that author never saw. A blocking finding refuses the import, listing them
    # (docs/sfm-basis.md).
    access = Access(author, Basis.TREATMENT, "pll-import-sfm")
    patient = {k: v for k, v in doc.patient.items() if k not in ("id", "meta", "text")}
    with svc.guard(access), svc.db.write() as conn:
        now = svc.clock()
        found, _ = svc.register_patient_in(conn, access, patient)
        patient_id = str(found["id"])
        if repo.list_exists_for(conn, patient_id):
            raise Conflict(
                f"Patient/{patient_id} already has a PLL; import only brings in patients "
                "who have none. Change an existing list with $sendMedication or the API.",
                "Bundle.entry[0].resource.subject",
            )
        rx_of: dict[str, str] = {}  # statement urn -> prescription id
        ops = _import_ops(svc, conn, doc, patient_id, rx_of)
        _import_parties(svc, conn, doc, patient_id)
        try:
            result = svc.apply_in(conn, access, patient_id, ops, why, create_list=True)
        except ChecksRefused as exc:
            raise _refused_on_import(exc, sender.label()) from None
        dispensed = _import_dispenses(svc, conn, doc, patient_id, rx_of, now)
        messages = _import_messages(svc, conn, doc, patient_id, rx_of, dispensed, result)
        allergies = 0
        for resource in doc.allergies:
            allergy = {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}
            allergy["patient"] = {"reference": f"Patient/{patient_id}"}
            _import_allergy(svc, conn, access, allergy, patient_id)
            allergies += 1
        warnings = []
        if doc.other:
            warnings.append(
                f"{len(doc.other)} prescription(s) of goods that are not medicines "
                "(sectionOtherPrescriptions, BANDA) were not imported: PLL keeps medicines."
            )
        if also is not None:
            also(conn)
        return Imported(
            patient_id,
            result.list_id,
            sum(1 for o in ops if o.rtype == "MedicationStatement"),
            sum(1 for o in ops if o.rtype == "MedicationRequest"),
            len(dispensed),
            messages,
            allergies,
            warnings,
        )


def _import_ops(
    svc: PLLService, conn: Connection, doc: Document, patient_id: str, rx_of: dict[str, str]
) -> list[Op]:
    subject = {"reference": f"Patient/{patient_id}"}
    ops: list[Op] = []
    # oldest links of renewal chains first, so each renewal finds what it renews
    for item in [*reversed(doc.older), *doc.items]:
        if item.prescription is None:
            continue
        rx_id = _free_id(svc, conn, "MedicationRequest", item.resept_id, item.where)
        content = {**copy.deepcopy(item.prescription), "subject": subject}
        prior = next((rx_of[r] for r in item.based_on if r in rx_of), None)
        if prior is not None:
            content["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
        rx_of[item.ref] = rx_id
        ops.append(Op("import", "MedicationRequest", rx_id, content, where=item.where))
    for item in doc.items:
        if item.pll_id is None and item.prescription is not None:
            continue  # a prescription not (yet) on the list, as SFM shows it
        entry_id = _free_id(svc, conn, "MedicationStatement", item.pll_id, item.where)
        content = {**copy.deepcopy(item.entry), "subject": subject}
        if item.ref in rx_of:
            content["basedOn"] = [{"reference": f"MedicationRequest/{rx_of[item.ref]}"}]
        ops.append(
            Op(
                "import",
                "MedicationStatement",
                entry_id,
                content,
                where=item.where,
                ended_at=item.ended_at or (svc.clock() if item.status in ENDED else None),
            )
        )
    return ops


def _free_id(svc: PLLService, conn: Connection, rtype: str, wanted: str | None, where: str) -> str:
    """The id the sender used, when it is a FHIR id PLL does not already hold."""
    if wanted is None or not FHIR_ID.fullmatch(wanted):
        return svc.ids()
    if repo.resource_row(conn, rtype, wanted) is not None:
        raise Conflict(
            f"{rtype}/{wanted} is already in PLL (imported before?); nothing was imported.",
            where,
        )
    return wanted


def _import_dispenses(
    svc: PLLService,
    conn: Connection,
    doc: Document,
    patient_id: str,
    rx_of: dict[str, str],
    now: datetime,
) -> dict[str, str]:
    by_resept = {str(i.resept_id): rx_of[i.ref] for i in [*doc.items, *doc.older] if i.ref in rx_of}
    out = {}
    for d in doc.dispenses:
        rx_id = by_resept.get(d.prescription_id or "") or rx_of.get(d.prescription_ref or "")
        dispense_id = svc.ids()
        if d.id and FHIR_ID.fullmatch(d.id) and not store.dispense_exists(conn, d.id):
            dispense_id = d.id
        content = {
            **copy.deepcopy(d.content),
            "subject": {"reference": f"Patient/{patient_id}"},
        }
        if rx_id is not None:
            content["authorizingPrescription"] = [{"reference": f"MedicationRequest/{rx_id}"}]
        validate(content, "MedicationDispense")
        store.add_dispense(
            conn,
            dispense_id,
            patient_id,
            rx_id,
            content.get("whenHandedOver"),
            now,
            content,
        )
        out[d.ref] = dispense_id
    return out


def _import_messages(
    svc: PLLService,
    conn: Connection,
    doc: Document,
    patient_id: str,
    rx_of: dict[str, str],
    dispensed: dict[str, str],
    result: ChangeResult,
) -> int:
    count = 0
    for message in doc.messages:
        if message.kind not in c.MESSAGES or not message.sent_at:
            continue
        sent = _instant(message.sent_at, f"sfm-PLL-info {message.kind} PLLdate")
        detail: dict[str, Any] = {}
        if message.substitute is not None:
            detail["substitute"] = message.substitute
        if message.deliveries:
            detail["deliveries"] = [
                {
                    "prescription": rx_of.get(d.prescription or ""),
                    "first_dose": d.first_dose,
                    "last_dose": d.last_dose,
                    "dispense": dispensed.get(d.dispense or ""),
                    "ref_m10": d.ref_m10,
                }
                for d in message.deliveries
            ]
        store.add_message(
            conn,
            svc.ids(),
            patient_id,
            message.kind,
            message.identifier or svc.ids(),
            sent,
            message.author.to_json() if message.author else None,
            detail,
            result.list_version if message.kind == "M25.1" else None,
        )
        count += 1
    return count


def _import_parties(svc: PLLService, conn: Connection, doc: Document, patient_id: str) -> None:
    """The multidose parties, before the list is written, so that it shows them."""
    doctor = pharmacy = None
    # the list's own message (M25.1) names the parties; the others only if it does not
    for message in sorted(doc.messages, key=lambda m: m.kind != "M25.1"):
        for party in message.parties:
            if party.role == "M" and doctor is None:
                doctor = party
            elif party.role == "A" and pharmacy is None:
                pharmacy = party
    if doctor or pharmacy:
        store.set_multidose(
            conn,
            patient_id,
            doctor.to_json() if doctor else None,
            pharmacy.to_json() if pharmacy else None,
            svc.clock(),
            {"import": "sfm"},
        )


def _import_allergy(
    svc: PLLService, conn: Connection, access: Access, allergy: dict[str, Any], patient_id: str
) -> None:
    Allergies(svc).record_in(conn, access, allergy, patient_id)


def _instant(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date-time.", where) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{text!r} has no time zone.", where)
    return moment
