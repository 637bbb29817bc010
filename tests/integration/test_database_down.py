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
from tests.integration.builders import new_patient_with_list, ok, statement
from tests.integration.pg_clusters import pg_clusters, require
from tests.integration.processes import free_port
from tests.integration.test_sfm import get_medication


def _headers(data_dir: Path) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {issue(data_dir, 'gp')}",
        "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
        "Content-Type": "application/fhir+json",
    }


def _csrf(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found, path
    return found.group(1)


@pytest.fixture
def down(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A live server on a database URL where nothing listens (two hosts, as in production)."""
    hosts = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    db = Database(f"postgresql://postgres@{hosts}/pll?target_session_attrs=read-write")
    service = PLLService(db, AuditKey.load(tmp_path))
    with serving(create_app(server_settings(tmp_path, db), service)) as base:
        yield base, _headers(tmp_path)
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
        # a read by POST (SFM Basis) is answered as a read, not as a change
        got = _unavailable(get_medication(client))
        assert "nothing was read and nothing was changed" in got
        assert "change again" not in got
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


def test_a_read_on_a_connection_the_restart_cut_is_read_again_and_a_change_is_not(
    tmp_path: Path,
) -> None:
    """After the database restarts (or a standby takes over), every connection a server
    holds is dead. A read, from the API or a web page, is answered from a connection made
    then; a change is answered 503, never sent again by the server."""
    require()
    with pg_clusters() as pg:
        cluster = pg.make_primary()
        cluster.create_database("pll")
        db = Database(cluster.url("pll"))
        db.upgrade()
        service = PLLService(db, AuditKey.load(tmp_path))
        try:
            with (
                serving(create_app(server_settings(tmp_path, db), service)) as base,
                httpx.Client(base_url=base, timeout=30) as web,
                httpx.Client(base_url=base, headers=_headers(tmp_path), timeout=30) as api,
            ):
                pid, _ = new_patient_with_list(api)
                fnr = ok(api.get(f"/fhir/Patient/{pid}"))["identifier"][0]["value"]
                login = {"csrf": _csrf(web, "/logg-inn"), "persona": "gp"}
                assert web.post("/logg-inn/utvikler", data=login).status_code == 303
                opened = web.post("/lege/apne", data={"csrf": _csrf(web, "/lege"), "fnr": fnr})
                page = opened.headers["location"]
                reads = {
                    "web page": lambda: web.get(page),
                    "current list (asyncpg)": lambda: api.get(
                        f"/fhir/List?patient={pid}&_include=List:item"
                    ),
                    "API read (the pool of the rest)": lambda: api.get(f"/fhir/Patient/{pid}"),
                }
                for read in reads.values():
                    assert read().status_code == 200
                # each kind of read first after a restart, on a connection the restart cut
                # (the web pages and the API's other reads share one pool, which a failure
                # empties: each is tried after a restart of its own)
                for name, read in reads.items():
                    cluster.stop("immediate")  # every connection the server holds is cut
                    cluster.start()
                    answer = read()
                    assert answer.status_code == 200, (name, answer.text)
                assert "legemiddelliste" in web.get(page).text
                entry = ok(
                    api.post(
                        "/fhir/MedicationStatement",
                        json=statement(f"Patient/{pid}", "Paracetamol", "N02BE01"),
                    ),
                    201,
                )
                cluster.stop("immediate")
                cluster.start()
                change = api.put(
                    f"/fhir/MedicationStatement/{entry['id']}",
                    json={**entry, "note": [{"text": "endret"}]},
                    headers={"If-Match": f'W/"{entry["meta"]["versionId"]}"'},
                )
                said = _unavailable(change)
                assert "nothing was changed" in said or "same If-Match" in said
                assert ok(api.get(f"/fhir/MedicationStatement/{entry['id']}")) == entry
                again = api.put(
                    f"/fhir/MedicationStatement/{entry['id']}",
                    json={**entry, "note": [{"text": "endret"}]},
                    headers={"If-Match": f'W/"{entry["meta"]["versionId"]}"'},
                )
                assert again.status_code == 200, again.text
        finally:
            db.dispose()
