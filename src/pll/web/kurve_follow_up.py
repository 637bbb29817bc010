"""What a nurse does on the chart besides giving (issue 17): acknowledging the changes the
unit has not taken in, and reporting a deviation (:mod:`pll.web.kurve`).

- ``POST /kurve/<patient>/kvitter``: "Kvitter for endringene" — the use case behind
  ``POST List/{id}/$acknowledge-changes``
  (:meth:`~pll.services.acknowledgements.AcknowledgementService.acknowledge`), naming the
  list version the page was made from. A change made after that (a doctor's, while the nurse
  read) is not taken in: the chart shows it again, with a Norwegian notice. Only a nurse of
  the unit acknowledges (the access policy, :attr:`~pll.auth.access.Verb.ACKNOWLEDGE`);
  care workers see the changes and the page says a nurse must acknowledge them.
- ``GET``/``POST /kurve/<patient>/avvik?gjelder=<focus>``: a case about an entry (the list
  is wrong or unclear: a discrepancy on ``MedicationStatement/<id>/_history/<v>``, the
  version the chart showed), a recorded administration (``MedicationAdministration/<id>``)
  or a planned dose never recorded (``planned-dose|<key>``) — the ``Task`` a care system
  would send, through :meth:`~pll.services.cases.CaseService.report`. A refusal shows the
  form again with what was typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from pll.domain import cases as rules
from pll.domain.errors import DomainError, InvalidInput, NotFound
from pll.fhir.administration import PLANNED_DOSE
from pll.fhir.validate import validate
from pll.services.acknowledgements import AcknowledgementService
from pll.services.care_round import CareRound
from pll.services.cases import CaseService, Shown
from pll.web.cases import case_view
from pll.web.edge import Web, require
from pll.web.kurve_views import ChartView, chart_view, context_of

_ID = r"[A-Za-z0-9\-.]{1,64}"
_ENTRY = re.compile(rf"MedicationStatement/({_ID})/_history/([0-9]{{1,9}})")
_RECORD = re.compile(rf"MedicationAdministration/({_ID})")
_DOSE = "planned-dose|"
#: The focus kinds, as the form's heading says what the case is about.
ABOUT_ENTRY = "Listen er feil eller uklar om legemidlet"
ABOUT_RECORD = "Feil ved en registrert utdeling"
ABOUT_MISSED = "En planlagt dose som ikke ble gitt"
ABOUT_GONE = "Det avviket gjaldt, er endret eller borte"


def acknowledge(web: Web) -> Response:
    """Acknowledge, for the caller's unit, the changes up to the version the page showed."""
    pid = web.path_id("pid")
    list_id = web.field("liste")
    raw = web.field("listeversjon")
    require(
        bool(list_id) and raw.isdigit() and len(raw) < 10,
        "Skjemaet mangler listeversjonen; last kurven på nytt.",
    )
    seen = int(raw)
    body = {"resourceType": "Parameters", "parameter": [{"name": "version", "valueInteger": seen}]}
    # the chart's patient: a list id from the form that is another patient's is unknown
    answer, written = AcknowledgementService(web.service).acknowledge(
        web.access(pid), list_id, body, patient_id=pid
    )
    names = [p["name"] for p in answer["parameter"]]
    taken, later = names.count("change"), names.count("remaining")
    if written:
        web.notice(f"Kvittert for {_changes(taken)} til og med listeversjon {seen}.")
    else:
        web.notice(f"Endringene til og med listeversjon {seen} var allerede kvittert.")
    if later:
        web.notice(
            f"Listen er endret etter at du åpnet kurven: {_changes(later)} kom til mens du "
            "leste og er ikke kvittert. Les dem øverst på kurven og kvitter på nytt."
        )
    return web.redirect(f"/kurve/{pid}#endringer")


def _changes(count: int) -> str:
    return f"{count} endring{'er' if count != 1 else ''}"


@dataclass(frozen=True)
class About:
    """What a deviation is reported on, as the form shows it."""

    focus: str
    kind: str
    drug: str
    detail: str


def _about(chart: ChartView, focus: str) -> About | None:
    """The entry, record or planned dose of today's chart ``focus`` names; ``None`` when the
    chart shows no such thing (the page is stale, or the link was made up)."""
    if found := _ENTRY.fullmatch(focus):
        return _about_entry(chart, focus, found[1], found[2])
    if found := _RECORD.fullmatch(focus):
        return _about_record(chart, focus, found[1])
    if focus.startswith(_DOSE):
        cell = chart.cell(focus.removeprefix(_DOSE))
        if cell is None or cell.record is not None:
            return None
        detail = f"{cell.dose.slot} kl. {cell.time}, {cell.amount}"
        return About(focus, ABOUT_MISSED, _drug(chart, cell.dose.entry_id), detail)
    return None


