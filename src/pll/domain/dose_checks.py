"""Checks of a dosage against its drug (DESIGN §3 rule 6: "implausible doses and units that
do not fit the drug's form"). Pure functions over FHIR ``Dosage`` elements that
:func:`pll.domain.dosage.validate_dosage` has accepted; what is contradictory in a dosage on
its own (a maximum below one dose, zero amounts) is refused there, before these run.

Three findings, each about one entry (or prescription). A finding's code (what an override
names) is the kind and the drug's :attr:`Dosed.key`, not the entry's id, so the override
of a refused new entry still names the finding when the entry is sent again with a new id:

- **unit does not fit the form** (:data:`Kind.UNIT_FORM`): a dose in a unit the drug's FEST
  form does not take (:func:`pll.domain.forms.units_for`), "3 tabletter" of a cream. A change
  that brings the medicine or changes its dosage is refused outright (no override: there is
  no reading of "3 tablets of a cream" to accept); on an entry the change does not dose, it
  is reported, so an old entry dosed wrongly can still be paused or discontinued.
- **implausible amount** (:data:`Kind.IMPLAUSIBLE_DOSE`): the largest amount of a unit on any
  one day past :data:`pll.domain.forms.DAILY_LIMITS`, or past the drug's own maximum when
  the caller has one (``daily_max``, for example FEST's maximum dose).
- **weekly drug dosed more often** (:data:`Kind.WEEKLY_DRUG`): methotrexate
  (:data:`WEEKLY_ATC`) given on more than one day a week.

The last two block (an override with a reason lets them through) when the change brings the
medicine or changes its dosage; that is decided by the caller.

**The largest amount on one day** is taken per step of a tapering (elements with the same
``sequence``, added up), the largest step counting, and per element:

- fixed times (``when``): the number of times on a dosing day, whatever the period
  ("1 tablett morgen annenhver dag" is 1 tablet on its day, not half a tablet a day);
- every N hours: the doses that fit in 24 hours (every 8 hours: 3);
- ``frequency`` per N days: ``frequency`` on the dosing day ("2 ganger hver 3. dag": 2);
  per week or month: spread over its days, at least one ("10 ganger i uken": 2);
- ``dayOfWeek``: ``frequency`` on each named day when the period is a day, else the
  frequency shared among the named days;
- as needed: at most ``maxDosePerPeriod`` when it is in the dose's unit (per hour-long
  periods, scaled to 24 hours), and at most what the timing allows when there is one; with
  neither, the dose :data:`AS_NEEDED_PER_DAY` times a day (a dose "ved behov" with no stated
  maximum is taken up to four times a day, as paracetamol is).

A dosage given as **free text** (all SFM Basis carries, and the editor's "Fritekst") is
read as :mod:`pll.domain.dose_text` describes, for what it states for certain:

- its largest single amount in a unit with a limit ("99999 tabletter morgen": 99999
  tablets) is the least it can mean a day, and is judged as above;
- a unit word its form does not take ("3 tabletter morgen" of a cream) is the blocking
  finding :data:`Kind.TEXT_UNIT_FORM` — blocking, not refused outright as a structured
  misfit is, since a text may say more than the dose ("knus 1 tablett i 5 ml vann" is
  allowed for solid forms taken by mouth; what else a text may mean a doctor confirms with
  an override and a reason);
- methotrexate (:data:`WEEKLY_ATC`) in free text is a :data:`Kind.WEEKLY_DRUG` finding unless
  the text states a weekly pattern ("ukentlig", "i uken", a weekday) and no daily one: free
  text cannot be counted, so it must say it is weekly.

A medicine whose form PLL cannot sort is not judged for the unit, nor a unit with no limit
(mg, g, IE: they are measured by the drug, and no maximum per drug is fed yet — see
:func:`check_dose`).

**Too large to be an amount**: a per-day amount past :data:`MAX_AMOUNT` is refused as bad
input (``InvalidInput``), not judged: no dose is that large, and it is past what the
arithmetic of the limits is exact for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pll.domain import dose_text
from pll.domain.checks import Finding, Kind, Severity
from pll.domain.dosage import amount_text, unit_key
from pll.domain.errors import InvalidInput
from pll.domain.forms import DAILY_LIMITS, kind_of

#: ATC codes of drugs given once a week, whose daily dosing is a known fatal error:
#: methotrexate as a cytostatic (L01BA01) and as an immunosuppressant (L04AX03).
WEEKLY_ATC = ("L01BA01", "L04AX03")
#: How many times a day an as-needed dose with no maximum and no timing counts.
AS_NEEDED_PER_DAY = 4

_DAYS = {"h": Decimal(1) / 24, "d": Decimal(1), "wk": Decimal(7), "mo": Decimal(30)}
_TIME_WORDS = {"time": "h", "timer": "h", "dag": "d", "dager": "d", "døgn": "d"}
_TIME_WORDS |= {"uke": "wk", "uker": "wk", "måned": "mo", "måneder": "mo"}
_LIMITS = {unit_key(unit): (unit, limit) for unit, limit in DAILY_LIMITS.items()}
#: The largest amount of a unit a day the checks judge; past it the dosage is refused as
#: bad input (no dose is a billion units a day, and the arithmetic stays exact below it).
MAX_AMOUNT = Decimal(10) ** 12


@dataclass(frozen=True)
class Dosed:
    """One entry's (or prescription's) medicine with its dosage, as the checks need it."""

    entry: str
    name: str
    dosage: Sequence[Mapping[str, Any]]
    atc: str | None = None
    form: str | None = None  #: FEST ``LegemiddelformKort``; None when not from FEST
    #: what names the drug in a finding's code: its FEST code, else its ATC code, else the
    #: entry's id (the entry's id when not given)
    key: str | None = None

    def code(self, what: str) -> str:
        return f"{what}-{self.key or self.entry}"


def check_dose(
    dosed: Dosed, daily_max: Mapping[str, Decimal] | None = None, *, refuse: bool = True
) -> list[Finding]:
    """Every dose finding on one medicine. Raises ``InvalidInput`` (at ``dosage``) for an
    amount a day past :data:`MAX_AMOUNT`; with ``refuse`` false (a read of what is stored,
    which the reader cannot correct by resending) that amount is an implausible-dose
    finding instead.

    ``daily_max`` is the drug's own most per day by unit (``{"mg": Decimal(4000)}``): it
    replaces :data:`DAILY_LIMITS` for the units it names and adds units that have none.
    **Nothing feeds it yet**: FEST's only maximum dose (``GodkjentMaksimaldose``, under
    ``KatDiagnose``) is marked "foreløpig ikke tatt i bruk" and is given per diagnosis, age
    and weight, none of which a list entry carries, so PLL imports none. Until a source
    exists the checks judge units by :data:`DAILY_LIMITS` only, and units measured by the
    drug (mg, g) are not judged for amount at all.
    """
    if not _structured(dosed.dosage):
        return []
    out = []
    misfit = unit_misfit(dosed)
    if misfit is not None:
        out.append(misfit)
    text = _free_text(dosed.dosage)
    if text is not None:
        out += _text_misfits(dosed, text)
    limits = dict(_LIMITS)
    limits |= {unit_key(u): (u, Decimal(v)) for u, v in (daily_max or {}).items()}
    for key, amount in largest_daily_amounts(dosed.dosage, dosed.form).items():
        if amount > MAX_AMOUNT and refuse:
            raise InvalidInput(
                f"{dosed.name}: the dosage gives {format(amount, 'E')} {key} a day, more than "
                f"any dose can be ({format(MAX_AMOUNT, 'E')}); check the amount.",
                "dosage",
                norwegian=f"{dosed.name}: doseringen gir {format(amount, 'E')} {key} per "
                f"døgn, mer enn noen dose kan være ({format(MAX_AMOUNT, 'E')}); kontroller "
                "mengden.",
            )
        if amount > MAX_AMOUNT:
            out.append(_implausible(dosed, key, amount, limits.get(key, (key, MAX_AMOUNT))))
        elif key in limits and amount > limits[key][1]:
            out.append(_implausible(dosed, key, amount, limits[key]))
    if dosed.atc and dosed.atc.upper().startswith(WEEKLY_ATC):
        if text is not None:
            if not dose_text.states_weekly(text):
                out.append(_weekly_text(dosed, text))
        else:
            days = dosing_days_per_week(dosed.dosage)
            if days > 1:
                out.append(_weekly(dosed, days))
    return out


def unit_misfit(dosed: Dosed) -> Finding | None:
    """The finding that a dose unit does not fit the drug's form, or ``None``. Its details
    say where the first such unit is (``element``: ``[i].doseAndRate[0].doseQuantity``)."""
    kind = kind_of(dosed.form)
    if kind is None or not _structured(dosed.dosage):
        return None
    fits = {unit_key(u) for u in kind.units}
    for i, element in enumerate(dosed.dosage):
        dose = _dose(element)
        if dose is None or unit_key(dose[1]) in fits:
            continue
        taken = " eller ".join(kind.units)
        given = amount_text(Decimal(2), dose[1]).split(" ", 1)[1]
        return Finding(
            Kind.UNIT_FORM,
            Severity.ERROR,
            f"{dosed.name} er {kind.name} ({dosed.form}) og doseres i {taken}, ikke i {given}.",
            (dosed.entry,),
            dosed.code("unit"),
            {"element": f"[{i}].doseAndRate[0].doseQuantity.unit", "units": ",".join(kind.units)},
        )
    return None


def largest_daily_amounts(
    dosage: Sequence[Mapping[str, Any]], form: str | None = None
) -> dict[str, Decimal]:
    """The largest amount of each unit (by :func:`~pll.domain.dosage.unit_key`) taken on any
    one day, as the module describes; ``form`` (FEST's) says what "stk" in a text is."""
    text = _free_text(dosage)
    if text is not None:
        return _text_amounts(text, form)
    steps: dict[int, dict[str, Decimal]] = {}
    for element in dosage if _structured(dosage) else ():
        dose = _dose(element)
        if dose is None:
            continue
        amount, unit = dose
        per_day = _per_day(element, amount, unit)
        if per_day is None:
            continue
        step = steps.setdefault(_sequence(element), {})
        step[unit_key(unit)] = step.get(unit_key(unit), Decimal(0)) + per_day
    out: dict[str, Decimal] = {}
    for step in steps.values():
        for key, amount in step.items():
            out[key] = max(out.get(key, Decimal(0)), amount)
    return out


def dosing_days_per_week(dosage: Sequence[Mapping[str, Any]]) -> Decimal:
    """On how many days a week the medicine is taken, at most over the steps (0 for free
    text): 7 for daily, 3.5 for every other day, 1 for weekly, 2 for a weekly dose on two
    named days. An as-needed dose counts as any day unless its maximum allows one dose a
    week or less."""
    most = Decimal(0)
    for element in dosage if _structured(dosage) else ():
        repeat = _repeat(element)
        days = _days_per_week(repeat)
        if days is None:
            days = _as_needed_days(element)
        most = max(most, days)
    return most


def given_as_text(dosage: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a dosage has no structure: none at all, or text only (all SFM Basis keeps)."""
    return not dosage or _free_text(dosage) is not None


# --- findings -------------------------------------------------------------------------------


def _implausible(dosed: Dosed, key: str, amount: Decimal, limit: tuple[str, Decimal]) -> Finding:
    unit, most = limit
    times = amount / most
    exact = Decimal(1) if times >= 10 else Decimal("0.01")
    factor = format(times.quantize(exact, ROUND_HALF_UP).normalize(), "f").replace(".", ",")
    said = f"{amount_text(amount, unit)} per døgn"
    # the amount (and its unit) is in the code, so an override given for 21 tablets a day
    # does not also cover 99999
    per_day = format(amount.normalize(), "f")
    return Finding(
        Kind.IMPLAUSIBLE_DOSE,
        Severity.ERROR,
        f"Usannsynlig dose av {dosed.name}: {said}; mer enn {amount_text(most, unit)} per "
        f"døgn er usannsynlig ({factor} ganger grensen). Kontroller mengde og enhet.",
        (dosed.entry,),
        dosed.code("dose") + f"-{per_day}-{_code_word(key)}",
        {"unit": key, "perDay": str(amount), "limit": str(most)},
    )


def _weekly(dosed: Dosed, days: Decimal) -> Finding:
    often = "hver dag" if days >= 7 else f"{_days_text(days)} dager i uken"
    return Finding(
        Kind.WEEKLY_DRUG,
        Severity.ERROR,
        f"{dosed.name} (metotreksat) gis normalt én gang i uken, men doseringen gir det "
        f"{often}. Metotreksat tatt oftere enn ukentlig kan gi livstruende forgiftning; "
        "kontroller doseringen.",
        (dosed.entry,),
        dosed.code("weekly"),
        {"daysPerWeek": str(days)},
    )


def _weekly_text(dosed: Dosed, text: str) -> Finding:
    return Finding(
        Kind.WEEKLY_DRUG,
        Severity.ERROR,
        f"{dosed.name} (metotreksat) gis normalt én gang i uken, men doseringen er fritekst som "
        f"ikke sier at den er ukentlig («{_quoted(text)}»). Metotreksat tatt oftere enn "
        "ukentlig kan gi livstruende forgiftning; bruk ukentlig dosering, eller skriv ukedagen "
        "i teksten.",
        (dosed.entry,),
        dosed.code("weekly"),
        {"text": _quoted(text)},
    )


def _text_misfits(dosed: Dosed, text: str) -> list[Finding]:
    kind = kind_of(dosed.form)
    if kind is None:
        return []
    taken = " eller ".join(kind.units)
    return [
        Finding(
            Kind.TEXT_UNIT_FORM,
            Severity.ERROR,
            f"{dosed.name} er {kind.name} ({dosed.form}) og doseres i {taken}, men doseringen "
            f"«{_quoted(text)}» nevner {amount_text(Decimal(2), unit).split(' ', 1)[1]}. "
            "Kontroller enheten.",
            (dosed.entry,),
            dosed.code("unit-text") + f"-{_code_word(unit)}",
            {"unit": unit, "units": ",".join(kind.units)},
        )
        for unit in dose_text.misfits(text, kind)
    ]


def _quoted(text: str) -> str:
    text = " ".join(text.replace("«", '"').replace("»", '"').split())
    return text if len(text) <= 80 else text[:79] + "…"


def _code_word(unit: str) -> str:
    """A unit as a code may hold it: no spaces, commas or brackets (an override header lists
    codes with commas, the version's override text in brackets)."""
    return re.sub(r"[\s,;«»\[\]()]+", "_", unit)


def _days_text(days: Decimal) -> str:
    return format(days.quantize(Decimal("0.1")).normalize(), "f").replace(".", ",")


# --- reading validated Dosage elements -------------------------------------------------------


def _structured(dosage: Sequence[Mapping[str, Any]]) -> bool:
    return isinstance(dosage, Sequence) and all(isinstance(e, Mapping) for e in dosage)


def _free_text(dosage: Sequence[Mapping[str, Any]]) -> str | None:
    """The text of a dosage given as text only (one element with nothing but text)."""
    if not _structured(dosage) or len(dosage) != 1:
        return None
    element = dosage[0]
    text = element.get("text")
    if not isinstance(text, str) or _dose(element) is not None or "timing" in element:
        return None
    return text


def _text_amounts(text: str, form: str | None) -> dict[str, Decimal]:
    """The largest single amount a free text names, per unit with a limit."""
    out: dict[str, Decimal] = {}
    for amount, key in dose_text.amounts(text, kind_of(form)):
        if key in _LIMITS:
            out[key] = max(out.get(key, Decimal(0)), amount)
    return out


def _decimal(raw: Any) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        return None
    value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    return value if value.is_finite() else None


def _dose(element: Mapping[str, Any]) -> tuple[Decimal, str] | None:
    """The dose's amount and unit (``unit``, else its UCUM code), if it has one."""
    dose_and_rate = element.get("doseAndRate")
    if not isinstance(dose_and_rate, list) or not dose_and_rate:
        return None
    first = dose_and_rate[0]
    quantity = first.get("doseQuantity") if isinstance(first, Mapping) else None
    if not isinstance(quantity, Mapping):
        return None
    value = _decimal(quantity.get("value"))
    unit = quantity.get("unit") or quantity.get("code")
    if value is None or not isinstance(unit, str) or not unit.strip():
        return None
    return value, unit.strip()


def _sequence(element: Mapping[str, Any]) -> int:
    sequence = element.get("sequence")
    return sequence if isinstance(sequence, int) else 0


def _repeat(element: Mapping[str, Any]) -> Mapping[str, Any]:
    timing = element.get("timing")
    repeat = timing.get("repeat") if isinstance(timing, Mapping) else None
    return repeat if isinstance(repeat, Mapping) else {}


def _period_days(repeat: Mapping[str, Any]) -> Decimal | None:
    """The length of the timing's period in days, ``None`` when it has none."""
    period, unit = _decimal(repeat.get("period")), repeat.get("periodUnit")
    if period is None or unit not in _DAYS:
        return None
    return period * _DAYS[unit]


def _doses_per_day(repeat: Mapping[str, Any]) -> Decimal | None:
    """The doses taken on the busiest day of a timing, ``None`` when it sets none."""
    when = repeat.get("when")
    if isinstance(when, list) and when:
        return Decimal(len(when))
    length = _period_days(repeat)
    if length is None:
        return None
    frequency = _decimal(repeat.get("frequency")) or Decimal(1)
    days = repeat.get("dayOfWeek")
    if length < 1:
        return Decimal(math.ceil(frequency / length))
    if length == 1 or repeat.get("periodUnit") == "d":
        return frequency
    spread = Decimal(len(days)) if isinstance(days, list) and days else length
    return Decimal(math.ceil(frequency / spread))


def _days_per_week(repeat: Mapping[str, Any]) -> Decimal | None:
    """On how many days a week a timing doses, ``None`` when it sets no schedule."""
    days = repeat.get("dayOfWeek")
    named = Decimal(len(days)) if isinstance(days, list) and days else None
    length = _period_days(repeat)
    when = repeat.get("when")
    if length is None:
        if named is not None:
            return named
        return Decimal(7) if isinstance(when, list) and when else None
    if named is not None:
        return named if length <= 7 else named * 7 / length
    if length <= 1:
        return Decimal(7)
    frequency = _decimal(repeat.get("frequency")) or Decimal(1)
    on_days = frequency if repeat.get("periodUnit") not in ("d",) and not when else Decimal(1)
    return min(on_days, length) * 7 / length


def _maximum(element: Mapping[str, Any]) -> tuple[Decimal, str | None, Decimal] | None:
    """``maxDosePerPeriod`` as (amount, its unit if given, the period in days)."""
    ratio = element.get("maxDosePerPeriod")
    if not isinstance(ratio, Mapping):
        return None
    numerator, denominator = ratio.get("numerator"), ratio.get("denominator")
    if not isinstance(numerator, Mapping) or not isinstance(denominator, Mapping):
        return None
    most, length = _decimal(numerator.get("value")), _decimal(denominator.get("value"))
    said = numerator.get("unit") or numerator.get("code")
    spelled = str(denominator.get("code") or denominator.get("unit") or "")
    code = spelled if spelled in _DAYS else _TIME_WORDS.get(spelled.lower())
    if most is None or length is None or code is None:
        return None
    return most, said if isinstance(said, str) and said.strip() else None, length * _DAYS[code]


def _max_per_day(element: Mapping[str, Any], unit: str) -> Decimal | None:
    """The most of the dose's unit ``maxDosePerPeriod`` allows on one day, ``None`` when
    it says nothing in that unit."""
    maximum = _maximum(element)
    if maximum is None:
        return None
    most, said, days = maximum
    if said is not None and unit_key(said) != unit_key(unit):
        return None
    return most * math.ceil(1 / days) if days < 1 else most


def _as_needed(element: Mapping[str, Any]) -> bool:
    return bool(element.get("asNeededBoolean")) or "asNeededCodeableConcept" in element


def _per_day(element: Mapping[str, Any], amount: Decimal, unit: str) -> Decimal | None:
    doses = _doses_per_day(_repeat(element))
    if not _as_needed(element):
        return amount * doses if doses is not None else None
    bounds = [amount * doses] if doses is not None else []
    most = _max_per_day(element, unit)
    bounds += [most] if most is not None else []
    return min(bounds) if bounds else amount * AS_NEEDED_PER_DAY


def _as_needed_days(element: Mapping[str, Any]) -> Decimal:
    """Days a week an as-needed dose with no schedule may be taken: every day, unless its
    maximum allows at most one dose a week."""
    dose, maximum = _dose(element), _maximum(element)
    if dose is None:
        return Decimal(0)
    if maximum is None:
        return Decimal(7)
    most, _, days = maximum
    return Decimal(1) if days >= 7 and most <= dose[0] else Decimal(7)
