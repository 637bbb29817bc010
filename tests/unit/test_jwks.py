"""Access tokens checked against an issuer's JWKS: what is accepted, what is refused.

Keys are real (``cryptography``) and the JWKS and OpenID configuration are served by a real
HTTP server on localhost that counts the requests it answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pll.auth.jwks import (
    ALGORITHMS,
    Issuer,
    KeySet,
    algorithms_for,
    public_jwk,
    verify_token,
)
from pll.domain.errors import Unauthenticated

AUDIENCE = "pll"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
KEY_FOR: dict[str, tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, str]] = {
    "RS256": (RSA_KEY, "rsa-1"),
    "PS256": (RSA_KEY, "rsa-1"),
    "ES256": (EC_KEY, "ec-1"),
}


def jwk_for_any_rsa_algorithm(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """An RSA JWK without ``alg``, so that it verifies both RS256 and PS256."""
    jwk = public_jwk(key, kid)
    del jwk["alg"]
    return jwk


JWKS = {"keys": [jwk_for_any_rsa_algorithm(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")]}


class Site:
    """A real HTTP server on localhost serving JSON documents by path and counting hits."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.status: dict[str, int] = {}  # a path answered with this status instead
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with site.lock:  # each request is answered in a thread of its own
                    site.hits[self.path] += 1
                status = site.status.get(self.path, 200 if self.path in site.documents else 404)
                body = json.dumps(site.documents.get(self.path)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def publish(self, jwks: dict[str, Any]) -> None:
        self.documents["/jwks"] = jwks
        self.documents["/.well-known/openid-configuration"] = {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def site() -> Iterator[Site]:
    site = Site()
    site.publish(JWKS)
    yield site
    site.close()


def trust(keys: KeySet, issuer: str, *, leeway: int = 30) -> dict[str, Issuer]:
    return {issuer: Issuer(issuer, AUDIENCE, keys, leeway)}


def sign(
    alg: str,
    iss: str | None,
    *,
    key: Any = None,
    kid: str | None = "",
    now: float | None = None,
    **claims: Any,
) -> str:
    """A token as an issuer signs it; a claim given as None is left out, and ``kid=""``
    means the kid that goes with the algorithm's key."""
    default_key, default_kid = KEY_FOR[alg]
    now = time.time() if now is None else now
    payload = {
        "iss": iss,
        "aud": AUDIENCE,
        "sub": "9144889",
        "iat": int(now),
        "exp": int(now) + 300,
    }
    payload = {name: value for name, value in {**payload, **claims}.items() if value is not None}
    kid = default_kid if kid == "" else kid
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, key or default_key, algorithm=alg, headers=headers)


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
@pytest.mark.parametrize("source", ["url", "issuer", "file"])
def test_tokens_verify_against_the_issuers_keys(
    site: Site, tmp_path: Path, source: str, alg: str
) -> None:
    if source == "url":
        keys = KeySet.from_url(f"{site.url}/jwks")
    elif source == "issuer":
        keys = KeySet.from_issuer(site.url)
    else:
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(JWKS), encoding="utf-8")
        keys = KeySet.from_file(path)
    claims = verify_token(sign(alg, site.url), trust(keys, site.url))
    assert claims["sub"] == "9144889"
    assert claims["iss"] == site.url


def test_keys_are_fetched_on_first_use_and_then_cached(site: Site) -> None:
    issuers = trust(KeySet.from_issuer(site.url + "/"), site.url)
    assert not site.hits  # nothing is fetched before the first token
    for _ in range(10):
        for alg in sorted(ALGORITHMS):
            verify_token(sign(alg, site.url), issuers)
    assert site.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


def test_a_new_kid_after_rotation_is_fetched_once(site: Site) -> None:
    site.publish({"keys": [jwk_for_any_rsa_algorithm(RSA_KEY, "rsa-1")]})
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    verify_token(sign("RS256", site.url), issuers)
    site.publish({"keys": [public_jwk(RSA_KEY, "rsa-1"), public_jwk(OTHER_RSA_KEY, "rsa-2")]})
    for _ in range(5):
        verify_token(sign("RS256", site.url, key=OTHER_RSA_KEY, kid="rsa-2"), issuers)
        verify_token(sign("RS256", site.url), issuers)
    assert site.hits["/jwks"] == 2


