"""What authentication and the audit record cost per read, piece by piece.

    .venv/bin/python bench/auth_costs.py                    # Python costs, in-process
    .venv/bin/python bench/auth_costs.py --pgbench-seconds 10   # and the audit row's SQL cost,
                                                            # on a loaded pll_bench (run_bench.py)
    .venv/bin/python bench/auth_costs.py --replay-calls 0   # without the DPoP replay record

The Python side times, on one core, what a read runs before and after its SQL: token checks
(cold: signature against the JWKS; warm: the verified-token cache), a DPoP proof (one
signature check per request, never cached), the access decision, and the audit record (actor
JSON and HMAC). The SQL side runs pgbench on the benchmark database twice with the server's
own read statement: as the server runs it (document read + access rule + audit insert with
its MAC, autocommitted), and the same read with no audit record, so the difference is what
writing the record costs PostgreSQL.

The DPoP replay record (``pll.store.dpop_proofs``, shared by all server processes) is timed
on both databases, one caller at a time: recording a proof as the server does, the same
insert in an ordinary transaction with a synchronous commit for comparison, and a whole DPoP
authentication with the record against the in-memory check alone. PostgreSQL gets a scratch
database ``pll_bench_dpop``, dropped afterwards.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pll.auth import audit
from pll.auth.access import Access, Basis, PatientFacts, Verb
from pll.auth.dpop import DPoPVerifier, make_proof
from pll.auth.jwks import verify_token
from pll.auth.tokens import Authenticator, dev_issuer, dpop_key, issue
from pll.services.audit import actor_json
from pll.store.db import Database
from pll.store.dpop_proofs import AcceptedProofs
from pll.store.schema import dpop_proof
from pllbench import dbsetup
from pllbench.drivers import PgConn, run_pgbench
from pllbench.load import gp_access

console = Console()
URL = "http://127.0.0.1:8000/fhir/List"


def _per_call(fn: Callable[[int], object], n: int) -> float:
    """Microseconds per call of ``fn(i)``, best of three runs of ``n``."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def python_costs(n: int) -> list[tuple[str, float]]:
    data = Path(tempfile.mkdtemp(prefix="pll-auth-costs-"))
    issuer = dev_issuer(data)
    issuers = {issuer.issuer: issuer}
    token = issue(data, "gp")
    auth = Authenticator([issuer])
    auth.authenticate(f"Bearer {token}", None, "GET", URL)  # warm the cache
    key_file = data / "dpop.pem"
    bound = issue(data, "gp", dpop_key_file=key_file)
    key = dpop_key(key_file)
    proofs = [make_proof(key, method="GET", url=URL, access_token=bound) for _ in range(3 * n + 1)]
    auth.authenticate(f"DPoP {bound}", proofs.pop(), "GET", URL)
    used = iter(proofs)

    access = gp_access()
    assert access.basis is Basis.TREATMENT
    facts = PatientFacts("p", "17855116340")
    audit_key = audit.AuditKey.load(data)
    actor = actor_json(access)
    now = datetime.now(UTC)

    def record(_: int) -> object:
        decision = access.decide(Verb.READ, facts)
        content = audit.canonical(
            now, actor, "read", "List", "HPBEHANDLINGSRELASJON", "0", "l", "p", None
        )
        return audit_key.mac(content) if decision.allowed else None

    return [
        (
            "token: RS256 signature via JWKS (cold)",
            _per_call(lambda _: verify_token(token, issuers), n),
        ),
        (
            "token: Bearer, verified-token cache (warm)",
            _per_call(lambda _: auth.authenticate(f"Bearer {token}", None, "GET", URL), n),
        ),
        (
            "token: DPoP, cache + ES256 proof",
            _per_call(lambda _: auth.authenticate(f"DPoP {bound}", next(used), "GET", URL), n),
        ),
        ("access decision", _per_call(lambda _: access.decide(Verb.READ, facts), n)),
        ("access decision + audit record HMAC", _per_call(record, n)),
        (
            "audit actor JSON (cached per caller in the server)",
            _per_call(lambda _: actor_json(access), n),
        ),
        ("read rule for the one-statement read", _per_call(lambda _: Access.read_rule(access), n)),
    ]


