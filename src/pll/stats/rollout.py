"""The rollout and payment team's reports (issue 19): the rules, pure, no database.

- **First lists** (:func:`first_lists`): the first list version ever of each patient — version
  1 of the patient's one list, which PLL never deletes — counts for its author (HPR number)
  and the organisation they acted for, in the month it was made (Norwegian time). A
  re-import is refused (a patient who has a list cannot be imported again), an import that
  makes a patient's first list is version 1 under the importing doctor's name, and PLL's own
  versions (the passing of time) and later versions of any kind are never version 1.
- **Vendors** (:func:`measure_of`): what a refusal of a client's request counts as.
- **GP offices** (:func:`responsible_office`, :func:`furthest_behind`): which office a list
  belongs to, and the order of the "targeted effort" list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pll.domain.errors import (
    ChecksRefused,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    PreconditionRequired,
    RuleRefused,
    VersionConflict,
)
from pll.domain.model import Role
from pll.stats.indicators import OSLO

#: ASCII digits only (``\d`` is any Unicode digit, and ``int`` reads them all)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})", re.ASCII)
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})", re.ASCII)
#: the years a period may name: PLL has no data before 2000, and 2999 keeps every
#: period's end a date (9999-12 would end in year 10000)
YEARS = range(2000, 3000)

#: The per-vendor measures, in the order the report shows them.
CHANGES = "changes"
CONFLICTS = "conflicts"
REFUSALS = "refusals"
OVERRIDES = "overrides"
FAILED_SENDS = "failed_sends"
TECHNICAL_CASES = "technical_cases"
VENDOR_MEASURES = (CHANGES, CONFLICTS, REFUSALS, OVERRIDES, FAILED_SENDS, TECHNICAL_CASES)


def month_span(value: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` (ASCII digits, a year in :data:`YEARS`, month 01–12) as the UTC instants
    its Norwegian month starts and ends (end exclusive); :class:`InvalidInput` naming
    ``month`` otherwise. Pure: check a period with it before anything is written."""
    found = _MONTH.fullmatch(value)
    if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) not in YEARS:
        raise InvalidInput(
            f"Parameter 'month' must be a month as YYYY-MM, not {value[:40]!r}.", "month"
        )
    year, number = int(found[1]), int(found[2])
    start = datetime(year, number, 1, tzinfo=OSLO)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=OSLO)
    return start.astimezone(UTC), end.astimezone(UTC)


def week_span(value: str) -> tuple[datetime, datetime]:
    """``YYYY-Www`` (ASCII digits, a year in :data:`YEARS`, an ISO week that year has) as
    the UTC instants its Norwegian week starts and ends; :class:`InvalidInput` naming
    ``week`` otherwise."""
    found = _WEEK.fullmatch(value)
    try:
        if found is None or int(found[1]) not in YEARS:
            raise ValueError(value)
        monday = date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError:
        raise InvalidInput(
            f"Parameter 'week' must be an ISO week as YYYY-Www (2026-W47), not {value[:40]!r}.",
            "week",
        ) from None
    start = datetime(monday.year, monday.month, monday.day, tzinfo=OSLO)
    end = start + timedelta(days=7)
    end = datetime(end.year, end.month, end.day, tzinfo=OSLO)  # across a DST change
    return start.astimezone(UTC), end.astimezone(UTC)


def this_month(now: datetime) -> str:
    return now.astimezone(OSLO).strftime("%Y-%m")


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


# -- first lists -----------------------------------------------------------------------------


@dataclass
class Credit:
    """The first lists credited to one prescriber at one organisation in a month."""

    hpr: str
    name: str
    org_id: str
    org_name: str
    dates: list[str] = field(default_factory=list)

    def row(self, month: str) -> dict[str, Any]:
        return {
            "month": month,
            "hpr": self.hpr,
            "name": self.name,
            "orgnr": self.org_id,
            "organisation": self.org_name,
            "patients": len(self.dates),
            "dates": sorted(self.dates),
        }


def organisation_of(author: Mapping[str, Any], by_her: Mapping[str, str]) -> str:
    """The organisation number an author acted for: the one their token carries, else the
    one the register knows for their HER-id (an SFM import names the sender's office by name
    and HER-id only); ``""`` when neither tells."""
    org = str(author.get("org_id") or "")
    if org:
        return org
    her = str(author.get("her") or "")
    return by_her.get(her, "") if her else ""


