"""Prescribing a medicine, the dosage editor's preview, renewing and recalling a
prescription."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from pll.domain.checks import Severity
from pll.domain.errors import DomainError, InvalidInput
from pll.domain.prescriptions import local_day
from pll.fhir import findings
from pll.fhir.validate import validate
from pll.services.catalogue import Catalogue
from pll.services.lists import Op
from pll.web import forms
from pll.web.doctor.common import SEEN, entry_of, entry_page, entry_version, fnr_of, updated
from pll.web.doctor.saving import findings_page, save
from pll.web.edge import Web, require
from pll.web.views import EntryView

SEARCH_LIMIT = 25


def prescribe_page(
    web: Web,
    *,
    query: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    """The prescribing form; with ``errors`` the refused form again, as it was typed, each
    message beside its field (400)."""
    pid = web.path_id("pid")
    query = web.query("q") if query is None else query
    drugs: list[dict[str, Any]] = []
    if query:
        drugs = Catalogue(web.service.db).search(name=query, count=SEARCH_LIMIT)
    return web.render(
        "doctor/prescribe.html",
        400 if errors else 200,
        pid=pid,
        fnr=fnr_of(web, pid),
        query=query,
        drugs=[(d["id"], forms.medication_concept(d)["text"], _kind(d)) for d in drugs],
        searched=bool(query),
        values=values or {"dose-mode": "fixed", "dose-unit": "tablett", **forms.RX_DEFAULTS},
        errors=errors or {},
        times=forms.TIMES,
        units=forms.UNITS,
        treatments=forms.TREATMENTS,
        rx_units=forms.RX_UNITS,
        today=_today(web).isoformat(),
    )


def _today(web: Web) -> date:
    """Today as PLL counts a prescription's validity: by its clock, in Norway."""
    return local_day(web.service.clock())


def _typed(web: Web) -> dict[str, str]:
    """The form as the doctor typed it, to show again."""
    values = {k: v for k, v in web.form.multi_items() if isinstance(v, str)}
    values.setdefault("eresept", "0")
    return values


def _rx_fields(web: Web) -> forms.RxFields | dict[str, str]:
    """The prescription fields checked, or the refusal by field."""
    try:
        return forms.rx_fields(web.field, _today(web))
    except InvalidInput as exc:
        return {exc.expression or "rx-quantity": exc.message}


def _kind(medication: dict[str, Any]) -> str:
    """What a FEST entry is (virkestoff, merkevare or pakning), so equal names differ."""
    return next(
        (
            e["valueCoding"].get("display", "")
            for e in medication.get("extension", [])
            if "valueCoding" in e
        ),
        "",
    )


def prescribe(web: Web) -> Response:
    pid = web.path_id("pid")
    drug_id = web.field("drug")
    require(bool(drug_id), "Velg et legemiddel fra søket.", "drug")
    medication = forms.medication_concept(Catalogue(web.service.db).read(drug_id))
    dosages = forms.dosage(web.field)
    treatment = web.field("treatment") or "1"
    indication = web.field("indication")
    with_rx = web.field("eresept") == "1"
    rx_fields = _rx_fields(web)
    if isinstance(rx_fields, dict):
        return prescribe_page(web, query=web.field("q"), values=_typed(web), errors=rx_fields)
    start = (rx_fields.start or _today(web)).isoformat()
    stop = rx_fields.stop.isoformat() if rx_fields.stop else None
    if web.field(SEEN) != "1":
        # decision support before saving: what this medicine would meet on the list
        draft = forms.statement(pid, medication, dosages, treatment, indication, start, None)
        found = web.service.check_drafts(web.access(pid), pid, [(web.service.ids(), draft)])
        # what needs the doctor's judgement stops the save; information alone does not
        if any(f.severity is not Severity.INFORMATION for f in found):
            return findings_page(web, findings.issues(found))

    def ops() -> list[Op]:
        out: list[Op] = []
        rx_id = web.service.ids() if with_rx else None
        if rx_id:
            rx = forms.prescription(pid, medication, dosages, None, rx=rx_fields)
            out.append(Op("create", "MedicationRequest", rx_id, validate(rx, "MedicationRequest")))
        entry = forms.statement(pid, medication, dosages, treatment, indication, start, rx_id, stop)
        out.append(
            Op(
                "create",
                "MedicationStatement",
                web.service.ids(),
                validate(entry, "MedicationStatement"),
            )
        )
        return out

    return save(web, pid, ops, None, f"{medication['text']} er lagt til.")


