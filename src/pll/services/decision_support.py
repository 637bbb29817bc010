"""Decision support on a list: what the catalogue and the patient's reactions say about its
entries (DESIGN §3 rule 6), for every write and on demand.

An entry names its medicine by codings in ``medicationCodeableConcept``: FEST
(``http://ehelse.no/fhir/CodeSystem/FEST``, a package's Varenr or a FEST id, as SFM Basis
does) and ATC. With a FEST code the catalogue gives ATC, substances, exchange group and
whether the drug is still active (a code the catalogue no longer has is not active); with
only ATC, the ATC rules still apply. The catalogue's pharmaceutical form and the entry's
dosage feed the dose checks (:mod:`pll.domain.dose_checks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from pll.domain import checks, dose_checks
from pll.domain.model import IN_USE, RX_ACTIVE, Entry, Prescription
from pll.fhir import systems
from pll.store import allergies as allergy_store
from pll.store import catalog as store

FEST = "http://ehelse.no/fhir/CodeSystem/FEST"


@dataclass(frozen=True)
class Named:
    """What an entry's (or a prescription's) coding says its medicine is."""

    entry: str
    name: str
    fest: str | None
    atc: str | None
    #: its Dosage elements (an entry's ``dosage``, a prescription's ``dosageInstruction``)
    dosage: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class CatalogueInUse:
    """The drug catalogue version in use as a caller has read it already (``None``: no
    catalogue imported), so :func:`review` does not read it again (issue 20)."""

    version: int | None


def _code(coding: Any, longest: int) -> str | None:
    code = coding.get("code") if isinstance(coding, dict) else None
    if not isinstance(code, str) or not code.isprintable() or not 0 < len(code) <= longest:
        return None  # not a code the catalogue could hold: the medicine counts as uncoded
    return code


def named(entry_id: str, content: dict[str, Any]) -> Named:
    concept = content.get("medicationCodeableConcept")
    concept = concept if isinstance(concept, dict) else {}
    codings = concept.get("coding")
    codings = codings if isinstance(codings, list) else []
    fest = atc = None
    for coding in codings:
        system = coding.get("system") if isinstance(coding, dict) else None
        # the first code of each system names the medicine (as SFM Basis sends one)
        if system == FEST:
            fest = fest or _code(coding, 64)
        elif system == systems.ATC and atc is None:
            code = _code(coding, 7)
            atc = code.upper() if code else None
    display = next(
        (
            c["display"]
            for c in codings
            if isinstance(c, dict) and isinstance(c.get("display"), str)
        ),
        None,
    )
    text = concept.get("text")
    dosage = content.get("dosage") or content.get("dosageInstruction")
    return Named(
        entry_id,
        str(text if isinstance(text, str) else display or entry_id),
        fest,
        atc,
        dosage if isinstance(dosage, list) else (),
    )


def drug_key(content: dict[str, Any]) -> tuple[str | None, str | None, str]:
    """What identifies the medicine of a resource, to tell whether a change changed it."""
    n = named("", content)
    return n.fest, n.atc, n.name


def items(entries: Iterable[Entry], prescriptions: Iterable[Prescription]) -> list[Named]:
    """The medicines a list holds: its entries in use, and prescriptions in use that no
    entry in use names (a prescription sent without its entry is still a drug the patient
    will take)."""
    in_use = [e for e in entries if e.status in IN_USE]
    linked = {rx for e in in_use for rx in e.prescription_ids}
    out = [named(e.id, e.content) for e in in_use]
    out += [
        named(p.id, p.content)
        for p in prescriptions
        if p.status in RX_ACTIVE and p.id not in linked
    ]
    return out


def dosed_items(
    entries: Iterable[Entry], prescriptions: Iterable[Prescription], ids: set[str] | None = None
) -> list[Named]:
    """The medicines whose dosage the dose checks judge: every entry in use and every
    prescription in use (its ``dosageInstruction``), linked to an entry or not — the
    prescription is what the pharmacy dispenses, so it answers for its own dose even where
    :func:`items` counts its drug once, through its entry. With ``ids``, only those."""
    out = [
        named(e.id, e.content)
        for e in entries
        if e.status in IN_USE and (ids is None or e.id in ids)
    ]
    out += [
        named(p.id, p.content)
        for p in prescriptions
        if p.status in RX_ACTIVE and (ids is None or p.id in ids)
    ]
    return out


def drugs(conn: Connection, version: int | None, listed: list[Named]) -> list[checks.Drug]:
    """The medicines as catalogue ``version`` knows them."""
    if version is None:
        return [checks.Drug(n.entry, n.name, n.atc) for n in listed]
    found = store.drugs_by_code(conn, version, [n.fest for n in listed if n.fest])
    substances = store.substances_of(conn, version, {d.id for d in found.values()})
    out = []
    for n in listed:
        row = found.get(n.fest) if n.fest else None
        if row is None:
            # a FEST code the catalogue does not have (any more) is not an active drug
            out.append(checks.Drug(n.entry, n.name, n.atc, active=False if n.fest else None))
            continue
        out.append(
            checks.Drug(
                n.entry,
                n.name,
                row.atc or n.atc,
                frozenset(s.id for s in substances.get(row.id, [])),
                row.exchange_group,
                bool(row.active),
                row.form,
            )
        )
    return out


def review(
    conn: Connection,
    patient_id: str,
    listed: Iterable[Named],
    changed: set[str] | None,
    sent_dosing: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    dosed: Iterable[Named] | None = None,
    catalogue: CatalogueInUse | None = None,
    *,
    reactions: bool = True,
) -> list[checks.Finding]:
    """Every finding on these medicines; with ``changed``, only those that concern them.
    The dose findings are on ``dosed`` (:func:`dosed_items`: a prescription linked to an
    entry too) when given, else on the medicines ``listed`` — in both, only those among
    ``changed``. The catalogue version is read once, so a switch meanwhile cannot mix two.
    ``sent_dosing`` is the structured dosage a change sent beside a dosage PLL keeps as
    text, by entry (:func:`dose_findings`). ``catalogue``: the version in use as the caller
    read it, in the change's transaction (else it is read here). ``reactions=False``: the
    caller read, in the same transaction, that the patient has no active reaction (CAVE), so
    they are not read here."""
    medicines = list(listed)
    to_dose = medicines if dosed is None else list(dosed)
    to_dose = [n for n in to_dose if changed is None or n.entry in changed]
    if not medicines and not to_dose:
        return []
    version = catalogue.version if catalogue is not None else store.active(conn)
    found = drugs(conn, version, medicines)
    rules: dict[str, list[checks.Interaction]] = {}
    unassessed: set[str] = set()
    if version is not None:
        names = {code for d in found for code in checks.codes(d)}
        for rule, sides in store.interactions(conn, version, names):
            interaction = checks.Interaction(
                rule.id,
                rule.relevance,
                rule.consequence,
                rule.mechanism,
                rule.handling,
                frozenset(s.atc for s in sides if s.side == 1),
                frozenset(s.atc for s in sides if s.side != 1),
            )
            for code in interaction.group_a | interaction.group_b:
                rules.setdefault(code, []).append(interaction)
        unassessed = store.not_assessed(conn, version, [d.atc for d in found if d.atc])
    found_reactions = active_reactions(conn, patient_id) if reactions else []
    # the catalogue is asked once more only for what the listed medicines left out (a
    # prescription linked to an entry)
    by_entry = {d.entry: d for d in found}
    by_entry |= {
        d.entry: d for d in drugs(conn, version, [n for n in to_dose if n.entry not in by_entry])
    }
    dose_drugs = [by_entry[n.entry] for n in to_dose]
    doses = [
        f
        for n, d in zip(to_dose, dose_drugs, strict=True)
        for f in dose_findings(
            dose_checks.Dosed(d.entry, d.name, n.dosage, d.atc, d.form, n.fest or d.atc),
            (sent_dosing or {}).get(d.entry),
            # a read of the whole list reports an absurd stored amount, a change refuses it
            refuse=changed is not None,
        )
    ]
    return (
        checks.check(
            found,
            interactions_for=lambda d: [r for c in checks.codes(d) for r in rules.get(c, [])],
            not_assessed=lambda atc: atc in unassessed,
            reactions=found_reactions,
            changed=changed,
        )
        + doses
    )


def active_reactions(conn: Connection, patient_id: str) -> list[checks.Reaction]:
    """The patient's recorded reactions (CAVE) that are active, as the checks take them."""
    return [
        checks.Reaction(r.id, r.display, r.atc, r.substance)
        for r in allergy_store.active_reactions(conn, patient_id)
    ]


