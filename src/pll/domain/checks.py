"""Decision support on a medication list: interactions, duplicate therapy, CAVE, withdrawn
drugs (DESIGN §3 rule 6). Pure functions over what the catalogue says about each drug.
The checks of a dosage (amounts, units, weekly drugs) are in :mod:`pll.domain.dose_checks`.

The national prescribing module does not check these yet; PLL does on every change. What a
finding blocks is decided here too: an interaction of relevance 1 ("avoid the combination",
FEST kodeverk 7483), a CAVE conflict and the dose findings need an explicit override with a
reason; the rest warn or inform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pll.domain.limits import MAX_NAMES


class Kind(StrEnum):
    INTERACTION = "interaction"
    NOT_ASSESSED = "interaction-not-assessed"
    #: the medicine is named by text only: nothing could be checked
    NOT_CHECKED = "not-checked"
    DUPLICATE = "duplicate-therapy"
    CAVE = "cave"
    WITHDRAWN = "withdrawn"
    #: a daily amount past what the form makes plausible (pll.domain.dose_checks)
    IMPLAUSIBLE_DOSE = "implausible-dose"
    #: a drug given once a week (methotrexate) dosed more often
    WEEKLY_DRUG = "weekly-drug-dosed-often"
    #: a dose unit the drug's pharmaceutical form does not take
    UNIT_FORM = "unit-does-not-fit-form"
    #: a free-text dosage names a dose unit the drug's form does not take (blocking, not
    #: refused: a text may say more than the dose)
    TEXT_UNIT_FORM = "text-unit-does-not-fit-form"


#: The findings about an entry's dosage: they block when a change brings the medicine or
#: changes its dosage, not only when it brings the medicine.
DOSE_KINDS = frozenset(
    {Kind.IMPLAUSIBLE_DOSE, Kind.WEEKLY_DRUG, Kind.UNIT_FORM, Kind.TEXT_UNIT_FORM}
)


class Severity(StrEnum):
    """How a finding is reported: ``error`` needs an override to be accepted."""

    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"


#: FEST kodeverk 7483 (Relevans): 1 avoid the combination, 2 take precautions, 3 no action.
RELEVANCE = {
    "1": "Bør unngås",
    "2": "Ta forholdsregler",
    "3": "Ingen tiltak nødvendig",
}


@dataclass(frozen=True)
class Drug:
    """One entry's medicine as the catalogue knows it."""

    entry: str  #: the entry (MedicationStatement) id
    name: str
    atc: str | None = None
    substances: frozenset[str] = frozenset()  #: substance ids (or names when no id)
    exchange_group: str | None = None
    #: False when the catalogue no longer has it as an active drug; None when not from FEST
    active: bool | None = None
    #: its FEST pharmaceutical form (``LegemiddelformKort``), when the catalogue has it
    form: str | None = None


#: How an interaction group names a substance that has no ATC code: ``@`` + its FEST id.
SUBSTANCE = "@"


@dataclass(frozen=True)
class Interaction:
    """A FEST interaction between two substance groups, each given by ATC codes (at any
    level) or, for substances without one, ``@`` + the substance id."""

    id: str
    relevance: str  #: "1", "2" or "3"
    consequence: str
    mechanism: str
    handling: str
    group_a: frozenset[str]
    group_b: frozenset[str]

    def between(self, a: Drug, b: Drug) -> bool:
        return (_covered(a, self.group_a) and _covered(b, self.group_b)) or (
            _covered(b, self.group_a) and _covered(a, self.group_b)
        )


@dataclass(frozen=True)
class Reaction:
    """A recorded drug reaction (CAVE): by substance, or by ATC code at any level."""

    id: str
    display: str
    atc: str | None = None
    substance: str | None = None


@dataclass(frozen=True)
class Finding:
    kind: Kind
    severity: Severity
    message: str
    entries: tuple[str, ...]
    #: what identifies it for an override: the interaction id, the reaction id, ...
    code: str
    details: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def blocking(self) -> bool:
        return self.severity is Severity.ERROR


