"""What an entry marked for multidose packing must be (issue 18: "Mange feil knyttet til
forskrivningsmetode for multidose"). Pure rules, no I/O.

An entry marked packed in multidose (:func:`pll.domain.multidose.packed_in_multidose`,
SFM ``sfm-administration``/``mddispensed``) tells the multidose pharmacy to machine-pack it
into the patient's dose bags. A machine packs only what it can: so a marked entry must be

1. **a solid form taken by mouth**, by its FEST pharmaceutical form
   (:func:`packable_form`): tablets (film-coated, modified-release and gastro-resistant
   ones too: they are packed whole), capsules and chewable tablets. *Choice:* not
   effervescent, dispersible or orodispersible tablets (they take up moisture in the bag
   and are taken dissolved or melted), nor tablets for the mouth (sublingual, buccal,
   lozenges), nor vaginal tablets and capsules, nor any liquid, cream, inhaler, patch or
   injection. A medicine whose FEST form is not known (named by text or ATC only, or a
   FEST code the catalogue in use does not have) is refused: it cannot be known to be
   packable;
2. **dosed at fixed times of day, structured** (:func:`fixed_time_problem`): every Dosage
   element has a timing with ``when`` (morgen, midt på dagen, ettermiddag, kveld, ved
   sengetid, natt), which names the bag it goes in. Not as needed (the patient takes it
   when needed, not from a bag), not free text (a machine cannot read it), not every N
   hours nor "3 ganger daglig" without the times (which bag?), not a weekly dose on named
   weekdays (PLL's dosage model gives those no time of day);
3. **on an active prescription** (:func:`prescription_problem`): the pharmacy dispenses on
   a prescription, so at least one prescription the entry is based on is ``active`` (not
   paused, recalled, completed by a renewal) and has not expired.

Only what a change brings is judged (:func:`needs_judging`): an entry the change marks, or
a marked entry whose dosage, medicine or prescriptions the change changes. Pausing,
discontinuing or unmarking is never refused, and lists with older marked entries still load
and change elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pll.domain.errors import RuleRefused
from pll.domain.forms import CHEWABLE, SOLID_CAPSULE, SOLID_TABLET, kind_of
from pll.domain.model import Prescription
from pll.domain.multidose import packed_in_multidose
from pll.domain.prescriptions import is_expired

#: The form kinds (:mod:`pll.domain.forms`) a multidose machine packs.
PACKABLE_KINDS = (SOLID_TABLET, SOLID_CAPSULE, CHEWABLE)
#: Words of a FEST form name that make a tablet or capsule unpackable (lower case): taken
#: dissolved or melted, kept in the mouth, or not taken by mouth at all.
NOT_PACKED = (
    "brus",
    "dispergerbar",
    "smelte",
    "munnspredbar",
    "sublingval",
    "resoriblett",
    "bukkal",
    "munnhule",
    "vaginal",
    "mikstur",
    "oppløsning",
    "implantat",
)
_DOSE_KEYS = ("timing", "doseAndRate", "asNeededBoolean", "asNeededCodeableConcept")


class NotPackable(RuleRefused):
    """An entry marked for multidose packing that cannot be packed (422, ``business-rule``);
    :attr:`details` ``element`` names what to fix."""


def packable_form(form: str | None) -> bool:
    """Whether a FEST form (``LegemiddelformKort`` display name) is a solid oral form a
    multidose machine packs; ``False`` when the form is not known."""
    if not form:
        return False
    name = form.lower()
    return kind_of(form) in PACKABLE_KINDS and not any(w in name for w in NOT_PACKED)


def form_problem(form: str | None) -> tuple[str, str] | None:
    """Why this form cannot be packed (English, Norwegian), or ``None`` when it can."""
    if packable_form(form):
        return None
    if not form:
        return (
            "its pharmaceutical form is not known from FEST (the medicine is not named by a "
            "FEST code of the catalogue in use), so it cannot be known to be packable",
            "legemiddelformen er ikke kjent fra FEST (legemidlet er ikke valgt fra "
            "katalogen), så det kan ikke vites at det kan pakkes",
        )
    return (
        f"its form ({form}) is not a solid form taken by mouth that is machine-packed "
        "(tablets, capsules, chewable tablets)",
        f"legemiddelformen ({form}) er ikke en fast form til munn som kan maskinpakkes "
        "(tabletter, kapsler, tyggetabletter)",
    )


def _free_text(element: Mapping[str, Any]) -> bool:
    return not any(key in element for key in _DOSE_KEYS)


def fixed_time_problem(dosage: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """Why this dosage cannot be packed (English, Norwegian), or ``None`` when every
    element is structured, not as needed and given at named times of day."""
    if not dosage:
        return ("it has no dosage", "det har ingen dosering")
    for element in dosage:
        if _free_text(element):
            return (
                "its dosage is free text; the pharmacy packs from a structured dosage at "
                "fixed times of day",
                "doseringen er fritekst; apoteket pakker etter strukturert dosering med faste "
                "tidspunkter",
            )
        if element.get("asNeededBoolean") or "asNeededCodeableConcept" in element:
            return (
                "it is dosed as needed; only fixed doses are packed in the bags",
                "det er dosert ved behov; bare faste doser pakkes i posene",
            )
        timing = element.get("timing")
        repeat = timing.get("repeat") if isinstance(timing, Mapping) else None
        if not isinstance(repeat, Mapping) or not repeat.get("when"):
            return (
                "its dosage names no times of day (morning, noon, afternoon, evening, "
                "bedtime, night); each dose must say which bag it goes in",
                "doseringen har ikke faste tidspunkter (morgen, midt på dagen, ettermiddag, "
                "kveld, ved sengetid, natt); hver dose må si hvilken pose den skal i",
            )
    return None


def prescription_problem(
    prescriptions: Iterable[Prescription], today: date
) -> tuple[str, str] | None:
    """Why these prescriptions (those the entry is based on) give the pharmacy nothing to
    dispense on (English, Norwegian), or ``None`` when one is active and not expired."""
    linked = list(prescriptions)
    if any(p.status == "active" and not is_expired(p.content, today, p.recorded) for p in linked):
        return None
    if not linked:
        return (
            "it is based on no prescription; the pharmacy packs only what is prescribed",
            "det er ikke knyttet til noen resept; apoteket pakker bare det som er forskrevet",
        )
    return (
        "none of its prescriptions is active (each is paused, recalled, renewed or expired)",
        "ingen av reseptene er aktive (hver er satt på pause, tilbakekalt, fornyet eller utløpt)",
    )


@dataclass(frozen=True)
class Marked:
    """A marked entry as a change leaves it, with what the rules judge: its FEST form,
    the structured dosage to judge (:func:`judged_dosage`) and its linked prescriptions."""

    #: the entry's id; ``None`` for one the change or proposal makes
    entry_id: str | None
    form: str | None
    dosage: Sequence[Mapping[str, Any]]
    prescriptions: Sequence[Prescription]
    #: where the entry sits in the request ("MedicationStatement", "Bundle.entry[2].resource")
    where: str = "MedicationStatement"


def check(marked: Marked, today: date) -> None:
    """Refuse (422) an entry marked for multidose packing that cannot be packed, naming the
    first reason, at the mark."""
    for problem, element in (
        (form_problem(marked.form), "medicationCodeableConcept"),
        (fixed_time_problem(marked.dosage), "dosage"),
        (prescription_problem(marked.prescriptions, today), "basedOn"),
    ):
        if problem is None:
            continue
        english, norwegian = problem
        name = f"MedicationStatement/{marked.entry_id}" if marked.entry_id else "The new entry"
        raise NotPackable(
            f"{name} is marked as packed in multidose "
            f"(mddispensed), but {english}. Remove the mark, or fix the {element}.",
            f"{marked.where}.extension",
            {"element": element},
            norwegian=f"Kan ikke pakkes i multidose: {norwegian}.",
        )


def judged_dosage(
    content: Mapping[str, Any], *structured: Sequence[Mapping[str, Any]]
) -> Sequence[Mapping[str, Any]]:
    """The dosage the rules judge: the entry's own when it is structured, else the first of
    ``structured`` that is (an SFM send keeps the entry's dosage as text beside the
    e-resept's structured dosing), else the entry's as it is (free text, refused)."""
    own = content.get("dosage")
    own = own if isinstance(own, list) else []
    return next((s for s in (own, *structured) if _structured(s)), own)


def _structured(dosage: Sequence[Mapping[str, Any]]) -> bool:
    return bool(dosage) and not any(_free_text(e) for e in dosage)


def needs_judging(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """Whether a change from ``before`` (``None``: a new entry) to ``after`` is judged: the
    entry is in use and marked afterwards, and the change marks it, brings it back into
    use, or changes its medicine, its dose (:func:`redosed`) or its prescriptions."""
    if not _in_use(after) or not packed_in_multidose(dict(after)):
        return False
    if before is None or not packed_in_multidose(dict(before)) or not _in_use(before):
        return True
    return redosed(before, after) or any(
        before.get(key) != after.get(key) for key in ("medicationCodeableConcept", "basedOn")
    )


#: what a Dosage element says to the patient besides the dose; a change of it is no new dose
_INSTRUCTIONS = frozenset({"patientInstruction", "additionalInstruction"})


def redosed(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """Whether a change gave an entry on the list (``before``) a new dose: its Dosage
    elements differ in more than the instructions to the patient."""
    if before is None:
        return False

    def dose(content: Mapping[str, Any]) -> list[Any]:
        given = content.get("dosage")
        return [
            {k: v for k, v in e.items() if k not in _INSTRUCTIONS} if isinstance(e, dict) else e
            for e in (given if isinstance(given, list) else [])
        ]

    return dose(before) != dose(after)


def _in_use(content: Mapping[str, Any]) -> bool:
    return content.get("status") in ("active", "on-hold")
