"""``/statistikk``: the rollout team's dashboard (issue 8), in Norwegian, as server-drawn SVG.

A thin adapter over :class:`pll.services.stats.Statistics`, like ``/stats/`` in the API: the
page reads the same suppressed tables the CSV and JSON exports give, and only names, orders
and draws them (:mod:`pll.stats.charts`). It decides nothing about disclosure itself: a
figure suppressed by :mod:`pll.stats.disclosure` is shown as "<5" in a table and left as a
gap in a chart, never drawn as a number; a figure that does not apply is "–".

The figures are aggregated and suppressed, so the page is open without a login, as the API's
``/stats/`` is (published statistics); a logged-in user still sees their name in the header.
It works on a closed network: the charts are inline SVG with no style attribute and no
script, allowed by the pages' Content-Security-Policy as they are.

One query parameter: ``uker``, how many weeks back the weekly figures go (4-52, 12 unless
told); anything else in it gets a 400 page saying what is wrong.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pll.domain.errors import DomainError, InvalidInput
from pll.services.stats import FRESHNESS, Statistics
from pll.stats import ambitions, disclosure
from pll.stats.charts import Series, bar_chart, format_number, line_chart, stacked_bar
from pll.web.edge import OSLO, day_in_words, error_page, render
from pll.web.sessions import caller_of

log = logging.getLogger("pll.web")

#: How many weeks the weekly figures show, unless ``?uker=`` says otherwise, and its bounds.
WEEKS = 12
MIN_WEEKS, MAX_WEEKS = 4, 52

#: The region of patients whose home municipality is not known (``Statistics`` names it so).
UNKNOWN = "ukjent"
COUNTRY = "Hele landet"
ACTOR_NAMES = {
    "fastlege": "Fastlege",
    "sykehus": "Sykehus",
    "sykehjem_hjemmetjeneste": "Sykehjem/hjemmetjeneste",
    "avtalespesialist": "Avtalespesialist",
    "legevakt_ohd_kad": "Legevakt/ØHD/KAD",
    "apotek": "Apotek",
}
#: How recently the lists were confirmed, in the order of ``Statistics.snapshot``'s bands.
BANDS = (*(name for name, _, _ in FRESHNESS), "over 12 mnd", "aldri")
BAND_NAMES = {"over 12 mnd": "Over 12 mnd", "aldri": "Aldri samstemt"}
#: A rollout status as a coloured tag (pll.web.static/pll.css, "Statistics dashboard").
STATUS_CLASSES = {
    ambitions.Status.REACHED.value: "goal-reached",
    ambitions.Status.ON_TRACK.value: "goal-on-track",
    ambitions.Status.LATE.value: "goal-late",
    ambitions.Status.BEHIND.value: "goal-behind",
}
EXPORTS = (
    ("Per uke og region", "/stats/periods?grain=week&by=region"),
    ("Status nå per region", "/stats/snapshot?by=region"),
    ("Utrulling mot ambisjonen", "/stats/rollout"),
)


# -- figures as the page writes them --------------------------------------------------------


def chartable(value: Any) -> float | None:
    """A figure as a chart takes it: a suppressed or missing one is a gap, never a number."""
    if value is None or disclosure.hidden(value):
        return None
    return float(value)


def shown(value: Any, *, decimals: int = 0, unit: str = "") -> str:
    """A figure as a table cell: "<5" or "skjult" when suppressed, "–" when it does not
    apply."""
    if isinstance(value, disclosure.Suppressed):
        return value.mark
    return format_number(value, decimals=decimals, unit=unit)


def percent(value: Any, decimals: int = 1) -> str:
    """A share in percent, with the same decimals down a column (8,9 % above 9,0 %)."""
    return shown(value, decimals=decimals, unit="%")


def target(value: Any) -> str:
    """An ambition: the mandate's whole percentages without decimals (60 %)."""
    whole = isinstance(value, int | float) and float(value).is_integer()
    return percent(value, 0 if whole else 1)


def region_name(region: str) -> str:
    return "Ukjent bosted" if region == UNKNOWN else region


def week_number(label: str) -> int:
    """``2026-W47`` → 47."""
    return int(label[6:])


def short_date(day: date) -> str:
    return f"{day.day}.{day.month}.{day.year}"


