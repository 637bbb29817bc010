"""Dose checks on their own (issue 16, DESIGN §3 rule 6): the unit against the drug's form,
the largest amount on any one day against the limits, and methotrexate dosed more often
than weekly. Plain domain calls, no mocks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from pll.domain.checks import Kind, Severity
from pll.domain.dosage import validate_dosage
from pll.domain.dose_checks import (
    Dosed,
    check_dose,
    dosing_days_per_week,
    largest_daily_amounts,
)

DAY = {"value": 1, "unit": "døgn"}


def dose(value: float, unit: str = "tablett", **repeat: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit}}]}
    if repeat:
        element["timing"] = {"repeat": repeat}
    return element


def prn(
    value: float, unit: str = "tablett", most: float | None = None, **more: Any
) -> dict[str, Any]:
    element = {**dose(value, unit, **more), "asNeededBoolean": True}
    if most is not None:
        element["maxDosePerPeriod"] = {"numerator": {"value": most}, "denominator": DAY}
    return element


def step(sequence: int, element: dict[str, Any], days: int | None = None) -> dict[str, Any]:
    if days is not None:
        element["timing"]["repeat"]["boundsDuration"] = {"value": days, "code": "d"}
    return {**element, "sequence": sequence}


def findings(
    *dosage: dict[str, Any], form: str | None = "Tablett", atc: str | None = None
) -> list[Any]:
    validate_dosage(list(dosage))  # the checks run on what the dosage rules accepted
    return check_dose(Dosed("e1", "Legemiddel X", list(dosage), atc, form))


def per_day(*dosage: dict[str, Any]) -> Decimal:
    validate_dosage(list(dosage))
    return largest_daily_amounts(list(dosage))["tablett"]


# --- the largest amount on one day ----------------------------------------------------------


@pytest.mark.parametrize(
    ("dosage", "expected"),
    [
        ([step(1, dose(2, when=["MORN"])), step(1, dose(1, when=["EVE"]))], 3),
        ([dose(1, when=["MORN", "NOON", "EVE"])], 3),
        # the dosing day counts, not the average: every other day is still 2 on its day
        ([dose(2, when=["MORN"], period=2, periodUnit="d")], 2),
        ([dose(1, frequency=1, period=8, periodUnit="h")], 3),
        ([dose(1, frequency=1, period=5, periodUnit="h")], 5),
        ([dose(1, frequency=2, period=3, periodUnit="d")], 2),
        ([dose(3, frequency=1, period=1, periodUnit="wk")], 3),
        ([dose(1, frequency=10, period=1, periodUnit="wk")], 2),
        # as needed: its maximum, or what its timing allows, or four doses a day
        ([prn(2, most=6)], 6),
        ([prn(2, most=8, frequency=3, period=1, periodUnit="d")], 6),
        ([prn(2)], 8),
        # tapering: the largest step
        ([step(1, dose(4, when=["MORN"]), 5), step(2, dose(2, when=["MORN"]))], 4),
    ],
)
def test_the_largest_amount_on_one_day(dosage: list[dict[str, Any]], expected: int) -> None:
    assert per_day(*dosage) == expected


def test_a_maximum_per_hours_counts_over_a_whole_day() -> None:
    element = prn(1)
    element["maxDosePerPeriod"] = {
        "numerator": {"value": 1},
        "denominator": {"value": 4, "code": "h"},
    }

    assert per_day(element) == 6


def test_free_text_counts_its_largest_single_amount_and_guesses_nothing() -> None:
    assert largest_daily_amounts([{"text": "99999 tabletter morgen"}]) == {"tablett": 99999}
    assert largest_daily_amounts([{"text": "2 tabletter morgen og 1 tablett kveld"}]) == {
        "tablett": 2
    }
    assert largest_daily_amounts([{"text": "Knus 1 tablett i 2,5 ml vann"}]) == {
        "tablett": 1,
        "ml": Decimal("2.5"),
    }
    assert largest_daily_amounts([{"text": "Påføres tynt 2 ganger daglig"}]) == {}
    # a tablet crushed in water may name ml
    assert findings({"text": "Knus 1 tablett i 5 ml vann"}, form="Tablett") == []
    found = findings({"text": "99999 tabletter hver mandag"}, atc="L04AX03")
    assert [f.kind for f in found] == [Kind.IMPLAUSIBLE_DOSE]


# --- implausible amounts --------------------------------------------------------------------


def test_99999_tablets_in_the_morning_is_implausible_and_says_by_how_much() -> None:
    found = findings(step(1, dose(99999, when=["MORN"])), step(1, dose(1, when=["EVE"])))

    assert [(f.kind, f.severity, f.entries, f.code) for f in found] == [
        (Kind.IMPLAUSIBLE_DOSE, Severity.ERROR, ("e1",), "dose-e1-100000-tablett")
    ]
    assert found[0].blocking
    assert "100000 tabletter per døgn" in found[0].message
    assert "mer enn 20 tabletter per døgn er usannsynlig (5000 ganger grensen)" in found[0].message


@pytest.mark.parametrize(
    ("element", "form", "implausible"),
    [
        (dose(20, when=["MORN"]), "Tablett", False),
        (dose(21, when=["MORN"]), "Tablett", True),
        (dose(7, frequency=1, period=8, periodUnit="h"), "Tablett", True),
        (prn(6), "Tablett", True),  # 6 as needed with no maximum: 24 a day
        (prn(6, most=12), "Tablett", False),
        (dose(11, "plaster", when=["MORN"]), "Depotplaster", True),
        (dose(10, "plaster", when=["MORN"]), "Depotplaster", False),
        (dose(60, "ml", when=["MORN", "EVE"]), "Mikstur", True),
        (dose(4000, "mg", when=["MORN"]), "Tablett", False),  # mg: no limit of its own
    ],
)
def test_limits_per_unit(element: dict[str, Any], form: str, implausible: bool) -> None:
    kinds = [f.kind for f in findings(element, form=form)]

    assert (Kind.IMPLAUSIBLE_DOSE in kinds) is implausible


def test_a_unit_measured_by_the_drug_is_not_judged_for_amount() -> None:
    """No per-drug maximum is fed (FEST's is not in use), so mg and g have no limit."""
    dosage = [dose(20000, "mg", when=["MORN", "EVE"])]
    validate_dosage(dosage)

    assert check_dose(Dosed("e1", "Paracetamol", dosage, "N02BE01")) == []


def test_the_unfed_maximum_parameter_would_replace_the_unit_limit() -> None:
    """The contract of ``daily_max``, which nothing in production feeds yet."""
    dosage = [dose(2, "g", when=["MORN", "EVE"])]
    validate_dosage(dosage)

    found = check_dose(Dosed("e1", "Paracetamol", dosage, "N02BE01"), {"g": Decimal(3)})
    tablets = check_dose(Dosed("e1", "X", [dose(15, when=["MORN"])]), {"tablett": Decimal(10)})

    assert [f.kind for f in found] == [Kind.IMPLAUSIBLE_DOSE]
    assert "4 g per døgn; mer enn 3 g per døgn" in found[0].message
    assert [f.kind for f in tablets] == [Kind.IMPLAUSIBLE_DOSE]


# --- the unit fits the form -----------------------------------------------------------------


def test_a_cream_dosed_in_tablets_is_a_misfit_naming_drug_form_and_units() -> None:
    found = check_dose(Dosed("e1", "Lya Krem", [dose(3, when=["MORN"])], "D07AC01", "Krem"))

    assert [(f.kind, f.severity) for f in found] == [(Kind.UNIT_FORM, Severity.ERROR)]
    assert found[0].message == (
        "Lya Krem er krem, salve eller gel (Krem) og doseres i påføring, ikke i tabletter."
    )
    assert found[0].details["element"] == "[0].doseAndRate[0].doseQuantity.unit"
    assert found[0].code == "unit-e1"


@pytest.mark.parametrize(
    ("form", "unit"),
    [
        ("Krem", "påføringer"),
        ("Tablett", "Tabletter"),
        ("Kapsel, hard", "kapsel"),
        ("Mikstur, oppløsning", "ml"),
        ("Inhalasjonspulver", "inhalasjon"),
        ("Injeksjonsvæske, oppløsning", "IE"),
        (None, "tablett"),  # no FEST form: not judged
        ("Implantat", "stykk"),  # a form PLL cannot sort: not judged
    ],
)
def test_units_that_fit(form: str | None, unit: str) -> None:
    assert findings(dose(1, unit, when=["MORN"]), form=form) == []


def test_the_misfit_names_the_first_element_in_another_unit() -> None:
    found = findings(
        step(1, dose(1, "påføring", when=["MORN"])),
        step(1, dose(1, "ml", when=["EVE"])),
        form="Salve",
    )

    assert found[0].details["element"] == "[1].doseAndRate[0].doseQuantity.unit"


# --- methotrexate is weekly -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "days"),
    [
        (dose(1, when=["MORN"]), 7),
        (dose(1, frequency=1, period=1, periodUnit="d"), 7),
        (dose(1, when=["MORN"], period=2, periodUnit="d"), Decimal("3.5")),
        (dose(1, frequency=2, period=1, periodUnit="wk"), 2),
        (dose(1, frequency=1, period=8, periodUnit="h"), 7),
        (prn(1, most=4), 7),
    ],
)
def test_methotrexate_dosed_more_often_than_weekly_is_blocking(
    element: dict[str, Any], days: Decimal
) -> None:
    for atc in ("L01BA01", "L04AX03"):
        found = [f for f in findings(element, atc=atc) if f.kind is Kind.WEEKLY_DRUG]

        assert len(found) == 1
        assert found[0].blocking
        assert "Legemiddel X (metotreksat) gis normalt én gang i uken" in found[0].message
    assert dosing_days_per_week([element]) == days


