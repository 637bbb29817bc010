"""Logging in with HelseID in the browser (issue 7): the login page sends the doctor to the
OpenID provider and back (authorization code with PKCE, private_key_jwt, PAR), and the token
the provider gives is what every page then acts with. The provider is the fake HelseID of
tests/integration/test_oidc.py, which checks the PKCE verifier and the client assertion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.sync_api import expect

from pll.api.app import create_app
from pll.web.oidc import CALLBACK_PATH, OidcClient
from pll.web.oidc_key import ClientKey
from tests.conftest import Clock, LiveServer, server_settings, serving
from tests.e2e.conftest import Screen
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.test_oidc import CLIENT_ID, HPR, Provider


@pytest.fixture
def helseid(server: LiveServer, tmp_path: Path, clock: Clock) -> Iterator[tuple[str, Provider]]:
    """PLL trusting the fake HelseID for its web login and for the tokens it issues."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "client-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    provider = Provider(key.public_key())
    with serving(provider.app()) as issuer:
        provider.base = issuer
        settings = server_settings(server.data_dir, server.db, issuer=issuer)
        app = create_app(settings, server.service)
        with serving(app) as base:
            provider.redirect_uri = base + CALLBACK_PATH
            web: Any = app.routes[-1].app  # the web UI, mounted last
            web.state.oidc = OidcClient(
                issuer,
                CLIENT_ID,
                ClientKey.load(key_file),
                provider.redirect_uri,
                scope="openid profile nhn:pll/api",
            )
            yield base, provider


def test_a_doctor_logs_in_with_helseid_and_works_with_its_token(
    server: LiveServer, helseid: tuple[str, Provider], screens
) -> None:
    base, provider = helseid
    scene = patient_with_medicines(server, METFORMIN)
    gp: Screen = screens("helseid")
    gp.base = base
    gp.go("/logg-inn")
    gp.shot("logg-inn")
    gp.page.get_by_role("link", name="Logg inn med HelseID").click()

    # back from HelseID, on the doctor's start page, as the HPR number the token names
    expect(gp.page.get_by_role("heading", name="Finn pasient")).to_be_visible()
    expect(gp.page.locator(".who")).to_contain_text(HPR)
    assert provider.refusals == []
    assert len(provider.assertions) == 2  # the pushed request and the code, each signed

    gp.page.locator("#fnr").fill(scene.fnr)
    gp.page.get_by_role("button", name="Åpne pasientens legemiddelliste").click()
    expect(gp.page.locator("table.entries")).to_contain_text(METFORMIN[2])

    gp.page.get_by_role("button", name="Logg ut").click()
    expect(gp.page.get_by_role("heading", name="Logg inn")).to_be_visible()
    gp.go("/lege")  # the login has ended on the server too
    expect(gp.page.get_by_role("heading", name="Logg inn")).to_be_visible()
