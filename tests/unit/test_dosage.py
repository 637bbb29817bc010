"""Norwegian dosage text from FHIR R4 Dosage: each convention, and each refusal with its place."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from pll.domain.dosage import dosage_text, validate_dosage
from pll.domain.errors import InvalidInput

UCUM = "http://unitsofmeasure.org"
PER_DAY = {"value": 1, "unit": "d"}


def dosage(
    value: Any = 1,
    unit: str | None = "tablett",
    *,
    sequence: int | None = None,
    **repeat: Any,
) -> dict[str, Any]:
    """One Dosage with a dose and, if any repeat fields are given, a timing."""
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity["unit"] = unit
    element: dict[str, Any] = {"doseAndRate": [{"doseQuantity": quantity}]}
    if repeat:
        element["timing"] = {"repeat": repeat}
    if sequence is not None:
        element["sequence"] = sequence
    return element


def as_needed(element: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**element, "asNeededBoolean": True, **extra}


def days(n: int) -> dict[str, Any]:
    return {"value": n, "unit": "dager", "system": UCUM, "code": "d"}


def text(*dosages: dict[str, Any]) -> str:
    return dosage_text(list(dosages))


def refusal(*dosages: dict[str, Any], expression: str = "dosage") -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        dosage_text(list(dosages), expression)
    with pytest.raises(InvalidInput) as validated:
        validate_dosage(list(dosages), expression)
    assert validated.value.expression == caught.value.expression
    return caught.value


# --- fixed times of day ---------------------------------------------------------------------


def test_one_dose_morning_and_evening() -> None:
    assert text(dosage(1, when=["MORN", "EVE"])) == "1 tablett morgen og kveld"


def test_three_times_a_day_are_listed_with_commas() -> None:
    assert (
        text(dosage(1, when=["MORN", "NOON", "EVE"])) == "1 tablett morgen, midt på dagen og kveld"
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("MORN", "1 tablett morgen"),
        ("NOON", "1 tablett midt på dagen"),
        ("AFT", "1 tablett ettermiddag"),
        ("EVE", "1 tablett kveld"),
        ("NIGHT", "1 tablett natt"),
        ("HS", "1 tablett ved sengetid"),
    ],
)
def test_each_time_of_day_code(code: str, expected: str) -> None:
    assert text(dosage(1, when=[code])) == expected


def test_times_are_written_in_the_order_of_the_day() -> None:
    assert (
        text(dosage(1, when=["NIGHT", "HS", "EVE", "AFT", "NOON", "MORN"]))
        == "1 tablett morgen, midt på dagen, ettermiddag, kveld, ved sengetid og natt"
    )


def test_different_doses_at_the_same_time_share_a_sequence() -> None:
    result = text(
        dosage(1, when=["EVE"], sequence=1),
        dosage(2, when=["MORN"], sequence=1),
    )

    assert result == "2 tabletter morgen og 1 tablett kveld"


def test_the_same_dose_in_several_elements_is_merged() -> None:
    result = text(dosage(1, when=["MORN"], sequence=1), dosage(1, when=["EVE"], sequence=1))

    assert result == "1 tablett morgen og kveld"


def test_mixed_doses_are_listed_per_time_whatever_the_element_order() -> None:
    elements = [
        dosage(2, when=["MORN", "EVE"], sequence=1),
        dosage(1, when=["NOON"], sequence=1),
    ]

    for order in itertools.permutations(elements):
        assert text(*order) == "2 tabletter morgen, 1 tablett midt på dagen og 2 tabletter kveld"


def test_fixed_times_with_a_daily_period_say_nothing_more() -> None:
    element = dosage(1, when=["MORN", "EVE"], frequency=2, period=1, periodUnit="d")

    assert text(element) == "1 tablett morgen og kveld"


@pytest.mark.parametrize(
    ("period", "unit", "expected"),
    [
        (2, "d", "1 tablett morgen annenhver dag"),
        (3, "d", "1 tablett morgen hver 3. dag"),
        (1, "wk", "1 tablett morgen 1 gang i uken"),
        (1, "mo", "1 tablett morgen 1 gang i måneden"),
    ],
)
def test_fixed_times_on_a_longer_period(period: int, unit: str, expected: str) -> None:
    assert text(dosage(1, when=["MORN"], period=period, periodUnit=unit)) == expected


# --- intervals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repeat", "expected"),
    [
        ({"frequency": 1, "period": 8, "periodUnit": "h"}, "1 tablett hver 8. time"),
        ({"period": 8, "periodUnit": "h"}, "1 tablett hver 8. time"),
        ({"frequency": 1, "period": 1, "periodUnit": "h"}, "1 tablett hver time"),
        ({"frequency": 3, "period": 1, "periodUnit": "d"}, "1 tablett 3 ganger daglig"),
        ({"frequency": 1, "period": 1, "periodUnit": "d"}, "1 tablett daglig"),
        ({"period": 1, "periodUnit": "d"}, "1 tablett daglig"),
        ({"period": 2, "periodUnit": "d"}, "1 tablett annenhver dag"),
        ({"period": 3, "periodUnit": "d"}, "1 tablett hver 3. dag"),
        ({"frequency": 2, "period": 3, "periodUnit": "d"}, "1 tablett 2 ganger hver 3. dag"),
        ({"frequency": 1, "period": 1, "periodUnit": "wk"}, "1 tablett 1 gang i uken"),
        ({"frequency": 2, "period": 1, "periodUnit": "wk"}, "1 tablett 2 ganger i uken"),
        ({"period": 2, "periodUnit": "wk"}, "1 tablett annenhver uke"),
        ({"period": 3, "periodUnit": "wk"}, "1 tablett hver 3. uke"),
        ({"period": 1, "periodUnit": "mo"}, "1 tablett 1 gang i måneden"),
        ({"period": 3, "periodUnit": "mo"}, "1 tablett hver 3. måned"),
        ({"period": 2.0, "periodUnit": "d"}, "1 tablett annenhver dag"),
    ],
)
def test_intervals(repeat: dict[str, Any], expected: str) -> None:
    assert text(dosage(1, **repeat)) == expected


# --- as needed ------------------------------------------------------------------------------


def test_as_needed_with_a_daily_maximum() -> None:
    element = as_needed(
        dosage(2),
        maxDosePerPeriod={
            "numerator": {"value": 6, "unit": "tablett"},
            "denominator": {"value": 1, "unit": "d"},
        },
    )

    assert text(element) == "2 tabletter ved behov, maks 6 per døgn"


@pytest.mark.parametrize(
    "denominator",
    [
        {"value": 1, "unit": "døgn"},
        {"value": 1, "code": "d", "system": UCUM},
        {"value": 1, "code": "d"},
        {"value": 1, "unit": "døgn", "code": "d", "system": UCUM},
    ],
)
def test_a_day_in_the_maximum_may_be_spelled_several_ways(denominator: dict[str, Any]) -> None:
    element = as_needed(
        dosage(2), maxDosePerPeriod={"numerator": {"value": 6}, "denominator": denominator}
    )

    assert text(element) == "2 tabletter ved behov, maks 6 per døgn"


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        ({"value": 6, "unit": "tabletter"}, PER_DAY, "maks 6 per døgn"),  # same noun, plural
        ({"value": 4, "unit": "g"}, PER_DAY, "maks 4 g per døgn"),
        ({"value": 6, "unit": "tablett"}, {"value": 2, "unit": "d"}, "maks 6 per 2 døgn"),
        ({"value": 2, "unit": "tablett"}, {"value": 8, "code": "h"}, "maks 2 per 8 timer"),
        ({"value": 2, "unit": "tablett"}, {"value": 1, "code": "h"}, "maks 2 per time"),
        ({"value": 10, "unit": "tablett"}, {"value": 1, "code": "wk"}, "maks 10 per uke"),
    ],
)
def test_maximum_dose_wording(
    numerator: dict[str, Any], denominator: dict[str, Any], expected: str
) -> None:
    element = as_needed(
        dosage(2), maxDosePerPeriod={"numerator": numerator, "denominator": denominator}
    )

    assert text(element) == f"2 tabletter ved behov, {expected}"


def test_as_needed_alone() -> None:
    assert text(as_needed(dosage(1))) == "1 tablett ved behov"


def test_as_needed_against_a_reason_given_as_text() -> None:
    element = {**dosage(1), "asNeededCodeableConcept": {"text": "smerter"}}

    assert text(element) == "1 tablett ved behov mot smerter"


def test_as_needed_against_a_reason_given_as_a_coding() -> None:
    concept = {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "422587007"},  # no display: skipped
            {"system": "http://snomed.info/sct", "code": "422587007", "display": "kvalme"},
        ]
    }
    element = {**dosage(1), "asNeededCodeableConcept": concept}

    assert text(element) == "1 tablett ved behov mot kvalme"


def test_as_needed_with_an_interval_and_a_maximum() -> None:
    element = {
        **dosage(1, period=6, periodUnit="h"),
        "asNeededCodeableConcept": {"text": "smerter"},
        "maxDosePerPeriod": {"numerator": {"value": 4}, "denominator": PER_DAY},
    }

    assert text(element) == "1 tablett hver 6. time ved behov mot smerter, maks 4 per døgn"


def test_as_needed_at_bedtime() -> None:
    assert text(as_needed(dosage(1, when=["HS"]))) == "1 tablett ved sengetid ved behov"


def test_as_needed_with_a_false_flag_is_not_as_needed() -> None:
    assert text({**dosage(1, when=["MORN"]), "asNeededBoolean": False}) == "1 tablett morgen"


def test_a_fixed_dose_and_an_as_needed_dose_in_the_same_period() -> None:
    result = text(as_needed(dosage(2), sequence=1), dosage(1, when=["MORN"], sequence=1))

    assert result == "1 tablett morgen og 2 tabletter ved behov"


# --- periods and tapering -------------------------------------------------------------------


def test_tapering_in_two_bounded_steps() -> None:
    result = text(
        dosage(2, when=["MORN"], boundsDuration=days(3), sequence=1),
        dosage(1, when=["MORN"], boundsDuration=days(3), sequence=2),
    )

    assert result == "2 tabletter morgen i 3 dager, deretter 1 tablett morgen i 3 dager"


def test_the_last_step_may_go_on() -> None:
    result = text(
        dosage(1, when=["MORN"], sequence=2),
        dosage(2, when=["MORN"], boundsDuration=days(3), sequence=1),
    )

    assert result == "2 tabletter morgen i 3 dager, deretter 1 tablett morgen"


def test_a_step_with_several_doses() -> None:
    result = text(
        dosage(2, when=["MORN"], boundsDuration=days(3), sequence=1),
        dosage(1, when=["EVE"], boundsDuration=days(3), sequence=1),
        dosage(1, when=["EVE"], boundsDuration=days(7), sequence=2),
        dosage(0.5, when=["EVE"], sequence=3),
    )

    assert result == (
        "2 tabletter morgen og 1 tablett kveld i 3 dager, deretter 1 tablett kveld i 7 dager, "
        "deretter 0,5 tablett kveld"
    )


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"value": 7, "unit": "d"}, "1 tablett morgen i 7 dager"),
        ({"value": 1, "code": "d", "system": UCUM}, "1 tablett morgen i 1 dag"),
        ({"value": 1, "unit": "uke", "code": "wk", "system": UCUM}, "1 tablett morgen i 1 uke"),
        ({"value": 2, "code": "wk"}, "1 tablett morgen i 2 uker"),
        ({"value": 2, "unit": "uker"}, "1 tablett morgen i 2 uker"),
        ({"value": 3, "code": "mo"}, "1 tablett morgen i 3 måneder"),
        ({"value": 48, "code": "h"}, "1 tablett morgen i 48 timer"),
    ],
)
def test_a_single_bounded_dosage(bounds: dict[str, Any], expected: str) -> None:
    assert text(dosage(1, when=["MORN"], boundsDuration=bounds)) == expected


def test_as_needed_for_a_limited_time() -> None:
    assert text(as_needed(dosage(1, boundsDuration=days(5)))) == "1 tablett ved behov i 5 dager"


# --- free text ------------------------------------------------------------------------------


def test_text_only_is_returned_unchanged() -> None:
    written = "1 tablett 3-4 ganger daglig\n  etter avtale med lege "

    assert text({"text": written}) == written


def test_text_with_elements_that_are_not_dosage_text_is_returned_unchanged() -> None:
    # The shape the national SFM Basis test environment sends.
    element = {
        "extension": [{"url": "http://ehelse.no/fhir/StructureDefinition/sfm-use"}],
        "sequence": 1,
        "text": "1 dråpe morgen\n1 dråpe midt på dagen\n1 dråpe kveld daglig",
        "additionalInstruction": [{"coding": [{"code": "100", "display": "Omrystes før bruk"}]}],
        "patientInstruction": "Vær forsiktig med elektrisk tannbørste",
    }

    assert text(element) == element["text"]


def test_structure_wins_over_text() -> None:
    element = {**dosage(1, when=["MORN", "EVE"]), "text": "1 tablett daglig"}

    assert text(element) == "1 tablett morgen og kveld"


# --- units and numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("singular", "plural"),
    [
        ("tablett", "tabletter"),
        ("kapsel", "kapsler"),
        ("dose", "doser"),
        ("dråpe", "dråper"),
        ("stikkpille", "stikkpiller"),
        ("brusetablett", "brusetabletter"),
        ("tyggetablett", "tyggetabletter"),
        ("sugetablett", "sugetabletter"),
        ("sprøyte", "sprøyter"),
        ("pose", "poser"),
        ("påføring", "påføringer"),
        ("ampulle", "ampuller"),
        ("inhalasjon", "inhalasjoner"),
        ("pust", "pust"),
        ("plaster", "plaster"),
        ("spiseskje", "spiseskjeer"),
        ("teskje", "teskjeer"),
        ("måleskje", "måleskjeer"),
    ],
)
def test_dose_form_nouns_take_the_plural_above_one(singular: str, plural: str) -> None:
    for given in (singular, plural):
        assert text(dosage(1, given, when=["MORN"])) == f"1 {singular} morgen"
        assert text(dosage(2, given, when=["MORN"])) == f"2 {plural} morgen"
        assert text(dosage(0.5, given, when=["MORN"])) == f"0,5 {singular} morgen"


def test_a_capitalised_noun_is_written_in_lower_case() -> None:
    assert text(dosage(2, "Tablett", when=["MORN"])) == "2 tabletter morgen"


@pytest.mark.parametrize("unit", ["mg", "g", "µg", "mcg", "ml", "IE", "E", "mmol", "stk"])
def test_measure_and_unknown_units_are_written_as_given(unit: str) -> None:
    assert text(dosage(2, unit, when=["MORN"])) == f"2 {unit} morgen"


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (0.5, "tablett", "0,5 tablett"),
        (1.5, "tablett", "1,5 tabletter"),
        (2.0, "tablett", "2 tabletter"),
        (1.0, "tablett", "1 tablett"),
        (0.25, "ml", "0,25 ml"),
        (12.50, "mg", "12,5 mg"),
        (100, "mg", "100 mg"),
        (100.0, "mg", "100 mg"),
        (0.1, "mg", "0,1 mg"),
        (Decimal("2.50"), "ml", "2,5 ml"),
        (Decimal("1E+3"), "mg", "1000 mg"),
    ],
)
def test_numbers_have_a_decimal_comma_and_no_trailing_zeros(
    value: Any, unit: str, expected: str
) -> None:
    assert text(dosage(value, unit, when=["MORN"])) == f"{expected} morgen"


@pytest.mark.parametrize(
    "quantity",
    [{"value": 5, "code": "mg", "system": UCUM}, {"value": 5, "code": "mg"}],
)
def test_a_ucum_code_stands_in_for_a_missing_unit(quantity: dict[str, Any]) -> None:
    element = {"doseAndRate": [{"doseQuantity": quantity}], "timing": {"repeat": {"when": ["EVE"]}}}

    assert text(element) == "5 mg kveld"


def test_output_is_deterministic() -> None:
    elements = [
        dosage(2, when=["MORN"], boundsDuration=days(3), sequence=1),
        dosage(1, when=["EVE"], boundsDuration=days(3), sequence=1),
        as_needed(dosage(1), sequence=2),
    ]

    assert len({dosage_text(elements) for _ in range(5)}) == 1
    validate_dosage(elements)


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, -0.5])
def test_a_zero_or_negative_dose_is_refused(value: float) -> None:
    error = refusal(dosage(value, when=["MORN"]))

    assert "greater than zero" in error.message
    assert error.expression == "dosage[0].doseAndRate[0].doseQuantity.value"


@pytest.mark.parametrize("value", [None, "1", True, float("nan"), float("inf")])
def test_a_dose_that_is_not_a_number_is_refused(value: Any) -> None:
    error = refusal(dosage(value, when=["MORN"]))

    assert error.expression == "dosage[0].doseAndRate[0].doseQuantity.value"


def test_a_dose_without_a_unit_is_refused() -> None:
    error = refusal(dosage(2, None, when=["MORN"]))

    assert "no unit" in error.message
    assert error.expression == "dosage[0].doseAndRate[0].doseQuantity.unit"


def test_a_code_from_another_system_does_not_stand_in_for_the_unit() -> None:
    quantity = {"value": 1, "code": "3", "system": "urn:oid:2.16.578.1.12.4.1.1.7448"}
    element = {"doseAndRate": [{"doseQuantity": quantity}], "timing": {"repeat": {"when": ["EVE"]}}}

    assert refusal(element).expression == "dosage[0].doseAndRate[0].doseQuantity.unit"


def test_a_dose_with_a_comparator_is_refused() -> None:
    element = dosage(1, when=["MORN"])
    element["doseAndRate"][0]["doseQuantity"]["comparator"] = "<"

    assert refusal(element).expression == "dosage[0].doseAndRate[0].doseQuantity.comparator"


@pytest.mark.parametrize(
    ("period", "wording"),
    [(0, "greater than zero"), (-2, "greater than zero"), (1.5, "whole number")],
)
def test_a_bad_period_is_refused_where_it_is(period: float, wording: str) -> None:
    error = refusal(
        dosage(1, when=["MORN"], sequence=1),
        dosage(1, period=period, periodUnit="d", sequence=1),
        expression="MedicationStatement.dosage",
    )

    assert wording in error.message
    assert error.expression == "MedicationStatement.dosage[1].timing.repeat.period"


@pytest.mark.parametrize(
    ("when", "expression"),
    [
        (["MORN", "LUNCH"], "dosage[0].timing.repeat.when[1]"),
        (["CM"], "dosage[0].timing.repeat.when[0]"),  # a FHIR code this text cannot say
        (["MORN", "MORN"], "dosage[0].timing.repeat.when[1]"),
        ([], "dosage[0].timing.repeat.when"),
        ("MORN", "dosage[0].timing.repeat.when"),
        ([1], "dosage[0].timing.repeat.when[0]"),
    ],
)
def test_a_bad_when_is_refused(when: Any, expression: str) -> None:
    assert refusal(dosage(1, when=when)).expression == expression


def test_an_unknown_when_code_is_named() -> None:
    error = refusal(dosage(1, when=["LUNCH"]))

    assert "Unknown when code 'LUNCH'" in error.message


def test_a_time_given_twice_in_one_period_is_refused() -> None:
    error = refusal(dosage(2, when=["MORN"], sequence=1), dosage(1, when=["MORN"], sequence=1))

    assert "more than one" in error.message
    assert error.expression == "dosage[1].timing.repeat.when"


@pytest.mark.parametrize(
    ("repeat", "expression"),
    [
        ({"period": 1, "periodUnit": "day"}, "dosage[0].timing.repeat.periodUnit"),
        ({"period": 1, "periodUnit": "dag"}, "dosage[0].timing.repeat.periodUnit"),
        ({"period": 30, "periodUnit": "min"}, "dosage[0].timing.repeat.periodUnit"),
        ({"period": 1, "periodUnit": "a"}, "dosage[0].timing.repeat.periodUnit"),
        ({"period": 1}, "dosage[0].timing.repeat.periodUnit"),
        ({"periodUnit": "d"}, "dosage[0].timing.repeat.period"),
        ({"frequency": 3}, "dosage[0].timing.repeat.period"),
        ({"frequency": 0, "period": 1, "periodUnit": "d"}, "dosage[0].timing.repeat.frequency"),
        ({"frequency": 1.5, "period": 1, "periodUnit": "d"}, "dosage[0].timing.repeat.frequency"),
        ({"frequency": 2, "period": 8, "periodUnit": "h"}, "dosage[0].timing.repeat.frequency"),
        ({"when": ["MORN", "EVE"], "frequency": 3}, "dosage[0].timing.repeat.frequency"),
        ({"when": ["MORN"], "period": 8, "periodUnit": "h"}, "dosage[0].timing.repeat.periodUnit"),
        ({"frequencyMax": 4, "period": 1}, "dosage[0].timing.repeat.frequencyMax"),
        ({"boundsPeriod": {"start": "2025-01-01"}}, "dosage[0].timing.repeat.boundsPeriod"),
        ({"timeOfDay": ["08:00:00"]}, "dosage[0].timing.repeat.timeOfDay"),
        ({"often": 2}, "dosage[0].timing.repeat.often"),
    ],
)
def test_a_bad_or_inexpressible_repeat_is_refused(repeat: dict[str, Any], expression: str) -> None:
    assert refusal(dosage(1, **repeat)).expression == expression


def test_an_unknown_period_unit_is_named() -> None:
    error = refusal(dosage(1, period=1, periodUnit="day"))

    assert "Unknown periodUnit 'day'" in error.message


def test_a_maximum_without_as_needed_is_refused() -> None:
    element = {
        **dosage(1, when=["MORN"]),
        "maxDosePerPeriod": {"numerator": {"value": 6}, "denominator": PER_DAY},
    }
    error = refusal(element)

    assert "as needed" in error.message
    assert error.expression == "dosage[0].maxDosePerPeriod"


@pytest.mark.parametrize(
    ("ratio", "expression"),
    [
        (
            {"numerator": {"value": 0}, "denominator": PER_DAY},
            "dosage[0].maxDosePerPeriod.numerator.value",
        ),
        ({"denominator": PER_DAY}, "dosage[0].maxDosePerPeriod.numerator"),
        ({"numerator": {"value": 6}}, "dosage[0].maxDosePerPeriod.denominator"),
        (
            {"numerator": {"value": 6}, "denominator": {"value": 1, "unit": "fortnight"}},
            "dosage[0].maxDosePerPeriod.denominator.unit",
        ),
        (
            {"numerator": {"value": 6}, "denominator": {"value": 0, "unit": "d"}},
            "dosage[0].maxDosePerPeriod.denominator.value",
        ),
    ],
)
def test_a_bad_maximum_is_refused(ratio: dict[str, Any], expression: str) -> None:
    assert refusal(as_needed(dosage(2), maxDosePerPeriod=ratio)).expression == expression


@pytest.mark.parametrize(
    "element",
    [
        {},
        {"text": "   "},
        {"sequence": 1, "extension": [{"url": "http://example.org/x"}]},
        {"asNeededBoolean": False},
    ],
)
def test_an_element_with_nothing_to_say_is_refused(element: dict[str, Any]) -> None:
    error = refusal(element)

    assert "says nothing" in error.message
    assert error.expression == "dosage[0]"


def test_a_dose_without_timing_that_is_not_as_needed_is_refused() -> None:
    error = refusal(dosage(1))

    assert "not when" in error.message
    assert error.expression == "dosage[0].timing"


def test_a_timing_without_repeat_is_refused() -> None:
    element = {**dosage(1), "timing": {}}

    assert refusal(element).expression == "dosage[0].timing.repeat"


def test_a_repeat_that_only_bounds_a_fixed_dose_is_refused() -> None:
    error = refusal(dosage(1, boundsDuration=days(3)))

    assert "not when" in error.message
    assert error.expression == "dosage[0].timing.repeat"


@pytest.mark.parametrize(
    ("element", "expression"),
    [
        ({"timing": {"repeat": {"when": ["MORN"]}}}, "dosage[0].doseAndRate"),
        ({"asNeededBoolean": True, "text": "1-2 tabletter"}, "dosage[0].doseAndRate"),
        ({"doseAndRate": [], "timing": {"repeat": {"when": ["MORN"]}}}, "dosage[0].doseAndRate"),
        ({"doseAndRate": [{}], "timing": {"repeat": {"when": ["MORN"]}}},
         "dosage[0].doseAndRate[0].doseQuantity"),
        ({"doseAndRate": [{"doseRange": {}}], "timing": {"repeat": {"when": ["MORN"]}}},
         "dosage[0].doseAndRate[0].doseRange"),
        ({**dosage(1, when=["MORN"]), "timing": {"repeat": {"when": ["MORN"]}, "code": {}}},
         "dosage[0].timing.code"),
        ({**dosage(1, when=["MORN"]), "modifierExtension": []}, "dosage[0].modifierExtension"),
        ({**dosage(1, when=["MORN"]), "maxDosePerLifetime": {}}, "dosage[0].maxDosePerLifetime"),
        ({**dosage(1, when=["MORN"]), "dose": 1}, "dosage[0].dose"),
        ({**dosage(1, when=["MORN"]), "sequence": "1"}, "dosage[0].sequence"),
        ({**dosage(1, when=["MORN"]), "text": 1}, "dosage[0].text"),
        ({**dosage(1, when=["MORN"]), "asNeededBoolean": "yes"}, "dosage[0].asNeededBoolean"),
        ({**dosage(1), "asNeededBoolean": True, "asNeededCodeableConcept": {"text": "smerter"}},
         "dosage[0].asNeededCodeableConcept"),
        ({**dosage(1), "asNeededCodeableConcept": {"coding": [{"code": "x"}]}},
         "dosage[0].asNeededCodeableConcept"),
        ("1 tablett", "dosage[0]"),
    ],
)  # fmt: skip
def test_a_malformed_or_inexpressible_element_is_refused(element: Any, expression: str) -> None:
    assert refusal(element).expression == expression


def test_two_dose_and_rates_are_refused() -> None:
    element = dosage(1, when=["MORN"])
    element["doseAndRate"].append({"doseQuantity": {"value": 2, "unit": "tablett"}})

    assert refusal(element).expression == "dosage[0].doseAndRate[1]"


@pytest.mark.parametrize("dosages", [[], {"text": "1 tablett"}, "1 tablett morgen"])
def test_something_other_than_a_non_empty_array_is_refused(dosages: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        dosage_text(dosages, "MedicationStatement.dosage")

    assert caught.value.expression == "MedicationStatement.dosage"


def test_several_elements_each_need_a_sequence() -> None:
    error = refusal(dosage(2, when=["MORN"], sequence=1), dosage(1, when=["EVE"]))

    assert "sequence" in error.message
    assert error.expression == "dosage[1].sequence"


def test_free_text_must_be_the_only_element() -> None:
    error = refusal(dosage(1, when=["MORN"], sequence=1), {"text": "og 1 ved behov", "sequence": 1})

    assert error.expression == "dosage[1]"


def test_a_step_that_is_followed_by_another_needs_bounds() -> None:
    error = refusal(dosage(2, when=["MORN"], sequence=1), dosage(1, when=["MORN"], sequence=2))

    assert "never ends" in error.message
    assert error.expression == "dosage[0].timing.repeat.boundsDuration"


def test_elements_of_one_step_need_the_same_bounds() -> None:
    error = refusal(
        dosage(2, when=["MORN"], boundsDuration=days(3), sequence=1),
        dosage(1, when=["EVE"], boundsDuration=days(4), sequence=1),
    )

    assert error.expression == "dosage[1].timing.repeat.boundsDuration"


@pytest.mark.parametrize(
    ("bounds", "expression"),
    [
        ({"value": 3, "unit": "fortnights"}, "dosage[0].timing.repeat.boundsDuration.unit"),
        ({"value": 3, "code": "s", "system": UCUM}, "dosage[0].timing.repeat.boundsDuration.code"),
        ({"value": 3}, "dosage[0].timing.repeat.boundsDuration.unit"),
        ({"value": 0, "code": "d"}, "dosage[0].timing.repeat.boundsDuration.value"),
    ],
)
def test_bad_bounds_are_refused(bounds: dict[str, Any], expression: str) -> None:
    assert refusal(dosage(1, when=["MORN"], boundsDuration=bounds)).expression == expression


def test_validate_accepts_what_dosage_text_writes() -> None:
    elements = [dosage(1, when=["MORN", "EVE"]), {"text": "ignored", **as_needed(dosage(2))}]
    for element in elements:
        validate_dosage([element], "MedicationStatement.dosage")


# --- contradictions (issue 16) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "said"),
    [
        ({"value": 2}, PER_DAY, "Én dose (4 tabletter) er mer enn maksimum 2 tabletter per døgn"),
        (
            {"value": 3, "unit": "tabletter"},
            {"value": 2, "unit": "d"},
            "maksimum 3 tabletter per 2",
        ),
        ({"value": 1, "code": "tablett"}, {"value": 8, "code": "h"}, "maksimum 1 tablett per 8"),
    ],
)
def test_a_maximum_below_one_dose_is_refused(
    numerator: dict[str, Any], denominator: dict[str, Any], said: str
) -> None:
    error = refusal(
        as_needed(dosage(4), maxDosePerPeriod={"numerator": numerator, "denominator": denominator}),
        expression="MedicationStatement.dosage",
    )

    assert said in error.message
    assert error.expression == "MedicationStatement.dosage[0].maxDosePerPeriod"


def test_a_maximum_of_one_dose_or_in_another_unit_is_no_contradiction() -> None:
    one = as_needed(dosage(2), maxDosePerPeriod={"numerator": {"value": 2}, "denominator": PER_DAY})
    grams = as_needed(
        dosage(2), maxDosePerPeriod={"numerator": {"value": 1, "unit": "g"}, "denominator": PER_DAY}
    )

    assert text(one) == "2 tabletter ved behov, maks 2 per døgn"
    assert text(grams) == "2 tabletter ved behov, maks 1 g per døgn"


@pytest.mark.parametrize("part", ["numerator", "denominator"])
def test_a_zero_maximum_is_refused(part: str) -> None:
    ratio = {"numerator": {"value": 6}, "denominator": {"value": 1, "unit": "d"}}
    ratio[part] = {**ratio[part], "value": 0}

    error = refusal(as_needed(dosage(1), maxDosePerPeriod=ratio))

    assert "greater than zero" in error.message
    assert error.expression == f"dosage[0].maxDosePerPeriod.{part}.value"


def test_tapering_steps_cannot_overlap() -> None:
    # one step's elements share their bounds, and steps follow one another: a step that
    # would last longer than its companions (and so run into the next step) is refused
    overlapping = refusal(
        dosage(2, when=["MORN"], boundsDuration=days(3), sequence=1),
        dosage(1, when=["EVE"], boundsDuration=days(5), sequence=1),
        dosage(1, when=["MORN"], boundsDuration=days(7), sequence=2),
    )
    dated = refusal(dosage(1, when=["MORN"], boundsPeriod={"start": "2026-01-01"}))

    assert overlapping.expression == "dosage[1].timing.repeat.boundsDuration"
    assert dated.expression == "dosage[0].timing.repeat.boundsPeriod"
