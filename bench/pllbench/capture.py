"""Capture the SQL the server issues for the two benchmark requests, and turn it into pgbench
custom scripts.

The capture runs in-process: a ``before_cursor_execute`` listener on a :class:`Database`
engine records every statement and its parameters while the benchmark calls the very service
methods the HTTP handlers call:

- read:  ``list_search`` → on PostgreSQL ``ListReads.current``, which runs on its own asyncpg
  pool (not through SQLAlchemy), in autocommit mode, either one statement of
  :mod:`pll.store.audited_read` (read, read rule and audit insert together) or, with group
  commit (the server's default, issue 20), the read-only lookup and its share of the batch
  INSERT of :mod:`pll.store.audit_batch`; they are taken from there with the parameters the
  server passes (:func:`read_statements`). A batch of ``k`` rows is one INSERT every ``k``
  reads, ``k`` being the mean batch size the server wrote at that load (:func:`to_pgbench`).
- write: ``MedicationStatement_update`` → ``validate(body)`` then
  ``PLLService.update_resource(access, "MedicationStatement", id, resource, if_match)``

Each captured statement is copied into the script with its SQL text unchanged; only its
parameters are replaced:

- the patient/entry the request names comes from a helper table, inlined as a sub-select on
  the first statement (``(SELECT patient_id FROM bench_patient WHERE n = :n)``) so that
  pgbench makes no extra round trip;
- ids the server learned from an earlier statement come from that statement's row
  (``\\gset r_`` / ``\\gset l_``), as they do in the server;
- new versions are the row's version + 1 (``\\set lv :l_version + 1``);
- stored JSON that the server rebuilds (entry resource, list JSON) is the current stored
  text (the entry's newest version row, the list row), written back (same size); the list
  document, which the lock does not read, is the captured document with this row's ids put
  in by ``format()``;
- ``touched`` / ``payload`` JSON is rebuilt with ``format()`` from a template of the captured
  value, so history rows name the right list, entry and versions;
- the outbox event id is ``gen_random_uuid()``;
- ``None`` becomes ``NULL``; every other value (timestamps, author JSON, statuses, activity)
  is passed as a parameter with the captured value (``-D``), as the server passes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import event, text

from pll.auth import audit
from pll.auth.access import Access
from pll.fhir.validate import validate
from pll.services.lists import PLLService
from pll.store import pipeline
from pll.store.audit_batch import COLUMNS, AuditRow, columns
from pll.store.audit_batch import INSERT as BATCH_INSERT
from pll.store.audited_read import LOOKUPS, STATEMENTS
from pll.store.db import Database

PARAM = re.compile(r"%\((\w+)\)s")
DOSE_MARK = 987654.25


@dataclass
class Captured:
    sql: str
    params: dict[str, Any]
    #: sent in psycopg's pipeline mode, with its neighbours in one round trip
    #: (pll.store.pipeline): pgbench sends it between ``\startpipeline`` and ``\endpipeline``
    pipelined: bool = False
    #: the statements it was made of, when it is a change's one statement of data-modifying
    #: WITH queries (pll.store.pipeline.one_statement): pgbench sends it the same way
    parts: list[Captured] = field(default_factory=list)


@dataclass
class Script:
    name: str
    text: str
    defines: dict[str, str] = field(default_factory=dict)
    captured: list[Captured] = field(default_factory=list)


def _record(into: list[Captured]):  # type: ignore[no-untyped-def]
    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if executemany:
            cap = _many_as_one(statement, list(parameters))
        elif isinstance(parameters, list):
            made_of = pipeline.parts_of(statement, parameters)
            if made_of is None:
                raise RuntimeError(f"capture: positional parameters of {statement[:200]}")
            cap = Captured(statement, {}, parts=[Captured(sql, p) for sql, p in made_of])
        else:
            cap = Captured(statement, dict(parameters or {}))
        pgconn = getattr(cursor.connection, "pgconn", None)  # psycopg; None on SQLite
        cap.pipelined = bool(pgconn is not None and pgconn.pipeline_status)
        into.append(cap)

    return before


def _many_as_one(statement: str, rows: list[dict[str, Any]]) -> Captured:
    """An executemany INSERT (psycopg sends it in one pipeline) as one multi-row INSERT, so
    pgbench also pays one round trip for it."""
    head, sep, values = statement.rpartition("VALUES ")
    if not sep:
        raise RuntimeError(f"capture: cannot turn this executemany into one statement: {statement}")
    tuples, params = [], {}
    for i, row in enumerate(rows):
        tuples.append(PARAM.sub(lambda m, i=i: f"%({m.group(1)}_{i})s", values))
        params.update({f"{k}_{i}": v for k, v in row.items()})
    return Captured(head + sep + ", ".join(tuples), params)


def put_body(resource_text: str, dose: float | str) -> dict[str, Any]:
    """The PUT body a client sends to change an entry's dose: the stored resource without
    ``meta``, with the first dosage's dose set to ``dose``."""
    body: dict[str, Any] = orjson.loads(resource_text)
    body.pop("meta", None)
    dosage = body["dosage"][0]
    dosage["doseAndRate"][0]["doseQuantity"]["value"] = dose
    return body


