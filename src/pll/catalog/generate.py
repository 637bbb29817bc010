"""Synthetic FEST extracts (catalogue message M30) of invented drugs, for tests, demos and
benchmarks.

The output follows ``docs/fest-m30.md`` and the hand-written fixture
``tests/fixtures/fest/small.xml``: a ``FEST`` root in the KITH ``m30`` namespace, ``Kat…``
catalogues of ``Oppf…`` entries (``Id``, ``Tidspunkt``, ``Status V="A"``) around entities in
the ``forskrivning`` namespace, and coded values as ``V``/``S``/``DN`` attributes. At
``scale=1.0`` it is about the size of the real catalogue: ~2,000 substances, ~6,000 brands,
~10,000 packages, ~3,000 active-substance groups and ~25,000 interactions.

Everything is invented: substance, brand and company names, ids, article numbers, ATC codes
below level 2 and all clinical text; code-system OIDs and most code values are the real ones
(form codes the reference does not list are invented in the 900 range, see ``_FORMS``). The
document is written entry by entry; only small tuples of ids and codes are kept in memory to
draw references from. The same ``seed``, ``scale`` and ``today`` give byte-identical output.
"""

from __future__ import annotations

import random
import uuid
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from typing import IO, NamedTuple
from xml.sax.saxutils import escape, quoteattr

from pll.catalog.demo_drugs import DEMO_DRUGS, DemoDrug, Pack

M30 = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"
FORSKRIVNING = "http://www.kith.no/xmlstds/eresept/forskrivning/2014-12-01"
OID = "2.16.578.1.12.4.1.1."

#: Entity counts of the real catalogue at ``scale=1.0``.
BASE = {
    "Virkestoff": 2000,
    "LegemiddelMerkevare": 6000,
    "Legemiddelpakning": 10000,
    "LegemiddelVirkestoff": 3000,
    "Interaksjon": 25000,
    "InteraksjonIkkeVurdert": 50,
}
#: The keys of :func:`generate`'s result: the local names of the entity elements written.
KINDS = (
    "Virkestoff",
    "VirkestoffMedStyrke",
    "LegemiddelMerkevare",
    "Legemiddelpakning",
    "LegemiddelVirkestoff",
    "Interaksjon",
    "InteraksjonIkkeVurdert",
)
DEFAULT_TODAY = date(2026, 11, 1)
PROGRESS_EVERY = 1000

# Real ATC level-2 groups (WHO), with Norwegian names; levels 3-5 below them are invented.
_ATC2 = (
    ("A02", "Midler mot syrerelaterte lidelser"),
    ("A03", "Midler mot funksjonelle gastrointestinale lidelser"),
    ("A06", "Midler mot forstoppelse"),
    ("A10", "Antidiabetika"),
    ("A11", "Vitaminer"),
    ("B01", "Antitrombotiske midler"),
    ("B03", "Antianemika"),
    ("C01", "Hjerteterapi"),
    ("C02", "Antihypertensiva"),
    ("C03", "Diuretika"),
    ("C07", "Betablokkere"),
    ("C08", "Kalsiumantagonister"),
    ("C09", "Midler med virkning på renin-angiotensinsystemet"),
    ("C10", "Lipidmodifiserende midler"),
    ("D01", "Antimykotika til dermatologisk bruk"),
    ("D07", "Kortikosteroider til dermatologisk bruk"),
    ("G03", "Kjønnshormoner og midler med effekt på genitalia"),
    ("G04", "Urologika"),
    ("H02", "Kortikosteroider til systemisk bruk"),
    ("H03", "Tyreoideaterapi"),
    ("J01", "Antibakterielle midler til systemisk bruk"),
    ("J02", "Antimykotika til systemisk bruk"),
    ("J05", "Antivirale midler til systemisk bruk"),
    ("L01", "Antineoplastiske midler"),
    ("L04", "Immunsuppressiver"),
    ("M01", "Antiinflammatoriske og antirevmatiske midler"),
    ("M05", "Midler til behandling av skjelettsykdommer"),
    ("N02", "Analgetika"),
    ("N03", "Antiepileptika"),
    ("N05", "Psykoleptika"),
    ("N06", "Psykoanaleptika"),
    ("N07", "Andre midler med virkning på nervesystemet"),
    ("P01", "Midler mot protozoer"),
    ("R03", "Midler mot obstruktiv lungesykdom"),
    ("R06", "Antihistaminer til systemisk bruk"),
    ("S01", "Oftalmologika"),
)
_ATC_LETTERS = "ABCDEFGHJKLMNPRSTVX"