def _covered(drug: Drug, group: frozenset[str]) -> bool:
    """A drug is in a group that names its ATC code at its own or any coarser level, or
    one of its substances."""
    for code in group:
        if code.startswith(SUBSTANCE):
            if code[1:] in drug.substances:
                return True
        elif drug.atc is not None and drug.atc.startswith(code):
            return True
    return False


def codes(drug: Drug) -> list[str]:
    """What an interaction group may name this drug by."""
    out = [drug.atc[:n] for n in (1, 3, 4, 5, 7) if drug.atc and n <= len(drug.atc)]
    return out + [SUBSTANCE + s for s in sorted(drug.substances)]


def check(
    drugs: Iterable[Drug],
    *,
    interactions_for: Callable[[Drug], Iterable[Interaction]],
    not_assessed: Callable[[str], bool],
    reactions: Iterable[Reaction] = (),
    changed: set[str] | None = None,
) -> list[Finding]:
    """Every finding on a list of active entries, each once.

    ``interactions_for(drug)`` gives the interactions that may concern a drug;
    ``not_assessed(atc)`` says FEST marks the code ``InteraksjonIkkeVurdert``. With
    ``changed``, only findings that involve one of those entries are returned: a change is
    answered for what it brings, not for what was on the list before it.

    What one finding is:

    - an **interaction**: one per FEST interaction, naming the drugs on each of its sides
      (FEST interactions with the same drugs on the same sides are one finding, as severe
      as the most severe of them, its code that one's id, the others said after it)
      ("Interaksjon A + B og C (Bør unngås): ..."), a drug in both of its groups once
      (:func:`_pairs`); its code is the interaction's id. With ``changed``, a side is
      narrowed to the changed drugs when only that side has any, so the finding names
      exactly the drugs of the pairs the change brings.
    - **duplicate therapy**: one per group of two or more drugs that share a substance, a
      full (7-character) ATC code or an exchange group, in that order of strength; a group
      that lies inside a group already reported is not reported again. Its code is the
      group's entry ids, sorted and joined with ``+``.
    - a **CAVE** conflict: one per recorded reaction, naming every drug it concerns; its
      code is the reaction's id.
    - what concerns one drug (not checked, not assessed, withdrawn): one per drug.

    A blocking finding's message names every drug it concerns; the others name at most
    :data:`~pll.domain.limits.MAX_NAMES` and count the rest. Every finding lists all its
    entries in ``entries``.

    The work grows about linearly with the list (DESIGN §3 rule 6), never with its square:
    drugs are grouped by what they share and indexed by the codes an interaction names,
    ``interactions_for`` is called once per coded drug (with ``changed``, once per changed
    coded drug), and no pair of drugs is ever compared.
    """
    listed = list(drugs)
    considered = [d for d in listed if changed is None or d.entry in changed]
    return [
        *_interactions(listed, interactions_for, changed),
        *_duplicates(listed, changed),
        *(f for drug in considered for f in _single(drug, not_assessed)),
        *_cave(considered, reactions),
    ]


def _names(drugs: Sequence[Drug], *, every: bool = False) -> str:
    """``A``, ``A og B``, ``A, B og C``; past :data:`MAX_NAMES`, the rest counted, unless
    ``every``: a blocking finding names every drug, because an override is given for what
    its message says (DESIGN §3 rule 6)."""
    names = [d.name for d in drugs]
    if len(names) > MAX_NAMES and not every:
        return f"{', '.join(names[:MAX_NAMES])} og {len(names) - MAX_NAMES} andre"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} og {names[-1]}"


def _entries(*groups: Sequence[Drug]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(d.entry for group in groups for d in group))


