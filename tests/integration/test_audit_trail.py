"""The audit trail is tamper-evident: ``pll audit verify`` names the record that was edited,
inserted or deleted behind PLL's back, on both databases (issue 3, DESIGN §3 rule 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pll.auth.audit import AuditKey
from tests.conftest import LiveServer, append_only_lifted
from tests.integration.builders import DRUGS, new_patient_with_list, ok, statement

PLL = str(Path(sys.executable).parent / "pll")


def verify(server: LiveServer) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PLL_DATABASE_URL": server.db.url,
        "PLL_DATA_DIR": str(server.data_dir),
        "COLUMNS": "200",
    }
    env.pop("PLL_AUDIT_KEY", None)
    return subprocess.run(
        [PLL, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _traffic(server: LiveServer) -> None:
    """Records of every kind: writes, reads on the hot path, a patient's, an emergency."""
    with server.client() as gp:
        pid, list_id = new_patient_with_list(gp)
        ok(gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[0])), 201)
        fnr = ok(gp.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"]
        for _ in range(3):
            ok(gp.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))
    with server.client("patient", fnr) as me:
        ok(me.get(f"/fhir/List/{list_id}"))
        block = {
            "resourceType": "Consent",
            "status": "active",
            "scope": {"coding": [{"code": "patient-privacy"}]},
            "category": [{"coding": [{"code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"},
            "provision": {
                "type": "deny",
                "actor": [
                    {
                        "role": {"coding": [{"code": "PRCP"}]},
                        "reference": {
                            "identifier": {
                                "system": "urn:oid:2.16.578.1.12.4.1.4.4",
                                "value": "9144889",
                            }
                        },
                    }
                ],
            },
        }
        ok(me.post("/fhir/Consent", json=block), 201)
    with server.client(basis="HPAKUTT") as gp:  # the hot path writes the flag and its MAC
        ok(gp.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))
    with server.client() as gp:
        assert gp.get(f"/fhir/List/{list_id}").status_code == 403  # a logged refusal


def _ids(server: LiveServer) -> list[int]:
    with server.db.read() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT id FROM audit_event ORDER BY id"))]


def _sql(server: LiveServer, sql: str, **params: Any) -> None:
    """Change the log behind PLL's back, as someone who can also drop its triggers."""
    with server.db.write() as conn, append_only_lifted(conn, server.db):
        conn.execute(sa.text(sql), params)


def test_the_database_refuses_to_change_or_delete_a_record(
    server: LiveServer, sealed: list[int]
) -> None:
    for sql in (
        "UPDATE audit_event SET actor = '{}' WHERE id = :id",
        "UPDATE audit_event SET chain_hash = 'x' WHERE id = :id",
        "DELETE FROM audit_event WHERE id = :id",
    ):
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            server.db.write() as conn,
        ):
            conn.execute(sa.text(sql), {"id": sealed[1]})
    assert verify(server).returncode == 0


@pytest.fixture
def sealed(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    # `pll audit verify` (as :func:`verify` runs it, without PLL_AUDIT_KEY) keys with what
    # the server keyed with: a tampering test's "named" means the record, not a wrong key
    monkeypatch.delenv("PLL_AUDIT_KEY", raising=False)
    assert AuditKey.load(server.data_dir) == server.service.trail.key
    _traffic(server)
    # in-process here, as `pll audit verify` checks (each test that tampers runs the
    # command itself, and the first test runs it on the untouched trail): two commands per
    # test were a minute of the suite
    assert server.service.trail.verify().ok  # unsealed records: checked by their MACs alone
    assert server.seal() > 0
    assert server.service.trail.verify().ok
    ids = _ids(server)
    assert len(ids) >= 10
    return ids


def test_an_untouched_trail_verifies_and_sealing_is_idempotent(
    server: LiveServer, sealed: list[int]
) -> None:
    result = verify(server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit trail intact" in result.stdout
    assert server.seal() == 0
    with server.db.read() as conn:
        flagged = conn.execute(
            sa.text("SELECT count(*) FROM audit_event WHERE flag IS NOT NULL")
        ).scalar_one()
    assert flagged == 1


def test_an_edited_record_is_named(server: LiveServer, sealed: list[int]) -> None:
    victim = sealed[4]
    _sql(
        server,
        "UPDATE audit_event SET actor = replace(actor, 'Kari', 'Kåre') WHERE id = :id",
        id=victim,
    )
    result = verify(server)
    assert result.returncode == 1
    assert f"BROKEN at record id {victim}:" in result.stderr
    assert "edited" in result.stderr


def test_a_changed_basis_is_named(server: LiveServer, sealed: list[int]) -> None:
    """Turning an emergency access into an ordinary one must not go unnoticed."""
    _sql(
        server,
        "UPDATE audit_event SET flag = NULL, basis = 'HPBEHANDLINGSRELASJON' "
        "WHERE flag IS NOT NULL",
    )
    result = verify(server)
    assert result.returncode == 1
    assert "does not match its MAC" in result.stderr


def test_a_deleted_record_is_named(server: LiveServer, sealed: list[int]) -> None:
    victim = sealed[3]
    _sql(server, "DELETE FROM audit_event WHERE id = :id", id=victim)
    result = verify(server)
    assert result.returncode == 1
    assert f"BROKEN at record id {sealed[4]}:" in result.stderr
    assert "missing (deleted)" in result.stderr


def test_a_deleted_newest_record_is_noticed(server: LiveServer, sealed: list[int]) -> None:
    _sql(server, "DELETE FROM audit_event WHERE id = :id", id=sealed[-1])
    result = verify(server)
    assert result.returncode == 1
    assert "newest sealed records were deleted" in result.stderr


@pytest.mark.parametrize("sealed_copy", [False, True])
def test_an_inserted_record_is_named(
    server: LiveServer, sealed: list[int], sealed_copy: bool
) -> None:
    """A record slipped in, either bare or copying another's MAC and seal."""
    columns = "recorded_at, actor, action, resource_type, resource_id, patient_id, outcome"
    extra = ", mac, chain_seq, chain_hash" if sealed_copy else ""
    source = sealed[2]
    with server.db.write() as conn, append_only_lifted(conn, server.db):
        row = conn.execute(
            sa.text(f"SELECT {columns}, mac, chain_hash FROM audit_event WHERE id = :id"),
            {"id": source},
        ).one()
        values: dict[str, Any] = dict(row._mapping)
        values["actor"] = values["actor"].replace("Kari Fastlege", "Ola Snok")
        values["seq"] = 10_000
        placeholders = ", ".join(f":{c.strip()}" for c in columns.split(","))
        if sealed_copy:
            placeholders += ", :mac, :seq, :chain_hash"
        new_id = conn.execute(
            sa.text(
                f"INSERT INTO audit_event ({columns}{extra}) VALUES ({placeholders}) RETURNING id"
            ),
            values,
        ).scalar_one()
    result = verify(server)
    assert result.returncode == 1
    assert f"record id {new_id}" in result.stderr
    if not sealed_copy:
        assert "no MAC" in result.stderr


def test_a_sealer_does_not_launder_an_inserted_record(
    server: LiveServer, sealed: list[int]
) -> None:
    """The sealer chains what it finds, but a record without a valid MAC stays named."""
    _sql(
        server,
        "INSERT INTO audit_event (recorded_at, actor, action, resource_type, outcome) "
        "VALUES (:at, '{}', 'read', 'List', '0')",
        at=datetime(2026, 1, 1),  # noqa: DTZ001 - the column holds naive UTC, as raw SQL sees it
    )
    server.seal()
    result = verify(server)
    assert result.returncode == 1
    assert "no MAC" in result.stderr


def test_a_record_posing_as_older_than_the_seal_is_named(
    server: LiveServer, sealed: list[int]
) -> None:
    """No trigger needs to be dropped to insert; a MAC-less record must not pass as legacy."""
    with server.db.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_event (id, recorded_at, actor, action, resource_type, outcome)"
                " VALUES (-1, :at, '{\"name\":\"Framed Doctor\"}', 'read', 'List', '0')"
            ),
            {"at": datetime(2026, 1, 1)},  # noqa: DTZ001 - naive UTC, as stored
        )
    result = verify(server)
    assert result.returncode == 1
    assert "record id -1 has no MAC" in result.stderr


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_chain SET legacy_upto = 1000000",
        "UPDATE audit_chain SET legacy_count = 5",
        "UPDATE audit_chain SET seq = 1",
        "DELETE FROM audit_chain",
    ],
)
def test_the_chain_head_only_moves_forward(server: LiveServer, sealed: list[int], sql: str) -> None:
    with (
        pytest.raises(sa.exc.DatabaseError, match="only moves forward"),
        server.db.write() as conn,
    ):
        conn.execute(sa.text(sql))


