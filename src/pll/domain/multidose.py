"""The rules of e-multidose, without any I/O (DESIGN §3 rule 4; M25, M27).

A multidose patient has one responsible multidose doctor and one multidose pharmacy (M27).
The list is the pharmacy's packing basis (M25.1). The pharmacy does not change the list: it
proposes new, changed or removed items (M25.2), which the responsible doctor accepts or
rejects one by one, and it reports what it packed for which period (M25.3) — never from a
paused list. Paper multidose beside the list is a risk every view of the list shows.

Registering, ending and paper multidose change what the list shows, so on a patient who has
a list each is a list version of its own (:func:`record`). Like a drug withdrawn from the
catalogue, it is not a change of the patient's medicines: the baton stays where it was.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pll.domain.errors import Conflict, Forbidden, InvalidInput
from pll.domain.model import (
    IN_USE,
    Author,
    ListVersion,
    MedicationList,
    Multidose,
    PaperMultidose,
    Pharmacy,
    ReceivingUnit,
    Registration,
    Role,
    Touched,
)

#: SFM's extension on a statement that says how it is given; ``mddispensed`` true marks an
#: entry as packed in multidose (http://ehelse.no/fhir/StructureDefinition/sfm-administration).
ADMINISTRATION = "http://ehelse.no/fhir/StructureDefinition/sfm-administration"
PACKED = "mddispensed"

Action = Literal["new", "change", "remove"]
ACTIONS: tuple[Action, ...] = ("new", "change", "remove")

#: What the list says about paper multidose, in the rollout's own words.
PAPER_RISK = (
    "Pasienten har papirmultidose i tillegg til PLL: risiko for dobbeltregistrering og "
    "fragmenterte legemiddellister."
)


def packed_in_multidose(content: dict[str, Any]) -> bool:
    """Whether an entry is marked as packed in multidose (``mddispensed`` true)."""
    for ext in content.get("extension") or []:
        if not isinstance(ext, dict) or ext.get("url") != ADMINISTRATION:
            continue
        for sub in ext.get("extension") or []:
            if isinstance(sub, dict) and sub.get("url") == PACKED:
                return sub.get("valueBoolean") is True
    return False


# -- the registration (M27) ----------------------------------------------------------------


def register(
    current: Multidose,
    doctor: Author,
    pharmacy: Pharmacy,
    now: datetime,
    receiver: ReceivingUnit | None = None,
) -> Multidose | None:
    """The calling doctor becomes the patient's responsible multidose doctor, with this
    pharmacy as the one multidose pharmacy and ``receiver`` as the care unit that receives
    the bags (none: the patient gets them). ``None`` when exactly this is registered
    already (nothing changes). One pharmacy per patient: another registration is refused
    until the responsible doctor has ended the one there is.

    A registration states the whole of it: the responsible doctor registering again with
    the same pharmacy and another receiving unit (or none) changes the receiving unit, and
    keeps when and by whom the registration was made."""
    if doctor.role is not Role.DOCTOR or not doctor.hpr:
        raise Forbidden(
            "Only a doctor registers as a patient's responsible multidose doctor.",
            norwegian="Bare en lege kan registrere seg som multidoseansvarlig lege.",
        )
    if not pharmacy.org_id:
        raise InvalidInput(
            "Name the multidose pharmacy by its organisation number.", "pharmacy.identifier"
        )
    held = current.registration
    if held is not None:
        if held.doctor.hpr == doctor.hpr and held.pharmacy.org_id == pharmacy.org_id:
            if held.receiver == receiver:
                return None
            return replace(current, registration=replace(held, receiver=receiver))
        if held.doctor.hpr != doctor.hpr:
            raise Conflict(
                f"{held.doctor.label()} is this patient's responsible multidose doctor, with "
                f"{held.pharmacy.label()} as the multidose pharmacy. A patient has one "
                "responsible doctor and one multidose pharmacy; only that doctor ends the "
                "registration (M27).",
                "Patient",
                {"doctor": held.doctor.label(), "pharmacy": held.pharmacy.label()},
                norwegian=(
                    f"{held.doctor.label()} er pasientens multidoseansvarlige lege, med "
                    f"{held.pharmacy.label()} som multidoseapotek. Pasienten har én ansvarlig "
                    "lege og ett multidoseapotek; bare den legen kan avslutte registreringen."
                ),
            )
        raise Conflict(
            f"This patient's multidose pharmacy is {held.pharmacy.label()}; a patient has one "
            "multidose pharmacy. End the registration first, then register the new pharmacy.",
            "pharmacy",
            {"pharmacy": held.pharmacy.label()},
            norwegian=(
                f"Pasientens multidoseapotek er {held.pharmacy.label()}; pasienten har ett "
                "multidoseapotek. Avslutt registreringen først, og registrer så det nye apoteket."
            ),
        )
    return replace(
        current, registration=Registration(doctor, pharmacy, now, doctor, receiver=receiver)
    )


def end(current: Multidose, author: Author) -> Multidose:
    """End the e-multidose registration: only the registered doctor may (M27)."""
    held = current.registration
    if held is None:
        raise Conflict(
            "This patient has no e-multidose registration to end.",
            "Patient",
            norwegian="Pasienten har ingen e-multidoseregistrering å avslutte.",
        )
    if author.role is not Role.DOCTOR or not author.hpr or author.hpr != held.doctor.hpr:
        raise Forbidden(
            f"Only the registered responsible multidose doctor ({held.doctor.label()}) ends "
            "the registration (M27).",
            norwegian=(
                f"Bare pasientens multidoseansvarlige lege ({held.doctor.label()}) kan avslutte "
                "e-multidose."
            ),
        )
    return replace(current, registration=None)


def register_paper(
    current: Multidose, author: Author, pharmacy: str | None, note: str | None, now: datetime
) -> Multidose:
    """Record that the patient gets multidose ordered on paper (a doctor or a pharmacy
    knows it); refused when it is recorded already."""
    if author.role not in (Role.DOCTOR, Role.PHARMACIST):
        raise Forbidden("Doctors and pharmacies record paper multidose.")
    if current.paper is not None:
        raise Conflict(
            f"Paper multidose is already recorded for this patient (by {current.paper.by.label()} "
            f"at {current.paper.at.isoformat()}).",
            "Patient",
        )
    return replace(current, paper=PaperMultidose(now, author, pharmacy, note))


def end_paper(current: Multidose, by: Author) -> Multidose:
    """The patient no longer gets paper multidose (moved to e-multidose, or stopped). A
    doctor ends it, or the pharmacy that recorded it, or the patient's multidose pharmacy:
    another pharmacy must not take a risk off the list it knows nothing of."""
    if current.paper is None:
        raise Conflict("No paper multidose is recorded for this patient.", "Patient")
    if by.role is not Role.DOCTOR:
        own = {current.paper.by.org_id}
        if current.registration is not None:
            own.add(current.registration.pharmacy.org_id)
        if by.org_id is None or by.org_id not in own:
            raise Forbidden(
                "Only a doctor, the pharmacy that recorded paper multidose or the patient's "
                "multidose pharmacy ends it.",
                "Patient",
            )
    return replace(current, paper=None)


def record(
    lst: MedicationList,
    state: Multidose,
    author: Author,
    now: datetime,
    activity: str,
    reason: str | None,
) -> ListVersion | None:
    """The list version that shows a new multidose state, or ``None`` if nothing changed.
    The version moves, so readers and copies learn of it (rule 1); the baton does not."""
    if state == lst.multidose:
        return None
    lst.multidose = state
    lst.version += 1
    lst.updated = now
    touched = (Touched("List", lst.id, lst.version, "update"),)
    return ListVersion(lst.version, now, author, activity, reason, touched)


# -- packing (M25.1, M25.3) ----------------------------------------------------------------


def packing_refusal(lst: MedicationList | None, state: Multidose) -> str | None:
    """Why the pharmacy may not pack from this list now, or ``None`` when it may."""
    if state.registration is None:
        return "The patient has no e-multidose registration (M27): there is nothing to pack."
    if lst is None or lst.version == 0:
        return (
            "The responsible doctor has not sent the patient's list yet (M25.1): there is no "
            "packing basis."
        )
    if lst.pause is not None:
        return (
            f"The PLL is paused ({lst.pause.reason}; by {lst.pause.by.label()} at "
            f"{lst.pause.at.isoformat()}): do not pack from it until a doctor resumes it "
            "with a confirmed list."
        )
    return None


@dataclass(frozen=True)
class Packed:
    """One line of a packing report: an entry packed from ``first`` to ``last`` dose."""

    entry_id: str
    first: datetime
    last: datetime
    where: str
    dispense_id: str | None = None


def check_packing(
    lst: MedicationList | None,
    state: Multidose,
    start: datetime,
    end_: datetime,
    items: list[Packed],
    basis: int | None,
) -> None:
    """A packing report (M25.3) says what was packed from this list for which period. It is
    refused for a paused list (the pharmacy must not pack it), and for anything the list
    does not mark as packed in multidose."""
    refusal = packing_refusal(lst, state)
    if refusal is not None:
        raise Conflict(refusal, "List")
    assert lst is not None  # noqa: S101 - packing_refusal refuses a missing list
    if end_ < start:
        raise InvalidInput(
            "The packing period ends before it starts.",
            "period",
            norwegian="Siste dag i perioden er før første dag.",
        )
    if basis is not None and not 1 <= basis <= lst.version:
        raise InvalidInput(
            f"List version {basis} does not exist; the list is at version {lst.version}.",
            "listVersion",
        )
    if not items:
        raise InvalidInput("A packing report names what was packed: at least one item.", "item")
    seen: set[str] = set()
    for item in items:
        entry = lst.entries.get(item.entry_id)
        if entry is None:
            raise InvalidInput(
                f"MedicationStatement/{item.entry_id} is not on this patient's list.",
                f"{item.where}.entry",
            )
        if item.entry_id in seen:
            raise InvalidInput(
                f"MedicationStatement/{item.entry_id} is reported twice.", f"{item.where}.entry"
            )
        seen.add(item.entry_id)
        if not packed_in_multidose(entry.content):
            raise Conflict(
                f"MedicationStatement/{item.entry_id} is not marked as packed in multidose "
                "on the list; the pharmacy packs only what the list marks so.",
                f"{item.where}.entry",
            )
        if item.last < item.first:
            raise InvalidInput("The last dose comes before the first.", f"{item.where}.lastDose")
        if item.first < start or item.last > end_:
            raise InvalidInput(
                "The doses of an item lie within the report's period.", f"{item.where}.firstDose"
            )


# -- proposals (M25.2) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Proposed:
    """One item of a pharmacy's proposal: a new medicine, a change to an entry (on the
    version the pharmacy saw), or an entry to remove (discontinue), with the pharmacy's why."""

    action: Action
    where: str
    entry_id: str | None = None
    entry_version: int | None = None
    content: dict[str, Any] | None = None
    reason: str | None = None


