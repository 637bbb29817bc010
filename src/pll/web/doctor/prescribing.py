"""Prescribing a medicine, the dosage editor's preview, renewing and recalling a
prescription."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from pll.domain.checks import Severity
from pll.domain.errors import DomainError, InvalidInput
from pll.fhir import findings
from pll.fhir.validate import validate
from pll.services.catalogue import Catalogue
from pll.services.lists import Op
from pll.web import forms
from pll.web.doctor.common import SEEN, entry_of, entry_page, entry_version, fnr_of, today, updated
from pll.web.doctor.saving import findings_page, save
from pll.web.edge import Web, require

SEARCH_LIMIT = 25


def prescribe_page(web: Web) -> Response:
    return _prescribe_form(web, web.path_id("pid"), web.query("q"))


def _prescribe_form(
    web: Web, pid: str, query: str, refused: InvalidInput | None = None
) -> Response:
    """The prescribing form: the drug search and, once searched, the dosage editor offering
    the units the drugs found take (each drug's own once it is chosen, pll.js); after a
    refusal, what was typed with the message beside its field."""
    drugs: list[dict[str, Any]] = []
    if query:
        drugs = Catalogue(web.service.db).search(name=query, count=SEARCH_LIMIT)
    per_drug = {d["id"]: forms.units_of(forms.form_of(d)) for d in drugs}
    # before a drug is chosen (and without JavaScript): the units of every drug found, the
    # first drug's usual unit first
    offered = list(dict.fromkeys(u for units in per_drug.values() for u in units))
    values = {"dose-mode": "fixed"}
    if refused is not None:
        values = {k: v for k, v in web.form.multi_items() if isinstance(v, str)}
        offered = list(per_drug.get(values.get("drug", ""), offered))
    return web.render(
        "doctor/prescribe.html",
        400 if refused is not None else 200,
        pid=pid,
        fnr=fnr_of(web, pid),
        query=query,
        drugs=[(d["id"], forms.medication_concept(d)["text"], _kind(d)) for d in drugs],
        searched=bool(query),
        values=values,
        errors={refused.expression or "": refused.message} if refused is not None else {},
        times=forms.TIMES,
        units=offered or forms.UNITS,
        drug_units=per_drug,
        treatments=forms.TREATMENTS,
    )


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
    drug = Catalogue(web.service.db).read(drug_id)
    medication = forms.medication_concept(drug)
    try:
        dosages = forms.dosage(web.field, forms.form_of(drug))
    except InvalidInput as exc:
        # nothing was saved: the form again, with the drug chosen and everything typed
        return _prescribe_form(web, pid, web.field("q"), exc)
    treatment = web.field("treatment") or "1"
    indication = web.field("indication")
    with_rx = web.field("eresept") == "1"
    if web.field(SEEN) != "1":
        # decision support before saving: what this medicine would meet on the list
        draft = forms.statement(pid, medication, dosages, treatment, indication, today(), None)
        found = web.service.check_drafts(web.access(pid), pid, [(web.service.ids(), draft)])
        # what needs the doctor's judgement stops the save; information alone does not
        if any(f.severity is not Severity.INFORMATION for f in found):
            return findings_page(web, findings.issues(found))

    def ops() -> list[Op]:
        out: list[Op] = []
        rx_id = web.service.ids() if with_rx else None
        if rx_id:
            rx = forms.prescription(pid, medication, dosages, today())
            out.append(Op("create", "MedicationRequest", rx_id, validate(rx, "MedicationRequest")))
        entry = forms.statement(pid, medication, dosages, treatment, indication, today(), rx_id)
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
    unfinished dosage is what a preview shows while the doctor types, not an error (then
    ``field`` names the field at fault, so the editor can offer to clear another mode's)."""
    try:
        return JSONResponse({"ok": True, "text": forms.dosage(web.query)[0]["text"]})
    except DomainError as exc:
        return JSONResponse({"ok": False, "text": exc.message, "field": exc.expression})


def renew_page(web: Web) -> Response:
    return entry_page(web, "doctor/renew.html")


def renew(web: Web) -> Response:
    """A renewal: a new e-prescription whose priorPrescription is the head of the chain."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    head_id = web.field("prescription")
    require(bool(head_id), "Skjemaet mangler resepten som skal fornyes.", "prescription")
    version = entry_version(web)

    def ops() -> list[Op]:
        _, entry = entry_of(web, pid, entry_id)
        if head_id not in {p.id for p in entry.prescriptions}:
            raise InvalidInput("Resepten hører ikke til dette legemidlet.", "prescription")
        medication = entry.content["medicationCodeableConcept"]
        rx = forms.prescription(
            pid, medication, entry.content.get("dosage") or [], today(), prior=head_id
        )
        # The entry unchanged, on the version the doctor saw: if another doctor changed it
        # meanwhile, the renewal is refused (relay baton) rather than renewing a dose this
        # doctor never saw; unchanged, it writes nothing.
        same = updated(web, entry_id, forms.without_meta(entry.content), version)
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
