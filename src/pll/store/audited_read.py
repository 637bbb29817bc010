"""The hot read on PostgreSQL: the current list and its audit row in one statement.

A health worker's list read is the most frequent request PLL serves (DESIGN §6). Here it is
one prepared statement in autocommit mode: a CTE reads the stored document by key and
inserts the audit row in the same statement, so the read costs one round trip and is
durably logged when the answer comes back (rule 5). It runs on asyncpg connections
(:class:`~pll.store.statement_pool.StatementPool`), so the request never leaves the event
loop for a worker thread. The document comes as UTF-8 bytes (``convert_to``) and the times
in UTC (``AT TIME ZONE``), so Python neither decodes the document nor encodes it again for
the answer. ``STATEMENTS`` keep the ``%(name)s`` form (the benchmark turns them into
pgbench scripts); asyncpg gets ``$n``.

The statement also applies the caller's compiled read rule
(:meth:`pll.auth.access.Access.read_rule`: own list or proxy for a patient; a block honoured
unless the basis is emergency) and writes the audit record with its MAC only when the rule
admits the read and the stored document has not expired. Anything else — a refusal, which
must be explained and logged, or an expired document — goes to the service's general path.
SQLite has no data-changing CTEs; there the same read is two statements in one transaction.

With group commit (``PLL_AUDIT_GROUP_COMMIT``, issue 20) the statement is split in two: a
read-only lookup (``LOOKUPS``: the same CTE without its INSERT) and the audit record with the
same fields and MAC, computed in Python, handed to the process's
:class:`~pll.store.audit_batch.AuditBatcher`, which commits the records of concurrent reads
in one INSERT; the read returns once its record is committed.

After a failover (issue 21) the pool's connections lead to a server that is gone: a read
that fails on a lost connection has every connection of the pool replaced and is tried once
more, on a new one, which the multi-host URL (``target_session_attrs=read-write``) makes to
whichever server is the primary by then. A read changes nothing but its audit record, so
trying it again is safe; at worst, when the first try committed and only its answer was
lost, the read is logged twice.

With read replicas (``PLL_READ_DATABASE_URL``, issue 21; :mod:`pll.store.replicas`) the
read is split across two servers, still one statement on each: the keyed lookup on a
replica (``REPLICA_LOOKUPS``), then on the primary the caller's read rule applied to the
primary's access facts and the audit record, with the same fields and the same MAC as the
one statement's (``_ADMIT``). The record is committed on the primary before the answer; a
hot standby can write nothing, and a block the replica has not replayed yet still refuses.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode

import asyncpg
from asyncpg.exceptions import InternalClientError

from pll.auth import audit
from pll.auth.access import Outcome, ReadRule
from pll.auth.audit import AuditKey
from pll.store.audit_batch import (
    AuditBatcher,
    AuditNotWritten,
    AuditRow,
    BatchCounts,
    GroupCommit,
)
from pll.store.replicas import CONNECT_TIMEOUT, STATEMENT_TIMEOUT, Replica, ReplicaSet
from pll.store.statement_pool import NoConnection, StatementPool

_KEYS = {
    "list": "pll.id = %(key)s",
    "patient": "pll.patient_id = %(key)s",
    "identifier": "patient.identifier_system = %(system)s AND patient.identifier_value = %(key)s",
}

_FIND = """
WITH d AS (
    SELECT pll.id, pll.patient_id, pll.version, pll.updated_at, pll.expires_at,
           convert_to({text}, 'UTF8') AS body, patient.identifier_value,
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
)"""

_SQL = (
    _FIND  # noqa: S608 - constant text; the values are bound parameters
    + """, a AS (
    INSERT INTO audit_event (recorded_at, actor, action, resource_type, resource_id,
                             patient_id, basis, outcome, flag, mac)
    SELECT %(now)s, %(actor)s, 'read', 'List', e.id, e.patient_id, %(basis)s::text, '0', e.flag,
           encode(sha256(%(opad)s::bytea || sha256(%(ipad)s::bytea || convert_to(
               %(prefix)s::text || e.id || chr(31) || e.patient_id || chr(31)
               || COALESCE(e.flag, ''), 'UTF8'))), 'hex')
    FROM e
    WHERE e.admitted AND (e.expires_at IS NULL OR e.expires_at > %(now)s)
)
SELECT id, patient_id, version, updated_at AT TIME ZONE 'UTC',
       expires_at AT TIME ZONE 'UTC', body, identifier_value, admitted