def put_template(resource_text: str) -> tuple[str, str]:
    """The PUT body as text split around the dose value (for the wrk script)."""
    raw = orjson.dumps(put_body(resource_text, DOSE_MARK)).decode()
    before, _, after = raw.partition(str(DOSE_MARK))
    if not after:
        raise ValueError("dose marker not found in PUT body")
    return before, after


def current_dose(resource_text: str) -> str:
    """The dose of the first dosage as stored, as text ("1", "1.5", ...)."""
    body: dict[str, Any] = orjson.loads(resource_text)
    value = body["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"]
    return f"{float(value):g}"


def next_dose(current: str) -> str:
    """A dose that differs from the stored one, so that every PUT is a real change (the
    stored dose, not the version, decides: pgbench bumps versions without changing doses)."""
    return "1" if current == "1.5" else "1.5"


def capture(
    db: Database, service: PLLService, access: Access, *, group_commit: bool = True
) -> tuple[list[Captured], list[Captured], dict[str, str]]:
    """Run one read and one write of patient 1 (not in the write pool) and record their SQL
    (the read as the server runs it with or without group commit)."""
    with db.read() as conn:
        patient_id, list_id = conn.execute(
            text("SELECT patient_id, list_id FROM bench_patient WHERE n = 1")
        ).one()
        entry_id, version, resource = conn.execute(
            text(
                "SELECT e.id, e.version, v.resource FROM entry e "
                "JOIN entry_version v ON v.entry_id = e.id AND v.version = e.version "
                "WHERE e.list_id = :l AND e.status = 'active' ORDER BY e.id LIMIT 1"
            ),
            {"l": list_id},
        ).one()
    reads = read_statements(
        service, access, patient_id, list_id, service.clock(), group_commit=group_commit
    )
    writes: list[Captured] = []
    dose = float(next_dose(current_dose(resource)))
    body = validate(put_body(resource, dose), "MedicationStatement")
    listener = _record(writes)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        result = service.update_resource(access, "MedicationStatement", entry_id, body, version)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    if result.list_version is None:
        raise RuntimeError("capture: the write changed nothing (no new list version)")
    ids = {"patient": patient_id, "list": list_id, "entry": entry_id}
    return reads, writes, ids


def read_statement(service: PLLService, access: Access, patient_id: str, now: datetime) -> Captured:
    """The statement the server's hot read runs on PostgreSQL, with its parameters as
    ``ListReads.current`` passes them for a health worker reading by patient id."""
    sql = STATEMENTS[("patient", "document")]
    rule = access.read_rule()
    if rule is None:
        raise RuntimeError("capture: the benchmark's caller has no read rule (no basis?)")
    actor = service.trail.actor(access)
    basis = access.basis.value if access.basis else None
    ipad, opad = service.trail.key.pads()
    params = {
        "key": patient_id,
        "system": None,
        "now": now.astimezone(UTC).replace(tzinfo=None),
        "actor": actor,
        "basis": basis,
        "prefix": audit.prefix(now, actor, "read", "List", basis, "0"),
        "ipad": ipad,
        "opad": opad,
        "own_only": rule.own_only,
        "pid": rule.pid,
        "hpr": rule.hpr,
        "allow_blocked": rule.allow_blocked,
        "flag_if_blocked": rule.flag_if_blocked,
    }
    return Captured(sql, params)


