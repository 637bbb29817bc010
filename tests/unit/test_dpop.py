"""DPoP proofs (RFC 9449 §4.3): what is accepted, what is refused, and what is remembered.

Every proof is signed with a real key; time comes from a :class:`Clock` the test moves, so no
test sleeps. Proofs that :func:`make_proof` would not make are built with :func:`sign`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import warnings
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.warnings import InsecureKeyLengthWarning

from pll.auth.dpop import (
    ALGORITHMS,
    DPoPVerifier,
    access_token_hash,
    make_proof,
    normalise_htu,
    public_jwk,
    thumbprint,
)
from pll.domain.errors import Unauthenticated

NOW = 1_700_000_000
URL = "https://pll.example/fhir/Patient/123/$everything"
TOKEN = "access-token-for-tests"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(clock: Clock) -> DPoPVerifier:
    return DPoPVerifier(max_age=60, leeway=5, clock=clock)


def proof_for(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, **overrides: Any) -> str:
    """A proof for the standard request (GET ``URL`` with ``TOKEN`` at ``NOW``)."""
    arguments: dict[str, Any] = {
        "method": "GET",
        "url": URL,
        "access_token": TOKEN,
        "iat": NOW,
    }
    arguments.update(overrides)
    return make_proof(key, **arguments)


def check(verifier: DPoPVerifier, proof: str, **overrides: Any) -> str:
    """Verify ``proof`` for the standard request, or the one ``overrides`` describes."""
    arguments: dict[str, Any] = {
        "method": "GET",
        "url": URL,
        "access_token": TOKEN,
        "jkt": None,
    }
    arguments.update(overrides)
    return verifier.verify(proof, **arguments)


def claims_for(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "jti": "a-unique-id",
        "htm": "GET",
        "htu": URL,
        "iat": NOW,
        "ath": access_token_hash(TOKEN),
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | bytes,
    header: dict[str, Any],
    claims: dict[str, Any],
) -> str:
    """A JWT with exactly ``header`` (``alg`` included) and ``claims``, signed with ``key``."""
    return jwt.encode(claims, key, algorithm=header["alg"], headers=header)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- accepted ---------------------------------------------------------------------------


def test_a_valid_proof_passes_and_gives_the_key_thumbprint(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    expected = thumbprint(public_jwk(ec_key))
    assert check(verifier, proof_for(ec_key)) == expected
    # and again, bound to the token's cnf.jkt
    assert check(verifier, proof_for(ec_key), jkt=expected) == expected


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_every_accepted_algorithm_passes(
    verifier: DPoPVerifier,
    ec_key: ec.EllipticCurvePrivateKey,
    rsa_key: rsa.RSAPrivateKey,
    alg: str,
) -> None:
    key = ec_key if alg == "ES256" else rsa_key
    proof = proof_for(key, alg=alg)
    assert jwt.get_unverified_header(proof)["alg"] == alg
    assert check(verifier, proof) == thumbprint(public_jwk(key))


@pytest.mark.parametrize(
    "request_url",
    [
        URL + "?_format=json",  # query ignored (RFC 9449 §4.3 point 9)
        URL + "#section",  # fragment ignored
        "https://PLL.Example/fhir/Patient/123/$everything",  # host case
        "HTTPS://pll.example/fhir/Patient/123/$everything",  # scheme case
        "https://pll.example:443/fhir/Patient/123/$everything",  # default port
    ],
)
def test_htu_differing_only_in_what_normalisation_removes_passes(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey, request_url: str
) -> None:
    assert check(verifier, proof_for(ec_key), url=request_url)


def test_proof_at_the_edges_of_the_window_passes(
    verifier: DPoPVerifier, clock: Clock, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    clock.now = NOW + 60 + 5  # as old as it may be
    assert check(verifier, proof_for(ec_key))
    clock.now = NOW - 5  # as far ahead as the leeway allows
    assert check(verifier, proof_for(ec_key))


# --- refused: the JWT and its header -------------------------------------------------------


@pytest.mark.parametrize("garbage", ["", "not a jwt", "a.b.c", "...", "eyJ.eyJ.sig", "é.é.é"])
def test_garbage_is_refused(verifier: DPoPVerifier, garbage: str) -> None:
    with pytest.raises(Unauthenticated, match="not a well-formed JWT") as caught:
        check(verifier, garbage)
    assert caught.value.expression == "DPoP"


@pytest.mark.parametrize("typ", ["JWT", "DPoP+JWT", None])
def test_wrong_typ_is_refused(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey, typ: str | None
) -> None:
    header = {"alg": "ES256", "typ": typ, "jwk": public_jwk(ec_key)}
    proof = sign(ec_key, header, claims_for())
    with pytest.raises(Unauthenticated, match="typ must be"):
        check(verifier, proof)


def test_alg_none_is_refused(verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    header = {"alg": "none", "typ": "dpop+jwt", "jwk": public_jwk(ec_key)}
    unsigned = f"{b64(header)}.{b64(claims_for())}."
    with pytest.raises(Unauthenticated, match='alg "none" is not accepted'):
        check(verifier, unsigned)


def test_hs256_is_refused(verifier: DPoPVerifier) -> None:
    secret = b"a shared secret of thirty-two bytes or more"
    header = {
        "alg": "HS256",
        "typ": "dpop+jwt",
        "jwk": {"kty": "oct", "k": base64.urlsafe_b64encode(secret).decode()},
    }
    with pytest.raises(Unauthenticated, match='alg "HS256" is not accepted'):
        check(verifier, sign(secret, header, claims_for()))


@pytest.mark.parametrize(
    ("alg", "key_name", "jwk_key_name"),
    [
        ("ES256", "ec", "rsa"),  # an EC signature claimed for an RSA key
        ("RS256", "rsa", "ec"),
        ("PS256", "rsa", "ec"),
    ],
)
def test_alg_that_does_not_fit_the_key_type_is_refused(
    verifier: DPoPVerifier,
    ec_key: ec.EllipticCurvePrivateKey,
    rsa_key: rsa.RSAPrivateKey,
    alg: str,
    key_name: str,
    jwk_key_name: str,
) -> None:
    keys: dict[str, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey] = {"ec": ec_key, "rsa": rsa_key}
    header = {"alg": alg, "typ": "dpop+jwt", "jwk": public_jwk(keys[jwk_key_name])}
    with pytest.raises(Unauthenticated, match=f"alg {alg} needs an"):
        check(verifier, sign(keys[key_name], header, claims_for()))


def test_es256_on_another_curve_is_refused(verifier: DPoPVerifier) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(p384.public_key(), as_dict=True)
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": jwk}
    # PyJWT will not sign ES256 with a P-384 key; the signature is never reached anyway.
    proof = f"{b64(header)}.{b64(claims_for())}.c2lnbmF0dXJl"
    with pytest.raises(Unauthenticated, match="needs an EC P-256 key"):
        check(verifier, proof)


def test_missing_jwk_is_refused(verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    proof = sign(ec_key, {"alg": "ES256", "typ": "dpop+jwt"}, claims_for())
    with pytest.raises(Unauthenticated, match="no jwk header"):
        check(verifier, proof)


@pytest.mark.parametrize("member", ["d", "qi"])
def test_jwk_with_private_key_material_is_refused(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey, member: str
) -> None:
    jwk = {**public_jwk(ec_key), member: "AAAA"}
    proof = sign(ec_key, {"alg": "ES256", "typ": "dpop+jwt", "jwk": jwk}, claims_for())
    with pytest.raises(Unauthenticated, match=f"private key material \\({member}\\)"):
        check(verifier, proof)


def test_jwk_that_is_not_a_key_is_refused(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    jwk = {**public_jwk(ec_key), "x": "AAAA"}  # too short for a P-256 coordinate
    proof = sign(ec_key, {"alg": "ES256", "typ": "dpop+jwt", "jwk": jwk}, claims_for())
    with pytest.raises(Unauthenticated, match="not a usable ES256 public key"):
        check(verifier, proof)


def test_proof_signed_with_another_key_than_its_jwk_is_refused(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": public_jwk(ec_key)}
    with pytest.raises(Unauthenticated, match="signature does not verify"):
        check(verifier, sign(impostor, header, claims_for()))


def test_short_rsa_key_is_refused(verifier: DPoPVerifier) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)  # the client side warns
        proof = proof_for(weak)
    with pytest.raises(Unauthenticated, match="key is refused"):
        check(verifier, proof)


# --- refused: the claims ---------------------------------------------------------------


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_missing_claim_is_refused(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey, claim: str
) -> None:
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": public_jwk(ec_key)}
    proof = sign(ec_key, header, claims_for(**{claim: None}))
    with pytest.raises(Unauthenticated, match=f"no {claim} claim"):
        check(verifier, proof)


@pytest.mark.parametrize("iat", [True, "1700000000", float("nan"), float("inf"), 10**400])
def test_iat_that_is_not_a_time_is_refused(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey, iat: object
) -> None:
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": public_jwk(ec_key)}
    with pytest.raises(Unauthenticated, match="iat is not a time"):
        check(verifier, sign(ec_key, header, claims_for(iat=iat)))


def test_empty_jti_is_refused(verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(Unauthenticated, match="no jti claim"):
        check(verifier, proof_for(ec_key, jti=""))


def test_wrong_htm_is_refused(verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(Unauthenticated, match="for GET, but the request is POST"):
        check(verifier, proof_for(ec_key), method="POST")
    with pytest.raises(Unauthenticated, match="for get, but the request is GET"):
        check(verifier, proof_for(ec_key, method="get"))  # methods are case-sensitive


@pytest.mark.parametrize(
    "request_url",
    [
        "https://pll.example/fhir/Patient/124/$everything",  # another path
        "http://pll.example/fhir/Patient/123/$everything",  # another scheme
        "https://other.example/fhir/Patient/123/$everything",  # another host
        "https://pll.example:8443/fhir/Patient/123/$everything",  # another port
    ],
)
def test_wrong_htu_is_refused(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey, request_url: str
) -> None:
    with pytest.raises(Unauthenticated, match="but the request went to"):
        check(verifier, proof_for(ec_key), url=request_url)


def test_htu_that_is_not_a_url_is_refused(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    with pytest.raises(Unauthenticated, match="htu is not a valid URL"):
        check(verifier, proof_for(ec_key, url="https://pll.example:port/fhir"))


def test_stale_proof_is_refused(
    verifier: DPoPVerifier, clock: Clock, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    clock.now = NOW + 60 + 5 + 1
    with pytest.raises(Unauthenticated, match="too old: made 66 seconds ago"):
        check(verifier, proof_for(ec_key))


def test_proof_from_the_future_is_refused(
    verifier: DPoPVerifier, clock: Clock, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    clock.now = NOW - 5 - 1
    with pytest.raises(Unauthenticated, match="6 seconds in the future"):
        check(verifier, proof_for(ec_key))


def test_missing_ath_is_refused(verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(Unauthenticated, match="no ath claim"):
        check(verifier, proof_for(ec_key, access_token=None))


def test_wrong_ath_is_refused(verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(Unauthenticated, match="ath does not match the access token"):
        check(verifier, proof_for(ec_key), access_token="a-stolen-or-other-token")


def test_key_other_than_the_token_is_bound_to_is_refused(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    bound_to = thumbprint(public_jwk(rsa_key))
    with pytest.raises(Unauthenticated, match=r"cnf\.jkt"):
        check(verifier, proof_for(ec_key), jkt=bound_to)


# --- replay ------------------------------------------------------------------------------


def test_replayed_proof_is_refused_and_a_fresh_one_passes(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    proof = proof_for(ec_key)
    check(verifier, proof)
    with pytest.raises(Unauthenticated, match="used before"):
        check(verifier, proof)
    # the same jti in a new proof is a replay too: it is the jti that counts
    with pytest.raises(Unauthenticated, match="used before"):
        check(
            verifier,
            proof_for(ec_key, jti=jwt.decode(proof, options={"verify_signature": False})["jti"]),
        )
    assert check(verifier, proof_for(ec_key))


def test_refused_proof_does_not_use_up_its_jti(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    proof = proof_for(ec_key)
    with pytest.raises(Unauthenticated, match="ath"):
        check(verifier, proof, access_token="another-token")
    with pytest.raises(Unauthenticated, match="for GET, but the request is POST"):
        check(verifier, proof, method="POST")
    with pytest.raises(Unauthenticated, match="jkt"):
        check(verifier, proof, jkt="not-this-key")
    # after all those refusals, the proof is still good for the request it was made for
    assert check(verifier, proof)
    with pytest.raises(Unauthenticated, match="used before"):
        check(verifier, proof)


def test_jti_is_remembered_per_key(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    # Two clients choosing the same jti do not refuse each other's proofs.
    assert check(verifier, proof_for(ec_key, jti="1"))
    assert check(verifier, proof_for(rsa_key, jti="1"))


def test_a_proof_is_forgotten_only_once_it_is_too_old_anyway(
    clock: Clock, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    class Small(DPoPVerifier):
        REPLAY_CACHE_SIZE = 2

    verifier = Small(clock=clock)
    first = proof_for(ec_key)
    check(verifier, first)
    check(verifier, proof_for(ec_key))
    # full: refused rather than forgetting a proof that could then be replayed
    with pytest.raises(Unauthenticated, match="more DPoP proofs than it can keep track of"):
        check(verifier, proof_for(ec_key))
    with pytest.raises(Unauthenticated, match="used before"):
        check(verifier, first)
    clock.now = NOW + 60 + 5 + 1  # the remembered proofs are now too old to be accepted
    with pytest.raises(Unauthenticated, match="too old"):
        check(verifier, first)
    assert check(verifier, proof_for(ec_key, iat=int(clock.now)))


def test_concurrent_replays_let_exactly_one_through(
    verifier: DPoPVerifier, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    proof = proof_for(ec_key)
    outcomes: list[bool] = []
    start = threading.Barrier(8)

    def attempt() -> None:
        start.wait()
        try:
            check(verifier, proof)
        except Unauthenticated:
            outcomes.append(False)
        else:
            outcomes.append(True)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False] * 7 + [True]


# --- replay, with a store several processes share ----------------------------------------


class SharedStore:
    """The contract of pll.store.dpop_proofs.AcceptedProofs, kept in memory: what several
    server processes would share through the database."""

    def __init__(self) -> None:
        self.rows: dict[bytes, float] = {}
        self.calls = 0
        self.down = False
        self._lock = threading.Lock()

    def remember(self, digest: bytes, expires: float, now: float) -> bool:
        with self._lock:
            self.calls += 1
            if self.down:
                raise ConnectionError("the database is not answering")
            if digest in self.rows:
                return False
            self.rows[digest] = expires
            return True


def test_a_proof_one_process_accepted_is_refused_by_every_other(
    clock: Clock, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    store = SharedStore()
    first, second = (DPoPVerifier(clock=clock, shared=store) for _ in range(2))
    proof = proof_for(ec_key)
    assert check(first, proof)
    with pytest.raises(Unauthenticated, match="used before"):
        check(second, proof)
    assert check(second, proof_for(ec_key))
    assert len(store.rows) == 2


def test_a_replay_to_the_same_process_is_refused_without_asking_the_store(
    clock: Clock, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    store = SharedStore()
    verifier = DPoPVerifier(clock=clock, shared=store)
    proof = proof_for(ec_key)
    check(verifier, proof)
    with pytest.raises(Unauthenticated, match="used before"):
        check(verifier, proof)
    assert store.calls == 1


def test_a_proof_is_refused_when_the_shared_store_cannot_answer(
    clock: Clock, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    """Failing safe: a proof not known to be new is not accepted."""
    store = SharedStore()
    verifier = DPoPVerifier(clock=clock, shared=store)
    proof = proof_for(ec_key)
    store.down = True
    with pytest.raises(Unauthenticated, match="cannot check now") as refused:
        check(verifier, proof)
    assert refused.value.expression == "DPoP"
    # nothing was recorded, so once the store answers again the proof is good
    store.down = False
    assert check(verifier, proof)
    with pytest.raises(Unauthenticated, match="used before"):
        check(verifier, proof)


def test_with_a_shared_store_a_full_memory_cache_refuses_nothing(
    clock: Clock, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    class Small(DPoPVerifier):
        REPLAY_CACHE_SIZE = 1

    store = SharedStore()
    verifier = Small(clock=clock, shared=store)
    proofs = [proof_for(ec_key) for _ in range(3)]
    for proof in proofs:
        assert check(verifier, proof)
    for proof in proofs:  # the store remembers what the cache had no room for
        with pytest.raises(Unauthenticated, match="used before"):
            check(verifier, proof)


def test_concurrent_replays_to_several_processes_let_exactly_one_through(
    clock: Clock, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    store = SharedStore()
    verifiers = [DPoPVerifier(clock=clock, shared=store) for _ in range(4)]
    proof = proof_for(ec_key)
    outcomes: list[bool] = []
    start = threading.Barrier(8)

    def attempt(verifier: DPoPVerifier) -> None:
        start.wait()
        try:
            check(verifier, proof)
        except Unauthenticated:
            outcomes.append(False)
        else:
            outcomes.append(True)

    threads = [threading.Thread(target=attempt, args=(verifiers[i % 4],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False] * 7 + [True]


# --- the helpers -------------------------------------------------------------------------


def test_thumbprint_of_the_rfc_7638_example() -> None:
    # RFC 7638 §3.1; alg and kid are not required members and do not count.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
        "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y"
        "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrd"
        "kt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqD"
        "Kgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_and_ath_of_the_rfc_9449_examples() -> None:
    # RFC 9449 §6.1 (the jkt of the example key) and §7.1 (the ath of the example token)
    jwk = {
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256",
    }
    assert thumbprint(jwk) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    assert (
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
        == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


@pytest.mark.parametrize(
    "jwk", [{"kty": "oct", "k": "AAAA"}, {"kty": "EC", "crv": "P-256", "x": "AAAA"}, {}]
)
def test_thumbprint_of_an_unusable_jwk_raises(jwk: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="JWK"):
        thumbprint(jwk)


def test_public_jwk_holds_the_public_key_only(
    ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert sorted(public_jwk(ec_key)) == ["crv", "kty", "x", "y"]
    assert sorted(public_jwk(rsa_key)) == ["e", "kty", "n"]
    assert public_jwk(rsa_key)["e"] == "AQAB"
    with pytest.raises(ValueError, match="P-256"):
        public_jwk(ec.generate_private_key(ec.SECP384R1()))


def test_make_proof_makes_what_rfc_9449_describes(ec_key: ec.EllipticCurvePrivateKey) -> None:
    proof = make_proof(ec_key, method="POST", url=URL, access_token=TOKEN, iat=NOW, jti="j")
    assert jwt.get_unverified_header(proof) == {
        "alg": "ES256",
        "typ": "dpop+jwt",
        "jwk": public_jwk(ec_key),
    }
    claims = jwt.decode(proof, options={"verify_signature": False})
    assert claims == {
        "jti": "j",
        "htm": "POST",
        "htu": URL,
        "iat": NOW,
        "ath": access_token_hash(TOKEN),
    }
    unbound = [
        jwt.decode(make_proof(ec_key, method="GET", url=URL), options={"verify_signature": False})
        for _ in range(2)
    ]
    assert "ath" not in unbound[0]
    assert unbound[0]["jti"] != unbound[1]["jti"]  # a fresh uuid each time
    assert abs(unbound[0]["iat"] - time.time()) < 5  # now
    with pytest.raises(ValueError, match="does not fit"):
        make_proof(ec_key, method="GET", url=URL, alg="RS256")


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://pll.example/fhir", "https://pll.example/fhir"),
        ("HTTPS://PLL.Example:443/fhir?a=1#b", "https://pll.example/fhir"),
        ("http://pll.example:80", "http://pll.example/"),
        ("http://pll.example:8080/", "http://pll.example:8080/"),
        ("https://pll.example:80/", "https://pll.example:80/"),  # not https' default port
        ("https://pll.example:/fhir", "https://pll.example/fhir"),
        ("https://pll.example/a/./b/../c", "https://pll.example/a/c"),
        ("https://pll.example/a/..", "https://pll.example/"),
        ("https://pll.example/%7euser/%2f", "https://pll.example/~user/%2F"),
        ("https://[::1]:8443/fhir", "https://[::1]:8443/fhir"),
        ("https://Path.example/Fhir/Patient", "https://path.example/Fhir/Patient"),
    ],
)
def test_normalise_htu(url: str, normalised: str) -> None:
    assert normalise_htu(url) == normalised
