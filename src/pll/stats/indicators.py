"""The rollout and quality indicators, counted from the events one at a time (issue 8).

Every event the statistics consumer reads becomes a few additions to the aggregated counts
(:class:`Tally`): a new list adds one to ``lists`` and to this week's and month's
``new_lists``, a confirmation moves the list from the day of its last confirmation to today,
and so on. Figures are then read from the counts, never from the lists, so they cost the same
at a thousand patients as at a million. Pure: the consumer (:mod:`pll.services.stats`)
supplies what it looked up and writes the tally.

Cells are (region, municipality, actor type):

- a patient's figures are counted where the patient lives (the municipality code of the
  Patient's home address, ``no-basis-municipalitycode``; "" when none was given);
- what someone did (a change, an emergency access, a conflict) is also counted under the
  actor type of their organisation (``""`` for an organisation not in the register);
- current counts ("now") have no actor type.

Periods are the Norwegian calendar's: ISO weeks and months in Europe/Oslo time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pll.stats.geography import region_of

OSLO = ZoneInfo("Europe/Oslo")
#: The extension HL7 Norway's basis profiles put the municipality code on (``Address.district``)
MUNICIPALITY_EXTENSION = "http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode"
#: Its code system: Statistics Norway's municipality numbers (kommunenummer)
MUNICIPALITY_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.3402"

# Measures. Counted per week and month:
NEW_LISTS = "new_lists"  # lists created
CHANGES = "changes"  # list versions (every accepted change, confirmation or recorded event)
CONFLICTS = "conflicts"  # changes refused by the relay baton (someone else changed it first)
EMERGENCY = "emergency"  # emergency accesses (one per health worker, patient and day)
CASES_OPENED = "cases_opened"
CASES_CLOSED = "cases_closed"  # resolved, rejected or withdrawn
CASE_SECONDS = "case_seconds"  # the time the closed cases were open, summed
# Current counts ("now"):
LISTS = "lists"  # patients with a PLL
PAPER = "paper_multidose"  # lists whose patient also has multidose ordered on paper
EMULTIDOSE = "emultidose"  # lists with an e-multidose registration
CASES_OPEN = "cases_open"
# Per day of the last confirmation (each list counted once, on the day it was last confirmed):
CONFIRMED = "confirmed"

PERIODIC = (NEW_LISTS, CHANGES, CONFLICTS, EMERGENCY, CASES_OPENED, CASES_CLOSED, CASE_SECONDS)
CURRENT = (LISTS, PAPER, EMULTIDOSE, CASES_OPEN)
#: The case events that close a case (pll.domain.cases)
CLOSING = frozenset({"case-resolved", "case-rejected", "case-withdrawn"})

#: measure, grain, period, region, municipality, actor type
Key = tuple[str, str, str, str, str, str]


def week(at: datetime) -> str:
    """The ISO week ``at`` falls in, in Norway: ``2026-W47``."""
    year, number, _ = at.astimezone(OSLO).isocalendar()
    return f"{year}-W{number:02d}"


def month(at: datetime) -> str:
    return at.astimezone(OSLO).strftime("%Y-%m")


def day(at: datetime) -> str:
    return at.astimezone(OSLO).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Home:
    """Where a patient is counted: region and municipality ("" when not known)."""

    region: str = ""
    municipality: str = ""


def home_of(patient: dict[str, Any]) -> Home:
    """The home municipality of a FHIR Patient: the ``no-basis-municipalitycode`` on the
    district of its home address (else its first address), as HL7 Norway's no-basis-Address
    carries it. A code that names no municipality counts as not known."""
    addresses = [a for a in patient.get("address", []) if isinstance(a, dict)]
    addresses.sort(key=lambda a: a.get("use") != "home")
    for address in addresses:
        district = address.get("_district")
        for ext in district.get("extension", []) if isinstance(district, dict) else []:
            if not isinstance(ext, dict) or ext.get("url") != MUNICIPALITY_EXTENSION:
                continue
            code = (ext.get("valueCoding") or {}).get("code")
            region = region_of(code) if isinstance(code, str) else None
            if region is not None:
                return Home(region, str(code))
    return Home()


@dataclass
class Tally:
    """Additions to the aggregated counts, summed by key before they are written."""

    counts: Counter[Key]

    def __init__(self) -> None:
        self.counts = Counter()

    def happened(
        self, measure: str, at: datetime, home: Home, actor_type: str, amount: int = 1
    ) -> None:
        """Something counted in the week and the month it happened in."""
        for grain, period in (("week", week(at)), ("month", month(at))):
            self.counts[(measure, grain, period, home.region, home.municipality, actor_type)] += (
                amount
            )

    def now(self, measure: str, home: Home, amount: int) -> None:
        """A change of a current count."""
        self.counts[(measure, "now", "now", home.region, home.municipality, "")] += amount

    def on_day(self, measure: str, at: datetime, home: Home, amount: int) -> None:
        self.counts[(measure, "day", day(at), home.region, home.municipality, "")] += amount

    def nonzero(self) -> dict[Key, int]:
        return {k: v for k, v in self.counts.items() if v}


@dataclass(frozen=True)
class ListState:
    """What the statistics remember of one list (the ``stats_list`` row)."""

    patient_id: str
    list_id: str
    home: Home
    created_at: datetime
    confirmed_at: datetime | None = None
    paper: bool = False
    emultidose: bool = False


@dataclass(frozen=True)
class ListChange:
    """One ``list-changed`` event, with what the consumer looked up for it."""

    patient_id: str
    list_id: str
    at: datetime
    #: the version's activities (``create-list``, ``confirm``, ``update``, …)
    activities: frozenset[str]
    #: the actor type of the author's organisation ("" when not registered)
    actor_type: str
    #: where the patient lives, from the Patient resource
    home: Home
    #: the patient's multidose now: paper multidose beside the PLL, an e-multidose registration
    paper: bool
    emultidose: bool


def list_changed(tally: Tally, before: ListState | None, change: ListChange) -> ListState:
    """Count one accepted list version; returns what to remember of the list."""
    state = before
    if state is None:
        state = ListState(change.patient_id, change.list_id, change.home, change.at)
        tally.now(LISTS, state.home, 1)
        tally.happened(NEW_LISTS, change.at, state.home, change.actor_type)
    home = state.home
    tally.happened(CHANGES, change.at, home, change.actor_type)
    if "confirm" in change.activities:
        if state.confirmed_at is not None:
            tally.on_day(CONFIRMED, state.confirmed_at, home, -1)
        tally.on_day(CONFIRMED, change.at, home, 1)
        state = replace(state, confirmed_at=change.at)
    if change.paper != state.paper:
        tally.now(PAPER, home, 1 if change.paper else -1)
    if change.emultidose != state.emultidose:
        tally.now(EMULTIDOSE, home, 1 if change.emultidose else -1)
    return replace(state, paper=change.paper, emultidose=change.emultidose)


def case_changed(
    tally: Tally, kind: str, at: datetime, reported_at: datetime, home: Home, actor_type: str
) -> None:
    """Count a step of a discrepancy case. ``actor_type`` is the receiving organisation's:
    the cases are counted where they are to be handled."""
    if kind == "case-reported":
        tally.happened(CASES_OPENED, at, home, actor_type)
        tally.now(CASES_OPEN, home, 1)
    elif kind in CLOSING:
        tally.happened(CASES_CLOSED, at, home, actor_type)
        seconds = max(int((at - reported_at).total_seconds()), 0)
        tally.happened(CASE_SECONDS, at, home, actor_type, seconds)
        tally.now(CASES_OPEN, home, -1)