def test_a_rotated_key_file_is_read_again(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(RSA_KEY, "rsa-1")]}), encoding="utf-8")
    issuers = trust(KeySet.from_file(path), site.url)
    verify_token(sign("RS256", site.url), issuers)
    path.write_text(json.dumps({"keys": [public_jwk(OTHER_RSA_KEY, "rsa-2")]}), encoding="utf-8")
    verify_token(sign("RS256", site.url, key=OTHER_RSA_KEY, kid="rsa-2"), issuers)


def test_made_up_kids_refetch_at_most_once_per_min_refresh(site: Site) -> None:
    keys = KeySet.from_url(f"{site.url}/jwks")
    issuers = trust(keys, site.url)
    verify_token(sign("RS256", site.url), issuers)
    for n in range(20):
        with pytest.raises(Unauthenticated, match=r"signing key \(kid\) is not one of"):
            verify_token(sign("RS256", site.url, kid=f"made-up-{n}"), issuers)
    assert site.hits["/jwks"] == 2
    keys.min_refresh = 0  # once min_refresh has passed, an unknown kid may reload again
    with pytest.raises(Unauthenticated, match="kid"):
        verify_token(sign("RS256", site.url, kid="made-up"), issuers)
    assert site.hits["/jwks"] == 3


def test_threads_wanting_keys_at_once_share_one_fetch(site: Site) -> None:
    keys = KeySet.from_url(f"{site.url}/jwks")
    start = threading.Barrier(16)
    found: list[jwt.PyJWK] = []

    def want() -> None:
        start.wait()
        found.append(keys.key("ec-1"))

    threads = [threading.Thread(target=want) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 16
    assert site.hits["/jwks"] == 1


def test_a_token_without_kid_needs_a_single_key(site: Site) -> None:
    site.publish({"keys": [public_jwk(RSA_KEY, "rsa-1")]})
    verify_token(
        sign("RS256", site.url, kid=None), trust(KeySet.from_url(site.url + "/jwks"), site.url)
    )
    with pytest.raises(Unauthenticated, match="more than one"):
        verify_token(sign("RS256", site.url, kid=None), trust(KeySet.from_jwks(JWKS), site.url))


def test_the_audience_may_be_one_of_several(site: Site) -> None:
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    verify_token(sign("ES256", site.url, aud=["kjernejournal", AUDIENCE]), issuers)
    with pytest.raises(Unauthenticated, match="another audience"):
        verify_token(sign("ES256", site.url, aud=["kjernejournal", "e-resept"]), issuers)


@pytest.mark.parametrize(("leeway", "accepted"), [(30, True), (0, False)])
def test_clock_skew_is_allowed_up_to_the_leeway(site: Site, leeway: int, accepted: bool) -> None:
    now = 1_760_000_000.0
    issuers = trust(KeySet.from_jwks(JWKS), site.url, leeway=leeway)
    expired = sign("RS256", site.url, now=now - 310)  # expired 10 s ago
    early = sign("RS256", site.url, now=now, nbf=now + 10, iat=now + 10)  # issuer clock ahead
    for token, refusal in ((expired, "has expired"), (early, "not valid yet")):
        if accepted:
            verify_token(token, issuers, now=now)
        else:
            with pytest.raises(Unauthenticated, match=refusal):
                verify_token(token, issuers, now=now)


# -- refused -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FromNow:
    """A time claim this many seconds from the moment the test runs. Parameters are built
    when pytest collects the tests, which on a long run is many minutes before they run."""

    seconds: int


@pytest.mark.parametrize(
    ("claims", "refusal"),
    [
        ({"exp": FromNow(-60)}, "The access token has expired."),
        ({"nbf": FromNow(600)}, "The access token is not valid yet."),
        ({"iat": FromNow(600)}, "The access token is not valid yet."),
        ({"aud": "kjernejournal"}, "The access token is for another audience."),
        ({"exp": None}, "The access token has no 'exp' claim."),
        ({"aud": None}, "The access token has no 'aud' claim."),
        ({"exp": "tomorrow"}, "The access token's 'exp' claim is not a time."),
        ({"exp": float("inf")}, "The access token's 'exp' claim is not a time."),
    ],
)
def test_claims_are_checked(site: Site, claims: dict[str, Any], refusal: str) -> None:
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    now = int(time.time())  # when the test runs, not when pytest collected it
    claims = {k: now + v.seconds if isinstance(v, FromNow) else v for k, v in claims.items()}
    with pytest.raises(Unauthenticated) as refused:
        verify_token(sign("PS256", site.url, **claims), issuers)
    assert refused.value.message == refusal


def test_an_untrusted_issuer_is_refused_without_fetching(site: Site) -> None:
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    with pytest.raises(Unauthenticated, match="issuer is not trusted"):
        verify_token(sign("RS256", "https://helseid-sts.example"), issuers)
    with pytest.raises(Unauthenticated, match="issuer is not trusted"):
        verify_token(sign("RS256", None), issuers)  # no iss at all
    assert not site.hits


def test_a_signature_by_another_key_with_the_same_kid_is_refused(site: Site) -> None:
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    with pytest.raises(Unauthenticated, match="signature does not verify"):
        verify_token(sign("RS256", site.url, key=OTHER_RSA_KEY, kid="rsa-1"), issuers)
    header, _, signature = sign("RS256", site.url).split(".")
    claims = {"iss": site.url, "aud": AUDIENCE, "exp": int(time.time()) + 300, "sub": "1"}
    with pytest.raises(Unauthenticated, match="signature does not verify"):
        verify_token(f"{header}.{b64(claims)}.{signature}", issuers)  # payload swapped


def test_an_unsigned_token_is_refused(site: Site) -> None:
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    claims = {"iss": site.url, "aud": AUDIENCE, "exp": int(time.time()) + 300}
    for alg in ("none", "None", None):
        token = f"{b64({'alg': alg, 'typ': 'JWT', 'kid': 'rsa-1'})}.{b64(claims)}."
        with pytest.raises(Unauthenticated, match="algorithm is not accepted"):
            verify_token(token, issuers)


def test_hs256_with_the_public_key_as_secret_is_refused(site: Site) -> None:
    """The algorithm confusion attack: an HMAC "signed" with the published RSA key."""
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    secret = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": site.url, "aud": AUDIENCE, "exp": int(time.time()) + 300}
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'})}.{b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(Unauthenticated, match="algorithm is not accepted"):
        verify_token(f"{signing_input}.{b64(mac)}", issuers)


def test_an_es256_token_naming_an_rsa_key_is_refused(site: Site) -> None:
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    with pytest.raises(Unauthenticated, match="algorithm does not fit its key"):
        verify_token(sign("ES256", site.url, kid="rsa-1"), issuers)


def test_a_key_that_names_its_algorithm_verifies_only_that_one(site: Site) -> None:
    site.publish({"keys": [public_jwk(RSA_KEY, "rsa-1")]})  # alg RS256
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    verify_token(sign("RS256", site.url), issuers)
    with pytest.raises(Unauthenticated, match="algorithm does not fit its key"):
        verify_token(sign("PS256", site.url), issuers)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "e30.e30.", "e30.W10.AAAA"])