def check_proposal(lst: MedicationList, items: list[Proposed]) -> None:
    """What a proposal must say for the doctor to be able to act on it; nothing on the list
    changes until the doctor accepts an item."""
    if not items:
        raise InvalidInput("A proposal has at least one item.", "item")
    seen: set[str] = set()
    for item in items:
        if item.action not in ACTIONS:
            raise InvalidInput(
                f"Unknown action {item.action!r}; use new, change or remove.",
                f"{item.where}.action",
            )
        if item.action == "new":
            _check_new(item)
            continue
        _check_named(lst, item)
        assert item.entry_id is not None  # noqa: S101 - _check_named requires it
        if item.entry_id in seen:
            raise InvalidInput(
                f"MedicationStatement/{item.entry_id} is named by two items of the proposal.",
                f"{item.where}.entry",
            )
        seen.add(item.entry_id)


def _check_new(item: Proposed) -> None:
    where = item.where
    if item.entry_id is not None:
        raise InvalidInput(
            "A new item names no entry; to change an entry, use action 'change'.",
            f"{where}.entry",
        )
    if item.content is None:
        raise InvalidInput(
            "A new item carries the proposed MedicationStatement.", f"{where}.statement"
        )
    if item.content.get("status") not in IN_USE:
        raise InvalidInput(
            "A proposed new medicine has status 'active' or 'on-hold'.",
            f"{where}.statement.status",
        )


