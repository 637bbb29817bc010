"""Prescribing a medicine, the dosage editor's preview, renewing and recalling a
prescription."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import orjson
from starlette.responses import JSONResponse, Response

from pll.domain.checks import Kind, Severity
from pll.domain.errors import DomainError, InvalidInput, RuleRefused
from pll.domain.prescriptions import local_day
from pll.fhir import findings
from pll.fhir.validate import validate
from pll.services.catalogue import Catalogue, Found
from pll.services.lists import Op
from pll.web import forms
from pll.web.doctor.common import (
    current_list,
    entry_of,
    entry_page,
    entry_version,
    fnr_of,
    updated,
)
from pll.web.doctor.entry import drug_form
from pll.web.doctor.notes import list_notes, typed_for
from pll.web.doctor.saving import findings_page, save
from pll.web.edge import SEEN, Web, norwegian, require
from pll.web.views import EntryView


def prescribe_page(web: Web) -> Response:
    """The prescribing form: the drug search and, once searched, the dosage editor offering
    the units the drugs found take (each drug's own once it is chosen, pll.js). A refused
    form comes back here (the edge's mechanism): the search it was chosen from, what was
    typed, and only the chosen drug's units."""
    pid = web.path_id("pid")
    # the search typed, or (a refused form shown again) the one the form was chosen from
    query = web.query("q") or (web.values or {}).get("q", "")
    found: Found | None = None
    errors: dict[str, str] = {}
    if query:
        try:
            found = Catalogue(web.service.db).find(query)
        except InvalidInput as exc:  # a search of nothing searchable ("%"): beside the field
            errors["q"] = norwegian(exc)
    choices = [c for g in (found.groups if found else []) for c in (g.drug, *g.packages)]
    per_drug = {c.id: forms.units_of(c.form or None) for c in choices}
    # before a drug is chosen (and without JavaScript): the units of every drug found
    offered = list(dict.fromkeys(u for units in per_drug.values() for u in units))
    # the prescription's quantity units likewise (the same table rx_fields accepts by)
    rx_offered = list(dict.fromkeys(u for c in choices for u in forms.rx_units_for(c.form or None)))
    chosen = (web.values or {}).get("drug", "")
    if chosen in per_drug:
        offered = list(per_drug[chosen])
        chosen_form = next((c.form or None for c in choices if c.id == chosen), None)
        rx_offered = list(forms.rx_units_for(chosen_form))
    # the list, for who holds the baton; in the context, the banner knows the page's read
    # of it is logged (one record per page)
    lst = current_list(web, pid)
    # opened from a conflict on a drug discontinued meanwhile: the dose the doctor typed
    # what the doctor typed: the whole form, sent back from the findings page ("Endre"),
    # or the dose typed for a drug discontinued meanwhile (a conflict: "Forskriv på nytt")
    typed = typed_for(web) or {}
    defaults = {"dose-mode": "fixed", "eresept": "1", **forms.RX_DEFAULTS}
    if "drug" not in typed and typed and found is not None:
        web.notice("Doseringen du skrev, er fylt inn. Velg legemidlet i søket og se over.")
    return web.render(
        "doctor/prescribe.html",
        400 if errors else 200,
        pid=pid,
        lst=lst,
        fnr=fnr_of(web, pid),
        query=query,
        found=found,
        searched=found is not None,
        errors=errors,
        values=typed if "drug" in typed else {**defaults, **typed},
        times=forms.TIMES,
        units=offered or forms.UNITS,
        drug_units=per_drug,
        treatments=forms.TREATMENTS,
        baton=list_notes(web, pid, lst)["baton"],
        rx_units=rx_offered or forms.RX_UNITS,
        today=_today(web).isoformat(),
    )


def _today(web: Web) -> date:
    """Today as PLL counts a prescription's validity: by its clock, in Norway."""
    return local_day(web.service.clock())


def prescribe(web: Web) -> Response:
    pid = web.path_id("pid")
    drug_id = web.field("drug")
    require(bool(drug_id), "Velg et legemiddel fra søket.", "drug")
    drug = Catalogue(web.service.db).read(drug_id)
    medication = forms.medication_concept(drug)
    # refused: the form comes back with the drug chosen and everything typed (edge)
    dosages = forms.dosage(web.field, forms.form_of(drug))
    treatment = web.field("treatment") or "1"
    indication = web.field("indication")
    with_rx = web.field("eresept") == "1"
    # refused: the form comes back with the message beside the field (edge)
    rx_fields = forms.rx_fields(web.field, _today(web), forms.form_of(drug))
    start = (rx_fields.start or _today(web)).isoformat()
    stop = rx_fields.stop.isoformat() if rx_fields.stop else None
    # "Endre" on the findings page: this form again, with the search it was chosen from
    edit = f"{web.request.url.path}?{urlencode({'q': web.field('q')[:100]})}"
    if web.field(SEEN) != "1":
        # decision support before saving: what this medicine would meet on the list
        draft = forms.statement(pid, medication, dosages, treatment, indication, start, None)
        found = web.service.check_drafts(web.access(pid), pid, [(web.service.ids(), draft)])
        # a unit the drug's form does not take is refused, not a finding to override
        misfit = next((f for f in found if f.kind is Kind.UNIT_FORM), None)
        if misfit is not None:
            raise RuleRefused(misfit.message, "dose-unit")
        # what needs the doctor's judgement stops the save; information alone does not
        if any(f.severity is not Severity.INFORMATION for f in found):
            return findings_page(web, findings.issues(found), saving=[draft], edit=edit)

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

    return save(web, pid, ops, None, f"{medication['text']} er lagt til.", edit=edit)


def dosage_preview(web: Web) -> Response:
    """The dosage text the list will show, for the editor's live preview. Always 200: an
    unfinished dosage is what a preview shows while the doctor types, not an error (then
    ``field`` names the field at fault, so the editor can offer to clear another mode's)."""
    try:
        return JSONResponse({"ok": True, "text": forms.dosage(web.query)[0]["text"]})
    except DomainError as exc:
        return JSONResponse({"ok": False, "text": exc.message, "field": exc.expression})


def renew_page(web: Web) -> Response:
    """The renewal form, starting from the current prescription's quantity and reit and the
    entry's treatment period (a refused one comes back as typed, through the edge)."""

    def starting(entry: EntryView) -> dict[str, str]:
        rx = entry.current_prescription
        return forms.rx_values(rx.content if rx else None, entry.content)

    def units(entry: EntryView) -> tuple[str, ...]:
        return forms.rx_units_for(
            drug_form(web, entry.content.get("medicationCodeableConcept") or {})
        )

    return entry_page(
        web,
        "doctor/renew.html",
        values=starting,
        rx_units=units,
        today=_today(web).isoformat(),
    )


def renew(web: Web) -> Response:
    """A renewal: a new e-prescription whose priorPrescription is the head of the chain,
    valid from today, with the quantity and reit the doctor gave; a changed treatment start
    or stop changes the entry's period in the same list version."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    head_id = web.field("prescription")
    require(bool(head_id), "Skjemaet mangler resepten som skal fornyes.", "prescription")
    version = entry_version(web)
    # the quantity units the renewal page offered: those of the entry's drug form
    _, shown = entry_of(web, pid, entry_id)
    form = drug_form(web, shown.content.get("medicationCodeableConcept") or {})
    rx_fields = forms.rx_fields(web.field, _today(web), form)

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
