"""Configuring which issuers the server trusts (``PLL_ISSUER``, ``PLL_JWKS``, ``PLL_DEV_AUTH``)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pll.auth.jwks import public_jwk
from pll.auth.tokens import CLAIM_PID, CLAIM_SECURITY_LEVEL, issue
from pll.config import Settings
from pll.domain.errors import Unauthenticated
from pll.domain.model import Role

ISSUER = "https://helseid-sts.test.nhn.no"


def _helseid(tmp_path: Path) -> str:
    """An ES256 token from a HelseID-like issuer whose JWKS is a local file."""
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "jwks.json").write_bytes(orjson.dumps({"keys": [public_jwk(key, "nhn-1")]}))
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "nhn:pll",
        "iat": now,
        "exp": now + 300,
        CLAIM_PID: "17855116340",
        CLAIM_SECURITY_LEVEL: "4",
        "client_id": "helsenorge",
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "nhn-1"})


def test_a_configured_issuer_is_trusted_and_dev_tokens_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _helseid(tmp_path)
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PLL_ISSUER", ISSUER)
    monkeypatch.setenv("PLL_JWKS", str(tmp_path / "jwks.json"))
    monkeypatch.setenv("PLL_AUDIENCE", "nhn:pll")
    monkeypatch.setenv("PLL_DEV_AUTH", "0")
    auth = Settings.from_env().authenticator()
    caller = auth.authenticate(f"Bearer {token}", None, "GET", "http://x/fhir/List")
    assert (caller.actor.role, caller.client_id) == (Role.PATIENT, "helsenorge")
    dev = issue(tmp_path / "data", "gp")
    with pytest.raises(Unauthenticated, match="not trusted"):
        auth.authenticate(f"Bearer {dev}", None, "GET", "http://x/fhir/List")


def test_bearer_tokens_can_be_refused_by_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLL_ALLOW_BEARER", "false")
    monkeypatch.setenv("PLL_DEV_AUTH", "1")
    auth = Settings.from_env().authenticator()
    with pytest.raises(Unauthenticated, match="DPoP"):
        auth.authenticate(f"Bearer {issue(tmp_path, 'gp')}", None, "GET", "http://x/fhir/List")


def test_no_trusted_issuer_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLL_DEV_AUTH", "0")
    monkeypatch.delenv("PLL_ISSUER", raising=False)
    with pytest.raises(ValueError, match="No token issuer"):
        Settings.from_env().authenticator()


def test_development_tokens_are_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PLL_DEV_AUTH", raising=False)
    monkeypatch.setenv("PLL_ISSUER", ISSUER)
    monkeypatch.setenv("PLL_JWKS", str(tmp_path / "jwks.json"))
    _helseid(tmp_path)
    auth = Settings.from_env().authenticator()
    with pytest.raises(Unauthenticated, match="not trusted"):
        auth.authenticate(f"Bearer {issue(tmp_path, 'gp')}", None, "GET", "http://x/fhir/List")
