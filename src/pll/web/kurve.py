"""The administration chart (*kurve*) for nurses and care workers (issue 17).

- ``/kurve``: the caller's care unit (the organisation in their token) and its registered
  patients today, each with the doses due now and late
  (:mod:`pll.domain.administration.rounds`);
- ``/kurve/<patient>``: the patient's day as a chart of entries × rounds, one button per
  planned dose to record it given, a page per dose for not given with a reason, a partial
  dose, another time or a controlled drug's second signature; as-needed doses with what
  remains of the daily maximum; "må vurderes" items with their text; a paused list shown
  plainly with no doses;
- ``/kurve/<patient>/utskrift``: the day chart to print for the downtime routine, with the
  list version it was made from, the changes not acknowledged and where each dose is taken
  from (bag or package);
- the changes the unit has not acknowledged at the top of the chart, each affected dose
  marked "Endret — ikke kvittert", one action to acknowledge them, and a multidose
  patient's bags ("i posen" / "gis fra egen pakning", the bags' differences from the list);
  acknowledging and reporting a deviation are :mod:`pll.web.kurve_follow_up`.

The pages' basis is the treatment relationship the unit's registration is: every use case
behind them admits only the nurses and care workers of a unit the patient is registered
with (:attr:`~pll.auth.access.Verb.ADMINISTER`), so the page does not ask for a basis.
A recording goes through :meth:`AdministrationService.give`, the use case behind
``POST MedicationAdministration``; its refusals come back as the form, with what was typed
and the Norwegian message beside the field.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.auth.access import Basis
from pll.domain.administration import OSLO
from pll.domain.administration.records import NotGiven, Recording, Status, parse_key
from pll.domain.errors import Conflict, DomainError, InvalidInput, NotFound, RuleRefused
from pll.domain.model import Role
from pll.services.administrations import AdministrationService
from pll.services.care_round import CareRound
from pll.web.edge import Page, Web, page, refused_form, require
from pll.web.kurve_follow_up import acknowledge, deviation_page, report_deviation
from pll.web.kurve_views import (
    amount_text,
    chart_view,
    clock,
    context_of,
    patient_line,
)

CARERS = frozenset({Role.NURSE, Role.CARE_WORKER})
_HPR = re.compile(r"[0-9]{4,9}")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3])[:.]([0-5][0-9])")
#: Where a refusal of the domain stands (MedicationAdministration) → the form field.
_FIELDS = (
    ("MedicationAdministration.dosage.dose", "mengde"),
    ("MedicationAdministration.reasonCode", "hvorfor"),
    ("MedicationAdministration.performer", "kontroll"),
    ("MedicationAdministration.statusReason", "grunn"),
    ("MedicationAdministration.effectiveDateTime", "tid"),
)


def chart_url(pid: str, rest: str = "") -> str:
    return f"/kurve/{pid}{rest}"


def unit_page(web: Web) -> Response:
    unit = CareRound(web.service).unit_day(web.access())
    lines = sorted((patient_line(p) for p in unit.patients), key=lambda p: p.name)
    return web.render(
        "kurve/unit.html",
        unit=unit,
        kind=unit.kind or "",
        lines=lines,
        late=sum(1 for p in lines if p.late),
        now=clock(unit.now),
    )


def chart_page(web: Web) -> Response:
    pid = web.path_id("pid")
    chart = CareRound(web.service).chart(web.access(pid), pid)
    return web.render(
        "kurve/chart.html",
        pid=pid,
        # the access policy lets only nurses acknowledge; a care worker is told to ask one
        may_acknowledge=web.role is Role.NURSE,
        **context_of(chart_view(chart)),
    )


def print_page(web: Web) -> Response:
    pid = web.path_id("pid")
    chart = CareRound(web.service).chart(web.access(pid), pid)
    return web.render("kurve/print.html", pid=pid, printing=True, **context_of(chart_view(chart)))


def dose_page(web: Web) -> Response:
    """One planned dose: given (partly, at another time, with a second signer) or not given
    with a reason."""
    pid = web.path_id("pid")
    key = (web.values or {}).get("dose") or str(web.request.query_params.get("dose", ""))
    chart = chart_view(CareRound(web.service).chart(web.access(pid), pid))
    cell = chart.cell(key)
    if cell is None:
        raise NotFound(
            f"No planned dose {key[:160]!r} today.",
            "dose",
            norwegian="Dosen står ikke på dagens kurve (listen kan være endret).",
        )
    row = chart.row_of(cell.dose.entry_id)
    values = {
        "utfall": "ikke-gitt" if web.request.query_params.get("ikke") else "gitt",
        "mengde": _number(cell.dose.amount),
    }
    return web.render(
        "kurve/dose.html", pid=pid, cell=cell, row=row, values=values, **context_of(chart)
    )


def give(web: Web) -> Response:
    """The one-tap "Gitt": the planned dose as planned, now."""
    pid = web.path_id("pid")
    key = web.field("dose")
    version = _version(web)
    entry_id = _entry_of(key)
    rec = Recording(entry_id, version, Status.COMPLETED, _now(web), slot_key=key)
    return _record(web, pid, rec, chart_page, f"#{_anchor(key)}")


def record_dose(web: Web) -> Response:
    """The dose page's form: given or not given, with what the page asks."""
    pid = web.path_id("pid")
    key = web.field("dose")
    version = _version(web)
    entry_id = _entry_of(key)
    outcome = web.field("utfall")
    require(outcome in ("gitt", "ikke-gitt"), "Velg om dosen ble gitt eller ikke.", "utfall")
    at = _time(web, "tid")
    if outcome == "ikke-gitt":
        reason = web.field("grunn")
        require(
            reason in NotGiven.__members__.values(), "Velg hvorfor dosen ikke ble gitt.", "grunn"
        )
        rec = Recording(
            entry_id, version, Status.NOT_DONE, at, slot_key=key, reason=NotGiven(reason)
        )
    else:
        amount, unit = _amount(web, "mengde"), web.field("enhet") or None
        rec = Recording(
            entry_id,
            version,
            Status.COMPLETED,
            at,
            slot_key=key,
            amount=amount,
            unit=unit if amount is not None else None,
            verifier_hpr=_verifier(web, "kontroll"),
        )
    return _record(web, pid, rec, dose_page, f"#{_anchor(key)}")


