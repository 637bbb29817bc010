"""SFM Basis compatible operations: ``$getMedication``, ``$sendMedication`` and the import of
a ``$getMedication`` response (``pll import sfm``).

A journal system written for SFM Basis (https://simplifier.net/guide/SFMAPIBasis) reads the
list as an SFM document and sends the doctor's complete list back. The send goes through the
same write path as every other change (:meth:`PLLService.apply_in`: access, decision support,
audit, one list version, the outgoing event) and is held to the SFM rules: it relates
(``Composition.relatesTo.targetIdentifier``) to the client's latest read, made less than four
hours earlier, and accounts for every head of chain and every statement that read showed.
Where the list changed since that read, the relay-baton rules decide: what the send did not
change is left as others left it, and a change to an entry someone else changed since is
refused — the whole send, with nothing written.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from pll.auth.access import Access, Basis, Verb
from pll.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    VersionConflict,
)
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import ENDED, Role
from pll.fhir import systems
from pll.fhir.sfm import bounds
from pll.fhir.sfm import codes as c
from pll.fhir.sfm.document import (
    write_document,
)
from pll.fhir.sfm.reading import (
    Document,
    medication_document,
    read_document,
)
from pll.fhir.validate import validate
from pll.services.allergies import Allergies
from pll.services.lists import ChangeResult, Op, PLLService, early_refusal
from pll.services.sfm.plan import Plan
from pll.services.sfm.reads import READ_VALID_FOR, held_read, reader_key, shown_json
from pll.services.sfm.shared import FHIR_ID, load_snapshot
from pll.store import repository as repo
from pll.store import sfm as store

__all__ = ["FHIR_ID", "IGNORED", "READ_VALID_FOR", "Imported", "SfmService", "reader_key"]

#: ``$getMedication`` parameters SFM defines that PLL accepts but has no use for (they steer
#: the national core record and the prescription intermediary, which PLL is not).
IGNORED = {
    "Referansenummer",
    "SamtykkeSperretLegemidler",
    "SamtykkeLasteResepter",
    "IncludeOriginal",
}


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


@dataclass
class SfmService:
    service: PLLService

    # -- $getMedication ----------------------------------------------------------------------

    def get_medication(self, access: Access, parameters: Any) -> dict[str, Any]:
        """The patient's list as an SFM document; the read is kept for a later send."""
        fnr, basis, since = _get_parameters(parameters)
        access = _with_basis(access, basis)
        svc = self.service
        patient_id = svc.patient_by_identifier(access, Verb.READ, fnr[0], fnr[1])
        if patient_id is None:
            raise NotFound(
                "No patient with this fødselsnummer/D-nummer is registered in PLL.",
                "Parameters.parameter.patient.identifier",
            )
        with svc.guard(access), svc.db.write() as conn:
            now = svc.clock()
            head = repo.list_row(conn, patient_id=patient_id)
            svc.trail.admit(
                conn,
                access,
                Verb.READ,
                patient_id,
                "getMedication",
                "List",
                head.id if head else None,
            )
            snapshot = load_snapshot(conn, patient_id, now)
            composition_id = str(uuid.uuid4())
            document, shown = write_document(
                snapshot, composition_id, access.actor, now, history_since=since
            )
            store.add_read(
                conn,
                composition_id,
                patient_id,
                access.client_id,
                reader_key(access),
                access.actor.to_json(),
                now,
                shown.list_version,
                shown_json(document, shown),
            )
            return document

    # -- $sendMedication ---------------------------------------------------------------------

    def send_medication(
        self, access: Access, parameters: Any, reason: str | None = None
    ) -> tuple[dict[str, Any], ChangeResult | None]:
        """Apply a doctor's complete list sent as an SFM document; returns SFM's answer."""
        early_refusal(access, Verb.WRITE)  # only doctors send, refused before any lookup
        bundle = medication_document(parameters)
        bounds.within_limits(bundle)  # counted before any of it is read
        validate(parameters, "Parameters")
        # statements are checked as PLL would keep them when the send changes them (_Plan),
        # the checking itself done here, before the transaction
        doc = read_document(bundle, check=False)
        if not doc.relates_to:
            raise InvalidInput(
                "The Composition must relate to your last $getMedication: "
                "relatesTo.targetIdentifier.value = that Composition's identifier.",
                "Bundle.entry[0].resource.relatesTo",
            )
        bounds.within_list_limit(doc)
        bounds.within_writes(sum(1 for i in doc.items if i.create), at_least=True)
        bounds.check_ahead(doc)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            now = svc.clock()
            # the list first, then the read: every write path locks the list first
            probe = store.get_read(conn, str(doc.relates_to))
            if probe is not None:
                repo.list_row(conn, patient_id=probe.patient_id, lock=True)
            read = held_read(conn, access, doc, now)
            patient_id = str(read.patient_id)
            shown = orjson.loads(read.shown)
            # the list row is locked by apply_in; its id is all the plan needs before that
            head = repo.list_row(conn, patient_id=patient_id)
            entries = {e.id: e for e in repo.all_entries(conn, head.id)} if head else {}
            rxs = repo.all_prescriptions(conn, head.id) if head else {}
            plan = Plan(svc, conn, access, patient_id, doc, shown, entries, rxs, now)
            ops = plan.ops()
            # a renewal also completes the prescription it renews
            renewed = [
                o for o in ops if o.kind == "create" and "priorPrescription" in (o.resource or {})
            ]
            bounds.within_writes(len(ops) + len(renewed))
            try:
                # SFM creates the PLL with the first send (createPLL): so does PLL
                result = svc.apply_in(
                    conn, access, patient_id, ops, reason, create_list=head is None
                )
            except VersionConflict as exc:
                # An operation has no If-Match: the read is the version the send is based on.
                raise Conflict(
                    exc.message.replace(
                        "you hold version", "your $getMedication showed version"
                    ).replace(
                        "Read it again and redo your change on the current version.",
                        "Do a new $getMedication and send again.",
                    ),
                    exc.expression,
                    exc.details,
                ) from None
            after = load_snapshot(conn, patient_id, now)
            document, now_shown = write_document(after, str(uuid.uuid4()), access.actor, now)
            store.update_read(
                conn, doc.relates_to, now_shown.list_version, shown_json(document, now_shown)
            )
            return plan.answer(result), result

    def import_document(self, data: Any, reason: str | None = None) -> Imported:
        """Bring in a ``$getMedication`` response as the list of a patient who has none.

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
        access = Access(author, Basis.TREATMENT, "pll-import-sfm", why, None)
        svc = self.service
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
            ops = self._import_ops(conn, doc, patient_id, rx_of)
            self._import_parties(conn, doc, patient_id)
            result = svc.apply_in(conn, access, patient_id, ops, why, create_list=True)
            dispensed = self._import_dispenses(conn, doc, patient_id, rx_of, now)
            messages = self._import_messages(conn, doc, patient_id, rx_of, dispensed, result)
            allergies = 0
            for resource in doc.allergies:
                allergy = {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}
                allergy["patient"] = {"reference": f"Patient/{patient_id}"}
                self._import_allergy(conn, access, allergy, patient_id)
                allergies += 1
            warnings = []
            if doc.other:
                warnings.append(
                    f"{len(doc.other)} prescription(s) of goods that are not medicines "
                    "(sectionOtherPrescriptions, BANDA) were not imported: PLL keeps medicines."
                )
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
        self, conn: Connection, doc: Document, patient_id: str, rx_of: dict[str, str]
    ) -> list[Op]:
        subject = {"reference": f"Patient/{patient_id}"}
        ops: list[Op] = []
        # oldest links of renewal chains first, so each renewal finds what it renews
        for item in [*reversed(doc.older), *doc.items]:
            if item.prescription is None:
                continue
            rx_id = self._free_id(conn, "MedicationRequest", item.resept_id, item.where)
            content = {**copy.deepcopy(item.prescription), "subject": subject}
            prior = next((rx_of[r] for r in item.based_on if r in rx_of), None)
            if prior is not None:
                content["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
            rx_of[item.ref] = rx_id
            ops.append(Op("import", "MedicationRequest", rx_id, content, where=item.where))
        for item in doc.items:
            if item.pll_id is None and item.prescription is not None:
                continue  # a prescription not (yet) on the list, as SFM shows it
            entry_id = self._free_id(conn, "MedicationStatement", item.pll_id, item.where)
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
                    ended_at=item.ended_at
                    or (self.service.clock() if item.status in ENDED else None),
                )
            )
        return ops

    def _free_id(self, conn: Connection, rtype: str, wanted: str | None, where: str) -> str:
        """The id the sender used, when it is a FHIR id PLL does not already hold."""
        if wanted is None or not FHIR_ID.fullmatch(wanted):
            return self.service.ids()
        if repo.resource_row(conn, rtype, wanted) is not None:
            raise Conflict(
                f"{rtype}/{wanted} is already in PLL (imported before?); nothing was imported.",
                where,
            )
        return wanted

    def _import_dispenses(
        self,
        conn: Connection,
        doc: Document,
        patient_id: str,
        rx_of: dict[str, str],
        now: datetime,
    ) -> dict[str, str]:
        by_resept = {
            str(i.resept_id): rx_of[i.ref] for i in [*doc.items, *doc.older] if i.ref in rx_of
        }
        out = {}
        for d in doc.dispenses:
            rx_id = by_resept.get(d.prescription_id or "") or rx_of.get(d.prescription_ref or "")
            dispense_id = self.service.ids()
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
        self,
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
                self.service.ids(),
                patient_id,
                message.kind,
                message.identifier or self.service.ids(),
                sent,
                message.author.to_json() if message.author else None,
                detail,
                result.list_version if message.kind == "M25.1" else None,
            )
            count += 1
        return count

    def _import_parties(self, conn: Connection, doc: Document, patient_id: str) -> None:
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
                self.service.clock(),
                {"import": "sfm"},
            )

    def _import_allergy(
        self, conn: Connection, access: Access, allergy: dict[str, Any], patient_id: str
    ) -> None:
        Allergies(self.service).record_in(conn, access, allergy, patient_id)


# -- reading the parameters ---------------------------------------------------------------------


def _instant(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date-time.", where) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{text!r} has no time zone.", where)
    return moment


def _get_parameters(parameters: Any) -> tuple[tuple[str, str], Basis | None, datetime | None]:
    if isinstance(parameters, dict) and parameters.get("resourceType") == "Parameters":
        validate(parameters, "Parameters")  # the types, before any value is read
    else:
        raise InvalidInput(
            "Send SFM Basis Parameters: 'patient' (a Patient with a fødselsnummer or "
            "D-nummer), optionally 'historyTimestamp' and 'SamtykkeKjernejournal'.",
            "resourceType",
        )
    person: tuple[str, str] | None = None
    basis = since = None
    for i, p in enumerate(parameters.get("parameter") or []):
        where = f"Parameters.parameter[{i}]"
        name = p.get("name")
        if name == "patient":
            person = _patient_parameter(p, where)
        elif name == "historyTimestamp":
            text = p.get("valueDateTime")
            try:
                since = datetime.fromisoformat(str(text))
            except ValueError:
                raise InvalidInput(
                    f"historyTimestamp must be a dateTime, got {text!r}.", f"{where}.valueDateTime"
                ) from None
            if since.tzinfo is None:
                raise InvalidInput("historyTimestamp needs a time zone.", f"{where}.valueDateTime")
        elif name == "SamtykkeKjernejournal":
            code = p.get("valueCode")
            try:
                basis = Basis(str(code))
            except ValueError:
                raise InvalidInput(
                    f"SamtykkeKjernejournal must be one of {', '.join(b.value for b in Basis)}; "
                    f"got {code!r}.",
                    f"{where}.valueCode",
                ) from None
        elif name not in IGNORED:
            raise InvalidInput(
                f"Unknown parameter {name!r}. $getMedication takes patient, historyTimestamp, "
                f"SamtykkeKjernejournal and {', '.join(sorted(IGNORED))}.",
                f"{where}.name",
            )
    if person is None:
        raise InvalidInput(
            "Name the patient: a 'patient' parameter with a Patient whose identifier is a "
            f"fødselsnummer ({systems.FNR}) or D-nummer ({systems.DNR}).",
            "Parameters.parameter",
        )
    return person, basis, since


def _patient_parameter(p: dict[str, Any], where: str) -> tuple[str, str] | None:
    patient = p.get("resource") or {}
    if patient.get("resourceType") != "Patient":
        raise InvalidInput("'patient' must be a Patient resource.", f"{where}.resource")
    for j, ident in enumerate(patient.get("identifier") or []):
        if ident.get("system") in (systems.FNR, systems.DNR):
            parsed = parse_person_identifier(
                ident["system"], str(ident.get("value", "")), f"{where}.resource.identifier[{j}]"
            )
            return parsed.system, parsed.value
    return None


def _with_basis(access: Access, basis: Basis | None) -> Access:
    """SFM states the basis in ``SamtykkeKjernejournal``; PLL's header says the same."""
    if basis is None:
        return access
    if access.basis is not None and access.basis is not basis:
        raise InvalidInput(
            f"The access basis in SamtykkeKjernejournal ({basis.value}) differs from "
            f"X-PLL-Access-Basis ({access.basis.value}); state one.",
            "SamtykkeKjernejournal",
        )
    if access.actor.role is Role.PATIENT:
        raise Forbidden("Patients do not state an access basis.")
    return replace(access, basis=basis)
