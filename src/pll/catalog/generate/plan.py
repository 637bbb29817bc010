"""Choosing the synthetic catalogue's content: ATC classes, substances and their strengths,
active-substance groups (generics), brands, how many packages each brand has, exchange
groups, and the demo lists' drugs.

A :class:`Plan` holds what was chosen as small tuples of ids and codes, and the two random
streams everything is drawn from; the writers (:mod:`.drugs`, :mod:`.substances`,
:mod:`.interactions`) draw the rest of each entry from the same streams as they write it.
"""

from __future__ import annotations

import random
import uuid
from bisect import bisect_right
from datetime import date, timedelta
from itertools import accumulate
from typing import NamedTuple

from pll.catalog.atc_classes import class_name
from pll.catalog.demo_drugs import DEMO_DRUGS, DemoDrug
from pll.catalog.generate.vocabulary import (
    ALL_FORMS,
    ATC2,
    ATC_LETTERS,
    BRAND_ENDINGS,
    CLASS_KINDS,
    CODAS,
    COMPANIES,
    CONCENTRATIONS,
    FORM_WEIGHTS,
    FORMS,
    FORMS_BY_KIND,
    KIND_WEIGHTS,
    ONSETS,
    RX,
    SOLID_STRENGTHS,
    STEMS,
    VOWELS,
    decimal,
)


class Class(NamedTuple):
    code: str  #: ATC level 4
    name: str
    stem: str  #: ending shared by its substances' names
    members: list[int]  #: substance indexes


class Substance(NamedTuple):
    id: str
    name: str
    atc: str
    cls: int  #: index into the ATC level-4 classes
    kind: str
    rx: str
    trade: str  #: the originator's brand name
    tidspunkt: str


class Strength(NamedTuple):
    id: str
    substance: int
    value: str  #: decimal point, for Styrke V
    unit: str
    per: str  #: denominator unit (ml, g) or ""
    tidspunkt: str


class Generic(NamedTuple):
    id: str
    strength: int
    form: int
    tidspunkt: str


class Brand(NamedTuple):
    id: str
    name: str  #: Varenavn
    label: str  #: NavnFormStyrke
    substance: int  #: the (first) substance: gives ATC and Reseptgruppe
    form: int
    strengths: tuple[int, ...]  #: SortertVirkestoffMedStyrke
    ref_substance: int  #: RefVirkestoff when no strength can be stated, else -1
    generic: int  #: -1 for brands outside any LegemiddelVirkestoff
    tidspunkt: str


