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

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from pll.auth.access import Access, Basis, Verb
from pll.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    VersionConflict,
)
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import Role
from pll.fhir import systems
from pll.fhir.sfm import bounds
from pll.fhir.sfm.document import (
    write_document,
)
from pll.fhir.sfm.reading import (
    medication_document,
    read_document,
)
from pll.fhir.validate import validate
from pll.services.lists import ChangeResult, PLLService, early_refusal
from pll.services.sfm.importing import Imported, import_document
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
        """Bring in a ``$getMedication`` response as the list of a patient who has none
        (:func:`.importing.import_document`)."""
        return import_document(self.service, data, reason)


# -- reading the parameters ---------------------------------------------------------------------


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