def _interactions(
    listed: list[Drug],
    interactions_for: Callable[[Drug], Iterable[Interaction]],
    changed: set[str] | None,
) -> list[Finding]:
    coded = [d for d in listed if d.atc or d.substances]
    # each drug under every code an interaction group may name it by (ATC at each level,
    # @substance), so a rule's sides are read off the index instead of testing pairs
    named_by: dict[str, list[int]] = {}
    for i, drug in enumerate(coded):
        for code in codes(drug):
            named_by.setdefault(code, []).append(i)
    rules: dict[str, Interaction] = {}
    for drug in coded:
        if changed is None or drug.entry in changed:
            for rule in interactions_for(drug):
                rules.setdefault(rule.id, rule)
    # the same drugs on the same sides under several FEST interactions (a substance rule
    # and a class rule, say) are one finding, as severe as the most severe of them
    found: dict[frozenset[frozenset[int]], list[tuple[Interaction, list[int], list[int]]]] = {}
    for rule in rules.values():
        side_a = _side(rule.group_a, named_by)
        side_b = _side(rule.group_b, named_by)
        if changed is not None:
            new_a = [i for i in side_a if coded[i].entry in changed]
            new_b = [i for i in side_b if coded[i].entry in changed]
            if not new_a and not new_b:
                continue
            # pairs with a changed drug: a side with none pairs only with the other's new ones
            if not new_b:
                side_a = new_a
            elif not new_a:
                side_b = new_b
        # a drug in both groups does not interact with itself: two distinct drugs are needed
        if side_a and side_b and len(set(side_a) | set(side_b)) >= 2:
            key = frozenset((frozenset(side_a), frozenset(side_b)))
            found.setdefault(key, []).append((rule, side_a, side_b))
    out = []
    for same in found.values():
        same.sort(key=lambda r: (r[0].relevance, r[0].id))
        rule, side_a, side_b = same[0]
        out.append(
            _interaction(
                rule,
                [coded[i] for i in side_a],
                [coded[i] for i in side_b],
                [r for r, _, _ in same[1:]],
            )
        )
    return out


def _side(group: frozenset[str], named_by: dict[str, list[int]]) -> list[int]:
    return sorted({i for code in group for i in named_by.get(code, ())})


def _interaction(
    rule: Interaction, side_a: list[Drug], side_b: list[Drug], also: list[Interaction]
) -> Finding:
    """The finding of ``rule``, the most severe interaction between these drugs; ``also``
    are the other FEST interactions between the same drugs, said in the same finding."""
    severity = {"1": Severity.ERROR, "2": Severity.WARNING}.get(
        rule.relevance, Severity.INFORMATION
    )
    more = "".join(f" Også ({RELEVANCE.get(r.relevance, '?')}): {_advice(r)}" for r in also)
    return Finding(
        Kind.INTERACTION,
        severity,
        f"Interaksjon {_pairs(side_a, side_b, every=severity is Severity.ERROR)} "
        f"({RELEVANCE.get(rule.relevance, '?')}): "
        f"{_advice(rule)}{more}".strip(),
        _entries(side_a, side_b),
        rule.id,
        {"relevance": rule.relevance, "mechanism": rule.mechanism, "handling": rule.handling},
    )


def _advice(rule: Interaction) -> str:
    """What FEST says of an interaction: its consequence and how to handle it; FEST leaves
    the handling out of some interactions, and then the finding says none."""
    handling = rule.handling.strip()
    said = rule.consequence.strip()
    return f"{said} Håndtering: {handling}" if handling else said


def _pairs(side_a: list[Drug], side_b: list[Drug], *, every: bool) -> str:
    """Which drugs interact with which, each drug named once. A drug in both of a rule's
    groups interacts with every other drug named, and with the others in both groups:
    "A + B", "A + B og C (også innbyrdes)", "innbyrdes mellom A, B og C",
    "A + B; C med begge sider"."""
    on_b = {d.entry for d in side_b}
    both = [d for d in side_a if d.entry in on_b]
    if not both:
        return f"{_names(side_a, every=every)} + {_names(side_b, every=every)}"
    held = {d.entry for d in both}
    only_a = [d for d in side_a if d.entry not in held]
    only_b = [d for d in side_b if d.entry not in held]
    shared = _names(both, every=every)
    among = len(both) > 1
    if not only_a and not only_b:
        return f"innbyrdes mellom {shared}"
    if not only_a or not only_b:
        shared += " (også innbyrdes)" if among else ""
        if not only_a:
            return f"{shared} + {_names(only_b, every=every)}"
        return f"{_names(only_a, every=every)} + {shared}"
    return (
        f"{_names(only_a, every=every)} + {_names(only_b, every=every)}; {shared} med begge "
        f"sider{' og innbyrdes' if among else ''}"
    )