class Plan:
    """The catalogue's content as it is chosen; ``plan_*`` are called in the order
    :func:`pll.catalog.generate.generate` gives, each drawing from :attr:`rng` in turn."""

    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        # what was added later (validity, pack types, the demo's drugs) draws from its own
        # stream, so the rest of a seed's catalogue stays what it was
        self.later = random.Random(seed + 1)  # noqa: S311 - as above
        self.random_substances = 0  #: substances before the demo's: interactions use these
        self.demo_of: dict[str, DemoDrug] = {}  # brand id -> the demo drug it is
        self.today = today
        self.names: set[str] = set()  # membership only, never iterated
        self.classes: list[Class] = []
        self.class_codes: set[str] = set()
        self.substances: list[Substance] = []
        self.strengths: list[Strength] = []
        self.generics: list[Generic] = []
        self.brands: list[Brand] = []
        self.packages_of: list[int] = []  # per brand
        self.exchange: dict[int, str] = {}  # generic index -> RefByttegruppe

    # -- small helpers ------------------------------------------------------------------------

    def new_id(self) -> str:
        return "ID_" + str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper()

    def day(self, earliest: int, latest: int) -> date:
        """A day between ``earliest`` and ``latest`` days before today."""
        return self.today - timedelta(days=self.rng.randint(latest, earliest))

    def timestamp(self) -> str:
        d = self.day(4000, 1)
        return f"{d.isoformat()}T03:{self.rng.randrange(60):02d}:{self.rng.randrange(60):02d}"

    def weighted(self, options: tuple[tuple[str, int], ...]) -> str:
        return self.rng.choices([o for o, _ in options], [w for _, w in options])[0]

    def syllables(self, count: int) -> str:
        rng = self.rng
        return "".join(
            rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(count)
        )

    def coin(self, lengths: tuple[int, ...], endings: tuple[str, ...]) -> str:
        """A new name: syllables plus an ending ("Tav" + "oksin"), unique in this extract."""
        rng = self.rng
        for _ in range(50):
            name = self.syllables(rng.choice(lengths)).capitalize() + rng.choice(endings)
            if name not in self.names:
                break
        else:  # pragma: no cover - the name space is far larger than the catalogue
            name = f"{name}{len(self.names)}"
        self.names.add(name)
        return name

    # -- plan: substances, strengths, groups, brands, packages --------------------------------

    def new_class(self) -> int:
        rng = self.rng
        level2 = rng.choice(ATC2)[0]
        code = level2 + rng.choice(ATC_LETTERS) + rng.choice(ATC_LETTERS)
        while code in self.class_codes:
            code = rng.choice(ATC2)[0] + rng.choice(ATC_LETTERS) + rng.choice(ATC_LETTERS)
        self.class_codes.add(code)
        stem = rng.choice(STEMS)
        name = self.coin((1,), (stem,))
        self.classes.append(Class(code, f"{name}-{rng.choice(CLASS_KINDS)}", stem, []))
        return len(self.classes) - 1

    def plan_substances(self, count: int) -> None:
        rng = self.rng
        for index in range(count):
            # A new class, or one of the 40 newest (each holds at most 99 level-5 codes).
            recent = range(max(0, len(self.classes) - 40), len(self.classes))
            open_classes = [i for i in recent if len(self.classes[i].members) < 99]
            cls = (
                self.new_class()
                if not open_classes or rng.random() < 0.3
                else rng.choice(open_classes)
            )
            c = self.classes[cls]
            name = self.coin((1, 1, 2), (c.stem,))
            c.members.append(index)
            atc = f"{c.code}{len(c.members):02d}"
            kind = self.weighted(tuple(KIND_WEIGHTS))
            trade = self.coin((1, 2), BRAND_ENDINGS)
            self.substances.append(
                Substance(
                    self.new_id(), name, atc, cls, kind, self.weighted(RX), trade, self.timestamp()
                )
            )
            self.plan_strengths(index, kind)

    def plan_strengths(self, substance: int, kind: str) -> None:
        rng = self.rng
        if kind == "solid":
            unit, per = ("mikrog", "") if rng.random() < 0.1 else ("mg", "")
            ladder = SOLID_STRENGTHS
        else:
            unit, per = "mg", ("g" if kind == "topical" else "ml")
            ladder = CONCENTRATIONS
        count = rng.choices((1, 2, 3), (35, 35, 30))[0]
        start = rng.randrange(len(ladder) - count + 1)
        picks = sorted(rng.sample(range(start, min(len(ladder), start + count + 3)), count))
        for i in picks:
            self.strengths.append(
                Strength(self.new_id(), substance, ladder[i], unit, per, self.timestamp())
            )

    def strength_label(self, strength: int) -> str:
        s = self.strengths[strength]
        return f"{decimal(s.value)} {s.unit}" + (f"/{s.per}" if s.per else "")

    def pick_form(self, kind: str) -> int:
        options = FORMS_BY_KIND[kind]
        weights = [FORM_WEIGHTS.get(FORMS[i].code, 1) for i in options]
        return self.rng.choices(options, weights)[0]

    def plan_generics(self, count: int) -> None:
        rng = self.rng
        seen: set[tuple[int, int]] = set()
        order = list(range(len(self.strengths)))
        rng.shuffle(order)
        for n in range(count):
            strength = order[n] if n < len(order) else rng.randrange(len(self.strengths))
            for _ in range(20):  # a (strength, form) pair not used yet
                kind = self.substances[self.strengths[strength].substance].kind
                pair = (strength, self.pick_form(kind))
                if pair not in seen:
                    break
                strength = rng.randrange(len(self.strengths))
            seen.add(pair)
            self.generics.append(Generic(self.new_id(), pair[0], pair[1], self.timestamp()))

    def brand_name(self, substance: int, company: str, originator: bool) -> str:
        s = self.substances[substance]
        return s.trade if originator else f"{s.name} {company}"

    def add_brand(
        self,
        name: str,
        label: str,
        substance: int,
        form: int,
        strengths: tuple[int, ...] = (),
        ref_substance: int = -1,
        generic: int = -1,
    ) -> None:
        self.brands.append(
            Brand(
                self.new_id(),
                name,
                label,
                substance,
                form,
                strengths,
                ref_substance,
                generic,
                self.timestamp(),
            )
        )

    def plan_brands(self, count: int) -> None:
        rng = self.rng
        combos = round(0.01 * count) if len(self.substances) > 1 else 0
        by_substance = round(0.01 * count)
        ungrouped = round(0.02 * count)
        grouped = max(0, count - combos - by_substance - ungrouped)
        in_group = {g.strength for g in self.generics}  # membership only, never iterated
        # Grouped brands: each generic gets one, the rest go to popular generics.
        weights = list(accumulate(rng.paretovariate(1.2) for _ in self.generics))
        companies_of: dict[int, list[str]] = {}
        for n in range(grouped):
            if n < len(self.generics):
                generic = n
            else:
                generic = bisect_right(weights, rng.random() * weights[-1])
                generic = min(generic, len(self.generics) - 1)
            g = self.generics[generic]
            substance = self.strengths[g.strength].substance
            used = companies_of.setdefault(generic, [])
            originator = not used and rng.random() < 0.6
            company = rng.choice([c for c in COMPANIES if c not in used] or list(COMPANIES))
            used.append(company)
            name = self.brand_name(substance, company, originator)
            form = FORMS[g.form]
            label = f"{name} {form.short} {self.strength_label(g.strength)}"
            self.add_brand(name, label, substance, g.form, strengths=(g.strength,), generic=generic)
        free = [i for i in range(len(self.strengths)) if i not in in_group] or list(
            range(len(self.strengths))
        )
        for _ in range(ungrouped):  # a strength and form no LegemiddelVirkestoff lists
            strength = rng.choice(free)
            substance = self.strengths[strength].substance
            form_index = self.pick_form(self.substances[substance].kind)
            name = self.brand_name(substance, rng.choice(COMPANIES), rng.random() < 0.5)
            label = f"{name} {FORMS[form_index].short} {self.strength_label(strength)}"
            self.add_brand(name, label, substance, form_index, strengths=(strength,))
        topical = FORMS_BY_KIND["topical"]
        creams = [i for i, s in enumerate(self.substances) if s.kind == "topical"] or list(
            range(len(self.substances))
        )
        for _ in range(by_substance):  # no strength can be stated: RefVirkestoff
            substance = rng.choice(creams)
            form_index = rng.choice(topical)
            name = f"{self.substances[substance].name} {rng.choice(COMPANIES)}"
            label = f"{name} {FORMS[form_index].short}"
            self.add_brand(name, label, substance, form_index, ref_substance=substance)
        solid = [
            i for i, s in enumerate(self.strengths) if self.substances[s.substance].kind == "solid"
        ] or list(range(len(self.strengths)))
        for _ in range(combos):  # two substances in one brand
            first = rng.choice(solid)
            second = rng.choice(solid)
            for _ in range(20):
                if self.strengths[second].substance != self.strengths[first].substance:
                    break
                second = rng.choice(solid)
            a, b = (self.substances[self.strengths[i].substance] for i in (first, second))
            form_index = FORMS_BY_KIND["solid"][0]
            name = f"{a.name}/{b.name} {rng.choice(COMPANIES)}"
            strengths = f"{self.strength_label(first)}/{self.strength_label(second)}"
            label = f"{name} {FORMS[form_index].short} {strengths}"
            self.add_brand(
                name, label, self.strengths[first].substance, form_index, strengths=(first, second)
            )
        rng.shuffle(self.brands)

    def plan_packages(self, count: int) -> None:
        rng = self.rng
        self.packages_of = [0] * len(self.brands)
        for n in range(count):
            self.packages_of[n if n < len(self.brands) else rng.randrange(len(self.brands))] += 1
        # Exchange groups: generics with several brands, until ~40 % of packages are in one.
        per_generic: dict[int, list[int]] = {}
        for b, brand in enumerate(self.brands):
            if brand.generic >= 0:
                per_generic.setdefault(brand.generic, []).append(b)
        eligible = [
            g
            for g, bs in per_generic.items()
            if len(bs) > 1 and sum(self.packages_of[b] for b in bs) > 0
        ]
        rng.shuffle(eligible)
        target, covered = 0.4 * count, 0
        for g in eligible:
            if covered >= target:
                break
            self.exchange[g] = self.new_id()
            covered += sum(self.packages_of[b] for b in per_generic[g])

    def plan_demo(self) -> None:
        """The demo lists' drugs (:data:`DEMO_DRUGS`): a substance, strength, brand and
        packages each, after every random one."""
        self.random_substances = len(self.substances)
        # a random class may have drawn a real drug's class code: it takes the real name, so
        # an interaction naming the whole class names it as a doctor knows it (issue 16)
        real = {d.atc[:5] for d in DEMO_DRUGS}
        for i, c in enumerate(self.classes):
            if c.code in real:
                self.classes[i] = c._replace(name=class_name(c.code))
        substances: dict[str, int] = {}
        forms = {f.code: i for i, f in enumerate(ALL_FORMS)}
        for drug in DEMO_DRUGS:
            stamp = self.later_timestamp()
            if drug.substance not in substances:
                substances[drug.substance] = len(self.substances)
                self.classes.append(Class(drug.atc[:5], class_name(drug.atc), "", []))
                self.substances.append(
                    Substance(
                        self.later_id(), drug.substance, drug.atc, len(self.classes) - 1,
                        ALL_FORMS[forms[drug.form]].kind, drug.rx, drug.brand, stamp,
                    )
                )  # fmt: skip
            value, unit, per = drug.strength
            self.strengths.append(
                Strength(self.later_id(), substances[drug.substance], value, unit, per, stamp)
            )
            form = forms[drug.form]
            label = f"{drug.brand} {ALL_FORMS[form].short} {self.strength_label(-1)}"
            self.brands.append(
                Brand(
                    self.later_id(), drug.brand, label, substances[drug.substance], form,
                    (len(self.strengths) - 1,), -1, -1, stamp,
                )
            )  # fmt: skip
            self.demo_of[self.brands[-1].id] = drug
            self.packages_of.append(len(drug.packs))

    def later_id(self) -> str:
        return "ID_" + str(uuid.UUID(int=self.later.getrandbits(128), version=4)).upper()

    def later_timestamp(self) -> str:
        d = self.today - timedelta(days=self.later.randint(100, 4000))
        return f"{d.isoformat()}T03:{self.later.randrange(60):02d}:{self.later.randrange(60):02d}"