def read_statements(
    service: PLLService,
    access: Access,
    patient_id: str,
    list_id: str,
    now: datetime,
    *,
    group_commit: bool,
) -> list[Captured]:
    """The read's statements: the one statement, or the group commit's lookup and the batch
    INSERT holding this read's record (one row here; :func:`to_pgbench` makes it ``k``)."""
    one = read_statement(service, access, patient_id, now)
    if not group_commit:
        return [one]
    keep = ("key", "system", "own_only", "pid", "hpr", "allow_blocked", "flag_if_blocked")
    lookup = Captured(LOOKUPS[("patient", "document")], {k: one.params[k] for k in keep})
    actor, basis = one.params["actor"], one.params["basis"]
    mac = service.trail.key.mac(
        audit.canonical(now, actor, "read", "List", basis, "0", list_id, patient_id, None)
    )
    row = AuditRow(
        one.params["now"], actor, "read", "List", list_id, patient_id, basis, "0", None, mac
    )
    values = dict(zip(COLUMNS, columns([row]), strict=True))
    return [lookup, Captured(BATCH_INSERT, values)]


# -- turning captured statements into pgbench scripts ------------------------------------


def _table(sql: str) -> str | None:
    m = re.match(r"\s*(?:INSERT INTO|UPDATE)\s+(\w+)", sql)
    return m.group(1) if m else None


def _json_template(value: str, ids: dict[str, str]) -> str | None:
    """A ``format()`` template for JSON naming the list/entry/patient, or None if it names none."""
    lid, eid, pid = ids["list"], ids["entry"], ids["patient"]
    if lid not in value and eid not in value:
        return None
    t = value.replace("%", "%%")
    t = re.sub(rf'"id":"{lid}","version":\d+', '"id":"%1$s","version":%2$s', t)
    t = re.sub(rf'"id":"{eid}","version":\d+', '"id":"%3$s","version":%4$s', t)
    t = re.sub(rf"List/{lid}/_history/\d+", "List/%1$s/_history/%2$s", t)
    t = re.sub(
        rf"MedicationStatement/{eid}/_history/\d+", "MedicationStatement/%3$s/_history/%4$s", t
    )
    t = re.sub(r'"version":\d+(?=[,}])', '"version":%2$s', t)
    return t.replace(lid, "%1$s").replace(eid, "%3$s").replace(pid, "%5$s")