@dataclass(frozen=True)
class KeyFigure:
    """One row of "Nøkkeltall": a figure of the snapshot or of the last complete week."""

    name: str
    source: str  # "now" or "week"
    field: str
    show: Callable[[Any], str]
    #: a count of patients (or of their accesses or cases): suppressed under 5
    patients: bool = False


KEY_FIGURES = (
    KeyFigure("Pasienter med PLL", "now", "lists", shown, patients=True),
    KeyFigure("Andel av befolkningen", "now", "share_of_population_pct", lambda v: percent(v, 3)),
    KeyFigure("Samstemt siste 12 mnd (andel av listene)", "now", "confirmed_12m_pct", percent),
    KeyFigure("Endringer per liste", "week", "changes_per_list", lambda v: shown(v, decimals=2)),
    KeyFigure(
        "Konflikter per 1000 endringer",
        "week",
        "conflicts_per_1000_changes",
        lambda v: shown(v, decimals=1),
    ),
    KeyFigure(
        "Pasienter med både PLL og papirmultidose", "now", "paper_multidose", shown, patients=True
    ),
    KeyFigure("E-multidose-dekning", "now", "emultidose_coverage_pct", percent),
    KeyFigure("Nødrettsoppslag", "week", "emergency_accesses", shown, patients=True),
    KeyFigure("Åpne avvik", "now", "cases_open", shown, patients=True),
    KeyFigure(
        "Gjennomsnittlig dager til avvik lukkes",
        "week",
        "mean_days_to_close",
        lambda v: shown(v, decimals=1),
    ),
)


# -- the page's content ---------------------------------------------------------------------


def dashboard(stats: Statistics, weeks: int = WEEKS) -> dict[str, Any]:
    """Everything the page shows, read from ``stats`` (blocking: a few database reads)."""
    today = stats.clock().astimezone(OSLO).date()
    position, newest = stats.updated()
    since = today - timedelta(weeks=weeks - 1)
    weekly = stats.periods("week", "region", since, today)
    # the last week that has ended: the weekly rates of the key figures are for it
    last_week = today - timedelta(days=today.weekday() + 7)
    country_week = stats.periods("week", None, last_week, last_week)
    regional, country = stats.snapshot("region"), stats.snapshot(None)
    year = today.year
    return {
        "today": day_in_words(today),
        "position": format_number(position),
        "newest": format_number(newest),
        "weeks": weeks,
        "since": short_date(since - timedelta(days=since.weekday())),
        "new_lists": _new_lists(weekly),
        "rollout": _rollout(stats.rollout(today)),
        "year": year,
        "freshness": _freshness(regional, country),
        "key": _key_figures(regional, country, weekly, country_week, last_week),
        "threshold": disclosure.THRESHOLD,
        "suppressed": disclosure.SHOWN_AS,
        "hidden": disclosure.HIDDEN_AS,
        "exports": EXPORTS,
    }


def _new_lists(weekly: Sequence[dict[str, Any]]) -> dict[str, Any]:
    labels = list(dict.fromkeys(r["period"] for r in weekly))
    regions = list(dict.fromkeys(r["region"] for r in weekly))
    cell = {(r["period"], r["region"]): r["new_lists"] for r in weekly}
    chart = line_chart(
        "Nye legemiddellister per uke",
        [f"uke {week_number(p)}" for p in labels],
        [
            Series(region_name(region), [chartable(cell.get((p, region))) for p in labels])
            for region in regions
        ],
    )
    rows = [
        (
            f"Uke {week_number(p)}, {p[:4]}",
            [shown(cell.get((p, region))) for region in regions],
        )
        for p in labels
    ]
    return {"chart": chart, "regions": [region_name(r) for r in regions], "rows": rows}


