"""The parts of the HelseID login that need no provider: PKCE, the client's key and
assertion, the pending login, and the checks made before any request leaves."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

from pll.config import OIDC_SCOPE, Settings
from pll.web.oidc import LoginFailed, OidcClient, Pending, s256
from pll.web.oidc_key import ClientKey

ISSUER = "https://helseid-sts.test.nhn.no"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_s256_matches_rfc_7636_appendix_b() -> None:
    assert (
        s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def pem_file(tmp_path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def client() -> OidcClient:
    return OidcClient(
        ISSUER, "pll-client", ClientKey(RSA_KEY, "RS256"), "https://pll.example.no/cb"
    )


def test_a_pem_key_signs_with_its_default_algorithm(tmp_path: Path) -> None:
    key = ClientKey.load(pem_file(tmp_path, RSA_KEY))
    assert (key.algorithm, key.kid) == ("RS256", None)
    ec_key = ClientKey.load(pem_file(tmp_path, ec.generate_private_key(ec.SECP256R1())))
    assert ec_key.algorithm == "ES256"


def test_a_jwk_keeps_its_kid_and_alg(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(private, as_dict=True) | {"kid": "helseid-1", "alg": "ES256"}
    path = tmp_path / "key.jwk"
    path.write_text(json.dumps({"keys": [jwk]}))
    key = ClientKey.load(path)
    assert (key.algorithm, key.kid) == ("ES256", "helseid-1")


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (json.dumps({"kty": "RSA", "n": "AQAB", "e": "AQAB"}), "not a private key"),
        ("not a key", "neither a JWK nor"),
        ("{broken", "not valid JSON"),
    ],
)
def test_an_unusable_key_file_is_refused_with_the_reason(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "key"
    path.write_text(content)
    with pytest.raises(ValueError, match=complaint):
        ClientKey.load(path)


def test_a_short_rsa_key_is_refused(tmp_path: Path) -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="2048"):
        ClientKey.load(pem_file(tmp_path, short))


def test_the_client_assertion_names_the_client_and_the_audience_and_lives_briefly() -> None:
    oidc = client()
    audience = f"{ISSUER}/connect/token"
    first, second = (oidc.client_assertion(audience) for _ in range(2))
    claims = [
        jwt.decode(
            token,
            RSA_KEY.public_key(),
            algorithms=["RS256"],
            audience=audience,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]},
        )
        for token in (first, second)
    ]
    for each in claims:
        assert each["iss"] == each["sub"] == "pll-client"
        assert each["exp"] - each["iat"] == 60
    assert claims[0]["jti"] != claims[1]["jti"]


def test_a_pending_login_survives_the_session_and_nothing_else_passes_for_one() -> None:
    pending = Pending("s", "n", "v" * 43, time.time())
    assert Pending.from_session(json.loads(json.dumps(pending.to_session()))) == pending
    for stored in (None, "x", {}, {**pending.to_session(), "state": 1}):
        with pytest.raises(LoginFailed):
            Pending.from_session(stored)


def test_an_old_or_foreign_answer_is_refused_before_anything_is_sent() -> None:
    """The issuer is not reachable from a test: these checks must come first."""
    oidc = client()
    pending = Pending("the-state", "n", "v" * 43, time.time())
    with pytest.raises(LoginFailed, match="hører ikke til"):
        oidc.complete({"state": "another", "code": "c"}, pending)
    with pytest.raises(LoginFailed, match="hører ikke til"):
        oidc.complete({"code": "c"}, pending)
    stale = dataclasses.replace(pending, started=time.time() - oidc.pending_max_age - 1)
    with pytest.raises(LoginFailed, match="for lang tid"):
        oidc.complete({"state": "the-state", "code": "c"}, stale)


def test_settings_make_a_client_or_none_or_say_what_is_missing(tmp_path: Path) -> None:
    base = Settings(data_dir=tmp_path, database_url="sqlite://")
    assert OidcClient.from_settings(base) is None
    with pytest.raises(ValueError, match="PLL_OIDC_CLIENT_ID, PLL_OIDC_CLIENT_KEY, PLL_PUBLIC"):
        OidcClient.from_settings(dataclasses.replace(base, oidc_issuer=ISSUER))
    complete = dataclasses.replace(
        base,
        oidc_issuer=ISSUER,
        oidc_client_id="pll-client",
        oidc_client_key=pem_file(tmp_path, RSA_KEY),
        public_url="https://pll.example.no/",
    )
    configured = OidcClient.from_settings(complete)
    assert configured is not None
    assert configured.redirect_uri == "https://pll.example.no/logg-inn/helseid/svar"
    assert configured.scope == OIDC_SCOPE
    for insecure in (
        {"oidc_issuer": "http://helseid.example"},
        {"public_url": "http://pll.example.no"},
    ):
        with pytest.raises(ValueError, match="https"):
            OidcClient.from_settings(dataclasses.replace(complete, **insecure))


def test_the_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLL_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("PLL_OIDC_CLIENT_ID", "pll-client")
    monkeypatch.setenv("PLL_OIDC_CLIENT_KEY", str(tmp_path / "key.jwk"))
    monkeypatch.delenv("PLL_OIDC_SCOPE", raising=False)
    settings = Settings.from_env()
    assert settings.oidc_issuer == ISSUER
    assert settings.oidc_client_id == "pll-client"
    assert settings.oidc_client_key == tmp_path / "key.jwk"
    assert settings.oidc_scope == OIDC_SCOPE
    monkeypatch.setenv("PLL_OIDC_SCOPE", "openid nhn:pll/api")
    assert Settings.from_env().oidc_scope == "openid nhn:pll/api"
