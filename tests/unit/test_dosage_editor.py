"""The dosage editor's fields to FHIR Dosage and back (pll.web.dosage_editor, through the
names pages use: forms.dosage, forms.editor_values): each mode, the units a form takes, and
nothing typed silently dropped."""

from __future__ import annotations

from typing import Any

import pytest

from pll.domain.errors import InvalidInput
from pll.web import forms


def build(fields: dict[str, str], form: str | None = None) -> list[dict[str, Any]]:
    return forms.dosage(lambda name: fields.get(name, ""), form)


def refusal(fields: dict[str, str], form: str | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        build(fields, form)
    return caught.value


MODES = [
    pytest.param(
        {"dose-mode": "fixed", "dose-unit": "tablett", "dose-MORN": "1", "dose-EVE": "2"},
        "1 tablett morgen og 2 tabletter kveld",
        id="fixed",
    ),
    pytest.param(
        {"dose-mode": "prn", "dose-unit": "tablett", "dose-prn": "1", "dose-max": "3",
         "dose-for": "smerter"},
        "1 tablett ved behov mot smerter, maks 3 per døgn",
        id="as-needed",
    ),
    pytest.param(
        {"dose-mode": "week", "dose-unit": "tablett", "dose-week": "2", "dose-week-mon": "1"},
        "2 tabletter 1 gang i uken (mandag)",
        id="weekly",
    ),
    pytest.param(
        {"dose-mode": "week", "dose-unit": "kapsel", "dose-week": "1", "dose-week-mon": "1",
         "dose-week-thu": "1"},
        "1 kapsel 2 ganger i uken (mandag og torsdag)",
        id="twice-weekly",
    ),
    pytest.param(
        {"dose-mode": "interval", "dose-unit": "tablett", "dose-int": "1", "dose-int-every": "2"},
        "1 tablett annenhver dag",
        id="every-other-day",
    ),
    pytest.param(
        {"dose-mode": "interval", "dose-unit": "tablett", "dose-int": "1,5",
         "dose-int-every": "3", "dose-int-MORN": "1", "dose-int-EVE": "1"},
        "1,5 tabletter morgen og kveld hver 3. dag",
        id="every-third-day-at-times",
    ),
    pytest.param(
        {"dose-mode": "taper", "dose-unit": "tablett",
         "dose-step1-MORN": "2", "dose-step1-EVE": "1", "dose-step1-length": "5",
         "dose-step1-unit": "d",
         "dose-step2-MORN": "1", "dose-step2-length": "2", "dose-step2-unit": "wk",
         "dose-step3-MORN": "0,5"},
        "2 tabletter morgen og 1 tablett kveld i 5 dager, deretter 1 tablett morgen i 2 uker, "
        "deretter 0,5 tablett morgen",
        id="tapering",
    ),
    pytest.param(
        {"dose-mode": "taper", "dose-unit": "tablett", "dose-step1-MORN": "1",
         "dose-step1-length": "10", "dose-step1-unit": "d"},
        "1 tablett morgen i 10 dager",
        id="one-bounded-step",
    ),
    pytest.param(
        {"dose-mode": "text", "dose-text": "Etter skjema fra sykehuset"},
        "Etter skjema fra sykehuset",
        id="free-text",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "text"), MODES)
def test_each_mode_is_written_by_the_domain_and_opens_again_as_typed(
    fields: dict[str, str], text: str
) -> None:
    built = build(fields)
    assert built[0]["text"] == text
    assert forms.editor_values(built) == fields


def test_a_weekly_dose_is_structured_with_its_weekdays() -> None:
    [element] = build({"dose-mode": "week", "dose-week": "2", "dose-week-mon": "1"})
    assert element["timing"] == {
        "repeat": {"frequency": 1, "period": 1, "periodUnit": "wk", "dayOfWeek": ["mon"]}
    }


def test_tapering_steps_are_sequences_with_bounds_and_empty_rows_are_skipped() -> None:
    built = build(
        {
            "dose-mode": "taper",
            "dose-step1-MORN": "2",
            "dose-step1-length": "3",
            "dose-step3-MORN": "1",  # row 2 left empty: the steps follow on
        }
    )
    assert [e["sequence"] for e in built] == [1, 2]
    assert built[0]["timing"]["repeat"]["boundsDuration"]["code"] == "d"
    assert "boundsDuration" not in built[1]["timing"]["repeat"]


@pytest.mark.parametrize(
    ("fields", "where", "words"),
    [
        ({"dose-mode": "week", "dose-week": "2"}, "dose-week-mon", "ukedag"),
        ({"dose-mode": "week", "dose-week-mon": "1"}, "dose-week", "mengden"),
        ({"dose-mode": "interval", "dose-int": "1", "dose-int-every": "1"}, "dose-int-every", "2"),
        ({"dose-mode": "interval", "dose-int": "1", "dose-int-every": "x"}, "dose-int-every",
         "helt"),
        ({"dose-mode": "taper", "dose-step1-MORN": "2", "dose-step2-MORN": "1"},
         "dose-step1-length", "hvor lenge"),
        ({"dose-mode": "taper", "dose-step1-length": "3"}, "dose-step1-MORN", "Trinn 1"),
        ({"dose-mode": "taper", "dose-step1-MORN": "1", "dose-step1-length": "2",
          "dose-step1-unit": "mo", "dose-step2-MORN": "1"}, "dose-step1-unit", "tidsenhet"),
        ({"dose-mode": "taper"}, "dose-step1-MORN", "trinn 1"),
        ({"dose-mode": "fixed", "dose-EVE": "to"}, "dose-EVE", "ikke en mengde"),
    ],
)  # fmt: skip
def test_what_is_wrong_is_refused_at_its_field(
    fields: dict[str, str], where: str, words: str
) -> None:
    error = refusal(fields)
    assert error.expression == where
    assert words in error.message


@pytest.mark.parametrize(
    ("fields", "where", "named"),
    [
        ({"dose-mode": "text", "dose-text": "Som avtalt", "dose-MORN": "1"}, "dose-MORN",
         "«Faste tider» (Morgen: 1)"),
        ({"dose-mode": "fixed", "dose-MORN": "1", "dose-text": "Som avtalt"}, "dose-text",
         "«Fritekst» (Dosering som tekst: Som avtalt)"),
        ({"dose-mode": "fixed", "dose-MORN": "1", "dose-week-sun": "1"}, "dose-week-sun",
         "«Ukentlig» (søndag)"),
        ({"dose-mode": "week", "dose-week": "1", "dose-week-mon": "1", "dose-step2-length": "4"},
         "dose-step2-length", "«Nedtrapping» (trinn 2 varighet: 4)"),
    ],
)  # fmt: skip
def test_a_value_typed_in_another_mode_is_refused_by_name(
    fields: dict[str, str], where: str, named: str
) -> None:
    error = refusal(fields)
    assert error.expression == where
    assert named in error.message
    assert "ville ikke blitt lagret" in error.message


def test_the_dose_the_page_filled_in_is_replaced_not_refused() -> None:
    built = build(
        {
            "dose-mode": "text",
            "dose-text": "Som avtalt",
            "dose-MORN": "1",
            "was-dose-MORN": "1",  # the entry's dose, which this change replaces
        }
    )
    assert built == [{"text": "Som avtalt"}]
    # but a changed value is typed, and would be lost
    assert (
        refusal(
            {"dose-mode": "text", "dose-text": "x", "dose-MORN": "2", "was-dose-MORN": "1"}
        ).expression
        == "dose-MORN"
    )


def test_defaults_of_another_mode_are_not_something_typed() -> None:
    build({"dose-mode": "fixed", "dose-MORN": "1", "dose-int-every": "2", "dose-step1-unit": "wk"})


@pytest.mark.parametrize(
    ("form", "units"),
    [
        ("Tablett", ("tablett",)),
        ("Krem", ("påføring",)),
        ("Mikstur", ("ml", "dråpe")),
        ("Injeksjonsvæske, oppløsning", ("ml", "IE", "mg")),
        (None, forms.UNITS),
        ("Noe PLL ikke kjenner", forms.UNITS),
    ],
)
def test_the_units_offered_are_those_the_form_takes_the_usual_first(
    form: str | None, units: tuple[str, ...]
) -> None:
    assert forms.units_of(form) == units
    assert set(forms.units_of(form)) <= set(forms.UNITS)
    # with no unit chosen, the usual one is used
    assert build({"dose-MORN": "1"}, form)[0]["doseAndRate"][0]["doseQuantity"]["unit"] == units[0]


def test_a_unit_the_form_does_not_take_is_refused_naming_the_form_and_its_units() -> None:
    error = refusal({"dose-MORN": "1", "dose-unit": "tablett"}, "Krem")
    assert error.expression == "dose-unit"
    assert error.message == "Krem doseres i påføring, ikke i «tablett»."
    error = refusal({"dose-MORN": "1", "dose-unit": "tablett"}, "Mikstur")
    assert error.message == "Mikstur doseres i ml eller dråpe, ikke i «tablett». Velg en av dem."
    assert refusal({"dose-MORN": "1", "dose-unit": "fat"}).message == "Ukjent enhet «fat»."


@pytest.mark.parametrize(
    "dosage",
    [
        # as needed at a time of day, and weekdays every other week: no fields for those
        [{"asNeededBoolean": True, "timing": {"repeat": {"when": ["HS"]}},
          "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}], "text": "t"}],
        [{"timing": {"repeat": {"period": 2, "periodUnit": "wk", "dayOfWeek": ["mon"]}},
          "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}], "text": "t"}],
        [{"timing": {"repeat": {"when": ["MORN"], "period": 8, "periodUnit": "h"}},
          "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}], "text": "t"}],
        [{"timing": {"repeat": {"when": ["MORN"]}},
          "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "spiseskje"}}], "text": "t"}],
    ],
)  # fmt: skip
def test_a_dosage_the_editor_cannot_hold_opens_as_its_text(dosage: list[dict[str, Any]]) -> None:
    assert forms.editor_values(dosage) == {"dose-mode": "text", "dose-text": "t"}


def test_a_weekly_dose_without_a_weekday_opens_in_the_weekly_mode_and_asks_for_the_day() -> None:
    """Once a week with no day named (as older entries and the old demo were kept) is not
    opened as free text, which the structured checks cannot count."""
    weekly = [
        {
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}},
            "doseAndRate": [{"doseQuantity": {"value": 4, "unit": "tablett"}}],
        }
    ]
    values = forms.editor_values(weekly)
    assert values == {"dose-mode": "week", "dose-week": "4", "dose-unit": "tablett"}
    with pytest.raises(InvalidInput, match="ukedag") as refused:
        forms.dosage(lambda name: values.get(name, ""), "Tablett")
    assert refused.value.expression == "dose-week-mon"


def test_the_demo_weekly_doses_name_their_weekday() -> None:
    from pll.services.demo import METHOTREXATE, REGIMENS

    weekly = [
        element["timing"]["repeat"]
        for regimen in [*REGIMENS, METHOTREXATE]
        for element in regimen.dosage
        if element.get("timing", {}).get("repeat", {}).get("periodUnit") == "wk"
    ]
    assert weekly
    assert all(repeat.get("dayOfWeek") for repeat in weekly)


def test_the_prescription_quantity_is_offered_and_refused_by_the_drug_form() -> None:
    from datetime import date

    assert forms.rx_units_for("Tablett") == ("pakning", "stk", "tablett")
    assert forms.rx_units_for("Depotplaster") == ("pakning", "stk", "plaster")
    assert forms.rx_units_for(None) == forms.RX_UNITS
    typed = {"rx-quantity": "3", "rx-unit": "plaster"}
    with pytest.raises(InvalidInput, match="foreskrives i pakning, stk, tablett") as refused:
        forms.rx_fields(lambda name: typed.get(name, ""), date(2026, 12, 6), "Tablett")
    assert refused.value.expression == "rx-unit"
