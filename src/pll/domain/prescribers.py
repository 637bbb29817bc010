"""Who changes what on the list: prescribers, and whose entries are whose (DESIGN §3 rule 4).

"Only prescribers change the list, and only doctors change other prescribers' entries." A
doctor (HPR LE) changes anything on the list. A dentist (HPR TL) or a midwife (HPR JO) puts
what they prescribe on the list, under their name (they hold the baton for that change), and
renews, recalls, changes or discontinues only **their own** entries and prescriptions:

* an entry is theirs when they put it on the list — the author of the entry's first version;
* a prescription is theirs when they prescribed it — the author of its first version (a
  renewal is a new prescription, its renewer's own).

A person is one HPR number, whichever organisation they act for. Whatever else a change
touches must be theirs too: a new entry links only prescriptions they prescribed; a renewal
moves the link of the entries that hold the prescription it renews, so those must be theirs;
discontinuing an entry recalls its prescriptions, so those must be theirs. The list as a
whole (creating it with a confirmation, confirming, pausing, resuming) stays with doctors:
reconciliation is the doctor's responsibility.

Scope is not limited by drug here (by ATC group): what a dentist or midwife may prescribe
is set by their HPR authorisation and the prescribing regulation (*rekvireringsforskriften*),
checked where the prescription is authorised (the e-prescription chain), and a table copied
here would drift from it. Decision support (interactions, duplicates, CAVE, doses) applies
to their changes exactly as to a doctor's: it runs in the one write path every change takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from pll.domain.errors import Forbidden
from pll.domain.model import Author, Role

#: Who changes the list at all.
PRESCRIBERS = frozenset({Role.DOCTOR, Role.DENTIST, Role.MIDWIFE})


@dataclass(frozen=True)
class Originators:
    """Who put each entry on the list and who prescribed each prescription (the authors of
    their first versions), for the entries and prescriptions a change may touch. The store
    looks them up only for a prescriber held to their own entries (:func:`held_to_own`)."""

    entries: Mapping[str, Author] = field(default_factory=dict)
    prescriptions: Mapping[str, Author] = field(default_factory=dict)


@dataclass
class PrescriberRefused(Forbidden):
    """A prescriber refused by who they are, not by the access policy's table (which has
    admitted them to prescribe): the write path logs the refusal in the patient's access
    log against ``rtype``/``rid``, as the policy's own refusals are."""

    rtype: str = ""
    rid: str = ""


@dataclass
class NotYourEntry(PrescriberRefused):
    """A dentist or midwife tried to change what another prescriber put on the list."""


@dataclass
class DoctorsOnly(PrescriberRefused):
    """A dentist or midwife tried an act on the list as a whole (confirm, pause, resume)."""


def require_prescriber(author: Author) -> None:
    """Refuse anyone who does not prescribe: they read the list and report discrepancies."""
    if author.role not in PRESCRIBERS:
        raise Forbidden(
            "Only prescribers change the medication list (doctors, and dentists and midwives "
            f"for what they prescribe); you are signed in as {author.role.value}. Pharmacies "
            "propose changes and other health personnel report discrepancies (DESIGN §3 rule 4).",
            norwegian="Bare forskrivere endrer legemiddellisten (leger, og tannleger og "
            "jordmødre for det de selv forskriver); du kan lese den og melde avvik.",
        )


def held_to_own(author: Author) -> bool:
    """Whether ``author`` may change only their own entries (everyone but doctors)."""
    return author.role is not Role.DOCTOR


def require_doctor(author: Author, list_id: str, what: str, what_nb: str) -> None:
    """Refuse a prescriber who is not a doctor an act on the list ``list_id`` as a whole
    (:class:`DoctorsOnly`, logged against that list)."""
    if author.role is not Role.DOCTOR:
        raise DoctorsOnly(
            f"Only doctors {what}; a {author.role.value} puts what they prescribe on the "
            "list and changes only their own entries (DESIGN §3 rule 4).",
            "List",
            rtype="List",
            rid=list_id,
            norwegian=f"Bare leger {what_nb}; du fører opp det du selv forskriver og endrer "
            "bare dine egne legemidler.",
        )


def is_own(author: Author, originator: Author | None) -> bool:
    """Whether what ``originator`` recorded is ``author``'s own: the same HPR number."""
    return originator is not None and author.hpr is not None and originator.hpr == author.hpr


def not_yours(author: Author, rtype: str, rid: str, originator: Author | None) -> NotYourEntry:
    """The refusal of a change to what another prescriber recorded, naming them."""
    whose = f" ({originator.label()})" if originator is not None else ""
    thing, thing_nb = (
        ("entry", "legemidlet") if rtype == "MedicationStatement" else ("prescription", "resepten")
    )
    return NotYourEntry(
        message=f"{rtype}/{rid} was recorded by another prescriber{whose}. A {author.role.value} "
        f"changes, renews, recalls or discontinues only what they prescribed; only doctors "
        f"change another prescriber's {thing} (DESIGN §3 rule 4). Nothing was changed; "
        "report a discrepancy if it needs changing.",
        expression=rtype,
        rtype=rtype,
        rid=rid,
        norwegian=f"Bare leger endrer det andre forskrivere har ført opp{whose}; du endrer "
        f"bare det du selv har forskrevet, og {thing_nb} er ikke ditt. Ingenting ble endret; "
        "meld et avvik om det bør endres.",
    )


def require_own(
    author: Author, originators: Originators, made: Set[tuple[str, str]], rtype: str, rid: str
) -> None:
    """Refuse a dentist or midwife a change to what another prescriber recorded; what the
    change itself ``made`` is theirs, and a doctor changes anything."""
    if not held_to_own(author) or (rtype, rid) in made:
        return
    found = (
        originators.entries if rtype == "MedicationStatement" else originators.prescriptions
    ).get(rid)
    if not is_own(author, found):
        raise not_yours(author, rtype, rid, found)