FROM e
"""
)

#: The lookup of the group-committed read: the same read and read rule, no INSERT (so no
#: WAL and no commit); the audit row goes to :class:`pll.store.audit_batch.AuditBatcher`.
_LOOKUP = (
    _FIND
    + """
SELECT id, patient_id, version, updated_at AT TIME ZONE 'UTC',
       expires_at AT TIME ZONE 'UTC', body, identifier_value, admitted, flag
FROM e
"""
)

#: A replica-served read, on the replica: the stored document by key and nothing else (a hot
#: standby cannot write, and the access facts are read on the primary, see :data:`_ADMIT`).
_REPLICA_FIND = """
SELECT pll.id, pll.patient_id, pll.version, pll.updated_at AT TIME ZONE 'UTC',
       pll.expires_at AT TIME ZONE 'UTC', convert_to({text}, 'UTF8'),
       patient.identifier_value
FROM pll JOIN patient ON patient.id = pll.patient_id
WHERE {where}
"""

#: A replica-served read, on the primary, in one statement: the caller's read rule applied
#: to the primary's access facts (a block set a moment ago, which a lagging replica has not
#: replayed yet, is honoured), and the audit record of an admitted read, sealed exactly as
#: :data:`_SQL` seals it. Returns whether the rule admitted the read.
_ADMIT = """
WITH f AS (
    SELECT EXISTS (SELECT 1 FROM access_block b
                   WHERE b.patient_id = %(patient_id)s::text AND b.hpr = %(hpr)s::text
                     AND b.ended_at IS NULL) AS blocked,
           (NOT %(own_only)s::boolean OR EXISTS (
               SELECT 1 FROM patient p
               WHERE p.id = %(patient_id)s::text
                 AND (p.identifier_value = %(pid)s::text
                      OR EXISTS (SELECT 1 FROM proxy x WHERE x.holder = %(pid)s::text
                                   AND x.patient_identifier = p.identifier_value)))) AS own
), e AS (
    SELECT f.own AND (NOT f.blocked OR %(allow_blocked)s::boolean) AS admitted,
           CASE WHEN f.blocked THEN %(flag_if_blocked)s::text END AS flag
    FROM f
), a AS (
    INSERT INTO audit_event (recorded_at, actor, action, resource_type, resource_id,
                             patient_id, basis, outcome, flag, mac)
    SELECT %(now)s, %(actor)s, 'read', 'List', %(list_id)s::text, %(patient_id)s::text,
           %(basis)s::text, '0', e.flag,
           encode(sha256(%(opad)s::bytea || sha256(%(ipad)s::bytea || convert_to(
               %(prefix)s::text || %(list_id)s::text || chr(31) || %(patient_id)s::text
               || chr(31) || COALESCE(e.flag, ''), 'UTF8'))), 'hex')
    FROM e
    WHERE e.admitted
)
SELECT admitted FROM e
"""

#: What a read answers, by the name the callers ask for: the stored list document, or the List
#: itself, which is its current version row (stored once, migration 0028; the same join as
#: :func:`pll.store.list_reads.list_document`).
_TEXT = {
    "document": "pll.document",
    "list_json": "(SELECT v.list_json FROM pll_version v "
    "WHERE v.list_id = pll.id AND v.version = pll.version)",
}

#: The one-statement reads: (key, column) -> SQL.
STATEMENTS = {
    (key, column): _SQL.format(text=_TEXT[column], where=where)
    for key, where in _KEYS.items()
    for column in ("list_json", "document")
}
#: The group-committed reads' lookups: (key, column) -> SQL.
LOOKUPS = {
    (key, column): _LOOKUP.format(text=_TEXT[column], where=where)
    for key, where in _KEYS.items()
    for column in ("list_json", "document")
}


#: The replica-served reads' lookups: (key, column) -> SQL.
REPLICA_LOOKUPS = {
    (key, column): _REPLICA_FIND.format(text=_TEXT[column], where=where)
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
_LOOKUP_POSITIONAL = {key: _positional(sql) for key, sql in LOOKUPS.items()}
_REPLICA_POSITIONAL = {key: _positional(sql) for key, sql in REPLICA_LOOKUPS.items()}
_ADMIT_POSITIONAL = _positional(_ADMIT)


@dataclass(frozen=True)
class ListRow:
    id: str
    patient_id: str
    version: int
    updated: datetime
    expires_at: datetime | None
    #: the stored JSON as UTF-8: answered as it is
    body: bytes
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


class ConnectionLost(AuditNotWritten):
    """The read failed because its connection was lost or none could be made."""


#: What asyncpg raises for a connection that is lost or cannot be made: the server went
#: (class 08, shut down or crashed: 57P01-57P03), the socket failed or timed out, no server
#: of the URL is the primary (during a failover), or the connection's protocol state was
#: left broken (its server sent FATAL while it was idle: "another operation is in
#: progress"); or a standby where the primary was (25006).
_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.InterfaceError,
    InternalClientError,  # includes TargetServerAttributeNotMatched
    OSError,  # refused, reset, timed out
)
#: what makes a read's audit record fail: the server refused it, or the connection went
_FAILED: tuple[type[BaseException], ...] = (asyncpg.PostgresError, *_LOST)

#: libpq's client-side parameters, which asyncpg would send to the server as settings
#: (it takes every parameter it does not know for one); ``connect_timeout`` is its timeout.
_LIBPQ_ONLY = frozenset(
    {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval"}
    | {"keepalives_count", "tcp_user_timeout", "load_balance_hosts", "gssencmode"}
)


def asyncpg_dsn(dsn: str) -> tuple[str, float | None]:
    """``dsn`` (libpq's URL, several hosts allowed) as asyncpg takes it, and the connect
    timeout it named, in seconds."""
    base, _, query = dsn.partition("?")
    if not query:
        return dsn, None
    params = parse_qsl(query, keep_blank_values=True)
    timeout = next((float(v) for k, v in params if k == "connect_timeout" and v), None)
    kept = [(k, v) for k, v in params if k not in _LIBPQ_ONLY]
    return (f"{base}?{urlencode(kept)}" if kept else base), timeout


class AuditedListReader:
    """Reads the current list and logs the read, on PostgreSQL: in one statement, or — with
    ``group_commit``, when other reads of this process are in flight — a read-only lookup
    whose audit row is committed with those of other reads (:mod:`pll.store.audit_batch`)
    before the read returns.

    With ``replicas`` (issue 21), a read goes first to a serving replica
    (:meth:`ReplicaSet.pick <pll.store.replicas.ReplicaSet.pick>`): one keyed lookup there,
    then one statement on the primary that decides access on the primary's facts and writes
    the audit record (:data:`_ADMIT`). It goes to the primary instead when no replica serves,
    when the replica's copy is older than ``min_version``, missing or expired, or when the
    lookup fails (the replica then stops serving until its next check).
    """

    def __init__(
        self,
        dsn: str,
        *,
        max_size: int = 8,
        group_commit: GroupCommit | None = None,
        replicas: ReplicaSet | None = None,
    ) -> None:
        # Each statement holds its connection for one round trip, so a few serve a worker.
        self._dsn, self._connect_timeout = asyncpg_dsn(dsn)
        self._max_size = max_size
        self._group_commit = group_commit
        self.replicas = replicas
        self._pool: StatementPool | None = None
        self._replica_pools: dict[int, StatementPool] = {}
        self._batcher: AuditBatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_progress = 0  # reads of this process between their start and their answer

    @property
    def batch_counts(self) -> BatchCounts | None:
        """What the group commit has written in this process (None without it)."""
        return self._batcher.counts if self._batcher is not None else None

    def _open(self) -> StatementPool:
        # A pool belongs to the event loop it was made on; a server has one loop per
        # worker process, but a caller on another loop (a test client) gets its own pool.
        # Its connections are made when first needed: one that cannot be made fails the
        # read as a lost connection (ConnectionLost).
        self._loop = asyncio.get_running_loop()
        self._pool = StatementPool(
            self._dsn, self._max_size, connect_timeout=self._connect_timeout or 60.0
        )
        self._replica_pools = {}
        self._batcher = None
        if self._group_commit is not None:
            self._batcher = AuditBatcher(self._pool, self._group_commit)
        return self._pool

    def _replica_pool(self, replica: Replica) -> StatementPool:
        pool = self._replica_pools.get(replica.index)
        if pool is None:
            # no connection until the first read: a replica that is down costs nothing
            # here, and its first read fails fast and goes to the primary (libpq-only
            # parameters such as connect_timeout are taken out, as for the primary:
            # asyncpg would send them to the server as settings)
            pool = StatementPool(
                asyncpg_dsn(replica.url)[0],
                self._max_size,
                connect_timeout=CONNECT_TIMEOUT,
                command_timeout=STATEMENT_TIMEOUT,
            )
            self._replica_pools[replica.index] = pool
        return pool

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
        audit_key: AuditKey,
        min_version: int | None = None,
    ) -> ListRow | None:
        """The stored List or list document by ``key`` (list/patient/identifier) and, when
        ``rule`` admits the caller and the document has not expired, its audit record
        (sealed with the HMAC of :func:`pll.auth.audit.canonical` under ``audit_key``),
        committed before this returns. Raises :class:`~pll.store.audit_batch.AuditNotWritten`
        when the group commit of the record failed: nothing may then be answered.
        ``min_version``: a replica may serve the read only if its copy is at least this
        version (read-your-writes); the primary's always is."""
        pool = self._pool
        if pool is None or self._loop is not asyncio.get_running_loop():
            pool = self._open()
        column = "document" if document else "list_json"
        given: dict[str, object] = {
            "key": value,
            "system": system,
            "own_only": rule.own_only,
            "pid": rule.pid,
            "hpr": rule.hpr,
            "allow_blocked": rule.allow_blocked,
            "flag_if_blocked": rule.flag_if_blocked,
        }
        if self.replicas is not None:
            replica = self.replicas.pick()
            if replica is not None:
                found = await self._from_replica(
                    pool,
                    self.replicas,
                    replica,
                    (key, column),
                    given,
                    min_version,
                    now,
                    actor,
                    basis,
                    audit_key,
                )
                if found is not None:
                    return found
        # Alone in this process, a read is fastest as the one statement (one round trip,
        # no batch to wait for); with others in flight, their records are committed together.
        batcher = self._batcher if self._in_progress else None
        self._in_progress += 1
        try:
            try:
                return await self._read(
                    pool, (key, column), given, batcher, now, actor, basis, audit_key
                )
            except ConnectionLost as lost:
                if isinstance(lost.__cause__, NoConnection):
                    raise  # a new connection could not be made: no better a moment later
                # the pool's connections are of a server that went: all are replaced, and
                # the read is tried once more on a new one (the primary's by now, or none)
                await pool.expire_connections()
                return await self._read(
                    pool, (key, column), given, batcher, now, actor, basis, audit_key
                )
        finally:
            self._in_progress -= 1

    async def _from_replica(
        self,
        pool: StatementPool,
        replicas: ReplicaSet,
        replica: Replica,
        statement: tuple[str, str],
        given: dict[str, object],
        min_version: int | None,
        now: datetime,
        actor: str,
        basis: str | None,
        audit_key: AuditKey,
    ) -> ListRow | None:
        """The read served by ``replica``, or ``None``: the primary is to serve it."""
        counts = replicas.counts
        sql, names = _REPLICA_POSITIONAL[statement]
        try:
            row = await self._replica_pool(replica).fetchrow(sql, *map(given.__getitem__, names))
        except Exception as exc:  # whatever the replica did, the primary answers instead
            replicas.failed(replica, exc)
            return None
        if row is None:
            # Not replicated yet (a list made a moment ago) or not there at all: only the
            # primary can say which.
            counts.add("missing")
            return None
        if min_version is not None and row[2] < min_version:
            counts.add("behind")
            return None
        expires_at = row[4]  # UTC (AT TIME ZONE in SQL)
        if expires_at is not None and expires_at <= now:
            return None  # the primary's path lets the old entries go, then reads
        ipad, opad = _pads(audit_key)
        naive_now = _naive_utc(now)
        admit = given | {
            "list_id": row[0],
            "patient_id": row[1],
            "now": naive_now,
            "actor": actor,
            "basis": basis,
            "prefix": audit.prefix(naive_now, actor, "read", "List", basis, _SUCCESS),
            "ipad": ipad,
            "opad": opad,
        }
        admit_sql, admit_names = _ADMIT_POSITIONAL
        arguments = list(map(admit.__getitem__, admit_names))
        try:
            try:
                admitted = await pool.fetchval(admit_sql, *arguments)
            except _LOST:
                # the primary's connections are of a server that went (a failover): all are
                # replaced and the record tried once more, as the primary's own read does
                await pool.expire_connections()
                admitted = await pool.fetchval(admit_sql, *arguments)
        except _FAILED as exc:
            raise AuditNotWritten(f"the read's record failed: {type(exc).__name__}") from exc
        counts.add("replica")
        return ListRow(
            id=row[0],
            patient_id=row[1],
            version=row[2],
            updated=row[3],
            expires_at=expires_at,
            body=row[5],
            identifier_value=row[6],
            admitted=bool(admitted),
        )

    async def _read(
        self,
        pool: StatementPool,
        statement: tuple[str, str],
        given: dict[str, object],
        batcher: AuditBatcher | None,
        now: datetime,
        actor: str,
        basis: str | None,
        audit_key: AuditKey,
    ) -> ListRow | None:
        if batcher is None:
            if self._batcher is not None:
                self._batcher.counts.alone += 1
            sql, names = _POSITIONAL[statement]
            naive_now = _naive_utc(now)
            given["now"] = naive_now
            given["actor"] = actor
            given["basis"] = basis
            given["prefix"] = audit.prefix(naive_now, actor, "read", "List", basis, _SUCCESS)
            given["ipad"], given["opad"] = _pads(audit_key)
        else:
            sql, names = _LOOKUP_POSITIONAL[statement]
        # asyncpg prepares and caches the statement per connection; autocommit is its default.
        try:
            row = await pool.fetchrow(sql, *map(given.__getitem__, names))
        except _LOST as exc:
            raise ConnectionLost(f"the read failed: {type(exc).__name__}") from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # the one statement reads and logs together: nothing read, nothing logged
            raise AuditNotWritten(f"the read failed: {type(exc).__name__}") from exc
        if row is None:
            return None
        found = ListRow(
            id=row[0],
            patient_id=row[1],
            version=row[2],
            updated=row[3],  # UTC (AT TIME ZONE in SQL: no replace() here)
            expires_at=row[4],
            body=row[5],
            identifier_value=row[6],
            admitted=row[7],
        )
        if batcher is not None and found.admitted and not found.expired(now):
            flag = row[8]
            outcome = Outcome.SUCCESS.value
            mac = audit_key.mac(
                audit.canonical(
                    now, actor, "read", "List", basis, outcome, found.id, found.patient_id, flag
                )
            )
            await batcher.write(
                AuditRow(
                    _naive_utc(now),
                    actor,
                    "read",
                    "List",
                    found.id,
                    found.patient_id,
                    basis,
                    outcome,
                    flag,
                    mac,
                )
            )
        return found

    async def close(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            if self._batcher is not None:
                await self._batcher.close()
            await self._pool.close()
            for replica_pool in self._replica_pools.values():
                await replica_pool.close()
        self._pool = None
        self._replica_pools = {}
        self._batcher = None


_SUCCESS = Outcome.SUCCESS.value


@lru_cache(maxsize=4)
def _pads(key: AuditKey) -> tuple[bytes, bytes]:
    return key.pads()
