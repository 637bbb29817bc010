"""The national ambition matrix: region × actor type × year → target share (in percent).

The matrix is a versioned data file in the package (``data/ambitions-<year>.csv``, the first
one transcribed from the 2026 mandate's table, seeds/003); a newer mandate adds a newer file
and the newest one is used. :func:`status` holds an actual share against a target and says
how it stands. Pure: no database.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from importlib import resources

REGIONS = ("Nord", "Midt-Norge", "Vest", "Sør-Øst")
#: The actor types the rollout is counted by (the matrix's ``actor_type`` for regions).
ACTOR_TYPES = (
    "fastlege",
    "sykehus",
    "sykehjem_hjemmetjeneste",
    "avtalespesialist",
    "legevakt_ohd_kad",
    "apotek",
)
#: Below this share of the pro-rata target, an indicator is behind rather than a little late.
BEHIND = 0.8


class Status(StrEnum):
    REACHED = "nådd"
    ON_TRACK = "i rute"
    LATE = "litt bak"
    BEHIND = "bak"
    NO_TARGET = "ingen ambisjon"

    @property
    def label(self) -> str:
        return self.value.capitalize()


@dataclass(frozen=True)
class Target:
    region: str
    actor_type: str
    year: int
    percent: float


@dataclass(frozen=True)
class Matrix:
    """One version of the ambition table."""

    name: str
    targets: tuple[Target, ...]

    def target(self, region: str, actor_type: str, year: int) -> float | None:
        return next(
            (
                t.percent
                for t in self.targets
                if t.region == region and t.actor_type == actor_type and t.year == year
            ),
            None,
        )

    def years(self) -> list[int]:
        return sorted({t.year for t in self.targets})


def parse(name: str, text: str) -> Matrix:
    """A matrix from its CSV text (``#`` lines are comments); refuses what it cannot read."""
    rows = [line for line in io.StringIO(text) if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(rows)
    if reader.fieldnames != ["region", "actor_type", "year", "target_pct"]:
        raise ValueError(f"{name}: the columns must be region,actor_type,year,target_pct")
    targets = []
    seen = set()
    for number, row in enumerate(reader, start=2):
        key = (row["region"], row["actor_type"], row["year"])
        if key in seen:
            raise ValueError(f"{name}: row {number} repeats {key}")
        seen.add(key)
        try:
            year, percent = int(row["year"]), float(row["target_pct"])
        except ValueError:
            raise ValueError(f"{name}: row {number} has no year or target") from None
        if not 0 <= percent <= 100 or not 2000 <= year <= 2100:
            raise ValueError(f"{name}: row {number} is out of range")
        targets.append(Target(row["region"], row["actor_type"], year, percent))
    return Matrix(name, tuple(targets))


def current() -> Matrix:
    """The newest ambition table in the package."""
    files = sorted(
        (
            f
            for f in resources.files("pll.stats").joinpath("data").iterdir()
            if f.name.startswith("ambitions-") and f.name.endswith(".csv")
        ),
        key=lambda f: f.name,
    )
    newest = files[-1]
    return parse(newest.name, newest.read_text(encoding="utf-8"))


def expected(matrix: Matrix, region: str, actor_type: str, day: date) -> float | None:
    """The share to have reached by ``day``: from last year's target at New Year to this
    year's at the end of the year, in a straight line (zero before the first year's)."""
    goal = matrix.target(region, actor_type, day.year)
    if goal is None:
        return None
    start = matrix.target(region, actor_type, day.year - 1) or 0.0
    elapsed = (day - date(day.year, 1, 1)).days / (
        date(day.year, 12, 31) - date(day.year, 1, 1)
    ).days
    return start + (goal - start) * elapsed


def status(matrix: Matrix, region: str, actor_type: str, day: date, actual: float) -> Status:
    """How an actual share (percent) stands against the ambition on ``day``."""
    goal = matrix.target(region, actor_type, day.year)
    by_now = expected(matrix, region, actor_type, day)
    if goal is None or by_now is None:
        return Status.NO_TARGET
    if actual >= goal:
        return Status.REACHED
    if actual >= by_now:
        return Status.ON_TRACK
    if actual >= by_now * BEHIND:
        return Status.LATE
    return Status.BEHIND
