"""Changes a care unit has not yet taken in (issue 17): the net changes that touch giving
since the unit's base, who made them and in which list version. Plain domain calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pll.domain.administration.changes import (
    Change,
    ChangeKind,
    EntryVersion,
    ListState,
    unacknowledged,
)
from pll.domain.model import Author, Role
from pll.domain.multidose import ADMINISTRATION, PACKED

GP = Author("Kari Fastlege", Role.DOCTOR, hpr="565501872")
DR = Author("Per Sykehuslege", Role.DOCTOR, hpr="565505933")
T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)


def content(
    amount: float = 1,
    when: tuple[str, ...] = ("MORN",),
    status: str = "active",
    name: str = "Metformin",
    **extra: Any,
) -> dict[str, Any]:
    text = f"{amount:g} tablett " + " og ".join(w.lower() for w in when)
    return {
        "status": status,
        "medicationCodeableConcept": {"text": name},
        "dosage": [
            {
                "text": text,
                "timing": {"repeat": {"when": list(when)}},
                "doseAndRate": [{"doseQuantity": {"value": amount, "unit": "tablett"}}],
            }
        ],
        **extra,
    }


def v(list_version: int, data: dict[str, Any], by: Author = GP) -> EntryVersion:
    return EntryVersion(list_version, data, by, T0 + timedelta(hours=list_version))


def one(base: int, upto: int, *versions: EntryVersion) -> tuple[Change, ...]:
    return unacknowledged(base, upto, {"e1": versions}, [])


def test_a_dose_change_says_from_to_who_and_which_version() -> None:
    (change,) = one(2, 5, v(1, content(1)), v(4, content(2), DR))
    assert change.kind is ChangeKind.DOSE
    assert (change.before, change.after) == ("1 tablett morn", "2 tablett morn")
    assert (change.by, change.list_version, change.entry_id) == (DR, 4, "e1")
    assert change.at == T0 + timedelta(hours=4)
    assert "Metformin: endret dose (1 tablett morn → 2 tablett morn)" in change.text()
    assert "Per Sykehuslege" in change.text()


def test_timing_alone_and_both_together() -> None:
    (timing,) = one(1, 3, v(1, content(1)), v(3, content(1, ("MORN", "EVE"))))
    assert timing.kind is ChangeKind.TIMING
    (both,) = one(1, 3, v(1, content(1)), v(3, content(2, ("EVE",))))
    assert both.kind is ChangeKind.DOSAGE
    period = content(1, effectivePeriod={"end": "2026-03-10"})
    (limited,) = one(1, 3, v(1, content(1)), v(3, period))
    assert limited.kind is ChangeKind.TIMING


def test_a_new_entry_and_one_made_and_ended_since() -> None:
    (new,) = one(2, 3, v(3, content(1)))
    assert (new.kind, new.before, new.after) == (ChangeKind.NEW, None, "1 tablett morn")
    assert one(2, 5, v(3, content(1)), v(5, content(1, status="stopped"))) == ()


def test_discontinued_paused_and_resumed() -> None:
    (stopped,) = one(1, 4, v(1, content()), v(3, content(2)), v(4, content(2, status="stopped")))
    assert (stopped.kind, stopped.list_version, stopped.after) == (
        ChangeKind.DISCONTINUED,
        4,
        "seponert",
    )
    (paused,) = one(1, 2, v(1, content()), v(2, content(status="on-hold")))
    assert (paused.kind, paused.before, paused.after) == (ChangeKind.PAUSED, "i bruk", "pauset")
    (resumed,) = one(2, 3, v(1, content()), v(2, content(status="on-hold")), v(3, content()))
    assert resumed.kind is ChangeKind.RESUMED


def test_what_does_not_touch_giving_is_no_change() -> None:
    noted = content(1, note=[{"text": "tas med mat"}], basedOn=[{"reference": "x"}])
    assert one(1, 2, v(1, content(1)), v(2, noted)) == ()


def test_changed_and_changed_back_is_no_change_and_the_last_change_is_named() -> None:
    assert one(1, 3, v(1, content(1)), v(2, content(2)), v(3, content(1))) == ()
    (change,) = one(1, 4, v(1, content(1)), v(2, content(2)), v(3, content(3)), v(4, content(3)))
    assert (change.list_version, change.after) == (3, "3 tablett morn")


def test_acknowledging_a_version_takes_in_the_changes_up_to_it_only() -> None:
    versions = (v(1, content(1)), v(3, content(2)), v(5, content(2, ("EVE",))))
    (up_to_3,) = one(1, 3, *versions)
    assert up_to_3.kind is ChangeKind.DOSE
    (after_3,) = one(3, 5, *versions)
    assert (after_3.kind, after_3.before, after_3.list_version) == (
        ChangeKind.TIMING,
        "2 tablett morn",
        5,
    )
    assert one(5, 5, *versions) == ()


def test_the_multidose_mark_and_the_medicine() -> None:
    packed = [{"url": ADMINISTRATION, "extension": [{"url": PACKED, "valueBoolean": True}]}]
    (mark,) = one(1, 2, v(1, content()), v(2, content(extension=packed)))
    assert (mark.kind, mark.before, mark.after) == (
        ChangeKind.MULTIDOSE,
        "ikke i multidose",
        "i multidose",
    )
    (drug,) = one(1, 2, v(1, content()), v(2, content(name="Metformin 850")))
    assert (drug.kind, drug.before) == (ChangeKind.MEDICATION, "Metformin")
    assert drug.after == "Metformin 850"


def test_pause_pll_and_resuming_are_changes_of_the_list() -> None:
    states = [
        ListState(1, False, GP, T0),
        ListState(2, True, DR, T0 + timedelta(hours=2)),
        ListState(3, True, GP, T0 + timedelta(hours=3)),
    ]
    (paused,) = unacknowledged(1, 3, {}, states)
    assert (paused.kind, paused.list_version, paused.by, paused.entry_id) == (
        ChangeKind.LIST_PAUSED,
        2,
        DR,
        None,
    )
    resumed = [*states, ListState(4, False, GP, T0 + timedelta(hours=4))]
    (change,) = unacknowledged(3, 4, {}, resumed)
    assert change.kind is ChangeKind.LIST_RESUMED
    assert change.text().startswith("legemiddellisten gjenopptatt, av Kari Fastlege")
    # paused and resumed again before the unit looked: the chart is where it was
    assert unacknowledged(1, 4, {}, resumed) == ()


ORAL = {"coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral"}]}
SUBCUT = {"coding": [{"system": "http://snomed.info/sct", "code": "34206005"}], "text": "Subkutan"}


def with_element(data: dict[str, Any], **parts: Any) -> dict[str, Any]:
    return {**data, "dosage": [{**data["dosage"][0], **parts}]}


def test_a_change_of_route_is_a_change_from_to() -> None:
    (change,) = one(
        1, 2, v(1, with_element(content(), route=ORAL)), v(2, with_element(content(), route=SUBCUT))
    )
    assert change.kind is ChangeKind.ROUTE
    assert (change.before, change.after) == ("Oral", "Subkutan")
    assert "endret administrasjonsmåte (Oral → Subkutan)" in change.text()


def test_a_changed_instruction_is_a_change_from_to() -> None:
    before = with_element(content(), additionalInstruction=[{"text": "Tas med mat"}])
    after = with_element(content(), additionalInstruction=[{"text": "Tas fastende"}])
    (change,) = one(1, 2, v(1, before), v(2, after))
    assert change.kind is ChangeKind.INSTRUCTIONS
    assert (change.before, change.after) == ("Tas med mat", "Tas fastende")
