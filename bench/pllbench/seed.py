"""Seeding a benchmark database with N patients directly in SQL (issue 19's 1,000,000).

Loading patients through the service (:mod:`pllbench.load`) is what a real load does, and it
is slow (issue 20): 8,000 patients take minutes. The rollout reports and the extract only
read rows, so for them the rows are made by the database itself, ``INSERT … SELECT`` over a
series of numbers (PostgreSQL's ``generate_series``; SQLite's recursive ``WITH``), one
transaction per batch of patients. The shapes are those the reports and the extract read,
every ``NOT NULL`` column filled; the stored lists (``pll.document``,
``pll_version.list_json``) are placeholders, so the seeded database serves
the reports and the extract, not the list pages.

Patient ``n`` (1..N), the same for every run (no randomness: the figures are repeatable):

- a Patient (``p000000123``) with a ``birthDate`` (1930–2009) and a home address carrying a
  municipality (one of :data:`MUNICIPALITIES`), identifier an 11-digit number;
- one list (``l000000123``) made at a minute spread evenly over :data:`SPAN_DAYS` days from
  :data:`START` (``n *`` :data:`_STRIDE` modulo the span: each month about N/24), by
  GP ``n mod`` :data:`GPS` of office ``GP mod`` :data:`OFFICES` (three or two GPs an office);
  every tenth list an SFM import (activity ``sfm-import``, client ``sfm-basis``); 1 to 4
  versions (2.5 on average), seven minutes apart, through one of :data:`CLIENTS`, every 13th
  with an override; three lists in five confirmed a day after they were made (every seventh
  of those by a GP of another office: the patient moved);
- two dispensings in three (``n mod 3 != 0``), two days after the list;
- every 20th an administration record (every 40th corrected: two versions);
- every 50th a discrepancy case, reported and resolved (two versions).

Around them: the register's :data:`OFFICES` GP offices (``list_patients`` about 1.25 times
the lists each will have at ``planned`` patients), the :data:`CLIENTS` as registered client
systems, and per client the refusals, conflicts and failed sends counted in each week.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pll.fhir import systems
from pll.stats.geography import region_of
from pll.stats.indicators import MUNICIPALITY_EXTENSION, MUNICIPALITY_SYSTEM, week
from pll.store.db import Database
from pll.store.schema import client_system, client_week_count, organisation

GPS = 4000
OFFICES = 1500
START = datetime(2024, 12, 1, tzinfo=UTC)
#: Lists are made over two years less a few days, so every later row (a dispensing two days
#: on) is still before the extract's ``--until`` of now + 1 day.
SPAN_DAYS = 727
MUNICIPALITIES = ("0301", "4601", "5001", "1103", "3301", "5501", "1508", "3403", "4204", "1804")
CLIENTS = (
    ("dips-arena", "DIPS Arena", "DIPS AS"),
    ("infodoc-plenario", "Infodoc Plenario", "Infodoc AS"),
    ("cgm-allmenn", "CGM Allmenn", "CompuGroup Medical Norway AS"),
    ("pridok", "Pridok", "Pridok AS"),
    ("sfm-basis", "SFM Basis", "Norsk helsenett SF"),
)
BATCH = 50_000
_START_SQL = START.strftime("%Y-%m-%d %H:%M:%S")
_SPAN = SPAN_DAYS * 1440
#: The step between one patient's list and the next one's, in minutes modulo the span: about
#: the span times the golden ratio and prime to it, so any run of patients is spread evenly
#: over the two years (a small N as well as a large one) and no two share a minute.
_STRIDE = 647_003


class _Dialect:
    """The few expressions PostgreSQL and SQLite spell differently."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres

    def numbers(self) -> str:
        """``WITH`` clause of the numbers ``:lo..:hi`` as ``g(n)``."""
        if self.postgres:
            return "WITH g(n) AS (SELECT generate_series(CAST(:lo AS integer), :hi))"
        return "WITH RECURSIVE g(n) AS (SELECT :lo UNION ALL SELECT n + 1 FROM g WHERE n < :hi)"

    def pad(self, expr: str, width: int) -> str:
        if self.postgres:
            return f"lpad(CAST({expr} AS text), {width}, '0')"
        return f"printf('%0{width}d', {expr})"

    def at(self, minutes: str) -> str:
        """The timestamp :data:`START` + ``minutes`` as the column stores it (naive UTC)."""
        if self.postgres:
            return f"(TIMESTAMP '{_START_SQL}' + ({minutes}) * INTERVAL '1 minute')"
        later = f"'{_START_SQL}', '+' || ({minutes}) || ' minutes'"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {later}) || '.000000')"

    def iso(self, minutes: str) -> str:
        """The same instant as ISO 8601 text with its offset (for JSON)."""
        if self.postgres:
            return f"(to_char({self.at(minutes)}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00')"
        later = f"'{_START_SQL}', '+' || ({minutes}) || ' minutes'"
        return f"(strftime('%Y-%m-%dT%H:%M:%S', {later}) || '+00:00')"