def give_as_needed(web: Web) -> Response:
    """An as-needed dose: the amount, why, and a second signer for a controlled drug."""
    pid = web.path_id("pid")
    entry_id = web.field("legemiddel")
    require(bool(entry_id), "Skjemaet mangler legemidlet; last siden på nytt.", "legemiddel")
    version = _version(web)
    amount = _amount(web, f"mengde-{entry_id}")
    require(amount is not None, "Skriv hvor mye som ble gitt.", f"mengde-{entry_id}")
    rec = Recording(
        entry_id,
        version,
        Status.COMPLETED,
        _now(web),
        amount=amount,
        unit=web.field(f"enhet-{entry_id}") or None,
        verifier_hpr=_verifier(web, f"kontroll-{entry_id}"),
        reason_for_giving=web.field(f"hvorfor-{entry_id}")[:500] or None,
    )
    return _record(web, pid, rec, chart_page, f"#ved-behov-{entry_id}", suffix=f"-{entry_id}")


def _record(
    web: Web, pid: str, rec: Recording, show: Page, anchor: str, suffix: str = ""
) -> Response:
    try:
        AdministrationService(web.service).give(web.access(pid), pid, rec)
    except (InvalidInput, Conflict, RuleRefused) as exc:
        return refused_form(web, show, _at_field(exc, suffix))
    if rec.status is Status.NOT_DONE and rec.reason is not None:
        web.notice(f"Registrert: ikke gitt kl. {clock(rec.at)} – {rec.reason.display}.")
    else:
        given = amount_text(rec.amount, rec.unit) if rec.amount is not None else "planlagt dose"
        web.notice(f"Registrert: {given} gitt kl. {clock(rec.at)}.")
    return web.redirect(chart_url(pid, anchor))


def _at_field(error: DomainError, suffix: str) -> DomainError:
    """The refusal placed at the form's field for the part of the record it is about."""
    where = error.expression or ""
    field = next((f for path, f in _FIELDS if where.startswith(path)), None)
    return dataclasses.replace(error, expression=f"{field}{suffix}" if field else None)


def _version(web: Web) -> int:
    raw = web.field("versjon")
    require(raw.isdigit() and len(raw) < 10, "Skjemaet mangler versjonen; last siden på nytt.")
    return int(raw)


def _entry_of(key: str) -> str:
    require(bool(key), "Skjemaet mangler dosen; last siden på nytt.")
    try:
        return parse_key(key)[0]
    except InvalidInput:
        raise InvalidInput(
            "Not a planned dose.", None, norwegian="Dosen finnes ikke; last kurven på nytt."
        ) from None


def _anchor(key: str) -> str:
    return "dose-" + key.replace("/", "-").replace(":", "")


def _now(web: Web) -> datetime:
    return web.service.clock().astimezone(OSLO)


def _time(web: Web, name: str) -> datetime:
    """The time given: "HH:MM" today (Norwegian time), or now when left empty."""
    raw = web.field(name)
    now = _now(web)
    if not raw:
        return now
    found = _CLOCK.fullmatch(raw)
    if found is None:
        raise InvalidInput("Skriv klokkeslettet som TT:MM, for eksempel 08:15.", name)
    return datetime.combine(now.date(), time(int(found[1]), int(found[2])), OSLO)


def _amount(web: Web, name: str) -> Decimal | None:
    raw = web.field(name).replace(",", ".")
    if not raw:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        amount = Decimal(-1)
    require(
        len(raw) <= 12 and amount.is_finite() and amount > 0,
        "Mengden må være et tall større enn null, for eksempel 1 eller 0,5.",
        name,
    )
    return amount


def _verifier(web: Web, name: str) -> str | None:
    raw = web.field(name)
    if not raw:
        return None
    require(
        _HPR.fullmatch(raw) is not None,
        "Kontrollsignaturen er HPR-nummeret til den som kontrollerer (bare sifre).",
        name,
    )
    return raw


def _number(amount: Decimal) -> str:
    return format(amount.normalize(), "f").replace(".", ",")


def _carers(handler: Page, form: Page | None = None) -> Callable[[Request], Any]:
    return page(handler, roles=CARERS, form=form, implied=Basis.TREATMENT)


ROUTES = [
    Route("/kurve", _carers(unit_page), methods=["GET"]),
    Route("/kurve/{pid}", _carers(chart_page), methods=["GET"]),
    Route("/kurve/{pid}/utskrift", _carers(print_page), methods=["GET"]),
    Route("/kurve/{pid}/dose", _carers(dose_page), methods=["GET"]),
    Route("/kurve/{pid}/dose", _carers(record_dose, form=dose_page), methods=["POST"]),
    Route("/kurve/{pid}/gitt", _carers(give, form=chart_page), methods=["POST"]),
    Route("/kurve/{pid}/ved-behov", _carers(give_as_needed, form=chart_page), methods=["POST"]),
    Route("/kurve/{pid}/kvitter", _carers(acknowledge, form=chart_page), methods=["POST"]),
    Route("/kurve/{pid}/avvik", _carers(deviation_page), methods=["GET"]),
    Route("/kurve/{pid}/avvik", _carers(report_deviation, form=deviation_page), methods=["POST"]),
]
