"""Choosing and writing the interaction catalogue (``KatInteraksjon``): pairs of substance
groups (one substance, a few of one class, or a whole ATC class) with a relevance, clinical
texts and references, then the substances not yet assessed (``InteraksjonIkkeVurdert``).

Interactions are drawn as they are written, so the plan holds none of them: only the
substances they name.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from pll.catalog.demo_drugs import DEMO_INTERACTIONS, DemoInteraction
from pll.catalog.generate.m30 import Writer, cs, cv, el, entity
from pll.catalog.generate.plan import Plan

RELEVANCE = (("1", "Bør unngås", 10), ("2", "Forholdsregler bør tas", 50))
RELEVANCE_3 = ("3", "Ingen tiltak nødvendig")
SOURCES = (
    ("1", "Interaksjonsstudier"),
    ("2", "Kasusrapporter"),
    ("3", "Interaksjonsstudier og kasusrapporter"),
    ("4", "Indirekte data"),
)
AUDIENCE = (("1", "Allmennlege"), ("2", "Spesialist"), ("3", "Sykehus"), ("4", "Apotek"))
ENZYMES = ("CYP3A4", "CYP2D6", "CYP2C9", "CYP2C19", "CYP1A2", "P-glykoprotein", "OATP1B1")
EFFECTS = (
    "blødningsrisiko", "QT-forlengelse", "serotonergt syndrom", "sedasjon", "hyperkalemi",
    "hypotensjon", "hypoglykemi", "nyrefunksjonssvikt", "kramper", "bradykardi",
)  # fmt: skip
CONSEQUENCES = {
    "1": (
        "Kraftig økt eksponering for {b}, med risiko for alvorlige bivirkninger.",
        "Additiv effekt med betydelig økt risiko for {e}.",
        "Betydelig redusert effekt av {b}; behandlingssvikt er beskrevet.",
    ),
    "2": (
        "Økt eksponering for {b}, med økt risiko for doseavhengige bivirkninger.",
        "Redusert effekt av {b} er mulig.",
        "Additiv effekt kan gi økt risiko for {e}.",
        "Endret konsentrasjon av {b}; klinisk betydning varierer mellom pasienter.",
    ),
    "3": (
        "Moderat økning i konsentrasjonen av {b} uten påvist klinisk betydning.",
        "Liten reduksjon i eksponeringen for {b}, neppe av klinisk betydning.",
        "Teoretisk risiko for {e}; ikke observert i studier.",
    ),
}
MECHANISMS = (
    "{a} hemmer metabolismen av {b} via {z}.",
    "{a} induserer {z} og øker eliminasjonen av {b}.",
    "Farmakodynamisk synergisme: begge bidrar til {e}.",
    "{a} reduserer absorpsjonen av {b} ved kompleksbinding i tarmen.",
    "{a} hemmer den renale utskillelsen av {b}.",
)
HANDLING = {
    "1": (
        "Kombinasjonen bør unngås. Velg et alternativ til {a}.",
        "Unngå samtidig bruk. Seponer {a} i behandlingsperioden med {b}.",
    ),
    "2": (
        "Overvåk klinisk effekt og bivirkninger ved oppstart og seponering av {a}.",
        "Vurder dosereduksjon av {b} og følg pasienten tett.",
        "Gi {b} minst 2 timer før {a}.",
    ),
    "3": ("", "Ingen spesielle tiltak er nødvendige."),
}


def substance_group(plan: Plan, pool: list[int], cum: list[float]) -> tuple[list[str], str, str]:
    """One Substansgruppe: its XML lines, a key for uniqueness, and a name for texts."""
    rng = plan.rng
    substance = pool[min(bisect_right(cum, rng.random() * cum[-1]), len(pool) - 1)]
    s = plan.substances[substance]
    c = plan.classes[s.cls]
    members = [i for i in c.members if i < len(pool)]  # not the ones not yet assessed
    roll = rng.random()
    if roll < 0.12:  # a whole ATC class (level 4): found by prefix
        members_atc = [(c.code, c.name)]
        title: str | None = c.name
    elif roll < 0.17 and len(members) > 1:  # a named group of several substances
        picked = sorted(rng.sample(members, min(len(members), rng.choice((2, 3)))))
        members_atc = [(plan.substances[i].atc, plan.substances[i].name) for i in picked]
        title = c.name
    else:
        members_atc = [(s.atc, s.name)]
        title = None
    lines = ["<Substansgruppe>"]
    if title is not None:
        lines.append(f"  {el('Navn', title)}")
    for atc, name in members_atc:
        lines += [
            "  <Substans>",
            f"    {el('Substans', name)}",
            f"    {cv('Atc', atc, '7180', name)}",
            "  </Substans>",
        ]
    lines.append("</Substansgruppe>")
    return lines, ",".join(a for a, _ in members_atc), title or s.name


def write_interactions(plan: Plan, w: Writer, count: int, not_assessed: int) -> None:
    rng = plan.rng
    known = plan.random_substances or len(plan.substances)
    reserve = not_assessed if known - not_assessed >= 2 else 0
    pool = list(range(known - reserve))
    cum = list(accumulate(min(rng.paretovariate(1.1), 50.0) for _ in pool))
    seen: set[tuple[str, str]] = set()
    w.raw("  <KatInteraksjon>\n")
    for n in range(count):
        for _ in range(30):
            a_lines, a_key, a_name = substance_group(plan, pool, cum)
            b_lines, b_key, b_name = substance_group(plan, pool, cum)
            key = (min(a_key, b_key), max(a_key, b_key))
            overlap = any(
                x.startswith(y) or y.startswith(x)
                for x in a_key.split(",")
                for y in b_key.split(",")
            )
            if key not in seen and not overlap:
                break
        seen.add(key)
        w.entry("Interaksjon", interaction(plan, w, n, a_lines, a_name, b_lines, b_name))
    for i in range(not_assessed):
        s = plan.substances[known - 1 - i % known]  # the newest random substances
        body = entity("InteraksjonIkkeVurdert", [cv("Atc", s.atc, "7180", s.name)], "")
        w.entry("InteraksjonIkkeVurdert", w.oppf("Interaksjon", plan.timestamp(), body))
    if plan.demo_of:
        # last, so every random entry before them stays as the seed makes it
        for demo in DEMO_INTERACTIONS:
            w.entry("Interaksjon", demo_interaction(plan, w, demo))
    w.raw("  </KatInteraksjon>\n")


def demo_interaction(plan: Plan, w: Writer, demo: DemoInteraction) -> str:
    """One of the demo drugs' interactions (:data:`DEMO_INTERACTIONS`), its ids and time
    drawn from the plan's later stream."""
    lines = [el("Id", plan.later_id()), cs("Relevans", *demo.relevance)]
    lines += [
        el("KliniskKonsekvens", demo.consequence),
        el("Interaksjonsmekanisme", demo.mechanism),
        cs("Kildegrunnlag", *demo.source),
        el("Handtering", demo.handling),
    ]
    for atc, name in (demo.a, demo.b):
        lines += [
            "<Substansgruppe>",
            f"  {el('Navn', name)}",
            "  <Substans>",
            f"    {el('Substans', name)}",
            f"    {cv('Atc', atc, '7180', name)}",
            "  </Substans>",
            "</Substansgruppe>",
        ]
    return w.oppf("Interaksjon", plan.later_timestamp(), entity("Interaksjon", lines, ""))