def _author(gp: str, office: str, with_org: str = "1 = 1") -> str:
    """SQL for the author JSON of GP ``gp`` at office ``office`` (expressions); the office
    left out where ``with_org`` is false (an SFM import names no organisation number)."""
    return (
        '\'{"name":"Lege \' || (' + gp + ') || \'","role":"doctor","hpr":"\' || '
        "(9100000 + " + gp + ") || '\"' || CASE WHEN " + with_org + " THEN "
        '\',"org_id":"\' || (910000000 + ' + office + ') || \'","org_name":"Legekontor \' '
        "|| (" + office + ") || '\"' ELSE ',\"org_name\":\"Legekontor ' || (" + office + ") "
        '|| \'","her":"\' || (80000 + ' + office + ") || '\"' END || '}'"
    )


def _statements(d: _Dialect) -> list[str]:
    created = f"((CAST(n AS bigint) * {_STRIDE}) % {_SPAN})"
    gp = f"(n % {GPS})"
    office = f"(n % {GPS} % {OFFICES})"
    moved_gp = f"((n + 1) % {GPS})"
    moved_office = f"((n + 1) % {GPS} % {OFFICES})"
    versions = "(1 + n % 4)"
    municipality = (
        "CASE n % 10 "
        + " ".join(f"WHEN {i} THEN '{code}'" for i, code in enumerate(MUNICIPALITIES))
        + " END"
    )
    patient = (
        '\'{"resourceType":"Patient","id":"p\' || ' + d.pad("n", 9) + " || '\","
        "\"birthDate\":\"' || (1930 + n % 80) || '-0' || (1 + n % 9) || '-1' || (n % 10) || '\","
        '"address":[{"use":"home","_district":{"extension":[{"url":"'
        + MUNICIPALITY_EXTENSION
        + '","valueCoding":{"system":"'
        + MUNICIPALITY_SYSTEM
        + '","code":"\' || '
        + municipality
        + " || '\"}}]}}]}'"
    )
    confirmer = (
        f"CASE WHEN n % 7 = 0 THEN {_author(moved_gp, moved_office)} ELSE {_author(gp, office)} END"
    )
    confirmation = (
        f'CASE WHEN n % 5 < 3 THEN \'{{"by":\' || {confirmer} || \',"at":"\' || '
        f"{d.iso(created + ' + 1440')} || '\",\"version\":' || {versions} || '}}' END"
    )
    last = f"{created} + ({versions} - 1) * 7"
    series = "(SELECT 1 AS v UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) vs"
    clients = (
        "CASE WHEN v = 1 AND n % 10 = 0 THEN 'sfm-basis' ELSE CASE (n + v) % 4 "
        + " ".join(f"WHEN {i} THEN '{c[0]}'" for i, c in enumerate(CLIENTS[:4]))
        + " END END"
    )
    activity = (
        "CASE WHEN v = 1 AND n % 10 = 0 THEN 'sfm-import' WHEN v = 1 THEN 'create' "
        "WHEN v = 2 THEN 'prescribe' WHEN v = 3 THEN 'change-dose' ELSE 'confirm' END"
    )
    medication = (
        '"medicationCodeableConcept":{"coding":[{"system":"' + systems.ATC + '",'
        "\"code\":\"' || CASE n % 4 WHEN 0 THEN 'C09AA05' WHEN 1 THEN 'A10BA02' "
        "WHEN 2 THEN 'B01AC06' ELSE 'N02BE01' END || '\"}]}"
    )
    nurse = '\'{"name":"Sykepleier","role":"nurse","hpr":"\' || (9200000 + n % 500) || \'"}\''
    pid, lid = "'p' || " + d.pad("n", 9), "'l' || " + d.pad("n", 9)
    with_ = d.numbers()
    return [
        f"""{with_} INSERT INTO patient (id, identifier_system, identifier_value, version,
            created_at, updated_at, resource)
        SELECT {pid}, '{systems.FNR}', {d.pad("n", 11)}, 1, {d.at(created)}, {d.at(created)},
            {patient} FROM g""",
        f"""{with_} INSERT INTO pll (id, patient_id, version, created_at, updated_at, baton,
            confirmation, document)
        SELECT {lid}, {pid}, {versions}, {d.at(created)}, {d.at(last)},
            {_author(gp, office, "n % 10 <> 0 OR n % 4 <> 0")}, {confirmation}, '{{}}' FROM g""",
        f"""{with_} INSERT INTO pll_version (list_id, version, recorded_at, author, activity,
            touched, list_json, override, client_id)
        SELECT {lid}, v, {d.at(created + " + (v - 1) * 7")},
            {_author(gp, office, "v > 1 OR n % 10 <> 0")}, {activity},
            CASE WHEN v = 1 THEN '[{{"type":"List","id":"l","version": 1,"action":"create"}}]'
                 ELSE '[{{"type":"MedicationStatement","id":"e","version": 1,"action":"update"}}]'
            END,
            '{{"resourceType":"List","status":"current","mode":"working"}}',
            CASE WHEN n % 13 = 0 AND v = 2 THEN '[{{"reason":"benchmark"}}]' END, {clients}
        FROM g CROSS JOIN {series} WHERE v <= {versions}""",
        f"""{with_} INSERT INTO dispense (id, patient_id, prescription_id, recorded_at, resource)
        SELECT 'd' || {d.pad("n", 9)}, {pid}, 'rx' || {d.pad("n", 9)},
            {d.at(created + " + 2880")},
            '{{"resourceType":"MedicationDispense","status":"completed","performer":[{{"actor":
            {{"identifier":{{"value":"' || (970000000 + n % 900) || '"}}}}}}],{medication}}}'
        FROM g WHERE n % 3 <> 0""",
        f"""{with_} INSERT INTO medication_administration (id, version, patient_id, list_id,
            entry_id, entry_version, slot_key, slot_taken, day, status, performer,
            effective_at, recorded_at, updated_at, resource)
        SELECT 'a' || {d.pad("n", 9)}, 1 + CASE WHEN n % 40 = 0 THEN 1 ELSE 0 END, {pid}, {lid},
            'e' || {d.pad("n", 9)}, 1, 'e' || n || '/08:00', 'e' || n || '/08:00', '2026-06-01',
            'completed', {nurse}, {d.at(created + " + 60")}, {d.at(created + " + 60")},
            {d.at(created + " + 60")}, '{{"resourceType":"MedicationAdministration",{medication}}}'
        FROM g WHERE n % 20 = 0""",
        f"""{with_} INSERT INTO medication_administration_version (administration_id, version,
            recorded_at, author, status, resource)
        SELECT 'a' || {d.pad("n", 9)}, v, {d.at(created + " + 60 * v")}, {nurse},
            CASE WHEN v = 1 THEN 'completed' ELSE 'not-done' END,
            '{{"resourceType":"MedicationAdministration",{medication}}}'
        FROM g CROSS JOIN {series}
        WHERE n % 20 = 0 AND (v = 1 OR (v = 2 AND n % 40 = 0))""",
        f"""{with_} INSERT INTO discrepancy_case (id, patient_id, list_id, focus_version, status,
            version, reporter, recipient, owner_org, owner_name, description, reported_at,
            updated_at, resource)
        SELECT 'c' || {d.pad("n", 9)}, {pid}, {lid}, 1, 'resolved', 2, {nurse},
            {_author(gp, office)}, CAST(910000000 + {office} AS text), 'Legekontor',
            'benchmark', {d.at(created + " + 120")}, {d.at(created + " + 1560")}, '{{}}'
        FROM g WHERE n % 50 = 0""",
        f"""{with_} INSERT INTO discrepancy_case_version (case_id, version, recorded_at,
            author, action, status, resource)
        SELECT 'c' || {d.pad("n", 9)}, v, {d.at(created + " + 120 + (v - 1) * 1440")},
            CASE WHEN v = 1 THEN {nurse} ELSE {_author(gp, office)} END,
            CASE WHEN v = 1 THEN 'report' ELSE 'resolve' END,
            CASE WHEN v = 1 THEN 'open' ELSE 'resolved' END, '{{}}'
        FROM g CROSS JOIN {series} WHERE n % 50 = 0 AND v <= 2""",
    ]


