"""The multidose bag of each round against the list (issue 17), on plain entries and packing
reports: what is in the bag, what is given separately, and each way bag and list can differ.
Plain domain calls, no mocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pll.domain.administration import OSLO, Slot, schedule
from pll.domain.administration.bags import (
    MISMATCH,
    Bags,
    Flag,
    PackedLine,
    PackingReport,
    Place,
    bags,
)
from pll.domain.model import Author, Entry, Pause, Role
from tests.unit.test_administration_schedule import dose, entry

GP = Author("Kari Fastlege", Role.DOCTOR, hpr="565501872")
MONDAY = date(2026, 3, 2)
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 14, 23, 59, tzinfo=UTC)
PACKED_AT = datetime(2026, 2, 27, 12, tzinfo=UTC)


def named(e: Entry, name: str, *, changed: datetime = PACKED_AT - timedelta(days=3)) -> Entry:
    content: dict[str, Any] = {**e.content, "medicationCodeableConcept": {"text": name}}
    return Entry(e.id, e.version, content, changed, GP)


def metformin(amount: float = 1, *when: str, version: int = 1, status: str = "active") -> Entry:
    made = entry(
        dose(amount, when=list(when or ("MORN", "EVE"))),
        eid="met",
        packed=True,
        version=version,
        status=status,
    )
    return named(made, "Metformin 500 mg")


def step(element: dict[str, Any]) -> dict[str, Any]:
    """One of several dosage elements given together (one step)."""
    return {**element, "sequence": 1}


def report(*lines: PackedLine, sent: datetime = PACKED_AT, rid: str = "r1") -> PackingReport:
    return PackingReport(rid, sent, START, END, lines, list_version=4)


def line(packed: Entry | None, eid: str = "met", **span: datetime) -> PackedLine:
    return PackedLine(eid, span.get("first", START), span.get("last", END), packed)


def of(entries: list[Entry], reports: list[PackingReport], day: date = MONDAY) -> Bags:
    result = schedule(entries, day)
    return bags(result, {e.id: e for e in entries}, reports)


def places(found: Bags) -> dict[str, tuple[Place, tuple[Flag, ...]]]:
    """Per planned dose key ``<entry>/<round>``: where it is taken from, and its flags."""
    return {
        f"{key.split('/')[0]}/{key.split('/')[2]}": (b.place, b.flags)
        for key, b in found.doses.items()
    }


def flags(found: Bags) -> list[tuple[Flag, str, Slot]]:
    return [(m.flag, m.entry_id, m.slot) for m in found.mismatches]


def test_what_was_packed_is_in_the_bag_and_the_rest_is_given_separately() -> None:
    now = metformin()
    amlodipin = named(entry(dose(1, when=["MORN"]), eid="aml"), "Amlodipin 5 mg")
    found = of([now, amlodipin], [report(line(now))])
    assert places(found) == {
        "met/morgen": (Place.BAG, ()),
        "met/kveld": (Place.BAG, ()),
        "aml/morgen": (Place.SEPARATE, ()),
    }
    assert found.mismatches == ()
    assert found.doses[f"met/{MONDAY}/morgen/1"].report is not None


def test_a_dose_changed_after_packing_flags_that_rounds_bag_only() -> None:
    packed = metformin(1, "MORN", "EVE", version=1)
    # the doctor doubled the evening dose after the pharmacy had packed
    now = Entry(
        "met",
        2,
        {**packed.content, "dosage": [step(dose(1, when=["MORN"])), step(dose(2, when=["EVE"]))]},
        PACKED_AT + timedelta(days=1),
        GP,
    )
    found = of([now], [report(line(packed))])
    assert places(found) == {
        "met/morgen": (Place.BAG, ()),
        "met/kveld": (Place.BAG, (Flag.CHANGED,)),
    }
    (mismatch,) = found.mismatches
    assert mismatch.text.startswith(f"{MISMATCH}: kveld 02.03.2026: Metformin 500 mg er endret")
    assert "i posen: 1 tablett; på listen nå: 2 tablett" in mismatch.text
    assert mismatch.dose_key == f"met/{MONDAY}/kveld/1"


def test_a_change_that_does_not_touch_what_is_given_flags_nothing() -> None:
    packed = metformin(version=1)
    now = Entry(
        "met",
        2,
        {**packed.content, "note": [{"text": "tas med mat"}]},
        PACKED_AT + timedelta(1),
        GP,
    )
    assert of([now], [report(line(packed))]).mismatches == ()


def test_a_dose_moved_to_another_round_is_taken_out_of_one_bag_and_given_from_a_package() -> None:
    packed = metformin(1, "MORN", version=1)
    now = Entry("met", 2, {**packed.content, "dosage": [dose(1, when=["NOON"])]}, PACKED_AT, GP)
    found = of([now], [report(line(packed))])
    assert places(found) == {"met/middag": (Place.SEPARATE, (Flag.CHANGED,))}
    assert flags(found) == [
        (Flag.REMOVE, "met", Slot.MORGEN),
        (Flag.CHANGED, "met", Slot.MIDDAG),
    ]
    assert "ligger i posen, men listen har den ikke lenger" in found.mismatches[0].text


def test_a_discontinued_or_paused_packed_entry_is_taken_out_of_the_bag() -> None:
    packed = metformin(version=1)
    for status, why in (("stopped", "den er seponert"), ("on-hold", "den er pauset")):
        now = Entry("met", 2, {**packed.content, "status": status}, PACKED_AT, GP)
        found = of([now], [report(line(packed))])
        assert found.doses == {}
        assert flags(found) == [
            (Flag.REMOVE, "met", Slot.MORGEN),
            (Flag.REMOVE, "met", Slot.KVELD),
        ]
        assert all(
            f"Metformin 500 mg ligger i posen, men {why}: ta den ut av posen" in m.text
            for m in found.mismatches
        )


def test_an_entry_marked_packed_but_not_in_the_report_is_given_from_a_package() -> None:
    now = metformin()
    other = named(entry(dose(1, when=["MORN"]), eid="ator", packed=True), "Atorvastatin")
    found = of([now, other], [report(line(now))])
    assert places(found)["ator/morgen"] == (Place.SEPARATE, (Flag.NOT_IN_REPORT,))
    assert flags(found) == [(Flag.NOT_IN_REPORT, "ator", Slot.MORGEN)]
    assert "er ikke i posen. Gi fra egen pakning eller kontakt apoteket" in (
        found.mismatches[0].text
    )


def test_a_line_that_ends_before_the_round_does_not_cover_it() -> None:
    now = metformin()
    # packed up to Monday morning only
    last = datetime(2026, 3, 2, 9, tzinfo=UTC)
    found = of([now], [report(line(now, last=last))])
    assert places(found) == {
        "met/morgen": (Place.BAG, ()),
        "met/kveld": (Place.SEPARATE, (Flag.NOT_IN_REPORT,)),
    }


def test_no_report_covering_the_day() -> None:
    now = metformin()
    found = of([now], [report(line(now))], day=MONDAY + timedelta(days=20))
    assert places(found) == {
        "met/morgen": (Place.SEPARATE, (Flag.NO_REPORT,)),
        "met/kveld": (Place.SEPARATE, (Flag.NO_REPORT,)),
    }
    assert "ingen pakkeliste fra apoteket dekker denne runden" in found.mismatches[0].text


def test_an_entry_in_the_bag_that_the_list_now_gives_from_a_package() -> None:
    packed = metformin(1, "MORN", version=1)
    content = {k: v for k, v in packed.content.items() if k != "extension"}
    now = Entry("met", 2, content, PACKED_AT, GP)
    found = of([now], [report(line(packed))])
    assert places(found) == {"met/morgen": (Place.SEPARATE, (Flag.REMOVE,))}
    assert "listen sier nå at den gis fra egen pakning" in found.mismatches[0].text


def test_the_newest_report_holding_a_round_is_its_bag() -> None:
    old = metformin(1, "MORN", version=1)
    now = metformin(2, "MORN", version=2)
    # packed first from version 1, repacked later from version 2 for the same days
    found = of(
        [now], [report(line(old)), report(line(now), rid="r2", sent=PACKED_AT + timedelta(1))]
    )
    assert places(found) == {"met/morgen": (Place.BAG, ())}
    assert found.doses[f"met/{MONDAY}/morgen/1"].report.id == "r2"  # type: ignore[union-attr]


def test_unknown_packed_version_falls_back_to_the_time_of_the_last_change() -> None:
    before = metformin()
    after = named(metformin(), "Metformin 500 mg", changed=PACKED_AT + timedelta(hours=1))
    assert of([before], [report(line(None))]).mismatches == ()
    found = of([after], [report(line(None))])
    assert places(found)["met/morgen"] == (Place.BAG, (Flag.CHANGED,))
    assert "endret etter at posen ble pakket" in found.mismatches[0].text


def test_nothing_to_say_without_reports_or_packed_entries_or_on_a_paused_list() -> None:
    plain = named(entry(dose(1, when=["MORN"]), eid="aml"), "Amlodipin 5 mg")
    assert of([plain], []) == Bags({}, ())
    now = metformin()
    paused = schedule([now], MONDAY, paused=Pause(GP, PACKED_AT, "innlagt"))
    assert bags(paused, {"met": now}, [report(line(now))]) == Bags({}, ())


def test_a_day_in_summer_time_uses_the_local_rounds() -> None:
    now = metformin()
    first, last = datetime(2026, 6, 1, tzinfo=OSLO), datetime(2026, 6, 14, tzinfo=OSLO)
    summer = PackingReport("r", PACKED_AT, first, last, (line(now, first=first, last=last),))
    found = of([now], [summer], day=date(2026, 6, 3))
    assert places(found) == {"met/morgen": (Place.BAG, ()), "met/kveld": (Place.BAG, ())}


def test_a_packed_entry_whose_dosage_must_now_be_assessed() -> None:
    packed = metformin(version=1)
    now = Entry("met", 2, {**packed.content, "dosage": [{"text": "etter avtale"}]}, PACKED_AT, GP)
    found = of([now], [report(line(packed))])
    assert flags(found) == [(Flag.REMOVE, "met", Slot.MORGEN), (Flag.REMOVE, "met", Slot.KVELD)]
    assert "må nå vurderes (må vurderes): gi den ikke før det er gjort" in found.mismatches[0].text