def _rollout(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for region in ambitions.REGIONS:
        mine = [r for r in rows if r["region"] == region]
        names = [ACTOR_NAMES.get(r["actor_type"], r["actor_type"]) for r in mine]
        chart = bar_chart(
            f"{region}: andel virksomheter i gang",
            names,
            [Series("Andel i gang", [chartable(r["share_live_pct"]) for r in mine])],
            targets=[chartable(r["target_pct"]) for r in mine],
            max_value=100,
            unit="%",
        )
        out.append(
            {
                "region": region,
                "slug": _slug(region),
                "chart": chart,
                "rows": [
                    {
                        "actor": name,
                        "live": f"{r['organisations_live']} av {r['organisations']}",
                        "share": percent(r["share_live_pct"]),
                        "target": target(r["target_pct"]),
                        "expected": percent(r["expected_by_now_pct"]),
                        "status": str(r["status"]).capitalize(),
                        "status_class": STATUS_CLASSES.get(r["status"], "goal-none"),
                    }
                    for name, r in zip(names, mine, strict=True)
                ],
            }
        )
    return out


def _freshness(
    regional: Sequence[dict[str, Any]], country: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    areas = [(region_name(r["region"]), r) for r in regional]
    areas += [(COUNTRY, r) for r in country]
    chart = stacked_bar(
        "Siste samstemming av listene",
        [name for name, _ in areas],
        [
            Series(BAND_NAMES.get(band, band), [chartable(r[band]) for _, r in areas])
            for band in BANDS
        ],
    )
    rows = [(name, [shown(r[band]) for band in BANDS], shown(r["lists"])) for name, r in areas]
    return {"chart": chart, "bands": [BAND_NAMES.get(b, b) for b in BANDS], "rows": rows}


def _key_figures(
    regional: Sequence[dict[str, Any]],
    country: Sequence[dict[str, Any]],
    weekly: Sequence[dict[str, Any]],
    country_week: Sequence[dict[str, Any]],
    last_week: date,
) -> dict[str, Any]:
    label = next((r["period"] for r in country_week), "")
    week_of = {r["region"]: r for r in weekly if r["period"] == label}
    now_of = {r["region"]: r for r in regional}
    regions = list(dict.fromkeys([*now_of, *week_of]))
    columns: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (region_name(region), now_of.get(region, {}), week_of.get(region, {})) for region in regions
    ]
    columns.append(
        (COUNTRY, country[0] if country else {}, country_week[0] if country_week else {})
    )
    week = f"uke {week_number(label)}" if label else "forrige uke"
    rows = []
    for figure in KEY_FIGURES:
        name = f"{figure.name} ({week})" if figure.source == "week" else figure.name
        cells = [
            figure.show((now if figure.source == "now" else then).get(figure.field))
            for _, now, then in columns
        ]
        rows.append({"name": name, "cells": cells, "patients": figure.patients})
    return {
        "areas": [name for name, _, _ in columns],
        "rows": rows,
        "week": week,
        "week_from": short_date(last_week - timedelta(days=last_week.weekday())),
    }


def _slug(region: str) -> str:
    return region.lower().replace("ø", "o").replace("å", "a").replace("æ", "ae")


# -- the route ------------------------------------------------------------------------------


def weeks_asked(raw: str | None) -> int:
    """``?uker=``: a whole number of weeks from :data:`MIN_WEEKS` to :data:`MAX_WEEKS`."""
    if raw is None:
        return WEEKS
    value = raw.strip()
    if not (value.isascii() and value.isdigit() and MIN_WEEKS <= int(value) <= MAX_WEEKS):
        raise InvalidInput(
            f"Antall uker (uker) må være et helt tall fra {MIN_WEEKS} til {MAX_WEEKS}, "
            f"ikke «{value[:20]}».",
            "uker",
        )
    return int(value)


async def dashboard_page(request: Request) -> Response:
    """``GET /statistikk``: open to all, like the figures' API (see the module doc)."""
    caller = await caller_of(request)
    try:
        weeks = weeks_asked(request.query_params.get("uker"))
        figures = await run_in_threadpool(dashboard, request.app.state.statistics, weeks)
    except DomainError as exc:
        return error_page(request, exc, caller)
    except Exception:
        incident = str(uuid.uuid4())
        log.exception("internal error %s on %s %s", incident, request.method, request.url)
        return error_page(
            request,
            DomainError(f"Noe gikk galt hos oss (hendelse {incident})."),
            caller,
            status=500,
        )
    return render(request, "stats/dashboard.html", caller=caller, **figures)


ROUTES: list[BaseRoute] = [
    Route("/statistikk", dashboard_page, methods=["GET"]),
]