def interaction(
    plan: Plan, w: Writer, n: int, a_lines: list[str], a_name: str, b_lines: list[str], b_name: str
) -> str:
    rng = plan.rng
    roll = rng.random() * 100
    relevance, label = RELEVANCE_3
    for value, display, share in RELEVANCE:
        if roll < share:
            relevance, label = value, display
            break
        roll -= share
    words = {"a": a_name, "b": b_name, "e": rng.choice(EFFECTS), "z": rng.choice(ENZYMES)}
    lines = [el("Id", plan.new_id()), cs("Relevans", relevance, label)]
    if rng.random() < 0.1:
        dose = rng.choice((10, 20, 40, 80, 100, 200))
        lines.append(
            el(
                "Situasjonskriterium",
                f"Gjelder kun ved doser av {b_name} over {dose} mg daglig.",
            )
        )
    lines.append(el("KliniskKonsekvens", rng.choice(CONSEQUENCES[relevance]).format(**words)))
    if rng.random() < 0.85:
        lines.append(el("Interaksjonsmekanisme", rng.choice(MECHANISMS).format(**words)))
    lines.append(cs("Kildegrunnlag", *rng.choice(SOURCES)))
    handling = rng.choice(HANDLING[relevance]).format(**words)
    if handling:
        lines.append(el("Handtering", handling))
    if rng.random() < 0.3:
        for value, display in sorted(rng.sample(AUDIENCE, rng.choice((1, 2)))):
            lines.append(cv("Visningsregel", value, "7442", display))
    lines += a_lines + b_lines
    for r in range(rng.choices((0, 1, 2), (60, 30, 10))[0]):
        lines += [
            "<Referanse>",
            f"  {el('Kilde', f'Oppdiktet kilde {n + 1}.{r + 1} (syntetiske testdata)')}",
            f'  <Lenke V="https://example.org/fest-syntetisk/interaksjon-{n + 1}-{r + 1}"/>',
            "</Referanse>",
        ]
    return w.oppf("Interaksjon", plan.timestamp(), entity("Interaksjon", lines, ""))
