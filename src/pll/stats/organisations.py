"""Organisation registers: which organisations there are, where, and of which actor type.

The rollout is counted per health region and actor type (:data:`~pll.stats.ambitions.ACTOR_TYPES`),
so each organisation needs both; its region follows from its municipality
(:mod:`pll.stats.geography`). The package holds an invented register for the demo data
(``data/organisations-demo.csv``, with the demo personas' organisations in it); a real one has the
same columns. Pure: no database.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from pll.stats import geography
from pll.stats.ambitions import ACTOR_TYPES

COLUMNS = ["orgnr", "name", "kommunenummer", "actor_type", "her_id"]
#: An optional last column: a GP office's list patients (listepasienter, from the GP
#: register), which the rollout team's GP-office follow-up measures against (issue 19).
LIST_PATIENTS = "list_patients"
#: the most list patients an office can have: more than Norway's people, and within the
#: column's range on both databases (a larger number would load on SQLite only)
MAX_LIST_PATIENTS = 10_000_000
#: Weights of the organisation number's check digit (Brønnøysundregistrene, modulus 11).
WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    municipality: str
    region: str
    actor_type: str
    her: str | None
    #: the office's list patients, when the register gives them
    list_patients: int | None = None


def orgnr_valid(orgnr: str) -> bool:
    """Whether an organisation number is nine digits ending in its modulus-11 check digit."""
    if len(orgnr) != 9 or not orgnr.isascii() or not orgnr.isdigit():
        return False
    rest = 11 - sum(int(d) * w for d, w in zip(orgnr, WEIGHTS, strict=False)) % 11
    # A remainder giving 10 has no check digit: such numbers are never issued.
    return rest != 10 and rest % 11 == int(orgnr[8])


def parse(
    name: str, text: str, places: Mapping[str, geography.Municipality] | None = None
) -> list[Organisation]:
    """The organisations of a CSV text (columns :data:`COLUMNS`, optionally
    :data:`LIST_PATIENTS` last; ``#`` lines are comments), in file order, each placed in its
    region by ``places`` (the packaged municipalities unless given). Refuses, naming the
    line, an orgnr that is not nine digits, a repeated orgnr, a missing name, an unknown
    municipality or actor type, a HER-id or a number of list patients that is not digits,
    and a number of list patients above :data:`MAX_LIST_PATIENTS` (0 to 10,000,000).

    The check digit is not enforced: the demo personas' numbers are fixed elsewhere, and a
    register should be loadable even where it holds a number mistyped at the source. Use
    :func:`orgnr_valid` to look for those."""
    places = geography.municipalities() if places is None else places
    organisations: list[Organisation] = []
    seen: set[str] = set()
    for number, row in geography.csv_rows(name, text, _columns(text)):
        where = f"{name}, line {number}"
        orgnr, code, actor_type, her = (
            row["orgnr"],
            row["kommunenummer"],
            row["actor_type"],
            row["her_id"],
        )
        if len(orgnr) != 9 or not orgnr.isascii() or not orgnr.isdigit():
            raise ValueError(f"{where}: orgnr {orgnr!r} is not nine digits")
        if orgnr in seen:
            raise ValueError(f"{where}: orgnr {orgnr} is listed twice")
        seen.add(orgnr)
        if not row["name"]:
            raise ValueError(f"{where}: {orgnr} has no name")
        place = places.get(code)
        if place is None:
            raise ValueError(f"{where}: unknown municipality {code!r}")
        if actor_type not in ACTOR_TYPES:
            raise ValueError(f"{where}: unknown actor type {actor_type!r}")
        if her and not (her.isascii() and her.isdigit()):
            raise ValueError(f"{where}: HER-id {her!r} is not a number")
        listed = row.get(LIST_PATIENTS, "")
        if listed and not (listed.isascii() and listed.isdigit()):
            raise ValueError(f"{where}: list_patients {listed!r} is not a whole number")
        if listed and int(listed) > MAX_LIST_PATIENTS:
            raise ValueError(
                f"{where}: list_patients {listed[:20]} is more than {MAX_LIST_PATIENTS:,}"
            )
        organisations.append(
            Organisation(
                orgnr,
                row["name"],
                code,
                place.region,
                actor_type,
                her or None,
                int(listed) if listed else None,
            )
        )
    return organisations


def _columns(text: str) -> list[str]:
    """The columns a register has: :data:`COLUMNS`, and :data:`LIST_PATIENTS` when its
    header ends with it (registers without it load as before)."""
    header = next(
        (line for line in io.StringIO(text) if line.strip() and not line.startswith("#")), ""
    )
    fields = next(csv.reader([header]), [])
    with_list = [*COLUMNS, LIST_PATIENTS]
    return with_list if [f.strip() for f in fields] == with_list else COLUMNS


@functools.cache
def _demo() -> tuple[Organisation, ...]:
    data = resources.files("pll.stats").joinpath("data", "organisations-demo.csv")
    return tuple(parse("organisations-demo.csv", data.read_text(encoding="utf-8")))


def demo() -> list[Organisation]:
    """The packaged demo register (invented, see the file's header), read once; a new list each
    call, so a caller may change its own."""
    return list(_demo())
