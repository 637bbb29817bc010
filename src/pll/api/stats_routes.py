"""``/stats/``: the rollout and quality figures as JSON or CSV, small counts suppressed.

The figures are aggregated and suppressed (:mod:`pll.stats.disclosure`): no patient can be
singled out from them, so they are served without a login, as published statistics are. Bad
parameters get a 400 with an ``OperationOutcome`` that names the parameter.

- ``GET /stats/`` — what there is, and how far the counts go;
- ``GET /stats/periods?grain=week|month&by=region|municipality|actor_type&since=&until=``;
- ``GET /stats/snapshot?by=region|municipality``;
- ``GET /stats/rollout?day=`` — organisations live against the ambition;
- ``GET /stats/ambitions?day=`` — the national ambitions the lists measure (inhabitants with
  a PLL, e-multidose coverage);
- ``GET /stats/acknowledgements?since=&until=`` — per care unit, the time from a list change
  to its acknowledgement (median, 90th percentile) and the changes unacknowledged now.

Each takes ``format=json`` (the default) or ``format=csv``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.api.http import error_response
from pll.domain.errors import InvalidInput
from pll.services.acknowledgement_stats import acknowledgement_times
from pll.services.case_stats import case_deadlines
from pll.services.stats import Statistics
from pll.stats import disclosure
from pll.stats.indicators import OSLO
from pll.stats.spreadsheet import safe_cell

#: The longest span one request may ask for: three years of weeks.
MAX_DAYS = 3 * 366


def routes(stats: Statistics) -> list[Route]:
    def index(request: Request) -> Response:
        position, newest = stats.updated()
        return _json(
            {
                "counted_up_to_event": position,
                "newest_event": newest,
                "suppressed_below": disclosure.THRESHOLD,
                "tables": {
                    "periods": "/stats/periods?grain=week&by=region",
                    "snapshot": "/stats/snapshot?by=region",
                    "rollout": "/stats/rollout",
                    "ambitions": "/stats/ambitions",
                    "acknowledgements": "/stats/acknowledgements",
                    "cases": "/stats/cases",
                },
            }
        )

    def periods(request: Request) -> Response:
        q = Query(request, stats)
        grain = q.choice("grain", ("week", "month"), "week")
        by = q.choice("by", ("region", "municipality", "actor_type", ""), "region") or None
        since, until = q.span(grain)
        return q.answer("periods", stats.periods(grain, by, since, until))

    def snapshot(request: Request) -> Response:
        q = Query(request, stats)
        by = q.choice("by", ("region", "municipality", ""), "region") or None
        return q.answer("snapshot", stats.snapshot(by))

    def rollout(request: Request) -> Response:
        q = Query(request, stats)
        day = q.day("day", q.today)
        return q.answer("rollout", stats.rollout(day))

    def national(request: Request) -> Response:
        q = Query(request, stats)
        return q.answer("ambitions", stats.national(q.day("day", q.today)))

    def acknowledgements(request: Request) -> Response:
        q = Query(request, stats)
        since, until = q.span("week")
        return q.answer("acknowledgements", acknowledgement_times(stats.db, since, until))

    def cases(request: Request) -> Response:
        q = Query(request, stats)
        since, until = q.span("week")
        return q.answer("cases", case_deadlines(stats.db, stats.clock, since, until))

    def wrap(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            try:
                return handler(request)
            except InvalidInput as exc:
                return error_response(exc)

        return run

    return [
        Route("/stats/", wrap(index), methods=["GET"]),
        Route("/stats/periods", wrap(periods), methods=["GET"]),
        Route("/stats/snapshot", wrap(snapshot), methods=["GET"]),
        Route("/stats/rollout", wrap(rollout), methods=["GET"]),
        Route("/stats/ambitions", wrap(national), methods=["GET"]),
        Route("/stats/acknowledgements", wrap(acknowledgements), methods=["GET"]),
        Route("/stats/cases", wrap(cases), methods=["GET"]),
    ]


class Query:
    """A request's parameters, each checked with a clear message."""

    def __init__(self, request: Request, stats: Statistics) -> None:
        self.params = request.query_params
        self.today = stats.clock().astimezone(OSLO).date()  # the day in Norway, as the page
        self.format = self.choice("format", ("json", "csv"), "json")

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.params.get(name, default)
        if value not in allowed:
            shown = ", ".join(a or "(empty: the whole country)" for a in allowed)
            raise InvalidInput(f"Parameter '{name}' must be one of {shown}.", name)
        return value

    def day(self, name: str, default: date) -> date:
        value = self.params.get(name)
        if value is None:
            return default
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"Parameter '{name}' must be a date as YYYY-MM-DD, not {value[:40]!r}.", name
            ) from None

    def span(self, grain: str) -> tuple[date, date]:
        until = self.day("until", self.today)
        back = timedelta(weeks=11) if grain == "week" else timedelta(days=334)
        since = self.day("since", until - back)
        if since > until:
            raise InvalidInput("Parameter 'since' must not be after 'until'.", "since")
        if (until - since).days > MAX_DAYS:
            raise InvalidInput(
                f"Ask for at most {MAX_DAYS} days at a time ('since' to 'until').", "since"
            )
        return since, until

    def answer(self, name: str, rows: list[dict[str, Any]]) -> Response:
        if self.format == "csv":
            return Response(
                to_csv(rows),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="pll-{name}.csv"'},
            )
        return _json({"table": name, "suppressed_below": disclosure.THRESHOLD, "rows": rows})


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV, suppressed figures shown as ``<5`` or ``skjult``, those that do not
    apply empty, every text cell safe in a spreadsheet (:func:`safe_cell`)."""
    out = io.StringIO()
    if rows:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(rows[0].keys())
        for row in rows:
            writer.writerow(disclosure.shown(safe_cell(v)) for v in row.values())
    return out.getvalue()


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body, default=disclosure.to_json), media_type="application/json")
