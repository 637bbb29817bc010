"""What the ``/kurve`` pages show, in Norwegian: a unit's patients and a patient's day as a
chart of entries × rounds (:mod:`pll.web.kurve`). Plain data for the templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pll.domain.administration import OSLO, AsNeeded, Assess, PlannedDose, Slot
from pll.domain.administration.bags import DoseBag, Place
from pll.domain.administration.changes import KIND_TEXT, Change
from pll.domain.administration.records import NotGiven
from pll.domain.administration.rounds import DoseState, dose_state
from pll.domain.dosage.words import written_amount
from pll.domain.model import Author, Entry
from pll.services.care_round import CaveMark, Chart, Recorded, UnitPatient
from pll.web.banner import name_of

#: The reasons a dose is not given, as the form offers them (the domain's code system).
NOT_GIVEN = [(r.value, r.display) for r in NotGiven]
NOT_GIVEN_NAMES = dict(NOT_GIVEN)
STATE_NAMES = {
    DoseState.GIVEN: "Gitt",
    DoseState.NOT_GIVEN: "Ikke gitt",
    DoseState.LATE: "For sent",
    DoseState.DUE: "Nå",
    DoseState.LATER: "Senere",
}
#: Where a planned dose is taken from, as the chart says it.
PLACE_NAMES = {Place.BAG: "i posen", Place.SEPARATE: "gis fra egen pakning"}
#: The mark on every item of an entry whose change the unit has not acknowledged.
UNACKNOWLEDGED = "Endret — ikke kvittert"
KIND_NAMES = {
    "sykehjem": "sykehjem",
    "hjemmetjeneste": "hjemmetjeneste",
    "omsorgsbolig": "omsorgsbolig",
}


def amount_text(amount: Decimal | None, unit: str | None) -> str:
    """An amount as Norwegians write it, the dose-form noun in its number as the dosage text
    has it (:func:`pll.domain.dosage.words.written_amount`): "0,5 tablett", "2 tabletter",
    "2 ml"."""
    if amount is None:
        return ""
    return written_amount(amount, unit or "").strip()


def cave_text(mark: CaveMark) -> str:
    """A CAVE mark in words, not colour only: the reaction, and what the doctor decided."""
    if mark.override:
        said = f"legen har vurdert det: {mark.override} ({mark.override_by})"
        return f"CAVE: {mark.reaction} – {said}"
    return f"CAVE: {mark.reaction} – ikke vurdert av lege. Avklar med lege før dosen gis."


def verifier_text(record: Recorded) -> str:
    return f"Kontrollsignatur: HPR {record.verifier_hpr}" if record.verifier_hpr else ""


@dataclass(frozen=True)
class RecordView:
    """One record of the day as a line: the medicine, what was done, when, by whom, the
    second signer and why (an as-needed dose) — the paused list's "given today" and the
    printout's as-needed records."""

    record: Recorded
    drug: str

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def time(self) -> str:
        return clock(self.record.at)

    @property
    def what(self) -> str:
        r = self.record
        if r.status == "completed":
            return f"Gitt {amount_text(r.amount, r.unit)}".strip()
        return f"Ikke gitt: {NOT_GIVEN_NAMES.get(r.reason or '', r.reason or '')}"

    @property
    def by(self) -> str:
        return self.record.by.name

    @property
    def verifier(self) -> str:
        return verifier_text(self.record)

    @property
    def why(self) -> str:
        return self.record.why


def clock(at: datetime) -> str:
    return at.astimezone(OSLO).strftime("%H:%M")


def drug_of(entry: Entry | None) -> str:
    if entry is None:
        return "Ukjent legemiddel"
    concept = entry.content.get("medicationCodeableConcept") or {}
    return str(
        concept.get("text")
        or next((c.get("display") for c in concept.get("coding") or [] if c.get("display")), "")
        or "Legemiddel uten navn"
    )


def dosage_of(entry: Entry | None) -> str:
    if entry is None:
        return ""
    return "; ".join(str(d["text"]) for d in entry.content.get("dosage") or [] if d.get("text"))


@dataclass(frozen=True)
class ChangeView:
    """One change the unit has not acknowledged, as the top of the chart lists it: what,
    from → to, who, when, and the list version that made it."""

    change: Change

    @property
    def what(self) -> str:
        c = self.change
        kind = KIND_TEXT[c.kind]
        return kind[:1].upper() + kind[1:] if c.entry_id is None else f"{c.medication}: {kind}"

    @property
    def before(self) -> str | None:
        return self.change.before

    @property
    def after(self) -> str | None:
        return self.change.after

    @property
    def by(self) -> str:
        return self.change.by.label()

    @property
    def at(self) -> datetime:
        return self.change.at

    @property
    def list_version(self) -> int:
        return self.change.list_version

    @property
    def entry_id(self) -> str | None:
        return self.change.entry_id


