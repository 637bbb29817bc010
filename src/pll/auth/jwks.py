"""Access tokens from an OpenID Connect issuer such as HelseID, checked against its JWKS.

An issuer publishes its public signing keys as a JWK Set (RFC 7517 §5,
https://www.rfc-editor.org/rfc/rfc7517), found through OpenID Connect Discovery §4
(https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig). A
:class:`KeySet` fetches and caches those keys; :func:`verify_token` checks a JWT (RFC 7519,
https://www.rfc-editor.org/rfc/rfc7519) with them and returns its claims.

Only asymmetric algorithms are accepted (RFC 7518 §3, https://www.rfc-editor.org/rfc/rfc7518):
RS256, PS256 and ES256. The algorithm a token names must also be one its key is for, which
shuts out ``alg: none`` and the HS256-with-a-public-key confusion (RFC 8725 §2.1). Headers
that point elsewhere for keys (``jku``, ``x5u``, ``jwk``) are ignored: keys come only from
the configured issuer.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from pll.domain.errors import Unauthenticated

log = logging.getLogger(__name__)

ALGORITHMS: frozenset[str] = frozenset({"RS256", "PS256", "ES256"})

_BY_KEY_TYPE: dict[tuple[str, str | None], frozenset[str]] = {
    ("RSA", None): frozenset({"RS256", "PS256"}),
    ("EC", "P-256"): frozenset({"ES256"}),
}


def algorithms_for(jwk: Mapping[str, Any]) -> frozenset[str]:
    """The algorithms a key may verify (RFC 7518 §3): RSA → RS256, PS256; EC P-256 → ES256.

    A key that names its ``alg`` (RFC 7517 §4.4) is for that algorithm only, and only if it
    is one of :data:`ALGORITHMS` and fits the key type. Anything else (symmetric ``oct``
    keys, other curves, other algorithms) verifies nothing.
    """
    kty = jwk.get("kty")
    crv = jwk.get("crv") if kty == "EC" else None
    allowed = _BY_KEY_TYPE.get((kty, crv), frozenset()) if isinstance(kty, str) else frozenset()
    alg = jwk.get("alg")
    if alg is None:
        return allowed
    return allowed & {alg} if isinstance(alg, str) else frozenset()


def public_jwk(
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str
) -> dict[str, Any]:
    """The public JWK (RFC 7517 §4) of a ``cryptography`` private key, with ``kid``,
    ``use`` = "sig" and ``alg`` (RS256 for RSA, ES256 for EC P-256): for publishing a
    development JWKS. Other key types raise ``ValueError``."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk, alg = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "RS256"
    elif isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(
        private_key.curve, ec.SECP256R1
    ):
        jwk, alg = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "ES256"
    else:
        raise ValueError("Only RSA and EC P-256 keys can be published as signing keys.")
    jwk.pop("key_ops", None)  # RFC 7517 §4.3: "use" and "key_ops" should not go together
    return {**jwk, "kid": kid, "use": "sig", "alg": alg}


@dataclass(frozen=True)
class _Key:
    kid: str | None
    jwk: jwt.PyJWK
    algorithms: frozenset[str]