def _check_named(lst: MedicationList, item: Proposed) -> None:
    """A change or removal names an entry in use, on the version the pharmacy saw."""
    where = item.where
    if item.entry_id is None or item.entry_version is None:
        raise InvalidInput(
            f"A {item.action} names the entry and the version the pharmacy saw: "
            "entry = MedicationStatement/<id>/_history/<version>.",
            f"{where}.entry",
        )
    entry = lst.entries.get(item.entry_id)
    if entry is None:
        raise InvalidInput(
            f"MedicationStatement/{item.entry_id} is not on this patient's list.",
            f"{where}.entry",
        )
    if entry.status not in IN_USE:
        raise Conflict(
            f"MedicationStatement/{item.entry_id} is {entry.status}; only medicines in use "
            "can be changed or removed.",
            f"{where}.entry",
        )
    if item.action == "change" and item.content is None:
        raise InvalidInput(
            "A change carries the entry as the pharmacy proposes it.", f"{where}.statement"
        )
    if item.action == "remove":
        if item.content is not None:
            raise InvalidInput(
                "A removal carries no statement, only the reason.", f"{where}.statement"
            )
        if not item.reason:
            raise InvalidInput(
                "Say why the medicine should be removed from the list.", f"{where}.reason"
            )


@dataclass(frozen=True)
class Held:
    """An item of a proposal as PLL keeps it, with the doctor's decision once there is one."""

    id: str
    proposal_id: str
    action: Action
    status: str  #: pending, accepted or rejected
    entry_id: str | None = None
    entry_version: int | None = None
    content: dict[str, Any] | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    #: for an accepted item: the list version it became part of, and the entry it made
    list_version: int | None = None
    entry_result: str | None = None


