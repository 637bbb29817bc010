"""Norway's municipalities, the health region each belongs to, and how many live there.

The municipalities of the 2024 structure, with county, health region and residents on 1 January
2024, are a data file in the package (``data/municipalities.csv``). Its header says where each
column comes from: the populations there were recalled, not copied, and are to be replaced by SSB
table 07459. A municipality's health region follows from its county (the first two digits of the
kommunenummer), so :func:`region_of` needs no file, and :func:`parse` refuses a row whose region
says otherwise. Pure: no database.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

from pll.stats.ambitions import REGIONS

#: The health region of each county (fylkesnummer, the 2024 counties). A number not here is
#: unknown rather than Sør-Øst: counties that no longer exist (12 Hordaland, 54 Troms og
#: Finnmark, ...) must be renumbered before they are counted, not counted in the wrong region.
COUNTY_REGIONS: dict[str, str] = {
    "18": "Nord",  # Nordland
    "55": "Nord",  # Troms
    "56": "Nord",  # Finnmark
    "15": "Midt-Norge",  # Møre og Romsdal
    "50": "Midt-Norge",  # Trøndelag
    "11": "Vest",  # Rogaland
    "46": "Vest",  # Vestland
    "03": "Sør-Øst",  # Oslo
    "31": "Sør-Øst",  # Østfold
    "32": "Sør-Øst",  # Akershus
    "33": "Sør-Øst",  # Buskerud
    "34": "Sør-Øst",  # Innlandet
    "39": "Sør-Øst",  # Vestfold
    "40": "Sør-Øst",  # Telemark
    "42": "Sør-Øst",  # Agder
}
COLUMNS = ["kommunenummer", "name", "county", "region", "population"]


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    county: str
    region: str
    population: int


def region_of(code: str) -> str | None:
    """The health region of a kommunenummer (four digits, as text), from its county; ``None``
    for a malformed number or a county that is not one of 2024's. It does not check that the
    municipality itself exists: that is what :func:`municipalities` is for."""
    if len(code) != 4 or not code.isascii() or not code.isdigit():
        return None
    return COUNTY_REGIONS.get(code[:2])


def csv_rows(name: str, text: str, columns: list[str]) -> list[tuple[int, dict[str, str]]]:
    """The data rows of a ``#``-commented CSV text, each with its line number in the text (so a
    refusal can name the line someone has to open), after checking the header."""
    lines = [
        (number, line)
        for number, line in enumerate(io.StringIO(text), start=1)
        if line.strip() and not line.startswith("#")
    ]
    if not lines:
        raise ValueError(f"{name}: no header line")
    # One record a line: none of these registers has a quoted line break, and reading line by
    # line keeps the numbers true.
    header = next(csv.reader([lines[0][1]]))
    if header != columns:
        raise ValueError(f"{name}, line {lines[0][0]}: the columns must be {','.join(columns)}")
    rows = []
    for number, line in lines[1:]:
        fields = next(csv.reader([line]))
        if len(fields) != len(columns):
            raise ValueError(f"{name}, line {number}: {len(fields)} fields, not {len(columns)}")
        rows.append((number, dict(zip(columns, (f.strip() for f in fields), strict=True))))
    return rows


def parse(name: str, text: str) -> dict[str, Municipality]:
    """The municipalities of a CSV text (columns :data:`COLUMNS`, ``#`` lines are comments), by
    kommunenummer. Refuses, naming the line, a malformed or unknown-county number, a region that
    is not one of :data:`~pll.stats.ambitions.REGIONS` or not the county's, a repeated number,
    a missing name and a population that is not a positive whole number."""
    places: dict[str, Municipality] = {}
    for number, row in csv_rows(name, text, COLUMNS):
        where = f"{name}, line {number}"
        code, region = row["kommunenummer"], row["region"]
        expected = region_of(code)
        if expected is None:
            raise ValueError(f"{where}: {code!r} is not a kommunenummer of a 2024 county")
        if region not in REGIONS:
            raise ValueError(f"{where}: unknown region {region!r}")
        if region != expected:
            raise ValueError(f"{where}: {code} is in {expected}, not {region}")
        if code in places:
            raise ValueError(f"{where}: {code} is listed twice")
        if not row["name"]:
            raise ValueError(f"{where}: {code} has no name")
        try:
            population = int(row["population"])
        except ValueError:
            raise ValueError(f"{where}: population {row['population']!r} is not a number") from None
        if population <= 0:
            raise ValueError(f"{where}: population {population} is not positive")
        places[code] = Municipality(code, row["name"], row["county"], region, population)
    return places


@functools.cache
def municipalities() -> dict[str, Municipality]:
    """The packaged municipalities by kommunenummer, read once. The dictionary is shared by every
    caller: read it, do not change it."""
    data = resources.files("pll.stats").joinpath("data", "municipalities.csv")
    return parse("municipalities.csv", data.read_text(encoding="utf-8"))


def population(region: str | None = None) -> int:
    """Residents of the whole country, or of one health region, by the packaged file (see its
    header for how far the figures can be trusted)."""
    if region is not None and region not in REGIONS:
        raise ValueError(f"unknown region {region!r}")
    return sum(
        m.population for m in municipalities().values() if region is None or m.region == region
    )
