"""SFM's structured e-resept dosing as the FHIR Dosage the dose checks judge
(:mod:`pll.fhir.sfm.dosing`), and how the checks weigh it beside a dosage kept as text
(:func:`pll.services.decision_support.dose_findings`). Plain calls, no mocks."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from pll.domain.checks import Kind
from pll.domain.dosage import dosage_text
from pll.domain.dose_checks import Dosed, dosing_days_per_week, largest_daily_amounts
from pll.fhir.sfm.dosing import structured_dosage
from pll.services.decision_support import dose_findings
from tests.unit.test_sfm_reading import reference_bundle

AMENDMENT = "http://ehelse.no/fhir/StructureDefinition/sfm-reseptamendment"
SHORT = "http://ehelse.no/fhir/StructureDefinition/sfm-shortdosage"
TIME_RANGE = "urn:oid:2.16.578.1.12.4.1.1.8325"


def reference_statements() -> dict[str, dict[str, Any]]:
    """The reference response's statements by the first word of their drug's name."""
    return {
        e["resource"]["medicationReference"]["display"].split()[0]: e["resource"]
        for e in reference_bundle()["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement"
    }


def repeating(
    amount: Any, unit: str = "tablett", every: Any = (1, "Døgn"), at: str | None = "1"
) -> dict[str, Any]:
    subs: list[dict[str, Any]] = [
        {"url": "amount", "valueQuantity": {"value": amount, "unit": unit}},
        {"url": "interval", "valueQuantity": {"value": every[0], "unit": every[1]}},
        {"url": "accurate", "valueBoolean": False},
    ]
    if at is not None:
        concept = {"coding": [{"system": TIME_RANGE, "code": at}]}
        subs.append({"url": "timerange", "valueCodeableConcept": concept})
    return {"url": "repeatingdosage", "extension": subs}


def period(*doses: dict[str, Any], start: str | None = None, end: str | None = None) -> Any:
    subs = [{"url": "starttime", "valueDate": start}] if start else []
    subs += [{"url": "endtime", "valueDate": end}] if end else []
    return {"url": "ereseptdosing", "extension": [*subs, *doses]}


def statement(*periods: dict[str, Any], short: str | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "extension": [
            {"url": AMENDMENT, "extension": [{"url": "dssn", "valueString": "x"}, *periods]}
        ],
        "dosage": [{"text": "x"}],
    }
    if short is not None:
        st["dosage"][0]["extension"] = [
            {"url": SHORT, "valueCodeableConcept": {"coding": [{"code": "1", "display": short}]}}
        ]
    return st


def text_of(st: dict[str, Any]) -> str | None:
    mapped = structured_dosage(st)
    return dosage_text(mapped.dosage) if mapped is not None else None


# -- the reference: all eleven ereseptdosing in it ------------------------------------------


def test_every_structured_dosing_of_the_reference_says_what_its_text_says() -> None:
    said = {name: text_of(st) for name, st in reference_statements().items()}
    assert said == {
        "Myalepta": "1 mg morgen",
        "Deksametason/Neomycin/Polymyksin": "1 dråpe morgen, midt på dagen og kveld",
        "Rivaroksaban": "1 tablett morgen",
        "Akamprosat": "2 tabletter morgen, midt på dagen og kveld",
        "Lapatinib": "5 tabletter morgen",
        # two periods with a day's pause between them (no step of its own: a pause changes
        # no finding); Formiddag, which no time code PLL takes names, is once a day
        "Atorvastatin": "1 tablett morgen og ettermiddag i 3 dager, deretter 1 tablett "
        "morgen, ettermiddag og kveld og 1 tablett daglig i 22 dager",
        "Liotyronin": "3 tabletter morgen",
        "Nilotinib": "2 kapsler morgen og kveld i 34 dager",
        "Etylmorfin": "1 ml morgen og kveld i 36 dager",
        "Metode": "1 tablett morgen",
    }


def test_a_mapped_unit_is_named_where_the_statement_has_it() -> None:
    st = reference_statements()["Deksametason/Neomycin/Polymyksin"]
    mapped = structured_dosage(st)
    assert mapped is not None
    assert (
        mapped.units[2] == "extension[0].extension[7].extension[3].extension[0].valueQuantity.unit"
    )
    place: Any = st
    for part in mapped.units[2].split(".")[:-2]:
        key, index = part.rstrip("]").split("[")
        place = place[key][int(index)]
    assert place["valueQuantity"]["unit"] == "dråpe"


# -- intervals and times ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("every", "at", "text", "days"),
    [
        ((7, "Døgn"), "1", "2 tabletter morgen hver 7. dag", Decimal(1)),
        ((1, "uke"), "1", "2 tabletter morgen 1 gang i uken", Decimal(1)),
        ((2, "døgn"), "5", "2 tabletter kveld annenhver dag", Decimal("3.5")),
        ((0.5, "Døgn"), None, "2 tabletter hver 12. time", Decimal(7)),
        ((8, "timer"), None, "2 tabletter hver 8. time", Decimal(7)),
    ],
)
def test_an_interval_is_how_often(every: Any, at: str | None, text: str, days: Decimal) -> None:
    st = statement(period(repeating(2, every=every, at=at)))
    mapped = structured_dosage(st)
    assert mapped is not None
    assert dosage_text(mapped.dosage) == text
    assert dosing_days_per_week(mapped.dosage) == days


def test_the_day_s_amount_adds_up_every_dose() -> None:
    st = statement(period(*(repeating(8, at=code) for code in ("1", "3", "4", "5"))))
    mapped = structured_dosage(st)
    assert mapped is not None
    assert largest_daily_amounts(mapped.dosage) == {"tablett": Decimal(32)}


# -- what cannot be said exactly is not said ----------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda st: st["extension"][0]["extension"].pop(), "no structured dosing"),
        (
            lambda st: _dose(st)["extension"][3]["valueCodeableConcept"]["coding"][0].update(
                code="99"
            ),
            "an unknown time range",
        ),
        (
            lambda st: _dose(st)["extension"].append({"url": "maxdose", "valueInteger": 1}),
            "an element PLL does not know",
        ),
        (lambda st: _dose(st)["extension"].pop(1), "no interval"),
        (
            lambda st: _dose(st)["extension"][1]["valueQuantity"].update(unit="minutt"),
            "an interval in minutes",
        ),
        (
            lambda st: _dose(st)["extension"][1]["valueQuantity"].update(value=0.3),
            "an interval of no whole number of hours",
        ),
        (lambda st: _dose(st)["extension"][0]["valueQuantity"].update(value=0), "no amount"),
        (
            lambda st: _dose(st)["extension"][0]["valueQuantity"].update(value="2"),
            "an amount that is no number",
        ),
        (lambda st: _dose(st)["extension"][0].update(valueQuantity=[]), "a Quantity no object"),
        (
            lambda st: st["extension"][0]["extension"][1].update(extension="x"),
            "a period that is no list",
        ),
        (lambda st: _dose(st)["extension"].append(_dose(st)["extension"][0]), "two amounts"),
    ],
)
def test_a_structure_that_cannot_be_said_exactly_gives_nothing(edit: Any, why: str) -> None:
    st = statement(period(repeating(2)))
    assert structured_dosage(st) is not None
    edit(st)
    assert structured_dosage(st) is None, why


def _dose(st: dict[str, Any]) -> dict[str, Any]:
    dose: dict[str, Any] = st["extension"][0]["extension"][1]["extension"][-1]
    return dose


def test_a_time_of_day_for_a_dose_every_few_hours_is_not_guessed_at() -> None:
    assert structured_dosage(statement(period(repeating(1, every=(8, "timer"), at="1")))) is None


def test_the_same_time_twice_in_one_period_is_not_added_up_by_guess() -> None:
    assert structured_dosage(statement(period(repeating(1), repeating(2)))) is None


def test_periods_are_steps_only_when_they_follow_one_another() -> None:
    first = period(repeating(1), start="2026-01-01", end="2026-01-08")
    then = period(repeating(2), start="2026-01-08")
    assert text_of(statement(first, then)) == (
        "1 tablett morgen i 7 dager, deretter 2 tabletter morgen"
    )
    overlapping = period(repeating(2), start="2026-01-05")
    assert structured_dosage(statement(first, overlapping)) is None
    unending = period(repeating(1), start="2026-01-01")
    assert structured_dosage(statement(unending, then)) is None
    backwards = period(repeating(1), start="2026-01-08", end="2026-01-01")
    assert structured_dosage(statement(backwards)) is None
    no_start = period(repeating(1), end="2026-01-08")
    assert structured_dosage(statement(no_start, then)) is None


def test_a_short_dosage_must_agree() -> None:
    three = period(*(repeating(2, at=code) for code in ("1", "3", "5")))
    assert structured_dosage(statement(three, short="2+2+2")) is not None
    assert structured_dosage(statement(three, short="2+0+0+0")) is None
    # one that cannot be read says nothing either way
    assert structured_dosage(statement(three, short="Etter avtale")) is not None


def test_nothing_odd_in_a_statement_raises() -> None:
    for odd in ({}, {"extension": "x"}, {"extension": [None, 1, {"url": AMENDMENT}]}):
        assert structured_dosage(odd) is None
    st = statement(period(repeating(2)), short="2")
    for short in ("2+0", {"coding": "x"}, {"coding": [None]}):
        st["dosage"][0]["extension"][0]["valueCodeableConcept"] = short
        assert structured_dosage(st) is not None
    st["dosage"] = "x"
    assert structured_dosage(st) is not None


# -- the checks weigh the structure beside the text ------------------------------------------


MTX = Dosed("e1", "Metotreksat Tab 2,5 mg", [{"text": "4 tabletter morgen"}], "L04AX03", "Tablett")


def test_the_structure_is_judged_beside_a_text() -> None:
    mapped = structured_dosage(statement(period(repeating(4))))
    assert mapped is not None
    # the text alone does not say it is weekly: a finding on its own (free text is checked)
    assert [f.details for f in dose_findings(MTX)] == [{"text": "4 tabletter morgen"}]
    found = dose_findings(MTX, mapped.dosage)
    assert [f.kind for f in found] == [Kind.WEEKLY_DRUG]
    assert found[0].details["daysPerWeek"] == "7"  # the structure's, which counts the days


def test_a_finding_of_both_the_text_and_the_structure_is_shown_once() -> None:
    mapped = structured_dosage(statement(period(repeating(30))))
    assert mapped is not None
    said = replace(MTX, dosage=[{"text": "25 tabletter morgen"}], atc="N02BE01")
    assert [f.details["perDay"] for f in dose_findings(said)] == ["25"]
    found = dose_findings(said, mapped.dosage)
    assert [f.kind for f in found] == [Kind.IMPLAUSIBLE_DOSE]
    assert found[0].details["perDay"] == "30"  # the structure's, which says per day


def test_a_dosage_pll_keeps_structured_is_judged_as_it_is() -> None:
    mapped = structured_dosage(statement(period(repeating(4))))
    assert mapped is not None
    weekly = {
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}},
        "doseAndRate": [{"doseQuantity": {"value": 4, "unit": "tablett"}}],
    }
    kept = replace(MTX, dosage=[weekly])
    assert dose_findings(kept, mapped.dosage) == []
