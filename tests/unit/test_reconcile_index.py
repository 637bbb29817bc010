"""Reconciliation finds its pairs through an index (issue 15: every request's work is
bounded), and the differences are exactly those of comparing every entry with every source
medicine: the comparison as it was written first is kept here as the reference, and
hypothesis draws lists and sources whose drugs share FEST ids, ATC codes, names and
prescriptions in every combination."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pll.domain import reconcile as rc
from pll.domain.model import ENDED, IN_USE
from pll.domain.reconcile import Difference, Drug, Listed, Origin, SourceItem, compare
from tests.unit.content import NOW

# -- the reference: every entry against every source medicine -------------------------------


def _rank(entry: Listed, item: SourceItem, level: int) -> tuple[int, int, int, int]:
    agrees = (entry.status in IN_USE) == (item.status in IN_USE)
    same_dosage = rc.normalised(entry.dosage) == rc.normalised(item.dosage)
    return (0 if entry.status in IN_USE else 1, 0 if agrees else 1, level, 0 if same_dosage else 1)


def _listed_source(
    in_use: list[Listed], ended: list[Listed], items: list[SourceItem], origin: Origin
) -> list[Difference]:
    entries = in_use + ended
    candidates = sorted(
        (_rank(e, item, level), ei, ii)
        for ei, e in enumerate(entries)
        for ii, item in enumerate(items)
        if (level := rc.match_level(e, item)) is not None
    )
    paired: dict[int, int] = {}
    taken: set[int] = set()
    for _, ei, ii in candidates:
        if ei not in paired and ii not in taken:
            paired[ei] = ii
            taken.add(ii)
    out: list[Difference] = []
    for ei, entry in enumerate(entries):
        if ei in paired:
            out += rc._pair(entry, items[paired[ei]], origin)
        elif entry.status in IN_USE:
            out.append(rc._not_in_source(entry, origin))
    out += [
        rc._missing(item, origin)
        for ii, item in enumerate(items)
        if ii not in taken and item.status in IN_USE
    ]
    return out


def _dispensing(
    in_use: list[Listed], ended: list[Listed], items: list[SourceItem]
) -> list[Difference]:
    latest_first = sorted(items, key=rc._handed_over, reverse=True)
    entries = in_use + ended
    on_entry: dict[int, list[SourceItem]] = {}
    unlisted: list[list[SourceItem]] = []
    for item in latest_first:
        scored = [
            (0 if e.status in IN_USE else 1, level, ei)
            for ei, e in enumerate(entries)
            if (level := rc.match_level(e, item)) is not None
        ]
        if scored:
            on_entry.setdefault(min(scored)[2], []).append(item)
            continue
        group = next((g for g in unlisted if _same_medicine(g[0], item)), None)
        if group is None:
            unlisted.append([item])
        else:
            group.append(item)
    out = [rc._missing(group[0], Origin.DISPENSING) for group in unlisted]
    for ei, entry in enumerate(entries):
        given_ = on_entry.get(ei, [])
        if entry.status in IN_USE:
            if not given_:
                out.append(rc._not_in_source(entry, Origin.DISPENSING))
            continue
        after = [i for i in given_ if entry.ended_at and i.when and i.when > entry.ended_at]
        if after:
            out.append(rc._status(entry, after[0], Origin.DISPENSING))
    return out


def _same_medicine(a: SourceItem, b: SourceItem) -> bool:
    linked = (a.prescription,) if a.prescription else ()
    return rc.match_level(Listed("", 0, "active", a.drug, prescriptions=linked), b) is not None


def every_pair(listed: list[Listed], items: list[SourceItem], origin: Origin) -> list[Difference]:
    """:func:`compare` as first written, pairing by testing every entry with every item."""
    now = NOW
    in_use = sorted((e for e in listed if e.status in IN_USE), key=lambda e: e.entry_id)
    ended = sorted(
        (
            e
            for e in listed
            if e.status in ENDED and (e.ended_at is None or e.ended_at >= now - rc.LOOKBACK)
        ),
        key=lambda e: (-(e.ended_at.timestamp() if e.ended_at else 0.0), e.entry_id),
    )
    if origin is Origin.DISPENSING:
        recent = [i for i in items if i.when is not None and i.when >= now - rc.LOOKBACK]
        found = _dispensing(in_use, ended, recent)
    else:
        statuses = IN_USE | ENDED
        found = _listed_source(in_use, ended, [i for i in items if i.status in statuses], origin)
    return rc._identified(found, origin)


# -- drawn lists and sources ---------------------------------------------------------------------

# few values each, so that drugs share codes and names in every combination
fest = st.lists(st.sampled_from(["100", "200", "300"]), max_size=2, unique=True).map(tuple)
atc = st.lists(st.sampled_from(["a10ba02", "A10BA02", "C10AA05", "N02BE01"]), max_size=2).map(tuple)
names = st.sampled_from(
    [
        "Metformin 500 mg",
        "metformin  500 MG",
        "Metformin Tab 500 mg",
        "Metformin 1 g",
        "Paracet",
        "Paracet Tab 500 mg",
        "",
        "Ibux!",
    ]
)
drugs = st.builds(Drug, names, fest, atc)
dosages = st.sampled_from([None, "1 tablett morgen", "1 Tablett, morgen", "2 tabletter"])
prescriptions = st.sampled_from(["rx1", "rx2", "rx3"])


@st.composite
def listed_entries(draw: st.DrawFn) -> list[Listed]:
    out = []
    for n in range(draw(st.integers(0, 8))):
        status = draw(st.sampled_from(["active", "on-hold", "stopped", "completed"]))
        ended = None
        if status in ENDED:
            ended = draw(st.sampled_from([None, NOW - timedelta(days=30), NOW - timedelta(400)]))
        rx = tuple(draw(st.lists(prescriptions, max_size=2, unique=True)))
        out.append(Listed(f"e{n}", 1, status, draw(drugs), draw(dosages), ended, rx))
    return out


@st.composite
def source_items(draw: st.DrawFn, dispensing: bool) -> list[SourceItem]:
    out = []
    for n in range(draw(st.integers(0, 8))):
        if dispensing:
            days = draw(st.integers(0, 400))
            rx = draw(st.sampled_from([None, "rx1", "rx2", "rx3"]))
            out.append(
                SourceItem(
                    draw(drugs),
                    where=f"MedicationDispense/d{n}",
                    when=NOW - timedelta(days=days),
                    prescription=rx,
                )
            )
        else:
            status = draw(st.sampled_from(["active", "on-hold", "stopped", "completed", "x"]))
            where = f"Bundle.entry[{n}].resource"
            out.append(SourceItem(draw(drugs), status, draw(dosages), where))
    return out


@settings(max_examples=400, deadline=None)
@given(
    listed=listed_entries(),
    items=source_items(dispensing=False),
    origin=st.sampled_from([Origin.PATIENT, Origin.DISCHARGE, Origin.OTHER]),
)
def test_a_listed_source_gives_what_every_pair_gives(
    listed: list[Listed], items: list[SourceItem], origin: Origin
) -> None:
    assert compare(listed, items, origin, NOW) == every_pair(listed, items, origin)


@settings(max_examples=400, deadline=None)
@given(listed=listed_entries(), items=source_items(dispensing=True))
def test_the_dispensing_history_gives_what_every_pair_gives(
    listed: list[Listed], items: list[SourceItem]
) -> None:
    found = compare(listed, items, Origin.DISPENSING, NOW)
    assert found == every_pair(listed, items, Origin.DISPENSING)


def test_a_source_of_other_medicines_meets_no_entry_pair_by_pair(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300 entries and 300 source medicines, none alike: the index offers no pair at all
    (comparing every entry with every medicine tests 90,000)."""
    listed = [
        Listed(f"e{n:03}", 1, "active", Drug(f"Legemiddel {n}", (f"F{n}",), (f"A{n}",)))
        for n in range(300)
    ]
    items = [SourceItem(Drug(f"Annet {n}", (f"G{n}",), (f"B{n}",))) for n in range(300)]
    offered = 0
    real = rc._Index.matches

    def counted(self: Any, item: SourceItem) -> dict[int, int]:
        nonlocal offered
        found = real(self, item)
        offered += len(found)
        return found

    monkeypatch.setattr(rc._Index, "matches", counted)
    found = compare(listed, items, Origin.DISCHARGE, NOW)
    assert offered == 0
    assert len(found) == 600
    assert found == every_pair(listed, items, Origin.DISCHARGE)
