"""Which dose units a pharmaceutical form takes, and how much of a unit a day is plausible
(DESIGN §3 rule 6: "implausible doses and units that do not fit the drug's form").

A drug's form comes from FEST (``LegemiddelformKort``, kodeverk 7448, its display name, for
example ``Tablett``, ``Kapsel, hard``, ``Mikstur``, ``Krem``). The form names are many and
grow; what a dose may be measured in follows from what kind of form it is, so a form is
sorted into a :class:`FormKind` by the words of its name, the most specific first
(``Orale dråper`` is a liquid, ``Inhalasjonspulver`` an inhaler, not a powder).

A form PLL cannot sort (or a medicine with no FEST form, named by text only) takes any unit:
the check cannot judge it, and says nothing rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class FormKind:
    name: str  #: in Norwegian, for messages: "fast form til munn", "krem eller salve", ...
    units: tuple[str, ...]  #: the dose units it takes, the usual one first
    #: what a prescription's quantity may be counted in besides packages (see
    #: :func:`quantity_units_for`): what is *dispensed* (pieces, grams of a cream, ml of a
    #: bottle), not what one dose is (a cream is dosed in påføringer, dispensed in grams)
    quantity: tuple[str, ...]


_PIECES = "stk"
SOLID_TABLET = FormKind("tablett", ("tablett",), (_PIECES, "tablett"))
SOLID_CAPSULE = FormKind("kapsel", ("kapsel",), (_PIECES, "kapsel"))
EFFERVESCENT = FormKind("brusetablett", ("brusetablett", "tablett"), (_PIECES, "brusetablett"))
CHEWABLE = FormKind("tyggetablett", ("tyggetablett", "tablett"), (_PIECES, "tyggetablett"))
LOZENGE = FormKind("sugetablett", ("sugetablett", "tablett"), (_PIECES, "sugetablett"))
LIQUID = FormKind("flytende form til munn", ("ml", "dråpe"), ("ml",))
DROPS = FormKind("dråper", ("dråpe", "ml"), ("ml",))
# ampoules and pens are counted in pieces
INJECTION = FormKind("injeksjon eller infusjon", ("ml", "IE", "mg"), ("ml", "IE", _PIECES))
# tubes in grams, bottles (liniment, skum) in ml
TOPICAL = FormKind("krem, salve eller gel", ("påføring",), ("g", "ml"))
PATCH = FormKind("plaster", ("plaster",), (_PIECES, "plaster"))
# inhalers counted as devices (stk) or doses
INHALER = FormKind("inhalasjon", ("inhalasjon", "dose"), (_PIECES, "dose"))
SPRAY = FormKind("spray", ("dose",), (_PIECES, "dose", "ml"))
SUPPOSITORY = FormKind("stikkpille", ("stikkpille",), (_PIECES, "stikkpille"))
SACHET = FormKind("pulver eller granulat", ("pose", "dose"), ("g", "pose"))

# (words in the form's name, lower case) -> kind; the first rule that matches wins, so the
# specific come before the general ("øyedråper" before "dråper", "inhalasjon" before "pulver")
_RULES: tuple[tuple[tuple[str, ...], FormKind], ...] = (
    (("plaster",), PATCH),
    (("inhalasjon",), INHALER),
    (("injeksjon", "infusjon"), INJECTION),
    (("spray",), SPRAY),
    (("stikkpille", "suppositori"), SUPPOSITORY),
    (("dråper",), DROPS),
    (("krem", "salve", "gel", "liniment", "pasta", "skum", "kutan"), TOPICAL),
    (("mikstur", "sirup", "oppløsning", "suspensjon", "eliksir"), LIQUID),
    (("brusetablett",), EFFERVESCENT),
    (("tyggetablett",), CHEWABLE),
    (("sugetablett", "pastill"), LOZENGE),
    (("kapsel",), SOLID_CAPSULE),
    (("tablett", "drasjé"), SOLID_TABLET),
    (("pulver", "granulat", "dosepose"), SACHET),
)


def kind_of(form: str | None) -> FormKind | None:
    """The kind of a FEST form name, or ``None`` when PLL cannot tell."""
    if not form:
        return None
    name = form.lower()
    return next((kind for words, kind in _RULES if any(w in name for w in words)), None)


def units_for(form: str | None) -> tuple[str, ...] | None:
    """The dose units a form takes, the usual one first; ``None`` when any unit goes."""
    kind = kind_of(form)
    return kind.units if kind is not None else None


#: Every unit a prescription's quantity may be counted in besides packages, for a drug
#: whose form PLL cannot sort (any unit goes; a page offers these).
QUANTITY_UNITS: tuple[str, ...] = tuple(
    dict.fromkeys(unit for _, kind in _RULES for unit in kind.quantity)
)


def quantity_units_for(form: str | None) -> tuple[str, ...] | None:
    """What a prescription's quantity of a drug of this form may be counted in besides
    packages (``stk`` and ``tablett`` for a tablet, ``g`` and ``ml`` for a cream), the usual
    first; ``None`` when any unit goes. These are the units pharmacies dispense in (the
    national ``$getMedication`` gives a tablet prescription as ``92 stk``), separate from
    the dose units of :func:`units_for`."""
    kind = kind_of(form)
    return kind.quantity if kind is not None else None


#: The most of a unit a day that is plausible for any drug of a form that takes it. Past it,
#: a dosage is a blocking finding (an override with a reason lets it through): 99999
#: tablets is a typing error, 21 may be a rare regimen that a doctor must confirm. Units
#: measured by the drug (mg, g) have no limit: their amounts are not judged (no per-drug
#: maximum is fed; :func:`pll.domain.dose_checks.check_dose` says why).
DAILY_LIMITS: dict[str, Decimal] = {
    "tablett": Decimal(20),
    "kapsel": Decimal(20),
    "brusetablett": Decimal(20),
    "tyggetablett": Decimal(20),
    "sugetablett": Decimal(20),
    "ml": Decimal(100),
    "dråpe": Decimal(200),
    "IE": Decimal(500),
    "påføring": Decimal(10),
    "plaster": Decimal(10),
    "inhalasjon": Decimal(40),
    "dose": Decimal(40),
    "stikkpille": Decimal(6),
    "pose": Decimal(10),
}