# Name parts: substances are prefix syllables + a class stem ("Tav" + "oksin").
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "br", "kl", "tr", "dr")
_VOWELS = ("a", "e", "i", "o", "u", "y", "a", "o", "e")
_CODAS = ("", "", "", "l", "n", "r", "s", "v", "k", "m")
_STEMS = (
    "oksin", "amil", "azol", "olol", "pril", "sartan", "statin", "tidin", "mab", "tinib",
    "avir", "cyklin", "micin", "floksacin", "profen", "dipin", "gliptin", "lukast", "setron",
    "triptan", "zepam", "tiazid", "parin", "dronat", "olon", "amin", "etin", "osid",
)  # fmt: skip
_CLASS_KINDS = ("hemmere", "antagonister", "agonister", "derivater", "analoger", "midler")
_BRAND_ENDINGS = ("ex", "a", "in", "on", "ol", "ix", "ar", "el", "um", "ia", "or")
_COMPANIES = (
    "Nordfarma", "Fjordpharma", "Vestlab", "Polarmed", "Skogfarma", "Havpharma", "Norlysmed",
    "Fjellfarma", "Kystpharma", "Brefarma", "Dalmed", "Elvfarma", "Viddepharma", "Tindmed",
)  # fmt: skip


class _Form(NamedTuple):
    code: str  #: kodeverk 7448
    name: str  #: DN, and LegemiddelformLang
    short: str  #: the form word in NavnFormStyrke
    kind: str  #: solid, liquid, injection or topical


# Codes 3-53 are quoted in the M30 model and guide; 901-904 are invented for forms the
# reference names no code for.
_FORMS = (
    _Form("53", "Tablett", "Tab", "solid"),
    _Form("901", "Kapsel, hard", "Kaps", "solid"),
    _Form("5", "Dispergerbar tablett", "Disp tab", "solid"),
    _Form("10", "Oppløselig tablett", "Oppl tab", "solid"),
    _Form("9", "Mikstur", "Mikst", "liquid"),
    _Form("14", "Sirup", "Sirup", "liquid"),
    _Form("6", "Dråper", "Dråper", "liquid"),
    _Form("902", "Injeksjonsvæske, oppløsning", "Inj", "injection"),
    _Form("903", "Krem", "Krem", "topical"),
    _Form("904", "Salve", "Salve", "topical"),
)
# Forms only the demo's drugs have (an inhaler, insulin), after the others so that adding
# them changes nothing the random catalogue draws.
_DEMO_FORMS = (
    _Form("905", "Inhalasjonsaerosol, suspensjon", "Inh aerosol", "inhaler"),
    _Form("906", "Injeksjonsvæske, suspensjon", "Inj", "injection"),
)
_ALL_FORMS = _FORMS + _DEMO_FORMS
_FORMS_BY_KIND = {
    kind: [i for i, f in enumerate(_FORMS) if f.kind == kind]
    for kind in ("solid", "liquid", "injection", "topical")
}
_FORM_WEIGHTS = {"53": 12, "901": 5, "5": 1, "10": 1}  # others weight 1
_KIND_WEIGHTS = (("solid", 70), ("liquid", 12), ("injection", 10), ("topical", 8))