def test_the_log_cannot_be_truncated(server: LiveServer, sealed: list[int]) -> None:
    if server.db.is_sqlite:
        pytest.skip("SQLite has no TRUNCATE; DELETE is refused row by row")
    for table in ("audit_event", "audit_chain"):
        with (
            pytest.raises(sa.exc.DatabaseError, match="cannot be truncated"),
            server.db.write() as conn,
        ):
            conn.execute(sa.text(f"TRUNCATE {table}"))


def test_a_rewritten_chain_head_is_named(server: LiveServer, sealed: list[int]) -> None:
    _sql(server, "UPDATE audit_chain SET hash = :h", h="f" * 64)
    result = verify(server)
    assert result.returncode == 1
    assert "chain head's hash" in result.stderr


def test_verify_reads_one_snapshot(server: LiveServer, sealed: list[int]) -> None:
    """What commits while a long verify runs (sealers, new reads) is not seen half-way."""
    with server.db.snapshot() as snap:
        first = snap.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one()
        with server.client() as gp:  # another transaction writes and commits meanwhile
            r = gp.get("/fhir/Patient", params={"identifier": "17855116340"})
            assert r.status_code == 200
            pid = ok(
                gp.post(
                    "/fhir/Patient",
                    json={
                        "resourceType": "Patient",
                        "identifier": [
                            {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "17855116340"}
                        ],
                    },
                ),
                201,
            )["id"]
            ok(gp.get(f"/fhir/Patient/{pid}"))
        server.seal()
        again = snap.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one()
    assert again == first
    assert len(_ids(server)) > first