class _Converter:
    """Replaces each captured parameter with a pgbench variable, expression or NULL."""

    def __init__(self, kind: str, ids: dict[str, str], batch: int = 1) -> None:
        self.kind = kind
        self.batch = batch
        self.ids = ids
        self.defines: dict[str, str] = {}
        self.lines: list[str] = []
        self.unmapped_ids: list[str] = []
        self.first_lookup_done = False
        # where each identity comes from once a statement has read it
        self.known: dict[str, str] = {}

    def const(self, index: int | str, name: str, value: Any) -> str:
        var = f"c{index}_{name}"
        if isinstance(value, datetime):
            value = value.isoformat(sep=" ")
        elif isinstance(value, bytes):
            value = "\\x" + value.hex()  # bytea's hex input form
        self.defines[var] = str(value)
        return f":{var}"

    def param(  # noqa: PLR0911, PLR0912 - a decision table, one return per kind of parameter
        self, index: int | str, sql: str, name: str, value: Any, params: dict[str, Any]
    ) -> str:
        if isinstance(value, list):
            return self.batch_column(index, name, value)
        table = _table(sql)
        ids = self.ids
        # Rows of a multi-row INSERT carry their row number (_many_as_one): name_0, name_1, ...
        row = re.search(r"_\d+$", name) if "VALUES (" in sql and ", (" in sql else None
        suffix = row.group(0) if row else ""
        name = name.removesuffix(suffix)
        if value is None:
            return "NULL"
        if isinstance(value, str):
            if not self.first_lookup_done and self.kind == "read" and value == ids["patient"]:
                self.first_lookup_done = True
                return "(SELECT patient_id FROM bench_patient WHERE n = :n)"
            if not self.first_lookup_done and self.kind == "write" and value == ids["entry"]:
                self.first_lookup_done = True
                return "(SELECT entry_id FROM bench_write_pool WHERE n = :n)"
            for key in ("patient", "list", "entry"):
                if value == ids[key]:
                    if key not in self.known:
                        self.unmapped_ids.append(f"statement {index} parameter {name} ({key} id)")
                        return self.const(index, name + suffix, value)
                    return self.known[key]
            if table == "outbox" and name == "event_id":
                return "gen_random_uuid()"
            if name in ("resource", "list_json") and self.kind == "write":
                source = {"resource": "l_entry_resource", "list_json": "l_list_json"}[name]
                return f":{source}"
            # The list document is not read under the lock; like the server, pgbench sends
            # a whole document (the captured one, with this row's ids) of the same size.
            template = _json_template(value, ids)
            if template is not None:
                var = self.const(index, name + suffix + "_tmpl", template)
                return (
                    f"format({var}::text, {self.known.get('list', ':l_id')}::text, :lv::integer, "
                    f"{self.known.get('entry', ':l_entry_id')}::text, :ev::integer, "
                    f"{self.known.get('patient', ':l_patient_id')}::text)"
                )
            return self.const(index, name + suffix, value)
        if isinstance(value, int) and not isinstance(value, bool) and self.kind == "write":
            if name == "list_version" or (
                name == "version" and table in ("pll", "pll_version", "outbox")
            ):
                return ":lv"
            if name == "version" and table in ("entry", "entry_version"):
                return ":ev"
            if name == "target_version" and table == "provenance_target":
                return ":lv" if params.get("target_type" + suffix) == "List" else ":ev"
        return self.const(index, name + suffix, value)

    def batch_column(self, index: int | str, name: str, value: list[Any]) -> str:
        """A column of the group commit's INSERT as ``batch`` rows: the patients and lists
        of ``batch`` consecutive benchmark patients (so the rows' index keys spread as the
        server's do), every other column the captured value ``batch`` times."""
        if len(value) != 1:
            raise RuntimeError(f"capture: expected one captured audit row, got {len(value)}")
        source = {"patient_id": "patient_id", "resource_id": "list_id"}.get(name)
        if source is not None:
            return (
                f"ARRAY(SELECT {source} FROM bench_patient WHERE n >= :m "
                f"ORDER BY n LIMIT {self.batch})"
            )
        item = value[0]
        if item is None:
            element = "NULL"
        else:
            text = item.isoformat(sep=" ") if isinstance(item, datetime) else str(item)
            element = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        var = f"c{index}_{name}"
        self.defines[var] = "{" + ",".join([element] * self.batch) + "}"
        return f":{var}"

    def _converted(self, index: int | str, cap: Captured) -> str:
        if cap.parts:
            # each part's constants named apart: c4p0_recorded_at, c4p1_recorded_at, ...
            texts = [self._converted(f"{index}p{n}", part) for n, part in enumerate(cap.parts)]
            heads = ",\n".join(f"w{n} AS ({text})" for n, text in enumerate(texts[:-1]))
            return f"WITH {heads}\n{texts[-1]}"
        sql = cap.sql
        return PARAM.sub(
            lambda m: self.param(index, sql, m.group(1), cap.params[m.group(1)], cap.params), sql
        )

    def statement(self, index: int, cap: Captured) -> None:
        sql = cap.sql
        out = self._converted(index, cap)
        gset = None
        if (
            self.kind == "read"
            and re.search(r"\bFROM pll\b", sql)
            and "list" not in self.known
            and "WITH d AS" not in sql
        ):
            gset = "l_"
            self.known.update({"list": ":l_id", "patient": ":l_patient_id"})
        elif (
            self.kind == "write"
            and re.search(r"FROM pll JOIN entry\b.*FOR UPDATE", sql, re.S)
            and "entry" not in self.known
        ):
            # The server locks the list row by the entry's id and reads the entry with the
            # list's entries (rows pgbench cannot \gset); pgbench takes the entry's id,
            # version from the row this statement joins already, and the stored text of the
            # entry and of the List from their current version rows (two keyed lookups more
            # than the server's statement), to write them back.
            gset = "l_"
            out = out.replace(
                "SELECT ",
                "SELECT entry.id AS entry_id, entry.version AS entry_version, "
                "(SELECT v.resource FROM entry_version v WHERE v.entry_id = entry.id "
                "AND v.version = entry.version) AS entry_resource, "
                "(SELECT v.list_json FROM pll_version v WHERE v.list_id = pll.id "
                "AND v.version = pll.version) AS list_json, ",
                1,
            )
            self.known.update({"entry": ":l_entry_id", "list": ":l_id", "patient": ":l_patient_id"})
            self.lines.append(
                f"-- [{index}] the list row, locked, by the entry the request names "
                "(with the entry's id, version and text for the statements below)"
            )
        elif self.kind == "write" and re.search(r"\bFROM pll\b.*FOR UPDATE", sql, re.S):
            gset = "l_"
        if self.kind == "read" and "unnest(" in sql:
            # one batch INSERT every `batch` reads, on average, as the server writes them
            self.lines += ["\\if :b = 1", out + ";", "\\endif"]
            return
        if gset:
            self.lines.append(f"{out} \\gset {gset}")
            if gset == "l_" and self.kind == "write":
                self.lines.append("\\set lv :l_version + 1")
                if self.known.get("entry") == ":l_entry_id":
                    self.lines.append("\\set ev :l_entry_version + 1")
        else:
            self.lines.append(out + ";")


