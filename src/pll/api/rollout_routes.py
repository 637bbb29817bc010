"""The rollout and payment team's reports (issue 19): not public, for the rollout role only.

- ``GET /stats/first-lists?month=YYYY-MM`` — the first lists of a month per prescriber (HPR)
  and organisation: patients and the days; the default month is this one (Norwegian time);
- ``GET /stats/vendors?week=YYYY-Www`` — per client system: changes, conflicts, refusals,
  overrides, failed sends, technical cases; the default is this ISO week;
- ``GET /stats/gp-offices`` — every GP office of the register, furthest behind first.

JSON by default; CSV with ``Accept: text/csv`` or ``?format=csv``. A caller who is not the
rollout team — the public (no token), a health worker, a patient — gets 403 with an
``OperationOutcome`` (the reports name people and businesses); every read and every refusal
is in the audit trail (:mod:`pll.services.rollout_reports`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.api.http import Ctx, endpoint, error_response
from pll.domain.errors import Forbidden, InvalidInput
from pll.services.rollout_reports import NOT_ROLLOUT, NOT_ROLLOUT_NB, RolloutReports
from pll.stats import rollout as rules
from pll.stats.indicators import week as week_of
from pll.stats.spreadsheet import table_csv

#: the query parameters each report takes
_PARAMS = {
    "first-lists": {"month", "format"},
    "vendors": {"week", "format"},
    "gp-offices": {"format"},
}


def routes(reports: RolloutReports) -> list[Route]:
    def first_lists(ctx: Ctx) -> Response:
        reports.admit(ctx.access, "first-lists")
        params = _params(ctx, "first-lists")
        month = params.get("month") or rules.this_month(reports.clock())
        found = reports.first_lists(ctx.access, month)
        return _answer(ctx, "first-lists", found, found["prescribers"])

    def vendors(ctx: Ctx) -> Response:
        reports.admit(ctx.access, "vendors")
        params = _params(ctx, "vendors")
        week = params.get("week") or week_of(reports.clock())
        found = reports.vendors(ctx.access, week)
        return _answer(ctx, "vendors", found, found["rows"])

    def gp_offices(ctx: Ctx) -> Response:
        reports.admit(ctx.access, "gp-offices")
        _params(ctx, "gp-offices")
        found = reports.gp_offices(ctx.access)
        return _answer(ctx, "gp-offices", found, found["rows"])

    return [
        Route("/stats/first-lists", _public_refused(endpoint(first_lists)), methods=["GET"]),
        Route("/stats/vendors", _public_refused(endpoint(vendors)), methods=["GET"]),
        Route("/stats/gp-offices", _public_refused(endpoint(gp_offices)), methods=["GET"]),
    ]


def _public_refused(run: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """The public (a request with no credentials) is refused with 403, as the issue asks of
    a report that is not public: it is not a login that is missing, but the role. A token
    that does not verify still gets 401 from the endpoint."""

    async def guarded(request: Request) -> Response:
        if not any(name == b"authorization" for name, _ in request.scope["headers"]):
            return error_response(
                Forbidden(
                    NOT_ROLLOUT + " Send the rollout team's access token.",
                    "Authorization",
                    norwegian=NOT_ROLLOUT_NB,
                )
            )
        response: Response = await run(request)
        return response

    return guarded


def _params(ctx: Ctx, report: str) -> dict[str, str]:
    params = dict(ctx.request.query_params)
    unknown = sorted(set(params) - _PARAMS[report])
    if unknown:
        allowed = ", ".join(sorted(_PARAMS[report]))
        raise InvalidInput(
            f"Unknown parameter '{unknown[0][:40]}'; /stats/{report} takes {allowed}.", unknown[0]
        )
    if params.get("format", "json") not in ("json", "csv"):
        raise InvalidInput("Parameter 'format' must be json or csv.", "format")
    return params


def _answer(ctx: Ctx, name: str, found: dict[str, Any], rows: list[dict[str, Any]]) -> Response:
    fmt = ctx.request.query_params.get("format")
    accept = ctx.request.headers.get("accept", "")
    if fmt == "csv" or (fmt is None and "text/csv" in accept):
        return Response(
            to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="pll-{name}.csv"'},
        )
    return Response(orjson.dumps(found), media_type="application/json")


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV, every cell safe in a spreadsheet
    (:func:`pll.stats.spreadsheet.table_csv`)."""
    return table_csv(rows)