def test_garbage_is_refused(site: Site, token: str) -> None:
    with pytest.raises(Unauthenticated):
        verify_token(token, trust(KeySet.from_jwks(JWKS), site.url))


def test_a_non_string_kid_is_refused(site: Site) -> None:
    _, payload, signature = sign("RS256", site.url).split(".")
    forged = f"{b64({'alg': 'RS256', 'kid': 1})}.{payload}.{signature}"
    with pytest.raises(Unauthenticated, match="not a well-formed JWT"):
        verify_token(forged, trust(KeySet.from_jwks(JWKS), site.url))


# -- fetching ------------------------------------------------------------------------------


def test_an_unreachable_jwks_url_is_a_clear_refusal(site: Site) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/jwks"
    with pytest.raises(Unauthenticated) as refused:
        verify_token(sign("RS256", site.url), trust(KeySet.from_url(url, timeout=2), site.url))
    assert refused.value.message == (
        f"The token issuer's signing keys could not be fetched from {url}."
    )


@pytest.mark.parametrize(
    ("document", "status", "refusal"),
    [
        (None, 404, "could not be fetched from"),
        (JWKS, 500, "could not be fetched from"),
        ("<html>", 200, "is not a JWK Set"),
        ({"keys": "none"}, 200, "is not a JWK Set"),
    ],
)
def test_a_bad_jwks_response_is_a_clear_refusal(
    site: Site, document: Any, status: int, refusal: str
) -> None:
    site.documents["/jwks"] = document
    site.status["/jwks"] = status
    with pytest.raises(Unauthenticated, match=refusal):
        verify_token(sign("RS256", site.url), trust(KeySet.from_url(f"{site.url}/jwks"), site.url))