def seed_register(db: Database, planned: int) -> None:
    """The GP offices, the registered client systems and their weekly counts of refusals,
    conflicts and failed sends (what the services count where they happen)."""
    registered = START
    per_office = planned / OFFICES
    offices = []
    for o in range(OFFICES):
        code = MUNICIPALITIES[o % len(MUNICIPALITIES)]
        offices.append(
            {
                "id": str(910000000 + o),
                "name": f"Legekontor {o}",
                "municipality": code,
                "region": region_of(code) or "",
                "actor_type": "fastlege",
                "her": str(80000 + o),
                "registered_at": registered,
                "live_since": registered if o % 10 else None,
                # about 1.25 times the lists the office will have, a few offices not given
                "list_patients": None
                if o % 97 == 0
                else round(per_office * (1.0 + (o % 50) / 100)),
            }
        )
    weeks = sorted({week(START + timedelta(days=d)) for d in range(0, SPAN_DAYS + 7, 7)})
    counts = [
        {"client_id": c[0], "week": w, "measure": m, "value": 1 + (i * 7 + len(w)) % v}
        for i, c in enumerate(CLIENTS)
        for w in weeks
        for m, v in (("conflicts", 40), ("refusals", 25), ("failed_sends", 12))
    ]
    with db.write() as conn:
        conn.execute(sa.insert(organisation), offices)
        conn.execute(
            sa.insert(client_system),
            [
                {"client_id": c, "name": name, "vendor": vendor, "registered_at": registered}
                for c, name, vendor in CLIENTS
            ],
        )
        conn.execute(sa.insert(client_week_count), counts)


def seed_patients(
    db: Database, first: int, last: int, progress: Callable[[int], None] | None = None
) -> float:
    """Patients ``first..last`` with everything around them, :data:`BATCH` patients a
    transaction; seconds taken. Then the planner's statistics are brought up to date."""
    started = time.perf_counter()
    statements = [sa.text(s) for s in _statements(_Dialect(not db.is_sqlite))]
    for lo in range(first, last + 1, BATCH):
        hi = min(lo + BATCH - 1, last)
        with db.write() as conn:
            for statement in statements:
                conn.execute(statement, {"lo": lo, "hi": hi})
        if progress:
            progress(hi)
    analyse(db)
    return time.perf_counter() - started


def analyse(db: Database) -> None:
    """``VACUUM ANALYZE`` (PostgreSQL) or ``ANALYZE`` (SQLite): plans as in production, where
    autovacuum has long seen the tables."""
    if db.is_sqlite:
        with db.write() as conn:
            conn.execute(sa.text("ANALYZE"))
        return
    engine = sa.create_engine(db.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("VACUUM (ANALYZE)"))
    finally:
        engine.dispose()