@dataclass(frozen=True)
class DoseCell:
    """One planned dose in the chart, with where it stands and what was recorded; whether
    its entry has a change the unit has not acknowledged; where it is taken from (a
    multidose patient's bag, ``None`` for others) and the bag's differences from the list."""

    dose: PlannedDose
    state: DoseState
    record: Recorded | None
    changed: bool = False
    bag: DoseBag | None = None
    mismatches: tuple[str, ...] = ()

    @property
    def place(self) -> str:
        return PLACE_NAMES[self.bag.place] if self.bag is not None else ""

    @property
    def key(self) -> str:
        return self.dose.key

    @property
    def time(self) -> str:
        return clock(self.dose.at)

    @property
    def amount(self) -> str:
        return amount_text(self.dose.amount, self.dose.unit)

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    @property
    def anchor(self) -> str:
        """An id for the cell (the key's slashes and colon are not for ids)."""
        return "dose-" + self.dose.key.replace("/", "-").replace(":", "")

    @property
    def what_recorded(self) -> str:
        r = self.record
        if r is None:
            return ""
        who = r.by.name
        signed = f". {verifier_text(r)}" if r.verifier_hpr else ""
        if r.status == "completed":
            partial = r.amount is not None and r.amount < self.dose.amount
            said = f"{amount_text(r.amount, r.unit)} kl. {clock(r.at)}, {who}{signed}"
            return ("Delvis: " if partial else "") + said
        reason = NOT_GIVEN_NAMES.get(r.reason or "", r.reason or "")
        return f"{reason} (kl. {clock(r.at)}, {who}){signed}"


@dataclass
class Row:
    """One entry of the chart: its doses per round of the day."""

    entry_id: str
    version: int
    drug: str
    dosage: str
    controlled: bool
    multidose: bool
    cells: dict[Slot, list[DoseCell]] = field(default_factory=dict)
    #: the entry's changes the unit has not acknowledged
    changes: tuple[ChangeView, ...] = ()
    #: the recorded reactions (CAVE) its medicine matches, in words
    cave: tuple[str, ...] = ()

    @property
    def places(self) -> str:
        """Where the row's doses today are taken from, for the printout's bag column."""
        found = {c.place for cells in self.cells.values() for c in cells if c.place}
        return ", ".join(sorted(found))