def cave_conflicts(
    conn: Connection, patient_id: str, listed: Iterable[Named]
) -> list[tuple[checks.Reaction, checks.Finding]]:
    """The CAVE findings on these medicines, each with the reaction it is about: the same
    check every change runs (:func:`pll.domain.checks.check`, by substance or ATC group),
    asked for its CAVE findings only, for those who give the medicines (the chart)."""
    medicines = list(listed)
    reactions = active_reactions(conn, patient_id)
    if not medicines or not reactions:
        return []
    found = drugs(conn, store.active(conn), medicines)
    by_id = {r.id: r for r in reactions}
    findings = checks.check(
        found, interactions_for=lambda _: (), not_assessed=lambda _: False, reactions=reactions
    )
    return [(by_id[f.code], f) for f in findings if f.kind is checks.Kind.CAVE]


def dose_findings(
    dosed: dose_checks.Dosed,
    sent: Sequence[Mapping[str, Any]] | None = None,
    *,
    refuse: bool = True,
) -> list[checks.Finding]:
    """The dose findings on one medicine. ``sent`` is the structure a change sent beside a
    dosage that PLL keeps as text only — an SFM send's e-resept dosing
    (:mod:`pll.fhir.sfm.dosing`): the text alone tells only the largest amount it names,
    the structure also the unit, how often and on which days. Both are judged, the
    structure first, each finding once (by its kind and unit: the structure's where both
    find one), so a send is held to what either says. A dosage PLL keeps structured is
    judged as it is. ``refuse``: as :func:`~pll.domain.dose_checks.check_dose`'s."""
    # no drug's own maximum dose is fed (check_dose's daily_max says why)
    found = dose_checks.check_dose(dosed, refuse=refuse)
    if not sent or not dose_checks.given_as_text(dosed.dosage):
        return found
    first = dose_checks.check_dose(replace(dosed, dosage=sent), refuse=refuse)
    # once per kind and unit: the text's amount is the least it means a day, the
    # structure's the amount a day, so the structure's stands where both find one
    said = {_what(f) for f in first}
    return first + [f for f in found if _what(f) not in said]


def _what(finding: checks.Finding) -> tuple[checks.Kind, str | None]:
    """What a dose finding is about, whatever its amount: its kind and unit."""
    return finding.kind, finding.details.get("unit")
