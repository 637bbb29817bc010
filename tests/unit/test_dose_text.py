"""Free-text dosing is checked too (issue 16, DESIGN §3 rule 6): methotrexate in free text
must state a weekly pattern, a unit word the form does not take is a blocking finding, the
amount reader knows the abbreviations doctors type; and a dose finding names its amount,
in its code and in the note an override leaves. Plain domain calls, no mocks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pll.domain import overrides
from pll.domain.checks import Kind
from pll.domain.dosage import validate_dosage
from pll.domain.dose_checks import Dosed, check_dose, largest_daily_amounts
from pll.domain.errors import InvalidInput

MTX_ATC = "L04AX03"


def found(text: str, form: str | None = "Tablett", atc: str | None = None) -> list[Kind]:
    dosage = [{"text": text}]
    validate_dosage(dosage)
    return [f.kind for f in check_dose(Dosed("e1", "X", dosage, atc, form, "k"))]


@pytest.mark.parametrize(
    ("text", "weekly"),
    [
        ("1 tablett daglig", False),
        ("4 tabletter morgen", False),
        ("4 tabletter daglig i 2 uker", False),  # a duration is no weekly pattern
        ("4 tabletter hver mandag og daglig", False),
        ("4 tabletter 1 gang i uken", True),
        ("4 tabletter 1 gang i uka", True),
        ("4 tabletter én gang i uken", True),
        ("4 tabletter en gang per uke", True),
        ("2 tabletter 1 gang i uken (mandag)", True),
        ("4 tabletter ukentlig", True),
        ("4 tabletter hver fredag", True),
        ("4 tabletter fredager", True),
        ("4 tabletter hver 7. dag", True),
        # what may be more than one day a week is not weekly (issue 16, second review)
        ("4 tbl. per uke", False),  # 4 a week, on how many days?
        ("1 tablett morgen, 7 dager i uken", False),
        ("1 tablett mandag til fredag", False),
        ("1 tablett morgen 3 ganger i uken", False),
        ("1 tablett morgen to ganger i uken", False),
        ("1 tablett hver dag unntatt søndag", False),
        ("1 tablett unntatt søndag", False),
        ("1 tablett mandag, onsdag og fredag", False),
        ("1 tablett mandag-søndag", False),
        ("1 tablett mandag – fredag", False),
        ("1 tablett alle dager", False),
        ("1 tablett mandag og torsdag", False),
        ("1 tablett 1 gang i uken, 3 ganger i uken første måned", False),
    ],
)
def test_methotrexate_in_free_text_must_say_it_is_weekly(text: str, weekly: bool) -> None:
    assert (Kind.WEEKLY_DRUG in found(text, atc=MTX_ATC)) is not weekly
    assert Kind.WEEKLY_DRUG not in found(text, atc="N02BE01")


@pytest.mark.parametrize(
    ("text", "form", "misfit"),
    [
        ("3 tabletter morgen", "Krem", True),
        ("1 påføring morgen", "Krem", False),
        ("2 tabletter morgen", "Kapsel, hard", True),
        ("1 tablett morgen", "Mikstur", True),
        ("5 ml morgen", "Mikstur", False),
        ("Knus 1 tablett i 5 ml vann", "Tablett", False),  # said how to take a solid form
        ("1 pose løses i 200 ml vann", "Granulat", False),
        ("2 ml morgen", "Krem", True),  # but a cream is not measured in ml
        ("1 tablett à 500 mg", "Tablett", False),  # mg is measured by the drug
        ("3 tabletter morgen", None, False),  # a form PLL cannot sort is not judged
    ],
)
def test_a_unit_word_the_form_does_not_take_is_a_finding(
    text: str, form: str | None, misfit: bool
) -> None:
    assert (Kind.TEXT_UNIT_FORM in found(text, form)) is misfit


def test_the_text_finding_blocks_names_the_unit_and_is_overridable() -> None:
    cream = Dosed("e1", "Lya Krem", [{"text": "3 tabletter morgen"}], None, "Krem", "510001")
    [finding] = check_dose(cream)
    assert finding.blocking
    assert finding.code == "unit-text-510001-tablett"
    assert "doseres i påføring, men doseringen «3 tabletter morgen» nevner tabletter" in (
        finding.message
    )


def test_the_amount_reader_knows_abbreviations_and_grouped_thousands() -> None:
    assert largest_daily_amounts([{"text": "1 000 tabletter"}]) == {"tablett": 1000}
    assert largest_daily_amounts([{"text": "25 tbl morgen"}]) == {"tablett": 25}
    assert largest_daily_amounts([{"text": "30 kaps kveld"}]) == {"kapsel": 30}
    assert largest_daily_amounts([{"text": "30 stk kveld"}], "Kapsel, hard") == {"kapsel": 30}
    assert largest_daily_amounts([{"text": "1 2,5 ml"}]) == {"ml": Decimal("2.5")}
    assert found("1 000 tabletter morgen") == [Kind.IMPLAUSIBLE_DOSE]
    assert found("21 stk morgen") == [Kind.IMPLAUSIBLE_DOSE]


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("99999 tab morgen", "tablett"),
        ("99999 tab. morgen", "tablett"),
        ("99999 tabs morgen", "tablett"),
        ("99999 caps morgen", "kapsel"),
        ("99999 kap morgen", "kapsel"),
    ],
)
def test_the_amount_reader_knows_the_short_abbreviations(text: str, unit: str) -> None:
    assert largest_daily_amounts([{"text": text}]) == {unit: 99999}
    assert found(text, "Tablett" if unit == "tablett" else "Kapsel, hard") == [
        Kind.IMPLAUSIBLE_DOSE
    ]


@pytest.mark.parametrize("text", ["3 tab morgen", "3 tab. morgen", "2 caps kveld", "1 kap"])
def test_an_abbreviated_unit_the_form_does_not_take_is_a_finding(text: str) -> None:
    assert found(text, "Krem") == [Kind.TEXT_UNIT_FORM]


def test_the_code_names_the_amount_so_one_override_does_not_cover_another() -> None:
    def code(amount: int) -> str:
        dosage = [
            {
                "timing": {"repeat": {"when": ["MORN"]}},
                "doseAndRate": [{"doseQuantity": {"value": amount, "unit": "tablett"}}],
            }
        ]
        [finding] = check_dose(Dosed("e1", "Paracet", dosage, None, "Tablett", "510003"))
        return finding.code

    assert code(21) == "dose-510003-21-tablett"
    assert code(99999) == "dose-510003-99999-tablett"


def test_the_note_an_override_leaves_keeps_the_amount() -> None:
    [finding] = check_dose(Dosed("e1", "Paracet", [{"text": "99999 tbl morgen"}], None, None))
    assert overrides.summary(finding) == "Usannsynlig dose av Paracet: 99999 tabletter per døgn"


def test_an_amount_too_large_to_be_a_dose_is_refused_as_bad_input() -> None:
    dosage = [
        {
            "timing": {"repeat": {"when": ["MORN"]}},
            "doseAndRate": [{"doseQuantity": {"value": 3e29, "unit": "tablett"}}],
        }
    ]
    with pytest.raises(InvalidInput, match="more than any dose can be"):
        check_dose(Dosed("e1", "Paracet", dosage, None, "Tablett"))


def test_an_amount_too_large_is_refused_in_norwegian_too_and_reported_on_a_read() -> None:
    dosage = [{"text": "2 000 000 000 000 tabletter morgen"}]
    with pytest.raises(InvalidInput) as refused:
        check_dose(Dosed("e1", "Paracet", dosage, None, "Tablett"))
    assert "mer enn noen dose kan være" in (refused.value.norwegian or "")
    # a read of what is stored reports it instead, as a blocking finding
    [finding] = check_dose(Dosed("e1", "Paracet", dosage, None, "Tablett"), refuse=False)
    assert finding.kind is Kind.IMPLAUSIBLE_DOSE
    assert finding.blocking
