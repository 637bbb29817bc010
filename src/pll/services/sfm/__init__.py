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
    RuleRefused,
    VersionConflict,
)
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import ENDED, IN_USE, RX_ACTIVE, Entry, Prescription, Role
from pll.fhir import systems
from pll.fhir.sfm import bounds
from pll.fhir.sfm import codes as c
from pll.fhir.sfm.document import (
    list_message_id,
    resept_id,
    write_document,
)
from pll.fhir.sfm.reading import (
    Document,
    Item,
    Recall,
    check_item,
    medication_document,
    read_document,
)
from pll.fhir.validate import validate
from pll.services.allergies import Allergies
from pll.services.lists import ChangeResult, Op, PLLService, early_refusal
from pll.services.sfm.merge import merged_entry, plain, view
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
            plan = _Plan(svc, conn, access, patient_id, doc, shown, entries, rxs, now)
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


# -- a send, item by item ------------------------------------------------------------------------


class _Plan:
    """Turns a send into operations on the list, against what the read showed."""

    def __init__(
        self,
        svc: PLLService,
        conn: Connection,
        access: Access,
        patient_id: str,
        doc: Document,
        shown: dict[str, Any],
        entries: dict[str, Entry],
        rxs: dict[str, Prescription],
        now: datetime,
    ) -> None:
        self.svc, self.conn, self.access = svc, conn, access
        self.patient_id, self.doc, self.now = patient_id, doc, now
        self.shown_entries: dict[str, int] = shown.get("entries", {})
        self.shown_heads: dict[str, int] = shown.get("heads", {})
        self.views: dict[str, Any] = shown.get("views", {})
        self.entries, self.rxs = entries, rxs
        self.by_resept = {resept_id(rx): rx.id for rx in rxs.values()}
        self.created: list[str] = []
        self.recalled: list[str] = []

    def _rx(self, resept: str | None) -> str | None:
        return self.by_resept.get(resept) if resept else None

    def ops(self) -> list[Op]:
        self._accounted()
        self._no_repeats()
        prescriptions: list[Op] = []
        statements: list[Op] = []
        subject = {"reference": f"Patient/{self.patient_id}"}
        for item in self.doc.items:
            new_rx: str | None = None
            prior: str | None = None
            if item.create or item.recall is not None or not self._unchanged(item):
                check_item(item)
            if item.create:
                new_rx, prior, op = self._prescribe(item, subject)
                prescriptions.append(op)
            elif item.recall is not None:
                recall = self._recall(item, item.recall)
                if recall is not None:
                    prescriptions.append(recall)
            elif item.resept_id and self._rx(item.resept_id) is None:
                raise InvalidInput(
                    f"ReseptId {item.resept_id!r} is not a prescription of this list; a new "
                    "prescription says so with sfm-reseptamendment.createeresept = true.",
                    f"{item.where}.identifier",
                )
            statement = self._statement(item, new_rx, prior, subject)
            if statement is not None:
                statements.append(statement)
        return prescriptions + statements

    def _unchanged(self, item: Item) -> bool:
        """The statement says of its entry what the read showed (cheap; decides whether
        the statement must be checked as content PLL will keep)."""
        if item.pll_id is None or item.pll_id not in self.views:
            return item.pll_id is None and item.resept_id is not None
        return bool(self.views[item.pll_id] == plain(view(item.entry)))

    def _no_repeats(self) -> None:
        seen: set[tuple[str, str]] = set()
        for item in self.doc.items:
            for kind, value in (("PLL", item.pll_id), ("ReseptId", item.resept_id)):
                if value is None:
                    continue
                if (kind, value) in seen:
                    raise InvalidInput(
                        f"{kind} {value} is in the send twice; each entry and prescription is "
                        "sent once.",
                        f"{item.where}.identifier",
                    )
                seen.add((kind, value))

    def _accounted(self) -> None:
        """SFM: every statement and every head of chain the read showed is in the send,
        as a statement or as the target of a recall."""
        sent_entries = {i.pll_id for i in self.doc.items if i.pll_id}
        sent_rx = {self._rx(i.resept_id) for i in self.doc.items} | {
            self._rx(i.recall.recall_id) for i in self.doc.items if i.recall and i.recall.recall_id
        }
        missing = [f"PLL {e}" for e in self.shown_entries if e not in sent_entries] + [
            f"ReseptId {resept_id(self.rxs[r]) if r in self.rxs else r}"
            for r in self.shown_heads
            if r not in sent_rx
        ]
        if missing:
            raise RuleRefused(
                "The send leaves out what your $getMedication showed: "
                + ", ".join(missing)
                + ". SFM Basis requires every MedicationStatement and every head of chain of "
                "the last read in the send; nothing was saved.",
                "Bundle.entry[0].resource.section",
            )

    def _prescribe(self, item: Item, subject: dict[str, Any]) -> tuple[str, str | None, Op]:
        if item.prescription is None or not item.resept_id:
            raise InvalidInput(
                "A new prescription (createeresept) needs a ReseptId identifier.",
                f"{item.where}.identifier",
            )
        if not FHIR_ID.fullmatch(item.resept_id):
            raise InvalidInput(
                f"ReseptId {item.resept_id!r} is not usable as an id (letters, digits, '-', '.').",
                f"{item.where}.identifier",
            )
        if item.resept_id in self.by_resept or repo.resource_row(
            self.conn, "MedicationRequest", item.resept_id
        ):
            raise Conflict(
                f"ReseptId {item.resept_id} already exists: a new prescription needs a new "
                "ReseptId (renew with recallinfo code 1 or 3 naming the old one).",
                f"{item.where}.identifier",
            )
        content = copy.deepcopy(item.prescription)
        content["status"] = "active"
        content.pop("statusReason", None)
        amendment = next(iter(c.ext(content, c.AMENDMENT)), None)
        if amendment is not None:
            # the flags of the sending act are not part of the prescription
            amendment["extension"] = [
                e
                for e in amendment.get("extension") or []
                if e.get("url") not in ("createeresept", "recallinfo", "rfstatus")
            ]
        actor = self.access.actor
        content["requester"] = {
            k: v
            for k, v in {
                "identifier": {"system": systems.HPR, "value": actor.hpr} if actor.hpr else None,
                "display": actor.name,
            }.items()
            if v
        }
        content.setdefault("authoredOn", self.now.date().isoformat())
        content["subject"] = subject
        prior = None
        if item.recall is not None and item.recall.code in (c.RECALL_RENEW, c.RECALL_RENEW_CHANGED):
            prior = self._rx(item.recall.recall_id)
            if prior is None:
                raise InvalidInput(
                    f"The renewal names ReseptId {item.recall.recall_id!r}, which is not a "
                    "prescription of this list.",
                    f"{item.where}.extension",
                )
            content["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
        self.created.append(item.resept_id)
        if prior is not None:
            self.recalled.append(resept_id(self.rxs[prior]))
        return (
            item.resept_id,
            prior,
            Op("create", "MedicationRequest", item.resept_id, content, where=item.where),
        )

    def _recall(self, item: Item, recall: Recall) -> Op | None:
        """A recall of a prescription the read showed as it still is; ``None`` for
        recallinfo on a prescription already recalled then (SFM ignores it on unchanged
        statements)."""
        named = recall.recall_id or item.resept_id
        target = self._rx(named)
        if target is None:
            raise InvalidInput(
                f"recallinfo names ReseptId {named!r}, which is not a prescription of this list.",
                f"{item.where}.extension",
            )
        rx = self.rxs[target]
        held = self.shown_heads.get(target)
        if held is not None and held != rx.version:
            raise Conflict(
                f"ReseptId {named} was changed by {rx.changed_by.label()} at "
                f"{rx.last_changed.isoformat()}, after your $getMedication (it is now "
                f"{rx.status}). Do a new $getMedication and send again.",
                f"{item.where}.extension",
            )
        if rx.status not in RX_ACTIVE:
            return None
        content = copy.deepcopy(rx.content)
        content["status"] = "stopped"
        reason = c.concept(c.RECALL_CODE, recall.code, c.RECALLS.get(recall.code))
        reason["text"] = recall.text or c.RECALLS.get(recall.code, "Tilbakekalt")
        content["statusReason"] = reason
        self.recalled.append(resept_id(rx))
        return Op("update", "MedicationRequest", target, content, rx.version, where=item.where)

    def _statement(
        self, item: Item, new_rx: str | None, prior: str | None, subject: dict[str, Any]
    ) -> Op | None:
        sent = copy.deepcopy(item.entry)
        if item.discontinued and sent.get("status") in IN_USE:
            sent["status"] = "stopped"
        if sent.get("status") in ENDED and not sent.get("statusReason"):
            sent["statusReason"] = [{"text": "Seponert (SFM $sendMedication)"}]
        entry = self.entries.get(item.pll_id) if item.pll_id else None
        if entry is None:
            return self._new_entry(item, sent, new_rx, subject)
        held = self.shown_entries.get(entry.id, entry.version)
        base = self._as_read(entry, held)
        before = self.views.get(entry.id) or plain(view(base))
        after = plain(view(sent))
        if before == after and new_rx is None:
            return None  # unchanged by this send: whatever happened since stands
        merged = merged_entry(base, sent, before, after)
        links = [
            r
            for r in (base.get("basedOn") or [])
            if r.get("reference") != f"MedicationRequest/{prior}"
        ]
        if new_rx is not None:
            links.append({"reference": f"MedicationRequest/{new_rx}"})
        if links:
            merged["basedOn"] = links
        else:
            merged.pop("basedOn", None)
        merged["subject"] = subject
        return Op("update", "MedicationStatement", entry.id, merged, held, where=item.where)

    def _new_entry(
        self, item: Item, sent: dict[str, Any], new_rx: str | None, subject: dict[str, Any]
    ) -> Op | None:
        """A medicine put on the list: newly prescribed, registered without prescription,
        or a prescription not on the list until now. SFM clients choose the PLL id."""
        existing = self._rx(item.resept_id) if new_rx is None else None
        if item.pll_id is None and new_rx is None and existing is not None:
            return None  # a prescription not on the list, and the send leaves it so
        if sent.get("status") not in IN_USE:
            return None  # nothing new that is not in use
        entry_id = self.svc.ids()
        if item.pll_id is not None:
            if not FHIR_ID.fullmatch(item.pll_id):
                raise InvalidInput(
                    f"PLL id {item.pll_id!r} is not usable as an id (letters, digits, '-', '.').",
                    f"{item.where}.identifier",
                )
            if repo.resource_row(self.conn, "MedicationStatement", item.pll_id) is not None:
                raise Conflict(
                    f"PLL id {item.pll_id} belongs to an entry that is not on this patient's "
                    "list as your $getMedication showed it; a new entry needs a new PLL id.",
                    f"{item.where}.identifier",
                )
            entry_id = item.pll_id
        content = {**sent, "subject": subject}
        rx = new_rx or existing
        if rx is not None:
            content["basedOn"] = [{"reference": f"MedicationRequest/{rx}"}]
        return Op("create", "MedicationStatement", entry_id, content, where=item.where)

    def _as_read(self, entry: Entry, version: int) -> dict[str, Any]:
        if version == entry.version:
            return copy.deepcopy(entry.content)
        row = repo.resource_version(self.conn, "MedicationStatement", entry.id, version)
        return repo.content_of(row.resource) if row is not None else copy.deepcopy(entry.content)

    def answer(self, result: ChangeResult) -> dict[str, Any]:
        """SFM's answer: how many prescriptions and recalls, each one's result, and the
        list's (https://simplifier.net/guide/SFMAPIBasis sendMedication)."""
        recalled = list(self.recalled)
        for written in result.written:
            if (
                written.rtype == "MedicationRequest"
                and not written.created
                and written.resource.get("status") in ("stopped", "completed")
            ):
                rid = resept_id(self.rxs[written.id]) if written.id in self.rxs else written.id
                if rid not in recalled:
                    recalled.append(rid)
        params: list[dict[str, Any]] = [
            {"name": "recallCount", "valueInteger": len(recalled)},
            {"name": "prescriptionCount", "valueInteger": len(self.created)},
        ]
        for rid in self.created:
            params.append(_operation_result(rid, "0", "OK"))
        for rid in recalled:
            params.append(_operation_result(rid, "1", "Tilbakekalt"))
        if result.list_version is not None:
            message = list_message_id(result.list_id, result.list_version)
            params.append(
                {
                    "name": "PllResult",
                    "part": [
                        {"name": "PllmessageID", "valueString": message},
                        {"name": "resultCode", "valueCoding": c.result_code("0", "OK")},
                    ],
                }
            )
        return {"resourceType": "Parameters", "parameter": params}


def _operation_result(rid: str, code: str, display: str) -> dict[str, Any]:
    return {
        "name": "prescriptionOperationResult",
        "part": [
            {"name": "reseptID", "valueString": rid},
            {"name": "resultCode", "valueCoding": c.result_code(code, display)},
        ],
    }
