"""Bodies are bounded and read only for a known caller (DESIGN §3 rule 8; issue 15).

These speak HTTP over a raw socket where a client library would hide what matters: that
the server answers before the client has sent the body it announced.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from pll.api.app import create_app
from tests.conftest import LiveServer, server_settings, serving, snapshot
from tests.integration.builders import patient

LIMIT = 64 * 1024


def _connect(base: str) -> socket.socket:
    url = urlsplit(base)
    return socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=10)


def _head(path: str, length: int, **headers: str) -> bytes:
    media = (
        "application/fhir+json" if path.startswith("/fhir") else "application/x-www-form-urlencoded"
    )
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {media}",
        f"Content-Length: {length}",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status_and_body(sock: socket.socket) -> tuple[int, bytes]:
    """Read one response (its status line, headers and a Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
def small(server: LiveServer) -> Iterator[str]:
    """A server on the same database whose body limit is 64 KiB."""
    app = create_app(server_settings(server.data_dir, server.db, max_body=LIMIT), server.service)
    with serving(app) as base:
        yield base


def test_an_anonymous_client_is_refused_before_its_body_is_read(server: LiveServer) -> None:
    """Before: the server waited for all 8 MB it was promised, then answered 401."""
    with _connect(server.base) as sock:
        sock.sendall(_head("/fhir/Patient", 8 * 1024 * 1024) + b"{" * 1024)
        status, body = _status_and_body(sock)  # times out (10 s) if the server waits
    assert status == 401
    assert orjson.loads(body)["resourceType"] == "OperationOutcome"


def test_a_declared_length_over_the_limit_is_refused_unread(server: LiveServer, small: str) -> None:
    token = server.token("gp")
    before = snapshot(server.db)
    with _connect(small) as sock:
        sock.sendall(
            _head("/fhir/Patient", LIMIT + 1, Authorization=f"Bearer {token}") + b"{" * 1024
        )
        status, body = _status_and_body(sock)
    assert status == 413
    outcome = orjson.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "larger than this server accepts (65 536 bytes)" in outcome["issue"][0]["diagnostics"]
    assert snapshot(server.db) == before


def test_a_streamed_body_is_cut_off_at_the_limit(server: LiveServer, small: str) -> None:
    """Chunked, with no length to refuse up front: refused as it passes the limit."""
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"resourceType":"Patient","text":{"status":"generated","div":"'
        for _ in range(10_000):  # 10 MB if the server read it all
            sent += 1024
            yield b"a" * 1024

    before = snapshot(server.db, audit=False)
    with httpx.Client(base_url=small, timeout=30) as client:
        try:
            r = client.post(
                "/fhir/Patient",
                content=chunks(),
                headers={
                    "Authorization": f"Bearer {server.token('gp')}",
                    "Content-Type": "application/fhir+json",
                    "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
                },
            )
        except httpx.HTTPError:
            pytest.fail("the server closed the connection without an answer")
    assert r.status_code == 413
    assert r.json()["resourceType"] == "OperationOutcome"
    assert snapshot(server.db, audit=False) == before


def test_a_body_within_the_limit_is_taken(server: LiveServer, small: str) -> None:
    with server.client() as gp:
        r = httpx.post(
            f"{small}/fhir/Patient",
            content=orjson.dumps(patient()),
            headers=dict(gp.headers),
        )
    assert r.status_code == 201, r.text


def test_the_web_ui_refuses_in_norwegian(server: LiveServer, small: str) -> None:
    """A form declared past the limit: refused unread, on a page of the web UI's own."""
    r = httpx.post(
        f"{small}/logg-inn/utvikler",
        content=b"a" * (LIMIT + 1),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"{small}/logg-inn",
        },
    )
    assert r.status_code == 413
    assert r.headers["connection"] == "close"
    assert "større enn serveren tar imot (65 536 byte)" in r.text
    assert "Ingenting ble endret." in r.text
    assert '<a href="/logg-inn">Tilbake</a>' in r.text  # back to the form it came from


def test_a_form_streamed_past_the_limit_is_refused_in_norwegian(
    server: LiveServer, small: str
) -> None:
    """Before: the web UI's own error handler answered 500 as the form passed the limit."""

    def form() -> Iterator[bytes]:
        yield b"persona=gp&pid="
        for _ in range(200):  # 200 KiB, streamed: no length to refuse up front
            yield b"a" * 1024

    with httpx.Client(base_url=small, timeout=30) as client:
        r = client.post(
            "/logg-inn/utvikler",
            content=form(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/html")
    assert "større enn serveren tar imot (65 536 byte)" in r.text


@pytest.mark.parametrize("path", ["/fhir/Patient", "/logg-inn/utvikler"])
def test_a_client_that_leaves_mid_body_is_one_info_line(
    server: LiveServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """Before: a full ClientDisconnect traceback, logged as an application error (the API's
    body and the web UI's forms alike)."""
    token = server.token("gp")
    caplog.set_level(logging.INFO)
    with _connect(server.base) as sock:
        sock.sendall(_head(path, 10_000, Authorization=f"Bearer {token}") + b"{")
        time.sleep(0.2)  # the server has authenticated and waits for the body
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        "disconnected" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.05)
    lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert lines[0].getMessage() == f"client disconnected before its body was read: POST {path}"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
