"""``Patient/$getMedication``: the patient's list as an SFM Basis document
(https://simplifier.net/guide/SFMAPIBasis, getMedication).

The parameters name the patient by fødselsnummer or D-nummer, optionally the access basis
(``SamtykkeKjernejournal``, the same as PLL's ``X-PLL-Access-Basis`` header) and
``historyTimestamp``. The read is audited like every read of the list, and kept with what it
showed (:mod:`.reads`), so that a later ``$sendMedication`` can be based on it.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from pll.auth.access import Access, Basis, Verb
from pll.domain.errors import Forbidden, InvalidInput, NotFound
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import Role
from pll.fhir import systems
from pll.fhir.sfm.document import write_document
from pll.fhir.validate import validate
from pll.services.lists import PLLService
from pll.services.sfm.reads import reader_key, shown_json
from pll.services.sfm.shared import load_snapshot
from pll.store import repository as repo
from pll.store import sfm as store

#: ``$getMedication`` parameters SFM defines that PLL accepts but has no use for (they steer
#: the national core record and the prescription intermediary, which PLL is not).
IGNORED = {
    "Referansenummer",
    "SamtykkeSperretLegemidler",
    "SamtykkeLasteResepter",
    "IncludeOriginal",
}


def get_medication(svc: PLLService, access: Access, parameters: Any) -> dict[str, Any]:
    """The patient's list as an SFM document; the read is kept for a later send.

    The document is always the primary's, never a read replica's (issue 21): it holds more
    than the list — reactions (CAVE), the multidose state, the patient — and those change
    without a new list version, so a replica at the list's version may still miss a CAVE
    recorded a moment ago, and the read kept for ``$sendMedication`` would be based on it.
    """
    fnr, basis, since = _get_parameters(parameters)
    access = _with_basis(access, basis)
    patient_id = svc.patient_by_identifier(access, Verb.READ, fnr[0], fnr[1])
    if patient_id is None:
        raise NotFound(
            "No patient with this fødselsnummer/D-nummer is registered in PLL.",
            "Parameters.parameter.patient.identifier",
        )
    now = svc.clock()
    with svc.guard(access), svc.db.write() as conn:
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
