"""Decision support on a medication list: interactions, duplicate therapy, CAVE, withdrawn
drugs (DESIGN §3 rule 6). Pure functions over what the catalogue says about each drug.

The national prescribing module does not check these yet; PLL does on every change. What a
finding blocks is decided here too: an interaction of relevance 1 ("avoid the combination",
FEST kodeverk 7483) and a CAVE conflict need an explicit override with a reason; the rest
warn or inform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations


class Kind(StrEnum):
    INTERACTION = "interaction"
    NOT_ASSESSED = "interaction-not-assessed"
    #: the medicine is named by text only: nothing could be checked
    NOT_CHECKED = "not-checked"
    DUPLICATE = "duplicate-therapy"
    CAVE = "cave"
    WITHDRAWN = "withdrawn"


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
    """Every finding on a list of active entries.

    ``interactions_for(drug)`` gives the interactions that may concern a drug;
    ``not_assessed(atc)`` says FEST marks the code ``InteraksjonIkkeVurdert``. With
    ``changed``, only findings that involve one of those entries are returned: a change is
    answered for what it brings, not for what was on the list before it.
    """
    listed = list(drugs)
    findings: list[Finding] = []
    for a, b in combinations(listed, 2):
        if changed is not None and a.entry not in changed and b.entry not in changed:
            continue
        findings += _pair(a, b, interactions_for)
    for drug in listed:
        if changed is not None and drug.entry not in changed:
            continue
        findings += _single(drug, not_assessed, reactions)
    return findings


def _pair(
    a: Drug, b: Drug, interactions_for: Callable[[Drug], Iterable[Interaction]]
) -> list[Finding]:
    out: list[Finding] = []
    entries = (a.entry, b.entry)
    if (a.atc or a.substances) and (b.atc or b.substances):
        seen: set[str] = set()
        for rule in interactions_for(a):
            if rule.id in seen or not rule.between(a, b):
                continue
            seen.add(rule.id)
            severity = {"1": Severity.ERROR, "2": Severity.WARNING}.get(
                rule.relevance, Severity.INFORMATION
            )
            out.append(
                Finding(
                    Kind.INTERACTION,
                    severity,
                    f"Interaksjon {a.name} + {b.name} ({RELEVANCE.get(rule.relevance, '?')}): "
                    f"{rule.consequence} Håndtering: {rule.handling}".strip(),
                    entries,
                    rule.id,
                    {
                        "relevance": rule.relevance,
                        "mechanism": rule.mechanism,
                        "handling": rule.handling,
                    },
                )
            )
    shared = a.substances & b.substances
    if shared:
        out.append(_duplicate(a, b, "samme virkestoff", entries))
    elif a.atc and b.atc and len(a.atc) >= 7 and a.atc == b.atc:
        out.append(_duplicate(a, b, f"samme ATC-kode {a.atc}", entries))
    elif a.exchange_group and a.exchange_group == b.exchange_group:
        out.append(_duplicate(a, b, "samme byttegruppe", entries))
    return out


def _duplicate(a: Drug, b: Drug, why: str, entries: tuple[str, ...]) -> Finding:
    return Finding(
        Kind.DUPLICATE,
        Severity.WARNING,
        f"Mulig dobbeltforskrivning: {a.name} og {b.name} ({why}).",
        entries,
        "+".join(sorted(entries)),
    )


def _single(
    drug: Drug, not_assessed: Callable[[str], bool], reactions: Iterable[Reaction]
) -> list[Finding]:
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
    for reaction in reactions:
        by_atc = (
            reaction.atc is not None and drug.atc is not None and drug.atc.startswith(reaction.atc)
        )
        by_substance = reaction.substance is not None and reaction.substance in drug.substances
        if by_atc or by_substance:
            out.append(
                Finding(
                    Kind.CAVE,
                    Severity.ERROR,
                    f"CAVE: pasienten har registrert reaksjon på {reaction.display}; "
                    f"{drug.name} "
                    + (f"er i ATC-gruppen {reaction.atc}." if by_atc else "har samme virkestoff."),
                    entries,
                    reaction.id,
                )
            )
    return out
