"""What an entry marked for multidose packing must be (issue 18), on the pure rules: a solid
oral form from FEST, a structured dosage at fixed times of day, an active prescription — and
only what a change brings is judged."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from pll.domain import multidose_packing as rules
from pll.domain.errors import RuleRefused
from pll.domain.model import Author, Prescription, Role
from pll.domain.multidose import ADMINISTRATION, PACKED

TODAY = date(2026, 12, 6)
GP = Author("Kari Fastlege", Role.DOCTOR, hpr="565501872")
MORNING = [
    {
        "timing": {"repeat": {"when": ["MORN", "EVE"]}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
    }
]


def rx(status: str = "active", authored: str = "2026-11-01") -> Prescription:
    return Prescription(
        "rx-1",
        1,
        {"status": status, "authoredOn": authored},
        datetime(2026, 11, 1, tzinfo=UTC),
        GP,
    )


def entry(packed: bool = True, **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": "active",
        "medicationCodeableConcept": {"text": "Metformin"},
        "dosage": MORNING,
        "basedOn": [{"reference": "MedicationRequest/rx-1"}],
        "extension": [
            {"url": ADMINISTRATION, "extension": [{"url": PACKED, "valueBoolean": packed}]}
        ],
    }
    return {**out, **changes}


@pytest.mark.parametrize(
    "form",
    [
        "Tablett",
        "Tablett, filmdrasjert",
        "Depottablett",
        "Enterotablett",
        "Kapsel, hard",
        "Enterokapsel, hard",
        "Tyggetablett",
    ],
)
def test_solid_oral_forms_are_packable(form: str) -> None:
    assert rules.packable_form(form)
    rules.check(rules.Marked("e", form, MORNING, [rx()]), TODAY)


@pytest.mark.parametrize(
    "form",
    [
        None,
        "",
        "Brusetablett",
        "Dispergerbar tablett",
        "Smeltetablett",
        "Sublingvaltablett",
        "Resoriblett, sublingval",
        "Sugetablett",
        "Vaginaltablett",
        "Mikstur, oppløsning",
        "Krem",
        "Injeksjonsvæske, oppløsning",
        "Inhalasjonspulver",
        "Depotplaster",
        "Stikkpille",
        "Granulat",
        "Tablett til mikstur, suspensjon",
    ],
)
def test_other_and_unknown_forms_are_refused_at_the_medicine(form: str | None) -> None:
    assert not rules.packable_form(form)
    with pytest.raises(RuleRefused) as refused:
        rules.check(rules.Marked("e", form, MORNING, [rx()]), TODAY)
    assert refused.value.details == {"element": "medicationCodeableConcept"}
    assert refused.value.expression == "MedicationStatement.extension"
    assert refused.value.norwegian is not None
    assert refused.value.norwegian.startswith("Kan ikke pakkes i multidose: ")
    assert ("not known from FEST" in refused.value.message) is (not form)


@pytest.mark.parametrize(
    ("dosage", "words"),
    [
        ([], "no dosage"),
        ([{"text": "1 tablett morgen"}], "free text"),
        (
            [
                {
                    "asNeededBoolean": True,
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
                }
            ],
            "as needed",
        ),
        (
            [
                {
                    "timing": {"repeat": {"when": ["MORN"]}},
                    "asNeededCodeableConcept": {"text": "smerter"},
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
                }
            ],
            "as needed",
        ),
        (
            [
                {
                    "timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}},
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
                }
            ],
            "no times of day",
        ),
        (
            [
                {
                    "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablett"}}],
                }
            ],
            "no times of day",
        ),
        ([MORNING[0], {"text": "og ellers ved behov"}], "free text"),
    ],
)
def test_a_dosage_not_at_fixed_times_is_refused(dosage: list[Any], words: str) -> None:
    with pytest.raises(RuleRefused) as refused:
        rules.check(rules.Marked(None, "Tablett", dosage, [rx()]), TODAY)
    assert words in refused.value.message
    assert refused.value.message.startswith("The new entry")
    assert refused.value.details == {"element": "dosage"}


def test_a_tapering_at_fixed_times_is_packable() -> None:
    steps = [
        {
            **MORNING[0],
            "sequence": 1,
            "timing": {"repeat": {"when": ["MORN"], "boundsDuration": {"value": 7, "code": "d"}}},
        },
        {**MORNING[0], "sequence": 2},
    ]
    rules.check(rules.Marked("e", "Tablett", steps, [rx()]), TODAY)


@pytest.mark.parametrize(
    ("prescriptions", "words"),
    [
        ([], "based on no prescription"),
        ([rx("stopped")], "none of its prescriptions is active"),
        ([rx("on-hold")], "none of its prescriptions is active"),
        ([rx("completed")], "none of its prescriptions is active"),
        ([rx(authored="2025-01-01")], "none of its prescriptions is active"),  # expired
    ],
)
def test_an_entry_without_an_active_prescription_is_refused(
    prescriptions: list[Prescription], words: str
) -> None:
    with pytest.raises(RuleRefused) as refused:
        rules.check(rules.Marked("e", "Tablett", MORNING, prescriptions), TODAY)
    assert words in refused.value.message
    assert refused.value.details == {"element": "basedOn"}


def test_one_active_prescription_among_ended_ones_is_enough() -> None:
    rules.check(rules.Marked("e", "Tablett", MORNING, [rx("completed"), rx()]), TODAY)


def test_the_structured_dosing_beside_a_text_is_judged() -> None:
    text = entry(dosage=[{"text": "1 tablett morgen og kveld"}])
    assert rules.judged_dosage(text, [], MORNING) == MORNING
    assert rules.judged_dosage(text) == [{"text": "1 tablett morgen og kveld"}]
    assert rules.judged_dosage(entry(), [{"text": "x"}]) == MORNING  # its own comes first
    # a prescription's dosage as text is passed over for a structured one after it
    assert rules.judged_dosage(text, [{"text": "1 tablett"}], MORNING) == MORNING


def test_only_what_a_change_brings_is_judged() -> None:
    marked, plain = entry(), entry(packed=False)
    assert rules.needs_judging(None, marked)  # a new marked entry
    assert not rules.needs_judging(None, plain)
    assert rules.needs_judging(plain, marked)  # marked by the change
    assert not rules.needs_judging(marked, marked)  # nothing it judges changed
    assert not rules.needs_judging(marked, {**marked, "note": [{"text": "ny merknad"}]})
    instructed = [{**MORNING[0], "patientInstruction": "Tas med mat"}]
    assert not rules.needs_judging(marked, entry(dosage=instructed))  # no new dose
    assert not rules.redosed(marked, entry(dosage=instructed))
    assert rules.redosed(marked, entry(dosage=[{"text": "1 tablett"}]))
    assert not rules.redosed(None, marked)  # a new entry is not re-dosed
    assert rules.needs_judging(marked, entry(dosage=[{"text": "1 tablett"}]))
    assert rules.needs_judging(marked, entry(basedOn=[]))
    assert rules.needs_judging(marked, entry(medicationCodeableConcept={"text": "Annet"}))
    # unmarking, pausing and discontinuing are never refused
    assert not rules.needs_judging(marked, plain)
    assert not rules.needs_judging(marked, entry(status="stopped"))
    assert not rules.needs_judging(marked, entry(status="on-hold"))
