"""The hot read on PostgreSQL: the current list and its audit row in one statement.

A health worker's list read is the most frequent request PLL serves (DESIGN §6). Here it is
one prepared statement in autocommit mode: a CTE reads the stored document by key and
inserts the audit row in the same statement, so the read costs one round trip and is
durably logged when the answer comes back (rule 5). It runs on asyncpg's pool, so the
request never leaves the event loop for a worker thread. ``STATEMENTS`` keep the
``%(name)s`` form (the benchmark turns them into pgbench scripts); asyncpg gets ``$n``.

The statement also applies the caller's compiled read rule
(:meth:`pll.auth.access.Access.read_rule`: own list or proxy for a patient; a block honoured
unless the basis is emergency) and writes the audit record with its MAC only when the rule
admits the read and the stored document has not expired. Anything else — a refusal, which
must be explained and logged, or an expired document — goes to the service's general path.
SQLite has no data-changing CTEs; there the same read is two statements in one transaction.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from pll.auth import audit
from pll.auth.access import Outcome, ReadRule

_KEYS = {
    "list": "pll.id = %(key)s",
    "patient": "pll.patient_id = %(key)s",
    "identifier": "patient.identifier_system = %(system)s AND patient.identifier_value = %(key)s",
}

_SQL = """
WITH d AS (
    SELECT pll.id, pll.patient_id, pll.version, pll.updated_at, pll.expires_at,
           pll.{column} AS text, patient.identifier_value,
           EXISTS (SELECT 1 FROM access_block b
                   WHERE b.patient_id = pll.patient_id AND b.hpr = %(hpr)s::text
                     AND b.ended_at IS NULL) AS blocked,
           (patient.identifier_value = %(pid)s::text
            OR EXISTS (SELECT 1 FROM proxy x WHERE x.holder = %(pid)s::text
                         AND x.patient_identifier = patient.identifier_value)) AS own
    FROM pll JOIN patient ON patient.id = pll.patient_id
    WHERE {where}
), e AS (
    SELECT d.*,
           (NOT %(own_only)s::boolean OR COALESCE(d.own, false))
             AND (NOT d.blocked OR %(allow_blocked)s::boolean) AS admitted,
           CASE WHEN d.blocked THEN %(flag_if_blocked)s::text END AS flag
    FROM d
), a AS (
    INSERT INTO audit_event (recorded_at, actor, action, resource_type, resource_id,
                             patient_id, basis, outcome, flag, mac)
    SELECT %(now)s, %(actor)s, 'read', 'List', e.id, e.patient_id, %(basis)s::text, '0', e.flag,
           encode(sha256(%(opad)s::bytea || sha256(%(ipad)s::bytea || convert_to(
               %(prefix)s::text || e.id || chr(31) || e.patient_id || chr(31)
               || COALESCE(e.flag, ''), 'UTF8'))), 'hex')
    FROM e
    WHERE e.admitted AND (e.expires_at IS NULL OR e.expires_at > %(now)s)
)
SELECT id, patient_id, version, updated_at, expires_at, text, identifier_value, admitted FROM e
"""

STATEMENTS = {
    (key, column): _SQL.format(column=column, where=where)
    for key, where in _KEYS.items()
    for column in ("list_json", "document")
}


def _positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """The statement with asyncpg's ``$n`` parameters, and the parameter names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"%\((\w+)\)s", number, sql), tuple(names)


_POSITIONAL = {key: _positional(sql) for key, sql in STATEMENTS.items()}


@dataclass(frozen=True)
class ListRow:
    id: str
    patient_id: str
    version: int
    updated: datetime
    expires_at: datetime | None
    text: str
    identifier_value: str
    #: the caller's read rule admitted this read (and its audit record was written)
    admitted: bool

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _naive_utc(moment: datetime) -> datetime:
    # The schema keeps UTC without a time zone (see schema.UTCDateTime).
    if moment.tzinfo is None:
        raise ValueError("naive datetime given for a UTC column")
    return moment.astimezone(UTC).replace(tzinfo=None)


async def _keep(_: asyncpg.Connection) -> None:
    """No reset when a connection goes back to the pool: these statements leave no session
    state, and asyncpg's default reset would cost a round trip per read (DESIGN §6)."""


class AuditedListReader:
    """Reads the current list and logs the read, in one statement, on PostgreSQL."""

    def __init__(self, dsn: str, *, max_size: int = 8) -> None:
        # Each statement holds its connection for one round trip, so a few serve a worker.
        self._dsn = dsn
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening = asyncio.Lock()

    async def _open(self) -> asyncpg.Pool:
        # A pool belongs to the event loop it was made on; a server has one loop per
        # worker process, but a caller on another loop (a test client) gets its own pool.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._pool = None
            self._opening = asyncio.Lock()
        async with self._opening:  # requests arriving together share one new pool
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn, min_size=1, max_size=self._max_size, reset=_keep
                )
            return self._pool

    async def read(
        self,
        key: str,
        value: str,
        *,
        document: bool,
        system: str | None,
        now: datetime,
        actor: str,
        basis: str | None,
        rule: ReadRule,
        key_pads: tuple[bytes, bytes],
    ) -> ListRow | None:
        """The stored List or list document by ``key`` (list/patient/identifier) and, when
        ``rule`` admits the caller and the document has not expired, its audit record
        (sealed with the HMAC of :func:`pll.auth.audit.canonical`, ``key_pads`` being the
        audit key's inner and outer pads)."""
        pool = self._pool
        if pool is None or self._loop is not asyncio.get_running_loop():
            pool = await self._open()
        sql, names = _POSITIONAL[(key, "document" if document else "list_json")]
        given = {
            "key": value,
            "system": system,
            "now": _naive_utc(now),
            "actor": actor,
            "basis": basis,
            "prefix": audit.prefix(now, actor, "read", "List", basis, Outcome.SUCCESS.value),
            "ipad": key_pads[0],
            "opad": key_pads[1],
            "own_only": rule.own_only,
            "pid": rule.pid,
            "hpr": rule.hpr,
            "allow_blocked": rule.allow_blocked,
            "flag_if_blocked": rule.flag_if_blocked,
        }
        # asyncpg prepares and caches the statement per connection; autocommit is its default.
        row = await pool.fetchrow(sql, *(given[name] for name in names))
        if row is None:
            return None
        list_id, patient_id, version, updated, expires, text, identifier_value, admitted = row
        return ListRow(
            id=list_id,
            patient_id=patient_id,
            version=version,
            updated=updated.replace(tzinfo=UTC),
            expires_at=expires.replace(tzinfo=UTC) if expires is not None else None,
            text=text,
            identifier_value=identifier_value,
            admitted=admitted,
        )

    async def close(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.close()
        self._pool = None