@dataclass(frozen=True)
class Ruling:
    """The responsible doctor's decision on one item."""

    item_id: str
    accept: bool
    where: str
    reason: str | None = None


def check_rulings(items: dict[str, Held], rulings: list[Ruling]) -> None:
    """Each item is decided once, by name, while it is pending."""
    if not rulings:
        raise InvalidInput(
            "Decide at least one item: decision.item and decision.outcome.", "decision"
        )
    seen: set[str] = set()
    for ruling in rulings:
        item = items.get(ruling.item_id)
        if item is None:
            raise InvalidInput(
                f"{ruling.item_id!r} is not an item of a proposal for this patient's list.",
                f"{ruling.where}.item",
            )
        if ruling.item_id in seen:
            raise InvalidInput(f"Item {ruling.item_id} is decided twice.", f"{ruling.where}.item")
        seen.add(ruling.item_id)
        if item.status != "pending":
            when = f" at {item.decided_at.isoformat()}" if item.decided_at else ""
            raise Conflict(
                f"Item {ruling.item_id} was already {item.status} by {item.decided_by}{when}.",
                f"{ruling.where}.item",
            )


def removed(content: dict[str, Any], reason: str) -> dict[str, Any]:
    """An entry as the pharmacy's removal makes it: discontinued, with the pharmacy's why."""
    out = copy.deepcopy(content)
    out["status"] = "stopped"
    out["statusReason"] = [{"text": reason}]
    return out