def _about_entry(chart: ChartView, focus: str, entry_id: str, version: str) -> About | None:
    drugs = {r.entry_id: (r.drug, r.dosage) for r in chart.rows}
    drugs |= {a.entry_id: (a.drug, a.item.text) for a in chart.as_needed}
    drugs |= {a.item.entry_id: (a.drug, a.item.text) for a in chart.assess}
    if entry_id not in drugs:
        return None
    drug, dosage = drugs[entry_id]
    return About(focus, ABOUT_ENTRY, drug, f"{dosage} (versjon {version} av oppføringen)")


def _about_record(chart: ChartView, focus: str, record_id: str) -> About | None:
    record = next((r for r in chart.records if r.id == record_id), None)
    if record is None:
        return None
    cell = chart.cell(record.slot_key) if record.slot_key else None
    said = cell.what_recorded if cell is not None else f"registrert av {record.by.name}"
    return About(focus, ABOUT_RECORD, _drug(chart, record.entry_id), said)


def _drug(chart: ChartView, entry_id: str) -> str:
    row = chart.row_of(entry_id)
    if row is not None:
        return row.drug
    return next((a.drug for a in chart.as_needed if a.entry_id == entry_id), "Legemiddel")


def deviation_page(web: Web) -> Response:
    """The form: what the case is about, and a text of what is wrong."""
    pid = web.path_id("pid")
    focus = (web.values or {}).get("gjelder") or web.query("gjelder")
    chart = chart_view(CareRound(web.service).chart(web.access(pid), pid))
    about = _about(chart, focus[:300])
    if about is None and web.values:
        # a refused report of something gone from the chart: the text typed is kept to copy
        about = About(focus[:300], ABOUT_GONE, "Står ikke lenger på dagens kurve", "")
    if about is None:
        raise NotFound(
            f"Nothing on today's chart is {focus[:160]!r}.",
            "gjelder",
            norwegian="Det avviket skulle gjelde, står ikke på dagens kurve (last kurven på nytt).",
        )
    values = web.values or {}
    return web.render(
        "kurve/deviation.html",
        pid=pid,
        about=about,
        values=values,
        max_text=rules.MAX_TEXT,
        **context_of(chart),
    )


def report_deviation(web: Web) -> Response:
    """Report the case; the service decides access, routing and whether the focus exists."""
    pid = web.path_id("pid")
    focus = web.field("gjelder")
    text = web.field("beskrivelse")
    require(bool(focus), "Skjemaet mangler hva avviket gjelder; last kurven på nytt.")
    require(bool(text), "Skriv hva som er feil eller uklart.", "beskrivelse")
    require(len(text) <= rules.MAX_TEXT, f"Skriv høyst {rules.MAX_TEXT} tegn.", "beskrivelse")
    if focus.startswith(_DOSE):
        ref: dict[str, Any] = {
            "identifier": {"system": PLANNED_DOSE, "value": focus.removeprefix(_DOSE)}
        }
    else:
        require(
            bool(_ENTRY.fullmatch(focus) or _RECORD.fullmatch(focus)),
            "Avviket gjelder noe som ikke står på kurven; last kurven på nytt.",
        )
        ref = {"reference": focus}
    task = validate(
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "focus": ref,
            "for": {"reference": f"Patient/{pid}"},
            "description": text,
        },
        "Task",
    )
    try:
        stored = CaseService(web.service).report(web.access(pid), task)
    except InvalidInput as exc:
        raise InvalidInput(
            exc.message,
            None,
            norwegian=exc.norwegian
            or rules.in_norwegian(exc.message)
            or "Avviket kunne ikke meldes: det kurven viste, er endret eller finnes ikke "
            "lenger. Last kurven på nytt; ingenting ble lagret.",
        ) from None
    except DomainError as exc:
        exc.message = rules.in_norwegian(exc.message) or exc.message
        raise
    shown = case_view(Shown(orjson.loads(stored.text), frozenset()), {})
    web.notice(f"Avviket er meldt til {shown.owner} ({shown.recipient}).")
    return web.redirect(f"/kurve/{pid}")