def to_pgbench(kind: str, captured: list[Captured], ids: dict[str, str], batch: int = 1) -> Script:
    """The pgbench script of ``captured``; ``batch``: the read's group commit writes one
    INSERT of ``batch`` audit rows every ``batch`` reads (chosen at random, 1 in ``batch``)."""
    conv = _Converter(kind, ids, batch)
    header = [f"-- {kind}: SQL captured from the server's own code path (see bench/README.md)"]
    if kind == "read":
        header.append("\\set n random(1, :npatients)")
        if any("unnest(" in c.sql for c in captured):
            header += [
                f"-- group commit: one INSERT of {batch} audit rows every {batch} reads",
                f"\\set b random(1, {batch})",
                f"\\set m random(1, :npatients - {batch - 1})",
            ]
    else:
        # Each client owns the pool entries n = client_id + 1 + k * nclients (like each wrk
        # virtual user owns its own entries), so no two clients change the same entry.
        header.append("\\set n 1 + :client_id + :nclients * random(0, :per_client - 1)")
    # The server's read is one autocommitted statement; its write is one transaction.
    transaction = kind == "write"
    if transaction:
        conv.lines.append("BEGIN;")
    pipelined = False
    for i, cap in enumerate(captured):
        # the server's pipelined statements go in one round trip: so do pgbench's
        # (-M prepared, which pipeline mode needs)
        if cap.pipelined != pipelined:
            conv.lines.append("\\startpipeline" if cap.pipelined else "\\endpipeline")
            pipelined = cap.pipelined
        before = len(conv.lines)
        conv.statement(i, cap)
        if pipelined and any("\\gset" in line for line in conv.lines[before:]):
            raise RuntimeError(
                f"captured statement {i} reads a row inside a pipeline, which pgbench "
                "cannot \\gset: has the code path changed?"
            )
    if pipelined:
        conv.lines.append("\\endpipeline")
    if transaction:
        conv.lines.append("COMMIT;")
    if conv.unmapped_ids:
        raise RuntimeError(
            "captured SQL uses ids before any statement read them: " + "; ".join(conv.unmapped_ids)
        )
    if not conv.first_lookup_done:
        raise RuntimeError(
            f"{kind}: the captured SQL never names the requested "
            f"{'patient' if kind == 'read' else 'entry'}; has the code path changed?"
        )
    return Script(kind, "\n".join(header + conv.lines) + "\n", conv.defines, captured)


def describe(captured: list[Captured]) -> list[str]:
    """One line per statement, for the results file."""
    return [re.sub(r"\s+", " ", c.sql)[:160] for c in captured]
