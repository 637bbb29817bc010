"""Second review of issue 20's merged work (ccba24e): guards for what the review checked."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer
from tests.integration.test_read_group_commit import MODES, _app, _headers, _patients


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "path",
    [
        "/fhir/List/no%00such",
        "/fhir/List?patient=no%00such",
        "/fhir/List?patient.identifier=urn:oid:2.16.578.1.12.4.1.4.1%7C0101%0001234",
    ],
)
def test_a_read_key_postgresql_cannot_take_is_no_5xx(
    server: LiveServer, mode: str, path: str
) -> None:
    """A NUL in the key a client reads by is the client's error, never a 5xx. On PostgreSQL
    the fast read (pll.store.audited_read.AuditedListReader._read, both modes) turns every
    asyncpg.PostgresError into AuditNotWritten, answered 503 "try again shortly": a key
    PostgreSQL cannot take must be refused before it gets there (it is, today)."""
    _patients(server, 1)
    with _app(server, MODES[mode]) as (base, _), httpx.Client(base_url=base) as client:
        answer = client.get(path, headers=_headers(server))
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
