"""Writing the drug catalogues: brands (``KatLegemiddelMerkevare``, with prescription
validity), packages (``KatLegemiddelpakning``, with pack size, exchange group and marketing
dates) and active-substance groups (``KatLegemiddelVirkestoff``), from a :class:`.Plan`.
"""

from __future__ import annotations

from pll.catalog.demo_drugs import Pack
from pll.catalog.generate.m30 import Writer, cs, cv, el, entity
from pll.catalog.generate.plan import Brand, Plan
from pll.catalog.generate.vocabulary import ALL_FORMS, FORMS, decimal


def legemiddel(plan: Plan, substance: int, form: int, label: str, package: bool) -> list[str]:
    """The shared ``Legemiddel`` part (§5), in the fixture's order."""
    s = plan.substances[substance]
    rx = "C" if package and s.rx == "CF" else s.rx
    f = ALL_FORMS[form]
    return [
        cv("Atc", s.atc, "7180", s.name),
        el("NavnFormStyrke", label),
        cs("Reseptgruppe", rx, f"Reseptgruppe {rx}"),
        cv("LegemiddelformKort", f.code, "7448", f.name),
        cs("Preparattype", "7", "Legemiddel"),
        cs("TypeSoknadSlv", "1", "Skal ikke søkes"),
    ]


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


def write_brands(plan: Plan, w: Writer) -> None:
    w.raw("  <KatLegemiddelMerkevare>\n")
    for b in plan.brands:
        form = ALL_FORMS[b.form]
        lines = [*legemiddel(plan, b.substance, b.form, b.label, package=False)]
        lines += [
            el("Id", b.id),
            el("Varenavn", b.name),
            el("LegemiddelformLang", form.name),
        ]
        if b.ref_substance >= 0:
            lines.append(el("RefVirkestoff", plan.substances[b.ref_substance].id))
        lines += sorted_strengths([plan.strengths[s].id for s in b.strengths])
        lines += validity(plan, b)
        w.entry(
            "LegemiddelMerkevare",
            w.oppf("LegemiddelMerkevare", b.tidspunkt, entity("LegemiddelMerkevare", lines)),
        )
    w.raw("  </KatLegemiddelMerkevare>\n")


def validity(plan: Plan, brand: Brand) -> list[str]:
    """Reseptgyldighet [M 2470-2490]: a demo drug's own; antibiotics (ATC J01) ten days,
    as the guide says [G 5.9]; most others a year, a few none (the e-resept default
    applies), and a few a week for women and a year for men (as isotretinoin)."""
    demo = plan.demo_of.get(brand.id)
    roll = plan.later.random()
    if demo is not None:
        durations = [("", demo.validity)]
    elif plan.substances[brand.substance].atc.startswith("J01"):
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
            lines.append(f"  {cs('Kjonn', sex, display)}")
        lines += [f"  {el('Varighet', duration)}", "</Reseptgyldighet>"]
    return lines


def package_info(plan: Plan, brand: Brand, demo: Pack | None = None) -> list[str]:
    rng = plan.rng
    kind = ALL_FORMS[brand.form].kind
    if demo is not None:
        unit, unit_name = demo.unit, demo.unit
        ptype, sizes, amount = ("909", demo.kind), demo.size, demo.amount
    elif kind == "solid":
        size = rng.choice((10, 14, 20, 28, 30, 50, 56, 98, 100))
        unit, unit_name = "stk", "stykk"
        # 909: an invented code (kodeverk 7449 lists blisters only with pipettes)
        ptype = ("8", "Boks") if plan.later.random() < 0.4 else ("909", "Blisterpakning")
        sizes, amount = str(size), str(size)
    elif kind == "injection":
        count, volume = rng.choice((1, 5, 10)), rng.choice(("1", "2", "5", "0.5"))
        unit, unit_name, ptype = "ml", "milliliter", ("6", "Ampulle av glass")
        sizes, amount = f"{count}x{decimal(volume)}", volume
    else:
        size = rng.choice((15, 30, 50, 100) if kind == "topical" else (100, 150, 200, 250))
        unit, unit_name = ("g", "gram") if kind == "topical" else ("ml", "milliliter")
        ptype = ("2", "Boks av aluminium") if kind == "topical" else ("1", "(ikke angitt)")
        sizes, amount = str(size), str(size)
    return [
        "<Pakningsinfo>",
        f"  <RefLegemiddelMerkevare>{brand.id}</RefLegemiddelMerkevare>",
        f"  {el('Pakningsstr', sizes)}",
        f"  {cv('EnhetPakning', unit, '7452', unit_name)}",
        f"  {cv('Pakningstype', ptype[0], '7449', ptype[1])}",
        # Pakningsstr = Antall x Mengde [M 2718-2760]: "5x3" ml is five of 3 ml
        *([f"  {el('Antall', sizes.split('x')[0])}"] if "x" in sizes else []),
        f"  {el('Mengde', amount)}",
        "</Pakningsinfo>",
    ]


def write_packages(plan: Plan, w: Writer, count: int) -> None:
    """``count`` random packages, then the demo drugs' (never deregistered)."""
    rng = plan.rng
    total = sum(plan.packages_of)
    varenr = rng.sample(range(1_000_000), total)
    deregistered = set(rng.sample(range(count), min(count, max(1, round(0.03 * count)))))
    w.raw("  <KatLegemiddelpakning>\n")
    n = 0
    for b, brand in enumerate(plan.brands):
        demo = plan.demo_of.get(brand.id)
        for p in range(plan.packages_of[b]):
            lines = legemiddel(plan, brand.substance, brand.form, brand.label, package=True)
            group = plan.exchange.get(brand.generic)
            if group is not None:
                lines += [
                    "<PakningByttegruppe>",
                    f"  <RefByttegruppe>{group}</RefByttegruppe>",
                    f"  <GyldigFraDato>{plan.day(3000, 30).isoformat()}</GyldigFraDato>",
                    "</PakningByttegruppe>",
                ]
            lines += [el("Id", plan.new_id()), el("Varenr", f"{varenr[n]:06d}")]
            lines += package_info(plan, brand, demo.packs[p] if demo else None)
            upcoming = (
                rng.random() < 0.01 and n not in deregistered and demo is None
            )  # marketed from a future day
            marketed = plan.day(-10, -60) if upcoming else plan.day(5000, 100)
            lines += [
                "<Markedsforingsinfo>",
                f"  {el('Markedsforingsdato', marketed.isoformat())}",
            ]
            if n in deregistered:
                ended = plan.day(85, 1)
                lines.append(f"  {el('AvregDato', ended.isoformat())}")
            lines.append("</Markedsforingsinfo>")
            w.entry(
                "Legemiddelpakning",
                w.oppf(
                    "Legemiddelpakning",
                    plan.timestamp(),
                    entity("Legemiddelpakning", lines),
                ),
            )
            n += 1
    w.raw("  </KatLegemiddelpakning>\n")


def write_generics(plan: Plan, w: Writer) -> None:
    w.raw("  <KatLegemiddelVirkestoff>\n")
    for g in plan.generics:
        strength = plan.strengths[g.strength]
        substance = plan.substances[strength.substance]
        label = f"{substance.name} {FORMS[g.form].short} {plan.strength_label(g.strength)}"
        lines = legemiddel(plan, strength.substance, g.form, label, package=False)
        lines.append(el("Id", g.id))
        lines += sorted_strengths([strength.id])
        body = entity("LegemiddelVirkestoff", lines)
        w.entry("LegemiddelVirkestoff", w.oppf("LegemiddelVirkestoff", g.tidspunkt, body))
    w.raw("  </KatLegemiddelVirkestoff>\n")
