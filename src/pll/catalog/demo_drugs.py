"""The drugs the demo lists use, as the generated catalogue lists them.

``pll demo`` puts these on its patients' lists (:mod:`pll.services.demo`) and
:func:`pll.catalog.generate.generate` writes each as a brand with its strength, form and
packages, so every demo entry is a drug the catalogue has, in a form its dosage fits (a
cream in applications, an inhaler in inhalations). The brand names are the usual Norwegian
ones a doctor types; everything else about them (ids, article numbers, packs) is invented.
"""

from __future__ import annotations

from typing import NamedTuple


class Pack(NamedTuple):
    kind: str  #: Pakningstype's display name (kodeverk 7449)
    size: str  #: Pakningsstr, decimal comma: "30", "5x3"
    unit: str  #: EnhetPakning (kodeverk 7452): stk, ml, g, dose
    amount: str  #: Mengde per container, decimal point


class DemoDrug(NamedTuple):
    brand: str  #: Varenavn
    substance: str  #: Virkestoff's Navn
    atc: str  #: the real WHO code
    form: str  #: LegemiddelformKort's code in the generator's form table
    strength: tuple[str, str, str]  #: Styrke V, its unit, StyrkeNevner's unit ("" for none)
    rx: str  #: Reseptgruppe
    validity: str  #: Reseptgyldighet (antibiotics ten days, as the guide says)
    packs: tuple[Pack, ...]


_BLISTER = "Blisterpakning"
_TABLETS = (Pack(_BLISTER, "30", "stk", "30"), Pack("Boks", "100", "stk", "100"))


def _tablet(
    brand: str, substance: str, atc: str, mg: str, rx: str = "C", unit: str = "mg"
) -> DemoDrug:
    return DemoDrug(brand, substance, atc, "53", (mg, unit, ""), rx, "P1Y", _TABLETS)


DEMO_DRUGS: tuple[DemoDrug, ...] = (
    DemoDrug(
        "Paracet", "Paracetamol", "N02BE01", "53", ("500", "mg", ""), "F", "P1Y",
        (Pack(_BLISTER, "20", "stk", "20"), Pack("Boks", "100", "stk", "100")),
    ),
    _tablet("Metformin Nordfarma", "Metformin", "A10BA02", "500"),
    _tablet("Lipitor", "Atorvastatin", "C10AA05", "20"),
    _tablet("Norvasc", "Amlodipin", "C08CA01", "5"),
    DemoDrug(
        "Triatec", "Ramipril", "C09AA05", "901", ("5", "mg", ""), "C", "P1Y",
        (Pack(_BLISTER, "28", "stk", "28"), Pack(_BLISTER, "98", "stk", "98")),
    ),
    _tablet("Levaxin", "Levotyroksin", "H03AA01", "50", unit="mikrog"),
    _tablet("Somac", "Pantoprazol", "A02BC02", "20"),
    _tablet("Eliquis", "Apiksaban", "B01AF02", "5"),
    _tablet("Selo-Zok", "Metoprolol", "C07AB02", "50"),
    _tablet("Furix", "Furosemid", "C03CA01", "40"),
    _tablet("Zoloft", "Sertralin", "N06AB06", "50"),
    _tablet("Zoloft", "Sertralin", "N06AB06", "100"),
    _tablet("Imovane", "Zopiklon", "N05CF01", "5", rx="B"),
    _tablet("Imovane", "Zopiklon", "N05CF01", "7.5", rx="B"),
    DemoDrug(
        "Ventoline", "Salbutamol", "R03AC02", "905", ("0.1", "mg", "dose"), "C", "P1Y",
        (Pack("Inhalator", "200", "dose", "200"),),
    ),
    DemoDrug(
        "Alendronat Nordfarma", "Alendronsyre", "M05BA04", "53", ("70", "mg", ""), "C", "P1Y",
        (Pack(_BLISTER, "4", "stk", "4"), Pack(_BLISTER, "12", "stk", "12")),
    ),
    _tablet("Prednisolon Nordfarma", "Prednisolon", "H02AB06", "5"),
    DemoDrug(
        "Apocillin", "Fenoksymetylpenicillin", "J01CE02", "53", ("660", "mg", ""), "C", "P10D",
        (Pack(_BLISTER, "30", "stk", "30"), Pack(_BLISTER, "40", "stk", "40")),
    ),
    DemoDrug(
        "Metotreksat Nordfarma", "Metotreksat", "L04AX03", "53", ("2.5", "mg", ""), "C", "P1Y",
        (Pack(_BLISTER, "24", "stk", "24"), Pack("Boks", "100", "stk", "100")),
    ),
    DemoDrug(
        "Locoid", "Hydrokortisonbutyrat", "D07AB02", "903", ("1", "mg", "g"), "C", "P1Y",
        (Pack("Tube", "30", "g", "30"), Pack("Tube", "100", "g", "100")),
    ),
    DemoDrug(
        "Insulatard", "Insulin (human)", "A10AC01", "906", ("100", "IE", "ml"), "C", "P1Y",
        (Pack("Sylinderampulle", "5x3", "ml", "3"),),
    ),
    DemoDrug(
        "Duphalac", "Laktulose", "A06AD11", "9", ("667", "mg", "ml"), "F", "P1Y",
        (Pack("Flaske", "500", "ml", "500"),),
    ),
)  # fmt: skip


class DemoInteraction(NamedTuple):
    """An interaction between demo drugs, written into the demo catalogue as FEST writes one
    (``KatInteraksjon``): each side an ATC code (a substance, or a whole level-4 class) with
    its name, then the relevance (kodeverk 7483) and the clinical texts."""

    a: tuple[str, str]
    b: tuple[str, str]
    relevance: tuple[str, str]
    consequence: str
    mechanism: str
    handling: str
    source: tuple[str, str]  #: Kildegrunnlag


#: The random catalogue's interactions name only its invented substances, so without these the
#: demo lists would never show one (issue 16). Apixaban with an SSRI: a real, common pair,
#: with the relevance and advice the Norwegian interaction database gives it.
DEMO_INTERACTIONS: tuple[DemoInteraction, ...] = (
    DemoInteraction(
        ("B01AF02", "Apiksaban"),
        ("N06AB", "Selektive serotoninreopptakshemmere (SSRI)"),
        ("2", "Forholdsregler bør tas"),
        "Økt blødningsrisiko, særlig fra mage-tarmkanalen.",
        "Farmakodynamisk synergisme: SSRI hemmer trombocyttenes opptak av serotonin og "
        "svekker trombocyttaggregasjonen, som legger seg til apiksabans antikoagulerende "
        "effekt.",
        "Følg pasienten med tanke på tegn til blødning, særlig de første ukene. Vurder "
        "protonpumpehemmer ved økt risiko for blødning fra mage-tarmkanalen.",
        ("3", "Interaksjonsstudier og kasusrapporter"),
    ),
)
