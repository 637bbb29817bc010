"""The rollout team's pages (issue 19), behind login: the first lists of a month per GP and
office, the per-vendor table of a week, and the GP offices furthest behind; the first lists also as
CSV (``forstegangslister.csv``, the page's download link).

The figures and their rules are :mod:`pll.services.rollout_reports`, the same the API's
``/stats/first-lists``, ``/stats/vendors`` and ``/stats/gp-offices`` serve: only the rollout
role reads them, and every read (and refusal) is in the audit trail. Anyone else logged in
gets the refusal in Norwegian (403); someone not logged in is sent to the login.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pll.auth.access import Access
from pll.domain.errors import InvalidInput
from pll.services.rollout_reports import RolloutReports
from pll.stats import rollout as rules
from pll.stats.indicators import week as week_of
from pll.stats.spreadsheet import table_csv
from pll.web.edge import Web, page

BASE = "/statistikk/utrulling"
_NB = {
    "month": "Måneden må skrives som ÅÅÅÅ-MM, for eksempel 2026-10.",
    "week": "Uken må skrives som ÅÅÅÅ-Uuu, for eksempel 2026-W41.",
}


def _reports(web: Web) -> tuple[RolloutReports, Access]:
    service = web.service
    return (
        RolloutReports(service.db, service.clock, service.trail),
        Access(web.caller.actor, None, web.caller.client_id),
    )


def _show(web: Web, view: str, status: int = 200, **context: Any) -> Response:
    return web.render("stats/rollout.html", status, view=view, base=BASE, **context)


def first_lists(web: Web) -> Response:
    """``/statistikk/utrulling?maned=ÅÅÅÅ-MM``: the first lists of a month."""
    reports, access = _reports(web)
    month = web.request.query_params.get("maned") or rules.this_month(web.service.clock())
    try:
        found = reports.first_lists(access, month)
    except InvalidInput:
        return _show(web, "first", 400, error=_NB["month"], month=month[:20])
    return _show(web, "first", report=found, month=month)


def first_lists_csv(web: Web) -> Response:
    """``/statistikk/utrulling/forstegangslister.csv?maned=ÅÅÅÅ-MM``: the page's "Last ned
    CSV" — the same CSV as the API's ``/stats/first-lists?format=csv``, for the team logged
    in (a browser sends its session, not a bearer token); read and audited the same way."""
    reports, access = _reports(web)
    month = web.request.query_params.get("maned") or rules.this_month(web.service.clock())
    try:
        found = reports.first_lists(access, month)
    except InvalidInput:
        return _show(web, "first", 400, error=_NB["month"], month=month[:20])
    return Response(
        table_csv(found["prescribers"]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="pll-first-lists.csv"'},
    )


def vendors(web: Web) -> Response:
    """``/statistikk/utrulling/leverandorer?uke=ÅÅÅÅ-Uuu``: the per-vendor table of a week."""
    reports, access = _reports(web)
    week = web.request.query_params.get("uke") or week_of(web.service.clock())
    try:
        found = reports.vendors(access, week)
    except InvalidInput:
        return _show(web, "vendors", 400, error=_NB["week"], week=week[:20])
    return _show(web, "vendors", report=found, week=week)


def gp_offices(web: Web) -> Response:
    """``/statistikk/utrulling/legekontor``: the GP offices, furthest behind first."""
    reports, access = _reports(web)
    return _show(web, "offices", report=reports.gp_offices(access))


ROUTES: list[BaseRoute] = [
    Route(BASE, page(first_lists), methods=["GET"]),
    Route(f"{BASE}/forstegangslister.csv", page(first_lists_csv), methods=["GET"]),
    Route(f"{BASE}/leverandorer", page(vendors), methods=["GET"]),
    Route(f"{BASE}/legekontor", page(gp_offices), methods=["GET"]),
]