def test_the_cached_keys_stay_in_use_when_a_refetch_fails(site: Site) -> None:
    issuers = trust(KeySet.from_url(f"{site.url}/jwks"), site.url)
    verify_token(sign("RS256", site.url), issuers)
    site.status["/jwks"] = 503
    with pytest.raises(Unauthenticated, match="kid"):
        verify_token(sign("RS256", site.url, kid="new"), issuers)
    verify_token(sign("ES256", site.url), issuers)
    assert site.hits["/jwks"] == 2


def test_discovery_must_name_the_same_issuer(site: Site) -> None:
    site.documents["/.well-known/openid-configuration"] = {
        "issuer": "https://helseid-sts.example",
        "jwks_uri": f"{site.url}/jwks",
    }
    with pytest.raises(Unauthenticated, match="does not name this issuer"):
        verify_token(sign("RS256", site.url), trust(KeySet.from_issuer(site.url), site.url))
    assert site.hits["/jwks"] == 0


def test_a_missing_key_file_is_a_clear_refusal(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(Unauthenticated, match="could not be read from"):
        verify_token(sign("RS256", site.url), trust(KeySet.from_file(path), site.url))


# -- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwk", "algorithms"),
    [
        ({"kty": "RSA"}, {"RS256", "PS256"}),
        ({"kty": "RSA", "alg": "PS256"}, {"PS256"}),
        ({"kty": "RSA", "alg": "RS512"}, set()),
        ({"kty": "RSA", "alg": "ES256"}, set()),
        ({"kty": "EC", "crv": "P-256"}, {"ES256"}),
        ({"kty": "EC", "crv": "P-384"}, set()),
        ({"kty": "oct", "alg": "HS256"}, set()),
        ({"kty": "OKP", "crv": "Ed25519"}, set()),
        ({}, set()),
    ],
)
def test_algorithms_for(jwk: dict[str, Any], algorithms: set[str]) -> None:
    assert algorithms_for(jwk) == algorithms


def test_public_jwks_publish_only_public_signing_keys() -> None:
    rsa_jwk, ec_jwk = public_jwk(RSA_KEY, "a"), public_jwk(EC_KEY, "b")
    assert (rsa_jwk["kty"], rsa_jwk["use"], rsa_jwk["alg"], rsa_jwk["kid"]) == (
        "RSA",
        "sig",
        "RS256",
        "a",
    )
    assert (ec_jwk["kty"], ec_jwk["crv"], ec_jwk["alg"]) == ("EC", "P-256", "ES256")
    assert "d" not in rsa_jwk
    assert "d" not in ec_jwk
    keys = KeySet.from_jwks({"keys": [rsa_jwk, ec_jwk]})
    assert keys.key("a").key_id == "a"
    with pytest.raises(ValueError, match="P-256"):
        public_jwk(ec.generate_private_key(ec.SECP384R1()), "c")


def test_keys_not_for_verifying_signatures_are_ignored(site: Site) -> None:
    jwks = {
        "keys": [
            {**public_jwk(RSA_KEY, "enc"), "use": "enc"},
            {**jwk_for_any_rsa_algorithm(RSA_KEY, "ops"), "key_ops": ["encrypt"]},
            {"kty": "oct", "kid": "hmac", "k": b64(b"secret"), "alg": "HS256"},
            {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
            public_jwk(EC_KEY, "ec-1"),
        ]
    }
    keys = KeySet.from_jwks(jwks)
    assert keys.key(None).key_id == "ec-1"  # the only signing key
    for kid in ("enc", "ops", "hmac", "broken"):
        with pytest.raises(Unauthenticated, match="kid"):
            keys.key(kid)
    with pytest.raises(Unauthenticated, match="kid"):
        verify_token(sign("RS256", site.url, kid="enc"), trust(keys, site.url))


def test_a_withdrawn_key_stops_being_trusted_after_max_age(tmp_path: Path) -> None:
    """Keys are fetched again once the set is older than max_age, without any new kid."""
    old = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(old, "k1")]}))
    keys = KeySet.from_file(path)
    keys.max_age = 3600
    assert keys.key("k1")
    path.write_text(json.dumps({"keys": [public_jwk(new, "k2")]}))  # k1 withdrawn
    assert keys.key("k1")  # still within max_age
    keys.max_age = 0
    with pytest.raises(Unauthenticated, match="not one of the issuer's"):
        keys.key("k1")
    assert keys.key("k2")