_SOLID_STRENGTHS: tuple[str, ...] = (
    "0.5", "1", "2", "2.5", "5", "10", "20", "25", "40", "50", "80", "100", "150", "200", "250",
    "400", "500", "1000",
)  # fmt: skip
_CONCENTRATIONS = ("0.1", "0.5", "1", "2", "2.5", "5", "10", "20", "25", "40", "50", "100")
_RX = (("A", 5), ("B", 10), ("C", 75), ("CF", 5), ("F", 5))
_RELEVANCE = (("1", "Bør unngås", 10), ("2", "Forholdsregler bør tas", 50))
_RELEVANCE_3 = ("3", "Ingen tiltak nødvendig")
_SOURCES = (
    ("1", "Interaksjonsstudier"),
    ("2", "Kasusrapporter"),
    ("3", "Interaksjonsstudier og kasusrapporter"),
    ("4", "Indirekte data"),
)
_AUDIENCE = (("1", "Allmennlege"), ("2", "Spesialist"), ("3", "Sykehus"), ("4", "Apotek"))
_ENZYMES = ("CYP3A4", "CYP2D6", "CYP2C9", "CYP2C19", "CYP1A2", "P-glykoprotein", "OATP1B1")
_EFFECTS = (
    "blødningsrisiko", "QT-forlengelse", "serotonergt syndrom", "sedasjon", "hyperkalemi",
    "hypotensjon", "hypoglykemi", "nyrefunksjonssvikt", "kramper", "bradykardi",
)  # fmt: skip
_CONSEQUENCES = {
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
_MECHANISMS = (
    "{a} hemmer metabolismen av {b} via {z}.",
    "{a} induserer {z} og øker eliminasjonen av {b}.",
    "Farmakodynamisk synergisme: begge bidrar til {e}.",
    "{a} reduserer absorpsjonen av {b} ved kompleksbinding i tarmen.",
    "{a} hemmer den renale utskillelsen av {b}.",
)
_HANDLING = {
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


class _Class(NamedTuple):
    code: str  #: ATC level 4
    name: str
    stem: str  #: ending shared by its substances' names
    members: list[int]  #: substance indexes


class _Substance(NamedTuple):
    id: str
    name: str
    atc: str
    cls: int  #: index into the ATC level-4 classes
    kind: str
    rx: str
    trade: str  #: the originator's brand name
    tidspunkt: str


class _Strength(NamedTuple):
    id: str
    substance: int
    value: str  #: decimal point, for Styrke V
    unit: str
    per: str  #: denominator unit (ml, g) or ""
    tidspunkt: str


class _Generic(NamedTuple):
    id: str
    strength: int
    form: int
    tidspunkt: str


class _Brand(NamedTuple):
    id: str
    name: str  #: Varenavn
    label: str  #: NavnFormStyrke
    substance: int  #: the (first) substance: gives ATC and Reseptgruppe
    form: int
    strengths: tuple[int, ...]  #: SortertVirkestoffMedStyrke
    ref_substance: int  #: RefVirkestoff when no strength can be stated, else -1
    generic: int  #: -1 for brands outside any LegemiddelVirkestoff
    tidspunkt: str


@dataclass
class _Writer:
    out: IO[bytes]
    progress: Callable[[int], None] | None
    entries: int = 0
    reported: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def raw(self, text: str) -> None:
        self.out.write(text.encode("utf-8"))

    def entry(self, kind: str, text: str) -> None:
        self.raw(text)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.entries += 1
        if self.progress is not None and self.entries % PROGRESS_EVERY == 0:
            self.progress(self.entries)
            self.reported = self.entries

    def done(self) -> None:
        if self.progress is not None and self.reported != self.entries:
            self.progress(self.entries)


def _count(kind: str, scale: float) -> int:
    return max(1, round(BASE[kind] * scale))


def _cv(tag: str, value: str, system: str, display: str) -> str:
    return f"<{tag} V={quoteattr(value)} S={quoteattr(OID + system)} DN={quoteattr(display)}/>"


def _cs(tag: str, value: str, display: str) -> str:
    return f"<{tag} V={quoteattr(value)} DN={quoteattr(display)}/>"


def _el(tag: str, text: str) -> str:
    return f"<{tag}>{escape(text)}</{tag}>"


def _decimal(value: str) -> str:
    """Display form of a number: decimal comma, as in NavnFormStyrke."""
    return value.replace(".", ",")


class _Generator:
    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        # what was added later (validity, pack types, the demo's drugs) draws from its own
        # stream, so the rest of a seed's catalogue stays what it was
        self.later = random.Random(seed + 1)  # noqa: S311 - as above
        self.random_substances = 0  #: substances before the demo's: interactions use these
        self.demo_of: dict[str, DemoDrug] = {}  # brand id -> the demo drug it is
        self.today = today
        self.names: set[str] = set()  # membership only, never iterated
        self.classes: list[_Class] = []
        self.class_codes: set[str] = set()
        self.substances: list[_Substance] = []
        self.strengths: list[_Strength] = []
        self.generics: list[_Generic] = []
        self.brands: list[_Brand] = []
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
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(count)
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
        level2 = rng.choice(_ATC2)[0]
        code = level2 + rng.choice(_ATC_LETTERS) + rng.choice(_ATC_LETTERS)
        while code in self.class_codes:
            code = rng.choice(_ATC2)[0] + rng.choice(_ATC_LETTERS) + rng.choice(_ATC_LETTERS)
        self.class_codes.add(code)
        stem = rng.choice(_STEMS)
        name = self.coin((1,), (stem,))
        self.classes.append(_Class(code, f"{name}-{rng.choice(_CLASS_KINDS)}", stem, []))
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
            kind = self.weighted(tuple(_KIND_WEIGHTS))
            trade = self.coin((1, 2), _BRAND_ENDINGS)
            self.substances.append(
                _Substance(
                    self.new_id(), name, atc, cls, kind, self.weighted(_RX), trade, self.timestamp()
                )
            )
            self.plan_strengths(index, kind)

    def plan_strengths(self, substance: int, kind: str) -> None:
        rng = self.rng
        if kind == "solid":
            unit, per = ("mikrog", "") if rng.random() < 0.1 else ("mg", "")
            ladder = _SOLID_STRENGTHS
        else:
            unit, per = "mg", ("g" if kind == "topical" else "ml")
            ladder = _CONCENTRATIONS
        count = rng.choices((1, 2, 3), (35, 35, 30))[0]
        start = rng.randrange(len(ladder) - count + 1)
        picks = sorted(rng.sample(range(start, min(len(ladder), start + count + 3)), count))
        for i in picks:
            self.strengths.append(
                _Strength(self.new_id(), substance, ladder[i], unit, per, self.timestamp())
            )

    def strength_label(self, strength: int) -> str:
        s = self.strengths[strength]
        return f"{_decimal(s.value)} {s.unit}" + (f"/{s.per}" if s.per else "")

    def pick_form(self, kind: str) -> int:
        options = _FORMS_BY_KIND[kind]
        weights = [_FORM_WEIGHTS.get(_FORMS[i].code, 1) for i in options]
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
            self.generics.append(_Generic(self.new_id(), pair[0], pair[1], self.timestamp()))

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
            _Brand(
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
            company = rng.choice([c for c in _COMPANIES if c not in used] or list(_COMPANIES))
            used.append(company)
            name = self.brand_name(substance, company, originator)
            form = _FORMS[g.form]
            label = f"{name} {form.short} {self.strength_label(g.strength)}"
            self.add_brand(name, label, substance, g.form, strengths=(g.strength,), generic=generic)
        free = [i for i in range(len(self.strengths)) if i not in in_group] or list(
            range(len(self.strengths))
        )
        for _ in range(ungrouped):  # a strength and form no LegemiddelVirkestoff lists
            strength = rng.choice(free)
            substance = self.strengths[strength].substance
            form_index = self.pick_form(self.substances[substance].kind)
            name = self.brand_name(substance, rng.choice(_COMPANIES), rng.random() < 0.5)
            label = f"{name} {_FORMS[form_index].short} {self.strength_label(strength)}"
            self.add_brand(name, label, substance, form_index, strengths=(strength,))
        topical = _FORMS_BY_KIND["topical"]
        creams = [i for i, s in enumerate(self.substances) if s.kind == "topical"] or list(
            range(len(self.substances))
        )
        for _ in range(by_substance):  # no strength can be stated: RefVirkestoff
            substance = rng.choice(creams)
            form_index = rng.choice(topical)
            name = f"{self.substances[substance].name} {rng.choice(_COMPANIES)}"
            label = f"{name} {_FORMS[form_index].short}"
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
            form_index = _FORMS_BY_KIND["solid"][0]
            name = f"{a.name}/{b.name} {rng.choice(_COMPANIES)}"
            strengths = f"{self.strength_label(first)}/{self.strength_label(second)}"
            label = f"{name} {_FORMS[form_index].short} {strengths}"
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
        substances: dict[str, int] = {}
        forms = {f.code: i for i, f in enumerate(_ALL_FORMS)}
        for drug in DEMO_DRUGS:
            stamp = self.later_timestamp()
            if drug.substance not in substances:
                substances[drug.substance] = len(self.substances)
                self.classes.append(_Class(drug.atc[:5], drug.substance, "", []))
                self.substances.append(
                    _Substance(
                        self.later_id(), drug.substance, drug.atc, len(self.classes) - 1,
                        _ALL_FORMS[forms[drug.form]].kind, drug.rx, drug.brand, stamp,
                    )
                )  # fmt: skip
            value, unit, per = drug.strength
            self.strengths.append(
                _Strength(self.later_id(), substances[drug.substance], value, unit, per, stamp)
            )
            form = forms[drug.form]
            label = f"{drug.brand} {_ALL_FORMS[form].short} {self.strength_label(-1)}"
            self.brands.append(
                _Brand(
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

    def validity(self, brand: _Brand) -> list[str]:
        """Reseptgyldighet [M 2470-2490]: a demo drug's own; antibiotics (ATC J01) ten days,
        as the guide says [G 5.9]; most others a year, a few none (the e-resept default
        applies), and a few a week for women and a year for men (as isotretinoin)."""
        demo = self.demo_of.get(brand.id)
        roll = self.later.random()
        if demo is not None:
            durations = [("", demo.validity)]
        elif self.substances[brand.substance].atc.startswith("J01"):
            durations = [("", "P10D")]
        elif roll < 0.01:
            durations = [("2", "P7D"), ("1", "P1Y")]
        elif roll < 0.75:
            durations = [("", "P1Y")]
        else:
            return []
        lines = []
        for sex, duration in durations:
            lines.append("<Reseptgyldighet>")
            if sex:
                display = "Kvinne" if sex == "2" else "Mann"
                lines.append(f"  {_cs('Kjonn', sex, display)}")
            lines += [f"  {_el('Varighet', duration)}", "</Reseptgyldighet>"]
        return lines

    # -- write --------------------------------------------------------------------------------

    def oppf(self, kind: str, tidspunkt: str, body: str) -> str:
        return (
            f"    <Oppf{kind}>\n"
            f"      <Id>{self.new_id()}</Id>\n"
            f"      <Tidspunkt>{tidspunkt}</Tidspunkt>\n"
            '      <Status V="A" DN="Aktiv oppføring"/>\n'
            f"{body}"
            f"    </Oppf{kind}>\n"
        )

    def legemiddel(self, substance: int, form: int, label: str, package: bool) -> list[str]:
        """The shared ``Legemiddel`` part (§5), in the fixture's order."""
        s = self.substances[substance]
        rx = "C" if package and s.rx == "CF" else s.rx
        f = _ALL_FORMS[form]
        return [
            _cv("Atc", s.atc, "7180", s.name),
            _el("NavnFormStyrke", label),
            _cs("Reseptgruppe", rx, f"Reseptgruppe {rx}"),
            _cv("LegemiddelformKort", f.code, "7448", f.name),
            _cs("Preparattype", "7", "Legemiddel"),
            _cs("TypeSoknadSlv", "1", "Skal ikke søkes"),
        ]

    @staticmethod
    def entity(tag: str, lines: list[str], ns: str = FORSKRIVNING) -> str:
        opening = f'      <{tag} xmlns="{ns}">\n' if ns else f"      <{tag}>\n"
        inner = "".join(f"        {line}\n" for line in lines)
        return f"{opening}{inner}      </{tag}>\n"

    @staticmethod
    def sorted_strengths(ids: list[str]) -> list[str]:
        lines = []
        for n, ref in enumerate(ids, start=1):
            lines += [
                "<SortertVirkestoffMedStyrke>",
                f"  <Sortering>{n}</Sortering>",
                f"  <RefVirkestoffMedStyrke>{ref}</RefVirkestoffMedStyrke>",
                "</SortertVirkestoffMedStyrke>",
            ]
        return lines

    def write_brands(self, w: _Writer) -> None:
        w.raw("  <KatLegemiddelMerkevare>\n")
        for b in self.brands:
            form = _ALL_FORMS[b.form]
            lines = [*self.legemiddel(b.substance, b.form, b.label, package=False)]
            lines += [
                _el("Id", b.id),
                _el("Varenavn", b.name),
                _el("LegemiddelformLang", form.name),
            ]
            if b.ref_substance >= 0:
                lines.append(_el("RefVirkestoff", self.substances[b.ref_substance].id))
            lines += self.sorted_strengths([self.strengths[s].id for s in b.strengths])
            lines += self.validity(b)
            w.entry(
                "LegemiddelMerkevare",
                self.oppf(
                    "LegemiddelMerkevare", b.tidspunkt, self.entity("LegemiddelMerkevare", lines)
                ),
            )
        w.raw("  </KatLegemiddelMerkevare>\n")

    def package_info(self, brand: _Brand, demo: Pack | None = None) -> list[str]:
        rng = self.rng
        kind = _ALL_FORMS[brand.form].kind
        if demo is not None:
            unit, unit_name = demo.unit, demo.unit
            ptype, sizes, amount = ("909", demo.kind), demo.size, demo.amount
        elif kind == "solid":
            size = rng.choice((10, 14, 20, 28, 30, 50, 56, 98, 100))
            unit, unit_name = "stk", "stykk"
            # 909: an invented code (kodeverk 7449 lists blisters only with pipettes)
            ptype = ("8", "Boks") if self.later.random() < 0.4 else ("909", "Blisterpakning")
            sizes, amount = str(size), str(size)
        elif kind == "injection":
            count, volume = rng.choice((1, 5, 10)), rng.choice(("1", "2", "5", "0.5"))
            unit, unit_name, ptype = "ml", "milliliter", ("6", "Ampulle av glass")
            sizes, amount = f"{count}x{_decimal(volume)}", volume
        else:
            size = rng.choice((15, 30, 50, 100) if kind == "topical" else (100, 150, 200, 250))
            unit, unit_name = ("g", "gram") if kind == "topical" else ("ml", "milliliter")
            ptype = ("2", "Boks av aluminium") if kind == "topical" else ("1", "(ikke angitt)")
            sizes, amount = str(size), str(size)
        return [
            "<Pakningsinfo>",
            f"  <RefLegemiddelMerkevare>{brand.id}</RefLegemiddelMerkevare>",
            f"  {_el('Pakningsstr', sizes)}",
            f"  {_cv('EnhetPakning', unit, '7452', unit_name)}",
            f"  {_cv('Pakningstype', ptype[0], '7449', ptype[1])}",
            # Pakningsstr = Antall x Mengde [M 2718-2760]: "5x3" ml is five of 3 ml
            *([f"  {_el('Antall', sizes.split('x')[0])}"] if "x" in sizes else []),
            f"  {_el('Mengde', amount)}",
            "</Pakningsinfo>",
        ]

    def write_packages(self, w: _Writer, count: int) -> None:
        """``count`` random packages, then the demo drugs' (never deregistered)."""
        rng = self.rng
        total = sum(self.packages_of)
        varenr = rng.sample(range(1_000_000), total)
        deregistered = set(rng.sample(range(count), min(count, max(1, round(0.03 * count)))))
        w.raw("  <KatLegemiddelpakning>\n")
        n = 0
        for b, brand in enumerate(self.brands):
            demo = self.demo_of.get(brand.id)
            for p in range(self.packages_of[b]):
                lines = self.legemiddel(brand.substance, brand.form, brand.label, package=True)
                group = self.exchange.get(brand.generic)
                if group is not None:
                    lines += [
                        "<PakningByttegruppe>",
                        f"  <RefByttegruppe>{group}</RefByttegruppe>",
                        f"  <GyldigFraDato>{self.day(3000, 30).isoformat()}</GyldigFraDato>",
                        "</PakningByttegruppe>",
                    ]
                lines += [_el("Id", self.new_id()), _el("Varenr", f"{varenr[n]:06d}")]
                lines += self.package_info(brand, demo.packs[p] if demo else None)
                upcoming = (
                    rng.random() < 0.01 and n not in deregistered and demo is None
                )  # marketed from a future day
                marketed = self.day(-10, -60) if upcoming else self.day(5000, 100)
                lines += [
                    "<Markedsforingsinfo>",
                    f"  {_el('Markedsforingsdato', marketed.isoformat())}",
                ]
                if n in deregistered:
                    ended = self.day(85, 1)
                    lines.append(f"  {_el('AvregDato', ended.isoformat())}")
                lines.append("</Markedsforingsinfo>")
                w.entry(
                    "Legemiddelpakning",
                    self.oppf(
                        "Legemiddelpakning",
                        self.timestamp(),
                        self.entity("Legemiddelpakning", lines),
                    ),
                )
                n += 1
        w.raw("  </KatLegemiddelpakning>\n")

    def write_substances(self, w: _Writer) -> None:
        w.raw("  <KatVirkestoff>\n")
        for s in self.substances:
            body = self.entity("Virkestoff", [_el("Id", s.id), _el("Navn", s.name)])
            w.entry("Virkestoff", self.oppf("Virkestoff", s.tidspunkt, body))
        for st in self.strengths:
            lines = [_el("Id", st.id), f"<Styrke V={quoteattr(st.value)} U={quoteattr(st.unit)}/>"]
            if st.per:
                lines.append(f'<StyrkeNevner V="1" U={quoteattr(st.per)}/>')
            lines += [
                _el("RefVirkestoff", self.substances[st.substance].id),
                _cv("Styrkeoperator", "L", "7445", "Lik"),
            ]
            body = self.entity("VirkestoffMedStyrke", lines)
            w.entry("VirkestoffMedStyrke", self.oppf("Virkestoff", st.tidspunkt, body))
        w.raw("  </KatVirkestoff>\n")

    def write_generics(self, w: _Writer) -> None:
        w.raw("  <KatLegemiddelVirkestoff>\n")
        for g in self.generics:
            strength = self.strengths[g.strength]
            substance = self.substances[strength.substance]
            label = f"{substance.name} {_FORMS[g.form].short} {self.strength_label(g.strength)}"
            lines = self.legemiddel(strength.substance, g.form, label, package=False)
            lines.append(_el("Id", g.id))
            lines += self.sorted_strengths([strength.id])
            body = self.entity("LegemiddelVirkestoff", lines)
            w.entry("LegemiddelVirkestoff", self.oppf("LegemiddelVirkestoff", g.tidspunkt, body))
        w.raw("  </KatLegemiddelVirkestoff>\n")

    # -- interactions -------------------------------------------------------------------------

    def substance_group(self, pool: list[int], cum: list[float]) -> tuple[list[str], str, str]:
        """One Substansgruppe: its XML lines, a key for uniqueness, and a name for texts."""
        rng = self.rng
        substance = pool[min(bisect_right(cum, rng.random() * cum[-1]), len(pool) - 1)]
        s = self.substances[substance]
        c = self.classes[s.cls]
        members = [i for i in c.members if i < len(pool)]  # not the ones not yet assessed
        roll = rng.random()
        if roll < 0.12:  # a whole ATC class (level 4): found by prefix
            members_atc = [(c.code, c.name)]
            title: str | None = c.name
        elif roll < 0.17 and len(members) > 1:  # a named group of several substances
            picked = sorted(rng.sample(members, min(len(members), rng.choice((2, 3)))))
            members_atc = [(self.substances[i].atc, self.substances[i].name) for i in picked]
            title = c.name
        else:
            members_atc = [(s.atc, s.name)]
            title = None
        lines = ["<Substansgruppe>"]
        if title is not None:
            lines.append(f"  {_el('Navn', title)}")
        for atc, name in members_atc:
            lines += [
                "  <Substans>",
                f"    {_el('Substans', name)}",
                f"    {_cv('Atc', atc, '7180', name)}",
                "  </Substans>",
            ]
        lines.append("</Substansgruppe>")
        return lines, ",".join(a for a, _ in members_atc), title or s.name

    def write_interactions(self, w: _Writer, count: int, not_assessed: int) -> None:
        rng = self.rng
        known = self.random_substances or len(self.substances)
        reserve = not_assessed if known - not_assessed >= 2 else 0
        pool = list(range(known - reserve))
        cum = list(accumulate(min(rng.paretovariate(1.1), 50.0) for _ in pool))
        seen: set[tuple[str, str]] = set()
        w.raw("  <KatInteraksjon>\n")
        for n in range(count):
            for _ in range(30):
                a_lines, a_key, a_name = self.substance_group(pool, cum)
                b_lines, b_key, b_name = self.substance_group(pool, cum)
                key = (min(a_key, b_key), max(a_key, b_key))
                overlap = any(
                    x.startswith(y) or y.startswith(x)
                    for x in a_key.split(",")
                    for y in b_key.split(",")
                )
                if key not in seen and not overlap:
                    break
            seen.add(key)
            w.entry("Interaksjon", self.interaction(n, a_lines, a_name, b_lines, b_name))
        for i in range(not_assessed):
            s = self.substances[known - 1 - i % known]  # the newest random substances
            body = self.entity("InteraksjonIkkeVurdert", [_cv("Atc", s.atc, "7180", s.name)], "")
            w.entry("InteraksjonIkkeVurdert", self.oppf("Interaksjon", self.timestamp(), body))
        w.raw("  </KatInteraksjon>\n")

    def interaction(
        self, n: int, a_lines: list[str], a_name: str, b_lines: list[str], b_name: str
    ) -> str:
        rng = self.rng
        roll = rng.random() * 100
        relevance, label = _RELEVANCE_3
        for value, display, share in _RELEVANCE:
            if roll < share:
                relevance, label = value, display
                break
            roll -= share
        words = {"a": a_name, "b": b_name, "e": rng.choice(_EFFECTS), "z": rng.choice(_ENZYMES)}
        lines = [_el("Id", self.new_id()), _cs("Relevans", relevance, label)]
        if rng.random() < 0.1:
            dose = rng.choice((10, 20, 40, 80, 100, 200))
            lines.append(
                _el(
                    "Situasjonskriterium",
                    f"Gjelder kun ved doser av {b_name} over {dose} mg daglig.",
                )
            )
        lines.append(_el("KliniskKonsekvens", rng.choice(_CONSEQUENCES[relevance]).format(**words)))
        if rng.random() < 0.85:
            lines.append(_el("Interaksjonsmekanisme", rng.choice(_MECHANISMS).format(**words)))
        lines.append(_cs("Kildegrunnlag", *rng.choice(_SOURCES)))
        handling = rng.choice(_HANDLING[relevance]).format(**words)
        if handling:
            lines.append(_el("Handtering", handling))
        if rng.random() < 0.3:
            for value, display in sorted(rng.sample(_AUDIENCE, rng.choice((1, 2)))):
                lines.append(_cv("Visningsregel", value, "7442", display))
        lines += a_lines + b_lines
        for r in range(rng.choices((0, 1, 2), (60, 30, 10))[0]):
            lines += [
                "<Referanse>",
                f"  {_el('Kilde', f'Oppdiktet kilde {n + 1}.{r + 1} (syntetiske testdata)')}",
                f'  <Lenke V="https://example.org/fest-syntetisk/interaksjon-{n + 1}-{r + 1}"/>',
                "</Referanse>",
            ]
        return self.oppf("Interaksjon", self.timestamp(), self.entity("Interaksjon", lines, ""))


def generate(
    out: IO[bytes],
    *,
    scale: float = 1.0,
    seed: int = 2026,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
    demo: bool = False,
) -> dict[str, int]:
    """Write a synthetic FEST extract to `out`; returns counts per entity kind. With
    ``demo``, the demo lists' drugs (:mod:`pll.catalog.demo_drugs`) are in it too."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    today = today or DEFAULT_TODAY
    gen = _Generator(seed, today)
    gen.plan_substances(_count("Virkestoff", scale))
    gen.plan_generics(_count("LegemiddelVirkestoff", scale))
    gen.plan_brands(_count("LegemiddelMerkevare", scale))
    packages = _count("Legemiddelpakning", scale)
    gen.plan_packages(packages)
    if demo:
        gen.plan_demo()

    w = _Writer(out, progress)
    w.raw(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<!-- Synthetic FEST M30 extract (pll.catalog.generate, scale={scale}, seed={seed}): "
        "every drug, name, id, article number and text is invented. -->\n"
        f'<FEST xmlns="{M30}">\n'
        f"  <HentetDato>{today.isoformat()}T03:10:47</HentetDato>\n"
    )
    gen.write_brands(w)
    gen.write_packages(w, packages)
    gen.write_substances(w)
    gen.write_generics(w)
    gen.write_interactions(w, _count("Interaksjon", scale), _count("InteraksjonIkkeVurdert", scale))
    w.raw("</FEST>\n")
    w.done()
    return {k: w.counts.get(k, 0) for k in KINDS}