@pytest.mark.parametrize(
    "element",
    [
        dose(4, frequency=1, period=1, periodUnit="wk"),
        dose(4, when=["MORN"], period=1, periodUnit="wk"),
        dose(4, when=["MORN"], period=7, periodUnit="d"),
        dose(2, when=["MORN", "EVE"], period=1, periodUnit="wk"),  # a weekly dose split in two
        dose(4, frequency=1, period=2, periodUnit="wk"),
    ],
)
def test_methotrexate_once_a_week_or_less_is_fine(element: dict[str, Any]) -> None:
    assert findings(element, atc="L04AX03") == []


def test_a_daily_dose_of_another_drug_is_no_weekly_finding() -> None:
    assert findings(dose(1, when=["MORN"]), atc="M05BA04") == []


def test_weekdays_named_count_as_dosing_days() -> None:
    # dayOfWeek comes with the dosage editor; counted here from the structure alone
    weekly = [dose(2, frequency=1, period=1, periodUnit="wk", dayOfWeek=["mon"])]
    twice = [dose(2, frequency=2, period=1, periodUnit="wk", dayOfWeek=["mon", "thu"])]

    assert dosing_days_per_week(weekly) == 1
    assert dosing_days_per_week(twice) == 2
    assert largest_daily_amounts(twice) == {"tablett": 2}
    assert check_dose(Dosed("e1", "Metotreksat", twice, "L04AX03"))[0].kind is Kind.WEEKLY_DRUG
