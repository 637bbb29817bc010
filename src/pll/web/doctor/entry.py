"""Changing one entry: its dose, pausing or resuming it, discontinuing it."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from pll.domain.errors import InvalidInput
from pll.domain.multidose_packing import NotPackable
from pll.services.catalogue import Catalogue
from pll.services.lists import Op
from pll.web import forms
from pll.web.doctor.common import entry_of, entry_page, entry_version, updated
from pll.web.doctor.multidose import marked
from pll.web.doctor.saving import save
from pll.web.edge import Web, norwegian, require


def dose_page(web: Web) -> Response:
    """The dose form: the editor in the entry's own mode with its values, offering the units
    the drug's form takes. A refused change comes back here with what was typed (the edge's
    mechanism), a conflict's reopening with this doctor's values (:func:`entry_page`)."""

    def units(entry: Any) -> tuple[str, ...]:
        return forms.units_of(drug_form(web, entry.content.get("medicationCodeableConcept") or {}))

    def current(entry: Any) -> dict[str, str]:
        return forms.editor_values(entry.content.get("dosage") or [])

    return entry_page(
        web, "doctor/dose.html", values=current, prefilled=current, times=forms.TIMES, units=units
    )


def drug_form(web: Web, concept: dict[str, Any]) -> str | None:
    """The FEST form of an entry's drug, as decision support reads it
    (:meth:`Catalogue.form_of`); ``None`` for a drug named by text only or not in the
    catalogue in use."""
    return Catalogue(web.service.db).form_of(concept)


def change_dose(web: Web) -> Response:
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    version = entry_version(web)

    def ops() -> list[Op]:
        # the entry as it is now, with only the dosage changed: another doctor's change to
        # anything else is kept (and a change to this entry is a conflict, rule 2)
        _, entry = entry_of(web, pid, entry_id)
        concept = entry.content.get("medicationCodeableConcept") or {}
        dosages = forms.dosage(web.field, drug_form(web, concept))
        content = forms.without_meta(entry.content) | {"dosage": dosages}
        if web.field("multidose-vist") == "1":  # the page offered the mark (issue 18)
            content = marked(content, web.field("multidose") == "ja")
        return [updated(web, entry_id, content, version)]

    # refused: the form comes back with everything the doctor typed (the edge's mechanism)
    try:
        return save(web, pid, ops, None, "Dosen er endret.")
    except NotPackable as exc:
        # beside the multidose choice, in Norwegian, with the dose typed kept
        raise InvalidInput(norwegian(exc), "multidose") from None


def set_status(web: Web) -> Response:
    """Pause or resume one medicine (on-hold ⇄ active)."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    version = entry_version(web)
    action = web.field("action")
    require(action in ("pause", "resume"), "Ukjent handling.", "action")

    def ops() -> list[Op]:
        _, entry = entry_of(web, pid, entry_id)
        content = forms.without_meta(entry.content)
        content["status"] = "on-hold" if action == "pause" else "active"
        content.pop("statusReason", None)
        if action == "pause" and web.field("reason"):
            content["statusReason"] = [{"text": web.field("reason")[:200]}]
        return [updated(web, entry_id, content, version)]

    done = "Legemidlet er pauset." if action == "pause" else "Legemidlet er tatt i bruk igjen."
    return save(web, pid, ops, None, done, form_page=False)  # its buttons are on the list


def discontinue_page(web: Web) -> Response:
    return entry_page(web, "doctor/discontinue.html", reasons=forms.DISCONTINUE_REASONS)


def discontinue(web: Web) -> Response:
    """Seponering: status stopped with a reason; its prescriptions are recalled (M5)."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    version = entry_version(web)
    reason = web.field("reason")
    if reason == "annet":
        reason = web.field("other")
    require(bool(reason), "Velg eller skriv en grunn til seponeringen.", "reason")

    def ops() -> list[Op]:
        _, entry = entry_of(web, pid, entry_id)
        content = forms.without_meta(entry.content)
        content["status"] = "stopped"
        content["statusReason"] = [{"text": reason[:200]}]
        return [updated(web, entry_id, content, version)]

    return save(web, pid, ops, reason[:200], "Legemidlet er seponert.")
