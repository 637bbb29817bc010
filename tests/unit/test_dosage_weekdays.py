"""Weekly doses on named weekdays (``timing.repeat.dayOfWeek``): the methotrexate case
"2 tabletter 1 gang i uken (mandag)" is structure the domain writes as text, and what the
text could not say exactly is refused where it is."""

from __future__ import annotations

from typing import Any

import pytest

from pll.domain.dosage import dosage_text, validate_dosage
from pll.domain.errors import InvalidInput


def weekly(value: float = 2, **repeat: Any) -> list[dict[str, Any]]:
    return [
        {
            "timing": {"repeat": repeat},
            "doseAndRate": [{"doseQuantity": {"value": value, "unit": "tablett"}}],
        }
    ]


@pytest.mark.parametrize(
    ("repeat", "expected"),
    [
        (
            {"frequency": 1, "period": 1, "periodUnit": "wk", "dayOfWeek": ["mon"]},
            "2 tabletter 1 gang i uken (mandag)",
        ),
        (
            {"period": 1, "periodUnit": "wk", "dayOfWeek": ["thu", "mon"]},
            "2 tabletter 2 ganger i uken (mandag og torsdag)",
        ),
        (
            {"frequency": 3, "period": 1, "periodUnit": "wk", "dayOfWeek": ["sun", "wed", "fri"]},
            "2 tabletter 3 ganger i uken (onsdag, fredag og søndag)",
        ),
        (
            {"period": 2, "periodUnit": "wk", "dayOfWeek": ["sat"]},
            "2 tabletter annenhver uke (lørdag)",
        ),
    ],
)
def test_weekdays_are_named_in_the_order_of_the_week(repeat: dict[str, Any], expected: str) -> None:
    assert dosage_text(weekly(**repeat)) == expected
    validate_dosage(weekly(**repeat))


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("mon", "mandag"),
        ("tue", "tirsdag"),
        ("wed", "onsdag"),
        ("thu", "torsdag"),
        ("fri", "fredag"),
        ("sat", "lørdag"),
        ("sun", "søndag"),
    ],
)
def test_each_day_code(code: str, name: str) -> None:
    text = dosage_text(weekly(1, period=1, periodUnit="wk", dayOfWeek=[code]))
    assert text == f"1 tablett 1 gang i uken ({name})"


def test_weekly_steps_are_written_like_any_other_step() -> None:
    first, second = weekly(2, period=1, periodUnit="wk", dayOfWeek=["mon"]) * 2
    first = {**first, "sequence": 1}
    first["timing"] = {
        "repeat": {
            **first["timing"]["repeat"],
            "boundsDuration": {
                "value": 4,
                "unit": "uker",
                "system": "http://unitsofmeasure.org",
                "code": "wk",
            },
        }
    }
    second = {**second, "sequence": 2}
    assert dosage_text([first, second]) == (
        "2 tabletter 1 gang i uken (mandag) i 4 uker, deretter 2 tabletter 1 gang i uken (mandag)"
    )


@pytest.mark.parametrize(
    ("repeat", "where", "words"),
    [
        (  # two days are two doses a week, not one
            {"frequency": 1, "period": 1, "periodUnit": "wk", "dayOfWeek": ["mon", "thu"]},
            "frequency",
            "must be 2",
        ),
        ({"period": 1, "periodUnit": "d", "dayOfWeek": ["mon"]}, "periodUnit", "periodUnit wk"),
        ({"dayOfWeek": ["mon"]}, "period", "periodUnit wk"),
        ({"period": 1, "periodUnit": "wk", "dayOfWeek": ["monday"]}, "dayOfWeek[0]", "mon"),
        ({"period": 1, "periodUnit": "wk", "dayOfWeek": ["mon", "mon"]}, "dayOfWeek[1]", "twice"),
        ({"period": 1, "periodUnit": "wk", "dayOfWeek": []}, "dayOfWeek", "non-empty"),
        ({"period": 1, "periodUnit": "wk", "dayOfWeek": "mon"}, "dayOfWeek", "non-empty"),
        (
            {"when": ["MORN"], "period": 1, "periodUnit": "wk", "dayOfWeek": ["mon"]},
            "dayOfWeek",
            "cannot be combined with when",
        ),
    ],
)
def test_what_the_text_could_not_say_exactly_is_refused_where_it_is(
    repeat: dict[str, Any], where: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_dosage(weekly(**repeat))
    assert caught.value.expression == f"dosage[0].timing.repeat.{where}"
    assert words in caught.value.message