def first_lists(
    month: str,
    made: Iterable[tuple[datetime, Mapping[str, Any]]],
    names: Mapping[str, str],
    by_her: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report of the first lists made in ``month``: ``made`` is each first list version's
    time and author (its JSON), oldest first; ``names`` the register's name of each
    organisation, ``by_her`` its organisation number of each HER-id. Per prescriber and
    organisation (``prescribers``) and per organisation (``organisations``): the number of
    patients and the days (Norwegian) their first list was made.

    The organisation is the author's organisation number, else the register's for their
    HER-id (:func:`organisation_of`). One number is one office, named as the register names
    it, else as the most recent author named it; an office without a number (neither
    known) is told apart by its name. A version by PLL itself is never credited (it cannot
    be a first version; the rule is kept here all the same)."""
    by_her = by_her or {}
    credits: dict[tuple[str, str, str], Credit] = {}
    seen_names: dict[str, str] = {}
    for at, author in made:
        if author.get("role") == Role.SYSTEM.value:
            continue
        hpr, org = str(author.get("hpr") or ""), organisation_of(author, by_her)
        given = str(author.get("org_name") or "")
        if org:
            seen_names[org] = given or seen_names.get(org, "")
        key = (hpr, org, "" if org else given)
        credit = credits.get(key)
        if credit is None:
            credit = credits[key] = Credit(hpr, str(author.get("name") or ""), org, given)
        credit.dates.append(at.astimezone(OSLO).date().isoformat())
    for c in credits.values():
        if c.org_id:
            c.org_name = names.get(c.org_id) or seen_names[c.org_id]
    prescribers = sorted(credits.values(), key=lambda c: (c.org_name, c.org_id, c.name, c.hpr))
    offices: dict[tuple[str, str], dict[str, Any]] = {}
    for c in prescribers:
        office = offices.setdefault(
            (c.org_id, "" if c.org_id else c.org_name),
            {"orgnr": c.org_id, "organisation": c.org_name, "patients": 0, "dates": []},
        )
        office["patients"] += len(c.dates)
        office["dates"] = sorted([*office["dates"], *c.dates])
    return {
        "report": "first-lists",
        "month": month,
        "patients": sum(len(c.dates) for c in prescribers),
        "prescribers": [c.row(month) for c in prescribers],
        "organisations": list(offices.values()),
    }


# -- vendors ---------------------------------------------------------------------------------


def measure_of(error: DomainError) -> str | None:
    """What a request a use case refused counts as for its client system: a ``conflicts``
    (412 relay baton, 409 conflict), a ``refusals`` (403 the access policy, 422 decision
    support or another rule said no), a ``failed_sends`` (400 or 428: what was sent was not
    valid, or named no version); ``None``: not counted (404, 401)."""
    if isinstance(error, VersionConflict | Conflict):
        return CONFLICTS
    if isinstance(error, Forbidden | ChecksRefused | RuleRefused):
        return REFUSALS
    if isinstance(error, InvalidInput | PreconditionRequired):
        return FAILED_SENDS
    return None


def vendor_rows(
    week: str, counts: Mapping[str, Mapping[str, int]], register: Mapping[str, tuple[str, str]]
) -> list[dict[str, Any]]:
    """One row per client system with anything counted in ``week`` or registered: its
    register name and vendor (``ukjent`` when not registered), and each measure."""
    rows = []
    for client in sorted(set(counts) | set(register)):
        name, vendor = register.get(client, ("", ""))
        counted = counts.get(client, {})
        rows.append(
            {
                "week": week,
                "client_id": client,
                "name": name or ("(ingen klient oppgitt)" if client == "" else "ukjent"),
                "vendor": vendor or "ukjent",
                "registered": client in register,
                **{m: int(counted.get(m, 0)) for m in VENDOR_MEASURES},
            }
        )
    return rows


# -- GP offices ------------------------------------------------------------------------------


def responsible_office(
    confirmation: Mapping[str, Any] | None,
    baton: Mapping[str, Any],
    by_her: Mapping[str, str] | None = None,
) -> str:
    """The organisation a list is followed up by: the one whose doctor last confirmed
    (samstemte) it, else — never confirmed — the baton holder's (who last changed it), by
    :func:`organisation_of` (``by_her``: the register's organisation number of each
    HER-id). ``""`` when that person acted for no organisation known."""
    by = (confirmation or {}).get("by")
    who = by if isinstance(by, Mapping) else baton
    return organisation_of(who, by_her or {})


@dataclass
class Office:
    """One GP office's figures."""

    orgnr: str
    name: str
    municipality: str
    list_patients: int | None
    with_pll: int = 0
    confirmed_12m: int = 0
    first_lists_this_month: int = 0
    first_lists_previous_month: int = 0

    def row(self) -> dict[str, Any]:
        share = round(100 * self.with_pll / self.list_patients, 1) if self.list_patients else None
        confirmed = round(100 * self.confirmed_12m / self.with_pll, 1) if self.with_pll else None
        return {
            "orgnr": self.orgnr,
            "name": self.name,
            "municipality": self.municipality,
            "list_patients": self.list_patients,
            "patients_with_pll": self.with_pll,
            "share_with_pll_pct": share,
            "confirmed_12m": self.confirmed_12m,
            "confirmed_12m_pct": confirmed,
            "first_lists_this_month": self.first_lists_this_month,
            "first_lists_previous_month": self.first_lists_previous_month,
            "trend": self.first_lists_this_month - self.first_lists_previous_month,
        }


def furthest_behind(offices: Iterable[Office]) -> list[dict[str, Any]]:
    """The offices' rows, the one furthest behind first: the lowest share of list patients
    with a PLL, then the fewest confirmed in 12 months, then the weakest trend; offices
    whose list patients the register does not give come last (their share is unknown)."""

    def key(o: Office) -> tuple[bool, float, int, int, str]:
        share = o.with_pll / o.list_patients if o.list_patients else 0.0
        trend = o.first_lists_this_month - o.first_lists_previous_month
        return (not o.list_patients, share, o.confirmed_12m, trend, o.orgnr)

    return [o.row() for o in sorted(offices, key=key)]