def replay_costs(n: int, database_url: str) -> list[tuple[str, float]]:
    """Microseconds per DPoP request that the shared replay record adds, on ``database_url``
    (migrated here)."""
    db = Database(database_url)
    db.upgrade()
    store = AcceptedProofs(database_url)
    data = Path(tempfile.mkdtemp(prefix="pll-replay-costs-"))
    issuer = dev_issuer(data)
    key_file = data / "dpop.pem"
    bound = issue(data, "gp", dpop_key_file=key_file)
    key = dpop_key(key_file)
    shared = Authenticator([issuer], dpop=DPoPVerifier(shared=store))
    alone = Authenticator([issuer])
    proofs = [make_proof(key, method="GET", url=URL, access_token=bound) for _ in range(6 * n + 2)]
    used = iter(proofs)
    for auth in (shared, alone):
        auth.authenticate(f"DPoP {bound}", next(used), "GET", URL)  # warm the token cache
    now = time.time()

    def request(auth: Authenticator) -> Callable[[int], object]:
        return lambda _: auth.authenticate(f"DPoP {bound}", next(used), "GET", URL)

    def durable(_: int) -> None:
        with db.write() as conn:
            conn.execute(dpop_proof.insert().values(digest=os.urandom(32), expires_at=_at(now)))

    try:
        return [
            (
                "  record a proof, as the server does",
                _per_call(lambda _: store.remember(os.urandom(32), now + 65, now), n),
            ),
            (
                "  (the same insert, transaction + synchronous commit)",
                _per_call(durable, n),
            ),
            (
                "  token: DPoP, cache + ES256 proof + shared record",
                _per_call(request(shared), n),
            ),
            (
                "  token: DPoP, cache + ES256 proof, memory only",
                _per_call(request(alone), n),
            ),
        ]
    finally:
        store.dispose()
        db.dispose()


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _replay_tables(calls: int, postgres_url: str) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    folder = Path(tempfile.mkdtemp(prefix="pll-replay-sqlite-"))
    rows.append(("DPoP replay record, SQLite (WAL)", float("nan")))
    rows += replay_costs(calls, f"sqlite:///{folder / 'pll.sqlite3'}")
    scratch = dbsetup.libpq_url(postgres_url).rsplit("/", 1)[0] + "/pll_bench_dpop"
    try:
        dbsetup.recreate_database(scratch)
    except psycopg.OperationalError as exc:  # no PostgreSQL here: say so and go on
        console.print(f"[yellow]PostgreSQL not measured ({exc})[/yellow]")
        return rows
    rows.append(("DPoP replay record, PostgreSQL", float("nan")))
    try:
        rows += replay_costs(calls, scratch)
    finally:
        admin = scratch.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "pll_bench_dpop" WITH (FORCE)')
    return rows


_NO_AUDIT = """\\set n random(1, :npatients)
SELECT pll.id, pll.patient_id, pll.version, pll.updated_at, pll.expires_at, pll.document
FROM pll JOIN patient ON patient.id = pll.patient_id
WHERE pll.patient_id = (SELECT patient_id FROM bench_patient WHERE n = :n);
"""


def sql_costs(url: str, read_sql: Path, seconds: int, clients: int) -> list[tuple[str, float]]:
    pg = PgConn(**dbsetup.conn_parts(url))
    defines = {"npatients": str(dbsetup.patient_count(url))}
    plain = Path(tempfile.mkdtemp()) / "read-no-audit.sql"
    plain.write_text(_NO_AUDIT)
    out = []
    for name, script, extra in (
        ("read + access rule + audit record (the server's statement)", read_sql, "read"),
        ("the same read, no audit record", plain, "plain"),
    ):
        script_defines = dict(defines)
        if extra == "read":
            script_defines |= _captured_defines(read_sql)
        m = run_pgbench(pg, script, script_defines, seconds, clients, 2, None)
        out.append((name, m.rate))
    return out


def _captured_defines(read_sql: Path) -> dict[str, str]:
    defines_file = read_sql.with_suffix(".defines")
    if not defines_file.exists():
        raise click.ClickException(
            f"{defines_file} is missing: pass the read.sql of a run_bench.py run (results dir)"
        )
    return dict(line.split("=", 1) for line in defines_file.read_text().splitlines() if "=" in line)


@click.command()
@click.option("--calls", default=2000, show_default=True, help="calls per Python measurement")
@click.option(
    "--replay-calls",
    default=1000,
    show_default=True,
    help="calls per DPoP replay-record measurement on each database (0: none)",
)
@click.option("--pgbench-seconds", default=0, show_default=True, help="0: Python costs only")
@click.option("--clients", default=32, show_default=True)
@click.option("--database-url", default="postgresql://postgres@127.0.0.1:5432/pll_bench")
@click.option(
    "--read-sql",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="read.sql from a run_bench.py results directory (its .defines beside it)",
)
def main(
    calls: int,
    replay_calls: int,
    pgbench_seconds: int,
    clients: int,
    database_url: str,
    read_sql: Path | None,
) -> None:
    table = Table(title="Python cost per read (one core, best of 3)")
    table.add_column("step")
    table.add_column("µs per read", justify="right")
    rows = python_costs(calls)
    if replay_calls:
        rows += _replay_tables(replay_calls, database_url)
    for name, micros in rows:
        table.add_row(name, "" if math.isnan(micros) else f"{micros:,.1f}")  # NaN: a heading
    console.print(table)
    if pgbench_seconds:
        if read_sql is None:
            raise click.UsageError("--pgbench-seconds needs --read-sql")
        rows = sql_costs(database_url, read_sql, pgbench_seconds, clients)
        sql = Table(title=f"PostgreSQL alone, pgbench -c {clients}, {pgbench_seconds}s each")
        sql.add_column("statement")
        sql.add_column("reads/s", justify="right")
        sql.add_column("ms per read per client", justify="right")
        for name, rate in rows:
            sql.add_row(name, f"{rate:,.0f}", f"{clients / rate * 1000:.2f}")
        console.print(sql)


if __name__ == "__main__":
    main()
