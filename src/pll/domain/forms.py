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


SOLID_TABLET = FormKind("tablett", ("tablett",))
SOLID_CAPSULE = FormKind("kapsel", ("kapsel",))
EFFERVESCENT = FormKind("brusetablett", ("brusetablett", "tablett"))
CHEWABLE = FormKind("tyggetablett", ("tyggetablett", "tablett"))
LOZENGE = FormKind("sugetablett", ("sugetablett", "tablett"))
LIQUID = FormKind("flytende form til munn", ("ml", "dråpe"))
DROPS = FormKind("dråper", ("dråpe", "ml"))
INJECTION = FormKind("injeksjon eller infusjon", ("ml", "IE", "mg"))
TOPICAL = FormKind("krem, salve eller gel", ("påføring",))
PATCH = FormKind("plaster", ("plaster",))
INHALER = FormKind("inhalasjon", ("inhalasjon", "dose"))
SPRAY = FormKind("spray", ("dose",))
SUPPOSITORY = FormKind("stikkpille", ("stikkpille",))
SACHET = FormKind("pulver eller granulat", ("pose", "dose"))

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
