"""Decision support on a list: what the catalogue and the patient's reactions say about its
entries (DESIGN §3 rule 6), for every write and on demand.

An entry names its medicine by codings in ``medicationCodeableConcept``: FEST
(``http://ehelse.no/fhir/CodeSystem/FEST``, a package's Varenr or a FEST id, as SFM Basis
does) and ATC. With a FEST code the catalogue gives ATC, substances, exchange group and
whether the drug is still active (a code the catalogue no longer has is not active); with
only ATC, the ATC rules still apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pll.domain import checks
from pll.domain.model import IN_USE, Entry
from pll.fhir import systems
from pll.store import allergies as allergy_store
from pll.store import catalog as store

FEST = "http://ehelse.no/fhir/CodeSystem/FEST"


@dataclass(frozen=True)
class Named:
    """What an entry's coding says its medicine is."""

    entry: str
    name: str
    fest: str | None
    atc: str | None


def named(entry_id: str, content: dict[str, Any]) -> Named:
    concept = content.get("medicationCodeableConcept") or {}
    fest = atc = None
    for coding in concept.get("coding") or []:
        if coding.get("system") == FEST and coding.get("code"):
            fest = str(coding["code"])
        elif coding.get("system") == systems.ATC and coding.get("code"):
            atc = str(coding["code"])
    name = concept.get("text") or next(
        (c.get("display") for c in concept.get("coding") or [] if c.get("display")), entry_id
    )
    return Named(entry_id, str(name), fest, atc)


def drugs(conn: Connection, entries: Iterable[Named]) -> list[checks.Drug]:
    """The entries' medicines as the active catalogue knows them."""
    listed = list(entries)
    version = store.active(conn)
    if version is None:
        return [checks.Drug(n.entry, n.name, n.atc) for n in listed]
    found = store.drugs_by_code(conn, version, [n.fest for n in listed if n.fest])
    substances = store.substances_of(conn, version, [d.id for d in found.values()])
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
            )
        )
    return out


def review(
    conn: Connection,
    patient_id: str,
    entries: Iterable[Entry],
    changed: set[str] | None,
) -> list[checks.Finding]:
    """Every finding on the entries in use; with ``changed``, only those they bring."""
    in_use = [named(e.id, e.content) for e in entries if e.status in IN_USE]
    if not in_use:
        return []
    listed = drugs(conn, in_use)
    version = store.active(conn)
    atcs = [d.atc for d in listed if d.atc]
    rules: dict[str, list[checks.Interaction]] = {}
    unassessed: set[str] = set()
    if version is not None and atcs:
        for rule, sides in store.interactions(conn, version, atcs):
            interaction = checks.Interaction(
                rule.id,
                rule.relevance,
                rule.consequence,
                rule.mechanism,
                rule.handling,
                frozenset(s.atc for s in sides if s.side == 1),
                frozenset(s.atc for s in sides if s.side == 2),
            )
            for atc in atcs:
                if any(atc.startswith(a) for a in interaction.group_a | interaction.group_b):
                    rules.setdefault(atc, []).append(interaction)
        unassessed = store.not_assessed(conn, version, atcs)
    reactions = [
        checks.Reaction(r.id, r.display, r.atc, r.substance)
        for r in allergy_store.active_reactions(conn, patient_id)
    ]
    return checks.check(
        listed,
        interactions_for=lambda atc: rules.get(atc, []),
        not_assessed=lambda atc: atc in unassessed,
        reactions=reactions,
        changed=changed,
    )
