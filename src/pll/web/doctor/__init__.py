"""The prescribing module's pages: find a patient, see and change the list.

Every change builds the FHIR resources a journal system would send, validates them with the
same FHIR validation, and hands them to :class:`~pll.services.lists.PLLService` as one list
change: relay baton, decision support, access rules, audit and event are the API's own
(DESIGN §3). Two answers of the service have pages of their own (:mod:`.saving`):

- **findings** (:class:`~pll.domain.errors.ChecksRefused`): the change is shown again with the
  findings, and goes through only with a reason for the override, kept with the version;
- **a relay-baton conflict** (:class:`~pll.domain.errors.VersionConflict`): the page shows who
  changed the entry and what, and offers to redo the doctor's own change on the current
  version.

One module per use case: :mod:`.patient` (finding a patient, the list, its history, the list
as a whole), :mod:`.prescribing`, :mod:`.entry` (changing one entry), :mod:`.multidose`
(registering e-multidose and marking entries for packing), :mod:`.saving`.
"""

from __future__ import annotations

from starlette.routing import Route

from pll.web import cases as case_pages
from pll.web.doctor import entry, multidose, patient, prescribing
from pll.web.doctor.saving import findings_page, override_of
from pll.web.edge import doctors, page

__all__ = ["ROUTES", "findings_page", "override_of"]

ROUTES = [
    Route("/grunnlag/{pid}", doctors(patient.basis_page), methods=["GET"]),
    Route("/grunnlag/{pid}", doctors(patient.set_basis), methods=["POST"]),
    Route("/lege", doctors(patient.search_page), methods=["GET"]),
    Route("/lege/apne", doctors(patient.open_patient, form=patient.search_page), methods=["POST"]),
    Route("/lege/dosering", page(prescribing.dosage_preview), methods=["GET"]),
    Route("/lege/pasient/{pid}", doctors(patient.list_page), methods=["GET"]),
    Route("/lege/pasient/{pid}/opprett", doctors(patient.create_list), methods=["POST"]),
    Route("/lege/pasient/{pid}/ny", doctors(prescribing.prescribe_page), methods=["GET"]),
    Route(
        "/lege/pasient/{pid}/ny",
        doctors(prescribing.prescribe, form=prescribing.prescribe_page),
        methods=["POST"],
    ),
    Route("/lege/pasient/{pid}/historikk", doctors(patient.history_page), methods=["GET"]),
    Route(
        "/lege/pasient/{pid}/bekreft",
        doctors(patient.list_op("confirm", "Listen er bekreftet."), form=patient.list_page),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/pause",
        doctors(patient.list_op("pause", "Listen er pauset."), form=patient.list_page),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/gjenoppta",
        doctors(patient.resume_list, form=patient.list_page),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/multidose",
        doctors(multidose.register, form=patient.list_page),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/multidose/avslutt",
        doctors(multidose.end, form=patient.list_page),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/multidose",
        doctors(multidose.set_packed, form=patient.list_page),
        methods=["POST"],
    ),
    Route("/lege/pasient/{pid}/legemiddel/{eid}/dose", doctors(entry.dose_page), methods=["GET"]),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/dose",
        doctors(entry.change_dose, form=entry.dose_page),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/status",
        doctors(entry.set_status, form=patient.list_page),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/seponer",
        doctors(entry.discontinue_page),
        methods=["GET"],
    ),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/seponer",
        doctors(entry.discontinue, form=entry.discontinue_page),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/forny",
        doctors(prescribing.renew_page),
        methods=["GET"],
    ),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/forny",
        doctors(prescribing.renew, form=prescribing.renew_page),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/tilbakekall",
        doctors(prescribing.recall_page),
        methods=["GET"],
    ),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/tilbakekall",
        doctors(prescribing.recall, form=prescribing.recall_page),
        methods=["POST"],
    ),
    # discrepancy cases, reported and handled from the list page
    *case_pages.ROUTES,
]
