"""Undoing a wrong tap on the chart (issue 17): "Registrert feil" (:mod:`pll.web.kurve`).

- ``GET /kurve/<patient>/feil?post=<record>``: what was recorded, and a field for why it is
  wrong (required);
- ``POST /kurve/<patient>/feil``: the record marked ``entered-in-error`` with that reason by
  :meth:`~pll.services.care_round.CareRound.withdraw`, which calls the correction use case
  behind ``PUT MedicationAdministration`` (a new version, never an edit). The planned dose is
  then free to be recorded again; an as-needed dose no longer counts against the maximum.

The chart offers it on the caller's own records of today (the one who tapped knows it was
wrong; a colleague's record is theirs, or a deviation to report). A refusal shows the form
again with what was typed; a record changed or marked meanwhile is refused in Norwegian.
"""

from __future__ import annotations

from starlette.responses import Response

from pll.domain.errors import Conflict, NotFound, VersionConflict
from pll.services.care_round import CareRound
from pll.web.edge import Web, require
from pll.web.kurve_views import RecordView, chart_view, context_of, drug_of

#: The longest reason kept (the record keeps 1,000 characters of a correction's reason).
MAX_REASON = 500


def wrong_page(web: Web) -> Response:
    """The form: the record, and why it is wrong."""
    pid = web.path_id("pid")
    rid = (web.values or {}).get("post") or web.query("post")
    chart = CareRound(web.service).chart(web.access(pid), pid)
    view = chart_view(chart, web.caller.actor)
    record = view.record(rid[:64])
    if record is None:
        raise NotFound(
            f"No standing record {rid[:64]!r} on today's chart.",
            "post",
            norwegian="Registreringen står ikke på dagens kurve (den kan allerede være "
            "merket som feil). Last kurven på nytt.",
        )
    line = RecordView(record, drug_of(chart.entries.get(record.entry_id)))
    return web.render(
        "kurve/wrong.html",
        pid=pid,
        line=line,
        mine=record.id in view.mine,
        values=web.values or {},
        max_reason=MAX_REASON,
        **context_of(view),
    )


def mark_wrong(web: Web) -> Response:
    """Mark the record entered in error, with the reason typed."""
    pid = web.path_id("pid")
    rid = web.field("post")
    raw = web.field("versjon")
    require(
        bool(rid) and raw.isdigit() and len(raw) < 10,
        "Skjemaet mangler registreringen; last kurven på nytt.",
    )
    reason = web.field("grunn")
    require(bool(reason), "Skriv hvorfor registreringen er feil.", "grunn")
    require(len(reason) <= MAX_REASON, f"Skriv høyst {MAX_REASON} tegn.", "grunn")
    try:
        CareRound(web.service).withdraw(web.access(pid), pid, rid, int(raw), reason)
    except VersionConflict:
        raise Conflict(
            "The record changed since the page was shown.",
            None,
            norwegian="Registreringen er endret siden siden ble vist; ingenting ble lagret. "
            "Last kurven på nytt.",
        ) from None
    web.notice(f"Registreringen er merket som feil ({reason}). Dosen kan registreres på nytt.")
    return web.redirect(f"/kurve/{pid}")