@dataclass(frozen=True)
class AsNeededView:
    item: AsNeeded
    drug: str
    controlled: bool
    records: tuple[Recorded, ...]
    changes: tuple[ChangeView, ...] = ()
    cave: tuple[str, ...] = ()

    @property
    def entry_id(self) -> str:
        return self.item.entry_id

    @property
    def lines(self) -> list[RecordView]:
        return [RecordView(r, self.drug) for r in self.records]

    @property
    def amount(self) -> str:
        return format(self.item.amount.normalize(), "f").replace(".", ",")

    @property
    def maximum(self) -> str:
        return amount_text(self.item.daily_max, self.item.max_unit)

    @property
    def remaining(self) -> str:
        return amount_text(self.item.remaining, self.item.max_unit)

    @property
    def given(self) -> str:
        return amount_text(self.item.given, self.item.max_unit or self.item.unit)

    @property
    def period(self) -> str:
        """The maximum's period in words: what ``given`` and ``remaining`` count over (the
        period ending now, pll.domain.administration.as_needed)."""
        hours = int(self.item.period.total_seconds() // 3600) if self.item.period else 24
        if hours == 24:
            return "døgn"
        if hours % 24 == 0:
            return f"{hours // 24} døgn"
        return f"{hours} timer" if hours != 1 else "time"

    @property
    def used_up(self) -> bool:
        return self.item.remaining is not None and self.item.remaining <= 0


@dataclass(frozen=True)
class AssessView:
    item: Assess
    drug: str
    changes: tuple[ChangeView, ...] = ()
    cave: tuple[str, ...] = ()


@dataclass
class ChartView:
    """The chart of one patient's day, as :mod:`pll.web.kurve`'s templates show it."""

    day: date
    made: datetime
    list_id: str | None
    list_version: int | None
    rounds: list[Slot]
    rows: list[Row]
    as_needed: list[AsNeededView]
    assess: list[AssessView]
    paused_entries: list[str]
    records: tuple[Recorded, ...]
    #: the changes the caller's unit has not acknowledged, up to ``list_version``; ``None``
    #: when the caller acts for no unit the patient is registered with
    changes: list[ChangeView] | None = None
    #: whether the patient's doses come from multidose bags (a report or a packed entry)
    multidose: bool = False
    #: the bags' differences from the list today, in Norwegian
    bag_warnings: list[str] = field(default_factory=list)
    #: the records the caller made (the chart offers "Registrert feil" on those)
    mine: frozenset[str] = frozenset()
    #: every record of the day as a line, by time (a paused list shows these)
    lines: list[RecordView] = field(default_factory=list)
    #: the CAVE marks of an entry not otherwise shown (paused, or given before a pause)
    cave: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def record(self, record_id: str) -> Recorded | None:
        return next((r for r in self.records if r.id == record_id), None)

    def cell(self, key: str) -> DoseCell | None:
        for row in self.rows:
            for cells in row.cells.values():
                for c in cells:
                    if c.key == key:
                        return c
        return None

    def row_of(self, entry_id: str) -> Row | None:
        return next((r for r in self.rows if r.entry_id == entry_id), None)


def chart_view(chart: Chart, me: Author | None = None) -> ChartView:
    """The chart's rows (entries with a dose today, in the order of their first dose) and
    columns (the rounds with a dose today, in the order of the day); the changes not
    acknowledged in the order of the list versions that made them (as they happened, so
    each one's "from" is the one before's "to"). ``me``: the caller, whose own records the
    chart lets them mark as wrong."""
    recorded = chart.recorded
    by_key = {r.slot_key: r for r in chart.records if r.slot_key}
    unseen = (
        sorted((ChangeView(c) for c in chart.unseen.changes), key=lambda c: c.list_version)
        if chart.unseen is not None
        else None
    )
    cave = {e: tuple(cave_text(m) for m in marks) for e, marks in chart.cave.items()}

    def changes_of(entry_id: str) -> tuple[ChangeView, ...]:
        return tuple(c for c in unseen or () if c.entry_id == entry_id)

    mismatches: dict[str, list[str]] = {}
    for m in chart.bags.mismatches:
        if m.dose_key is not None:
            mismatches.setdefault(m.dose_key, []).append(m.text)
    rows: dict[str, Row] = {}
    day = chart.schedule
    doses = day.doses if day is not None else ()
    for dose in doses:
        entry = chart.entries.get(dose.entry_id)
        row = rows.get(dose.entry_id)
        if row is None:
            row = rows[dose.entry_id] = Row(
                dose.entry_id,
                dose.entry_version,
                drug_of(entry),
                dosage_of(entry),
                dose.entry_id in chart.controlled,
                dose.source.value == "multidose",
                changes=changes_of(dose.entry_id),
                cave=cave.get(dose.entry_id, ()),
            )
        cell = DoseCell(
            dose,
            dose_state(dose, recorded, chart.now),
            by_key.get(dose.key),
            changed=bool(row.changes),
            bag=chart.bags.doses.get(dose.key),
            mismatches=tuple(mismatches.get(dose.key, ())),
        )
        row.cells.setdefault(dose.slot, []).append(cell)
    used = {d.slot for d in doses}
    as_needed = [
        AsNeededView(
            a,
            drug_of(chart.entries.get(a.entry_id)),
            a.entry_id in chart.controlled,
            tuple(r for r in chart.records if r.entry_id == a.entry_id and r.slot_key is None),
            changes_of(a.entry_id),
            cave.get(a.entry_id, ()),
        )
        for a in (day.as_needed if day is not None else ())
    ]
    return ChartView(
        day=chart.day,
        made=chart.now,
        list_id=chart.lst.id if chart.lst is not None else None,
        list_version=chart.lst.version if chart.lst is not None else None,
        rounds=[s for s in Slot if s in used],
        rows=list(rows.values()),
        as_needed=as_needed,
        assess=[
            AssessView(
                a,
                drug_of(chart.entries.get(a.entry_id)),
                changes_of(a.entry_id),
                cave.get(a.entry_id, ()),
            )
            for a in (day.assess if day is not None else ())
        ],
        paused_entries=[
            drug_of(chart.entries.get(e)) for e in (day.paused_entries if day is not None else ())
        ],
        records=chart.records,
        changes=unseen,
        multidose=bool(chart.bags.doses),
        # every difference of today's bags, those of an entry no longer planned too
        bag_warnings=[m.text for m in chart.bags.mismatches if m.day == chart.day],
        mine=frozenset(r.id for r in chart.records if me is not None and r.made_by(me)),
        lines=[RecordView(r, drug_of(chart.entries.get(r.entry_id))) for r in chart.records],
        cave=cave,
    )


@dataclass(frozen=True)
class PatientLine:
    """One patient of the unit's overview."""

    patient_id: str
    name: str
    identifier: str
    allowed: bool
    has_list: bool
    paused: bool
    due: list[str]
    late: list[str]
    #: changes of the list the unit has not acknowledged
    unacknowledged: int


def patient_line(p: UnitPatient, drugs: dict[str, str] | None = None) -> PatientLine:
    def said(doses: tuple[PlannedDose, ...]) -> list[str]:
        return [f"{d.slot} {clock(d.at)}" for d in doses]

    return PatientLine(
        p.patient_id,
        name_of(p.resource) if p.resource else "Navn ikke registrert",
        p.identifier,
        p.allowed,
        p.has_list,
        p.paused,
        _grouped(said(p.state.due)),
        _grouped(said(p.state.late)),
        p.unacknowledged,
    )


def _grouped(items: list[str]) -> list[str]:
    """ "morgen 08:00" three times → "morgen 08:00 (3)"."""
    counts: dict[str, int] = {}
    for i in items:
        counts[i] = counts.get(i, 0) + 1
    return [f"{k} ({n})" if n > 1 else k for k, n in counts.items()]


def context_of(view: ChartView) -> dict[str, Any]:
    return {
        "chart": view,
        "not_given": NOT_GIVEN,
        "DoseState": DoseState,
        "unacknowledged": UNACKNOWLEDGED,
    }