def dosage_preview(web: Web) -> Response:
    """The dosage text the list will show, for the editor's live preview. Always 200: an
    unfinished dosage is what a preview shows while the doctor types, not an error."""
    try:
        return JSONResponse({"ok": True, "text": forms.dosage(web.query)[0]["text"]})
    except DomainError as exc:
        return JSONResponse({"ok": False, "text": exc.message})


def renew_page(
    web: Web, values: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> Response:
    """The renewal form, starting from the current prescription's quantity and reit and the
    entry's treatment period; with ``errors`` the refused form as typed (400)."""

    def starting(entry: EntryView) -> dict[str, str]:
        rx = entry.current_prescription
        return values or forms.rx_values(rx.content if rx else None, entry.content)

    response = entry_page(
        web,
        "doctor/renew.html",
        values=starting,
        errors=errors or {},
        rx_units=forms.RX_UNITS,
        today=_today(web).isoformat(),
    )
    if errors:
        response.status_code = 400
    return response


def renew(web: Web) -> Response:
    """A renewal: a new e-prescription whose priorPrescription is the head of the chain,
    valid from today, with the quantity and reit the doctor gave; a changed treatment start
    or stop changes the entry's period in the same list version."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    head_id = web.field("prescription")
    require(bool(head_id), "Skjemaet mangler resepten som skal fornyes.", "prescription")
    version = entry_version(web)
    rx_fields = _rx_fields(web)
    if isinstance(rx_fields, dict):
        return renew_page(web, _typed(web), rx_fields)

    def ops() -> list[Op]:
        _, entry = entry_of(web, pid, entry_id)
        if head_id not in {p.id for p in entry.prescriptions}:
            raise InvalidInput("Resepten hører ikke til dette legemidlet.", "prescription")
        medication = entry.content["medicationCodeableConcept"]
        rx = forms.prescription(
            pid, medication, entry.content.get("dosage") or [], None, head_id, rx_fields
        )
        # The entry on the version the doctor saw: if another doctor changed it meanwhile,
        # the renewal is refused (relay baton) rather than renewing a dose this doctor never
        # saw; with the period unchanged, it writes nothing.
        content = forms.without_meta(entry.content)
        content["effectivePeriod"] = forms.treatment_period(
            content.get("effectivePeriod") or {}, rx_fields
        )
        same = updated(web, entry_id, content, version)
        renewal = Op(
            "create", "MedicationRequest", web.service.ids(), validate(rx, "MedicationRequest")
        )
        return [same, renewal]

    return save(web, pid, ops, None, "Resepten er fornyet.")


def recall_page(web: Web) -> Response:
    return entry_page(web, "doctor/recall.html", reasons=forms.RECALL_REASONS)


def recall(web: Web) -> Response:
    """Tilbakekalling: the prescription's status becomes stopped, with a reason."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    rx_id = web.field("prescription")
    reason = web.field("reason")
    require(bool(reason), "Velg en grunn til tilbakekallingen.", "reason")
    version = entry_version(web)

    def ops() -> list[Op]:
        _, entry = entry_of(web, pid, entry_id)
        if rx_id not in {p.id for p in entry.prescriptions}:
            raise InvalidInput("Resepten hører ikke til dette legemidlet.", "prescription")
        stored = web.service.read_resource(web.access(pid), "MedicationRequest", rx_id)
        content = forms.without_meta(orjson.loads(stored.text))
        content["status"] = "stopped"
        content["statusReason"] = {"text": reason[:200]}
        return [
            Op(
                "update",
                "MedicationRequest",
                rx_id,
                validate(content, "MedicationRequest"),
                version,
            )
        ]

    return save(web, pid, ops, reason[:200], "Resepten er tilbakekalt.")
