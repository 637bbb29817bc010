"""Configuring which issuers the server trusts (``PLL_ISSUER``, ``PLL_JWKS``, ``PLL_DEV_AUTH``)
and the origin DPoP proofs must name (``PLL_PUBLIC_URL``)."""

from __future__ import annotations

import re
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
from pll.store.dpop_proofs import AcceptedProofs

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
    monkeypatch.setenv("PLL_PUBLIC_URL", "https://pll.example.no")
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
    monkeypatch.setenv("PLL_PUBLIC_URL", "https://pll.example.no")
    _helseid(tmp_path)
    auth = Settings.from_env().authenticator()
    with pytest.raises(Unauthenticated, match="not trusted"):
        auth.authenticate(f"Bearer {issue(tmp_path, 'gp')}", None, "GET", "http://x/fhir/List")


def _production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real issuer trusted, development tokens off, PLL_PUBLIC_URL not set (yet)."""
    _helseid(tmp_path)
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLL_ISSUER", ISSUER)
    monkeypatch.setenv("PLL_JWKS", str(tmp_path / "jwks.json"))
    monkeypatch.setenv("PLL_DEV_AUTH", "0")
    monkeypatch.delenv("PLL_PUBLIC_URL", raising=False)


def test_outside_development_mode_the_public_url_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DPoP-bound tokens are accepted from any trusted issuer; without PLL_PUBLIC_URL their
    proofs could only be held to the Host header, which the request itself sets."""
    _production(tmp_path, monkeypatch)
    settings = Settings.from_env()
    with pytest.raises(ValueError, match=r"^PLL_PUBLIC_URL is not set") as refused:
        settings.check_public_url()
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="PLL_PUBLIC_URL"):
        settings.authenticator()
    monkeypatch.setenv("PLL_PUBLIC_URL", "https://pll.example.no")
    Settings.from_env().authenticator()


@pytest.mark.parametrize(
    "url",
    [
        "pll.example.no",
        "ftp://pll.example.no",
        "https://",
        "https://pll:x/",
        "https://h/?a",
        "https://pll.example.no/fhir",  # proofs name .../fhir/List: the path would come twice
    ],
)
def test_a_public_url_that_is_no_origin_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    _production(tmp_path, monkeypatch)
    monkeypatch.setenv("PLL_PUBLIC_URL", url)
    with pytest.raises(ValueError, match="PLL_PUBLIC_URL must be this server's public origin"):
        Settings.from_env().authenticator()


def test_development_mode_may_go_without_a_public_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLL_DEV_AUTH", "1")
    monkeypatch.delenv("PLL_PUBLIC_URL", raising=False)
    monkeypatch.delenv("PLL_ISSUER", raising=False)
    Settings.from_env().check_public_url()
    # ... and so may a development server that also trusts a real issuer
    monkeypatch.setenv("PLL_ISSUER", ISSUER)
    monkeypatch.setenv("PLL_JWKS", str(tmp_path / "jwks.json"))
    Settings.from_env().authenticator()


def test_the_server_remembers_dpop_proofs_in_its_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every process built from the same settings records accepted proofs in one place."""
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLL_DEV_AUTH", "1")
    monkeypatch.setenv("PLL_DATABASE_URL", f"sqlite:///{tmp_path / 'pll.sqlite3'}")
    shared = Settings.from_env().authenticator().dpop.shared
    assert isinstance(shared, AcceptedProofs)
    assert shared.engine.url.database == str(tmp_path / "pll.sqlite3")
    shared.dispose()


@pytest.mark.parametrize(
    ("value", "limit"),
    [("10485760", 10485760), ("10M", 10485760), ("10 MiB", 10485760), ("512k", 524288)],
)
def test_the_body_limit_reads_sizes(
    monkeypatch: pytest.MonkeyPatch, value: str, limit: int
) -> None:
    monkeypatch.setenv("PLL_MAX_BODY", value)
    assert Settings.from_env().max_body == limit


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PLL_MAX_BODY", "10x", "PLL_MAX_BODY must be a positive number of bytes"),
        ("PLL_MAX_BODY", "0", "PLL_MAX_BODY must be a positive number of bytes"),
        ("PLL_THREADS", "0", "PLL_THREADS must be a whole number of at least 1, not '0'."),
        ("PLL_THREADS", "four", "PLL_THREADS must be a whole number of at least 1"),
        ("PLL_SEAL_INTERVAL", "-1", "PLL_SEAL_INTERVAL must be a number of at least 0"),
        ("PLL_STATS_INTERVAL", "nan", "PLL_STATS_INTERVAL must be a number of at least 0"),
    ],
)
def test_a_bad_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Settings.from_env()


def test_the_commands_say_which_setting_is_wrong_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pll.cli import main

    env = {"PLL_DATA_DIR": str(tmp_path), "PLL_DEV_AUTH": "1", "PLL_MAX_BODY": "10x"}
    for command in (["serve"], ["db", "upgrade"], ["events", "run"]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 1, result.output
        assert result.output.splitlines() == [
            "Error: PLL_MAX_BODY must be a positive number of bytes (such as 10M), not '10x'."
        ]
