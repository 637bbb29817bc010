"""A server whose PostgreSQL cannot be reached answers 503 with ``Retry-After`` and an
OperationOutcome that says what happened to the request, never 500 (issue 21: during a
failover no server is the primary for a moment; docs/operations.md, "Failover")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pll.api.app import create_app
from pll.auth.audit import AuditKey
from pll.auth.tokens import issue
from pll.services.lists import PLLService
from pll.store.db import Database
from tests.conftest import server_settings, serving
from tests.integration.builders import statement
from tests.integration.processes import free_port


@pytest.fixture
def down(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A live server on a database URL where nothing listens (two hosts, as in production)."""
    hosts = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    db = Database(f"postgresql://postgres@{hosts}/pll?target_session_attrs=read-write")
    service = PLLService(db, AuditKey.load(tmp_path))
    with serving(create_app(server_settings(tmp_path, db), service)) as base:
        headers = {
            "Authorization": f"Bearer {issue(tmp_path, 'gp')}",
            "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
            "Content-Type": "application/fhir+json",
        }
        yield base, headers
    db.dispose()


def _unavailable(answer: httpx.Response) -> str:
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    issue_ = answer.json()["issue"][0]
    assert issue_["code"] == "transient"
    return str(issue_["diagnostics"])


def test_reads_and_changes_answer_503_while_no_database_answers(
    down: tuple[str, dict[str, str]],
) -> None:
    base, headers = down
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        assert "nothing was read" in _unavailable(client.get("/fhir/MedicationStatement/x1"))
        # the current-list read, on its own pool (asyncpg)
        _unavailable(client.get("/fhir/List/x1"))
        change = client.put(
            "/fhir/MedicationStatement/x1",
            json=statement("Patient/p1", "Paracetamol", "N02BE01"),
            headers={"If-Match": 'W/"1"'},
        )
        # no connection was made, so the server knows nothing was changed
        assert "nothing was changed" in _unavailable(change)
        _unavailable(client.get("/healthz"))


def test_the_web_ui_says_in_norwegian_that_the_database_is_away(
    down: tuple[str, dict[str, str]],
) -> None:
    base, _ = down
    with httpx.Client(base_url=base, timeout=30) as web:
        token = re.search(r'name="csrf" value="([^"]+)"', web.get("/logg-inn").text)
        assert token
        # logging in records the login in the database
        page = web.post("/logg-inn/utvikler", data={"csrf": token.group(1), "persona": "gp"})
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "1"
        assert "Databasen svarer ikke akkurat nå" in page.text