def _keys_from(document: Any, source: str) -> tuple[_Key, ...]:
    """The signing keys of a JWKS document (RFC 7517 §5) that can verify one of
    :data:`ALGORITHMS`; other keys (encryption, symmetric, unknown types) are left out so
    that an issuer adding one does not break verification."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise Unauthenticated(f"The token issuer's key set at {source} is not a JWK Set.")
    keys: list[_Key] = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        operations = jwk.get("key_ops", ["verify"])
        if not isinstance(operations, list) or "verify" not in operations:
            continue
        kid = jwk.get("kid")
        algorithms = algorithms_for(jwk)
        if not algorithms or not isinstance(kid, str | None):
            continue
        try:
            keys.append(_Key(kid, jwt.PyJWK(jwk), algorithms))
        except jwt.PyJWTError as exc:
            log.warning("Ignoring an unusable key %r in %s: %s", kid, source, exc)
    return tuple(keys)


def _get_json(url: str, timeout: float) -> Any:
    try:
        response = httpx.get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        # The reason goes to the log; the client only learns that the keys were unavailable.
        log.warning("Could not fetch %s: %s", url, exc)
        raise Unauthenticated(
            f"The token issuer's signing keys could not be fetched from {url}."
        ) from None


class KeySet:
    """Signing keys of one issuer, by kid, fetched from a JWKS document and cached.

    Keys are loaded on first use. A kid not in the cache reloads the set, since the issuer
    may have rotated its keys, but at most once per :attr:`min_refresh` seconds, so a stream
    of tokens with made-up kids cannot hammer the issuer. If a reload fails, the cached keys
    stay in use. Safe to use from several threads.
    """

    #: seconds between reloads caused by unknown kids (the first load does not count)
    min_refresh: float = 30.0
    #: seconds a loaded set is trusted before it is fetched again, so a key the issuer
    #: withdraws stops being accepted without waiting for a token with a new kid
    max_age: float = 600.0

    def __init__(
        self, load: Callable[[], tuple[_Key, ...]] | None, keys: tuple[_Key, ...] | None = None
    ) -> None:
        """Use the class methods; ``load`` fetches the keys, ``None`` for a fixed set."""
        self._load = load
        self._keys = keys
        self._fetches = 0  # completed fetches, so threads that waited do not fetch again
        self._reloaded_at = -math.inf
        self._loaded_at = -math.inf
        self._error = "The token issuer's signing keys are not available."
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path) -> KeySet:
        """Keys from a local JWKS JSON file, read again on an unknown kid (after rotation)."""

        def load() -> tuple[_Key, ...]:
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("Could not read %s: %s", path, exc)
                raise Unauthenticated(
                    f"The token issuer's signing keys could not be read from {path}."
                ) from None
            return _keys_from(document, str(path))

        return cls(load)

    @classmethod
    def from_url(cls, jwks_uri: str, *, timeout: float = 5.0) -> KeySet:
        """Keys from a JWKS document served at ``jwks_uri``."""
        return cls(lambda: _keys_from(_get_json(jwks_uri, timeout), jwks_uri))

    @classmethod
    def from_issuer(cls, issuer: str, *, timeout: float = 5.0) -> KeySet:
        """Keys of an OpenID Connect issuer, found by discovery (OpenID Connect Discovery §4):
        ``{issuer}/.well-known/openid-configuration`` names the ``jwks_uri``. Both are fetched
        on first use; the document must name the same issuer (§4.3), ignoring a final "/"."""
        configuration_url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
        jwks_uri: str | None = None

        def load() -> tuple[_Key, ...]:
            nonlocal jwks_uri  # only ever called under the KeySet's lock
            if jwks_uri is None:
                configuration = _get_json(configuration_url, timeout)
                if not isinstance(configuration, dict):
                    configuration = {}
                named, uri = configuration.get("issuer"), configuration.get("jwks_uri")
                if (
                    not isinstance(named, str)
                    or named.rstrip("/") != issuer.rstrip("/")
                    or not isinstance(uri, str)
                ):
                    raise Unauthenticated(
                        f"The OpenID configuration at {configuration_url} does not name "
                        "this issuer and its key set."
                    )
                jwks_uri = uri
            return _keys_from(_get_json(jwks_uri, timeout), jwks_uri)

        return cls(load)

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> KeySet:
        """A fixed set of keys from a JWKS document, never reloaded."""
        return cls(None, _keys_from(dict(jwks), "the given JWKS"))

    def key(self, kid: str | None) -> jwt.PyJWK:
        """The key for ``kid``; a missing kid is accepted only when the set has exactly one
        signing key. Raises :class:`Unauthenticated` if there is no such key, after one
        reload (rate-limited), or if the keys cannot be fetched and none are cached."""
        return self._find(kid).jwk

    def _find(self, kid: str | None) -> _Key:
        fetches = self._fetches  # read before the keys: see _fetch
        stale = (
            self._load is not None
            and self._keys is not None
            and time.monotonic() - self._loaded_at > self.max_age
        )
        found = None if stale else _pick(self._keys, kid)
        if found is None and self._load is not None:
            with self._lock:
                if self._fetches == fetches:  # no other thread fetched while this one waited
                    self._fetch(self._load, stale=stale)
                found = _pick(self._keys, kid)
        if found is not None:
            return found
        if self._keys is None:
            raise Unauthenticated(self._error)
        if kid is None:
            raise Unauthenticated(
                "The access token does not name its signing key (kid), and the issuer has "
                "more than one."
            )
        raise Unauthenticated("The access token's signing key (kid) is not one of the issuer's.")

    def _fetch(self, load: Callable[[], tuple[_Key, ...]], *, stale: bool = False) -> None:
        cached = self._keys is not None
        if cached and not stale:
            if time.monotonic() - self._reloaded_at < self.min_refresh:
                return
            self._reloaded_at = time.monotonic()
        try:
            self._keys = load()
            self._loaded_at = time.monotonic()
        except Unauthenticated as exc:
            self._error = exc.message
            if not cached:
                raise
            # try again after min_refresh, not on every request while the issuer is down
            self._loaded_at = time.monotonic() - self.max_age + self.min_refresh
            log.warning("Keeping the cached signing keys: %s", exc.message)
        finally:
            # Counted after the keys are set, so a thread that saw the old count before
            # reading no keys is sure to find the new count once it holds the lock.
            self._fetches += 1


def _pick(keys: tuple[_Key, ...] | None, kid: str | None) -> _Key | None:
    if keys is None:
        return None
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.kid == kid), None)


@dataclass(frozen=True)
class Issuer:
    """An issuer whose access tokens are trusted, and what its tokens must say."""

    issuer: str  #: expected ``iss``
    audience: str  #: expected ``aud`` (the token's may be a string or a list containing it)
    keys: KeySet
    leeway: int = 30  #: allowed clock skew in seconds


_REFUSALS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.InvalidSignatureError, "The access token's signature does not verify."),
    (jwt.InvalidAudienceError, "The access token is for another audience."),
    (jwt.InvalidIssuerError, "The access token is from another issuer."),
    (jwt.InvalidAlgorithmError, "The access token's signing algorithm is not accepted."),
    (jwt.InvalidKeyError, "The access token's signing key is not accepted."),
]


def verify_token(
    token: str, issuers: Mapping[str, Issuer], *, now: float | None = None
) -> dict[str, Any]:
    """Verify a JWT access token and return its claims (RFC 7519 §7.2).

    The header and ``iss`` are read unverified only to choose the issuer (from ``issuers``,
    by ``iss``), its key (by ``kid``) and the algorithm, which must be in
    :data:`ALGORITHMS` and one the key is for. Then the signature, ``iss``, ``aud``, ``exp``
    (required), ``nbf`` and ``iat`` (when present; neither may be in the future) are
    checked, allowing the issuer's leeway. ``now`` (seconds since the epoch) fixes the time
    for tests. Every refusal raises :class:`Unauthenticated`.
    """
    try:
        unverified = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unauthenticated("The access token is not a well-formed JWT.") from None
    header, claims = unverified["header"], unverified["payload"]
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise Unauthenticated(
            "The access token's signing algorithm is not accepted "
            f"(only {', '.join(sorted(ALGORITHMS))})."
        )
    iss = claims.get("iss")
    issuer = issuers.get(iss) if isinstance(iss, str) else None
    if issuer is None:
        raise Unauthenticated("The access token's issuer is not trusted.")
    key = issuer.keys._find(header.get("kid"))
    if alg not in key.algorithms:
        raise Unauthenticated("The access token's signing algorithm does not fit its key.")
    try:
        claims = jwt.decode(
            token,
            key.jwk.key,  # the bare key: the PyJWK would allow only its default algorithm
            algorithms=[alg],
            audience=issuer.audience,
            issuer=issuer.issuer,
            options={
                "require": ["exp", "iss", "aud"],
                # Times are checked below, against `now` when a test fixes it.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"The access token has no '{exc.claim}' claim.") from None
    except jwt.PyJWTError as exc:
        message = next((m for kind, m in _REFUSALS if isinstance(exc, kind)), None)
        raise Unauthenticated(message or "The access token is malformed.") from None
    _check_times(claims, time.time() if now is None else now, issuer.leeway)
    return claims


def _check_times(claims: Mapping[str, Any], now: float, leeway: int) -> None:
    """``exp``, ``nbf`` and ``iat`` (RFC 7519 §4.1.4-6) against ``now``, give or take
    ``leeway``. PyJWT has no clock to fix, so these are checked here for tests and use alike."""
    exp, nbf, iat = (_time(claims, name) for name in ("exp", "nbf", "iat"))
    if exp is None or exp <= now - leeway:  # exp is required: None was refused already
        raise Unauthenticated("The access token has expired.")
    if any(t is not None and t > now + leeway for t in (nbf, iat)):
        raise Unauthenticated("The access token is not valid yet.")


def _time(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # A NumericDate is a finite JSON number; Python's json also reads true, NaN and Infinity.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Unauthenticated(f"The access token's '{name}' claim is not a time.")
    return float(value)