def _duplicates(listed: list[Drug], changed: set[str] | None) -> list[Finding]:
    # (strength, key) -> the drugs sharing it; strength 0 substance, 1 ATC, 2 exchange group
    shared: dict[tuple[int, str], list[int]] = {}
    for i, drug in enumerate(listed):
        for substance in drug.substances:
            shared.setdefault((0, substance), []).append(i)
        if drug.atc and len(drug.atc) >= 7:
            shared.setdefault((1, drug.atc), []).append(i)
        if drug.exchange_group:
            shared.setdefault((2, drug.exchange_group), []).append(i)
    groups = sorted(
        ((key, members) for key, members in shared.items() if len(members) >= 2),
        key=lambda g: (g[0][0], -len(g[1]), g[0][1]),
    )
    reported: list[frozenset[int]] = []
    #: drug -> the reported groups it is in (a handful: its substances, its ATC, its group)
    within: dict[int, list[int]] = {}
    out = []
    for (strength, key), members in groups:
        held = frozenset(members)
        if any(held <= reported[g] for g in within.get(members[0], ())):
            continue  # already said, by a stronger or larger group
        for m in members:
            within.setdefault(m, []).append(len(reported))
        reported.append(held)
        if changed is None or any(listed[m].entry in changed for m in members):
            why = ("samme virkestoff", f"samme ATC-kode {key}", "samme byttegruppe")[strength]
            out.append(_duplicate([listed[m] for m in members], why))
    return out


def _duplicate(drugs: list[Drug], why: str) -> Finding:
    entries = _entries(drugs)
    return Finding(
        Kind.DUPLICATE,
        Severity.WARNING,
        f"Mulig dobbeltforskrivning: {_names(drugs)} ({why}).",
        entries,
        "+".join(sorted(entries)),
    )


def _single(drug: Drug, not_assessed: Callable[[str], bool]) -> list[Finding]:
    out: list[Finding] = []
    entries = (drug.entry,)
    if not drug.atc and not drug.substances and drug.active is None:
        out.append(
            Finding(
                Kind.NOT_CHECKED,
                Severity.INFORMATION,
                f"{drug.name} har verken FEST- eller ATC-kode og er ikke kontrollert for "
                "interaksjoner, dobbeltforskrivning eller CAVE.",
                entries,
                drug.entry,
            )
        )
    if drug.atc and not_assessed(drug.atc):
        out.append(
            Finding(
                Kind.NOT_ASSESSED,
                Severity.INFORMATION,
                f"{drug.name} ({drug.atc}) er ikke vurdert for interaksjoner i FEST; "
                "fravær av funn betyr ikke fravær av interaksjoner.",
                entries,
                drug.atc,
            )
        )
    if drug.active is False:
        out.append(
            Finding(
                Kind.WITHDRAWN,
                Severity.WARNING,
                f"{drug.name} er ikke lenger et aktivt legemiddel i FEST.",
                entries,
                drug.entry,
            )
        )
    return out


def _cave(drugs: list[Drug], reactions: Iterable[Reaction]) -> list[Finding]:
    """One finding per reaction, naming the drugs it concerns."""
    out = []
    for reaction in reactions:
        by_atc: list[Drug] = []
        by_substance: list[Drug] = []
        for drug in drugs:
            if reaction.atc and drug.atc and drug.atc.startswith(reaction.atc):
                by_atc.append(drug)
            elif reaction.substance is not None and reaction.substance in drug.substances:
                by_substance.append(drug)
        if not by_atc and not by_substance:
            continue
        said = [f"{_names(by_atc, every=True)} er i ATC-gruppen {reaction.atc}"] if by_atc else []
        said += [f"{_names(by_substance, every=True)} har samme virkestoff"] if by_substance else []
        out.append(
            Finding(
                Kind.CAVE,
                Severity.ERROR,
                f"CAVE: pasienten har registrert reaksjon på {reaction.display}; "
                + ", og ".join(said)
                + ".",
                _entries(by_atc, by_substance),
                reaction.id,
            )
        )
    return out
