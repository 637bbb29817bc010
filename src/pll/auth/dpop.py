"""DPoP proofs: the client shows, on every request, that it holds the key its token is bound to.

RFC 9449 (OAuth 2.0 Demonstrating Proof of Possession,
https://www.rfc-editor.org/rfc/rfc9449) binds an access token to a key pair the client keeps.
With each request the client sends a ``DPoP`` header: a short-lived JWT signed with that key,
naming the request's method and URL and the hash of the access token. A stolen token is then
useless without the private key, and a captured proof is useless for any other request.

:class:`DPoPVerifier` checks such proofs the way §4.3 lists; :func:`make_proof` makes them the
way a client does, for tests and the ``pll token`` command. Server-provided nonces (§8, §9)
are not supported.

A proof is accepted once (§11.1). Within one process a cache in memory says so; a server with
several processes, or machines, hands the verifier a :class:`ReplayStore` they all share
(:class:`pll.store.dpop_proofs.AcceptedProofs`, a table in the database), which decides.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import logging
import math
import re
import string
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.types import Options

from pll.domain.errors import Unauthenticated

log = logging.getLogger("pll.auth")

#: The signature algorithms PLL accepts for proofs (RFC 9449 §4.3 point 5): asymmetric only,
#: since a proof must be checkable with nothing but the public key it carries.
ALGORITHMS: frozenset[str] = frozenset({"ES256", "RS256", "PS256"})

_TYP = "dpop+jwt"
_EXPRESSION = "DPoP"

#: The key type (and curve) each algorithm needs.
_KEY_FOR_ALGORITHM: dict[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
}

#: RFC 7638 §3.2: the members a thumbprint is computed over, in lexicographic order.
_REQUIRED_MEMBERS: dict[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
}

#: The members holding the key itself, base64url-encoded numbers (RFC 7518 §6.2.1, §6.3.1).
_KEY_MEMBERS: dict[str, tuple[str, ...]] = {"EC": ("x", "y"), "RSA": ("n", "e")}

#: Members that only a private (or symmetric) JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT_ENCODED = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")

#: Everything PyJWT checks beyond the signature is off: the proof's claims follow RFC 9449,
#: not the access-token rules PyJWT defaults to, and its time is this verifier's clock.
_DECODE_OPTIONS: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
    # A short RSA key is refused outright; PyJWT would otherwise only warn, once per request.
    "enforce_minimum_key_length": True,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unsigned_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of ``jwk``, base64url without padding.

    Only the required members count (RFC 7638 §3.2): ``crv``, ``kty``, ``x``, ``y`` for an EC
    key and ``e``, ``kty``, ``n`` for an RSA key; ``alg``, ``kid`` and the like are ignored, so
    the same key always has the same thumbprint. This is the value of an access token's
    ``cnf.jkt`` (RFC 9449 §6.1).

    Raises :class:`ValueError` for a key type other than EC or RSA, or a missing member.
    """
    kty = jwk.get("kty")
    members = _REQUIRED_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise ValueError(f"a JWK thumbprint needs kty EC or RSA, not {kty!r}")
    required: dict[str, str] = {}
    for member in members:
        value = jwk.get(member)
        if not isinstance(value, str) or not value:
            raise ValueError(f"the JWK has no {member!r} member")
        required[member] = value
    # RFC 7638 §3.3: no whitespace, members sorted, UTF-8 without needless escapes.
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return _b64(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(access_token: str) -> str:
    """The ``ath`` claim for ``access_token`` (RFC 9449 §4.2): base64url(SHA-256) unpadded.

    Raises :class:`ValueError` (``UnicodeEncodeError``) if the token is not ASCII, which no
    access token can be (RFC 6750 §2.1).
    """
    return _b64(hashlib.sha256(access_token.encode("ascii")).digest())


def public_jwk(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> dict[str, Any]:
    """The public JWK of ``private_key``: ``kty`` and ``crv``/``x``/``y`` or ``n``/``e`` only.

    This is what a proof carries in its ``jwk`` header (RFC 9449 §4.2). EC keys must be on
    P-256, the only curve :data:`ALGORITHMS` allows; another curve raises :class:`ValueError`.
    """
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError(f"DPoP keys on EC must use P-256, not {private_key.curve.name}")
        point = private_key.public_key().public_numbers()
        # RFC 7518 §6.2.1.2: coordinates are the full field size, leading zeros kept.
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(point.x.to_bytes(32, "big")),
            "y": _b64(point.y.to_bytes(32, "big")),
        }
    if isinstance(private_key, rsa.RSAPrivateKey):
        numbers = private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "n": _b64(_unsigned_bytes(numbers.n)),
            "e": _b64(_unsigned_bytes(numbers.e)),
        }
    raise TypeError(f"DPoP keys are EC P-256 or RSA, not {type(private_key).__name__}")


def make_proof(
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    iat: int | None = None,
    jti: str | None = None,
    alg: str | None = None,
) -> str:
    """A DPoP proof JWT for one request, made as a client makes it (RFC 9449 §4.2).

    The header has ``typ`` ``dpop+jwt``, ``alg`` (ES256 for an EC key, RS256 for an RSA key
    unless ``alg`` says otherwise) and the public ``jwk``; the claims are ``jti`` (a random
    UUID unless given), ``htm`` = ``method``, ``htu`` = ``url``, ``iat`` (now unless given) and,
    when an ``access_token`` is given, its hash ``ath``. Parameters are taken as given so that
    tests can make deliberately wrong proofs; only an ``alg`` that does not fit the key raises
    :class:`ValueError`.
    """
    jwk = public_jwk(private_key)
    if alg is None:
        alg = "ES256" if jwk["kty"] == "EC" else "RS256"
    if alg not in ALGORITHMS or _KEY_FOR_ALGORITHM[alg][0] != jwk["kty"]:
        raise ValueError(f"alg {alg} does not fit a {jwk['kty']} key")
    claims: dict[str, Any] = {
        "jti": str(uuid.uuid4()) if jti is None else jti,
        "htm": method,
        "htu": url,
        "iat": int(time.time()) if iat is None else iat,
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    return jwt.encode(claims, private_key, algorithm=alg, headers={"typ": _TYP, "jwk": jwk})


def normalise_htu(url: str) -> str:
    """``url`` as compared for the ``htu`` claim (RFC 9449 §4.3 point 9).

    Query and fragment are dropped, as §4.3 says; then the syntax- and scheme-based
    normalisations of RFC 3986 §6.2.2 and §6.2.3 that §4.3 recommends: scheme and host in lower
    case, ``%xx`` escapes in upper case and unreserved characters unescaped, ``.`` and ``..``
    segments resolved, the scheme's default port (80 for http, 443 for https) and an empty
    port dropped, and an empty path made ``/``. Raises :class:`ValueError` for a port that is
    not a number.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    netloc = ""
    if parts.netloc:
        userinfo, at, _ = parts.netloc.rpartition("@")
        host = _normalise_percent(parts.hostname or "").lower()
        if ":" in host:
            host = f"[{host}]"  # an IPv6 literal
        port = parts.port
        if port is not None and port != _DEFAULT_PORTS.get(scheme):
            host = f"{host}:{port}"
        netloc = f"{_normalise_percent(userinfo)}{at}{host}"
    path = _remove_dot_segments(_normalise_percent(parts.path))
    if not path and netloc and scheme in _DEFAULT_PORTS:
        path = "/"
    return urlunsplit((scheme, netloc, path, "", ""))


def _normalise_percent(text: str) -> str:
    """RFC 3986 §6.2.2.1-2: upper-case escapes, unescape unreserved characters."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return _PERCENT_ENCODED.sub(fix, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for the absolute paths a URL with a host has."""
    segments = path.split("/")
    kept: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in {".", ".."}:
            # The leading "" stands for the root, which ".." cannot climb above.
            if segment == ".." and len(kept) > 1:
                kept.pop()
            if last:
                kept.append("")  # "/a/b/.." is the directory "/a/", not the file "/a"
            continue
        kept.append(segment)
    return "/".join(kept)


def _seconds(value: object) -> float | None:
    """A JSON NumericDate as a finite float, or None if it is not one."""
    # bool is an int to Python but not a time to anyone else.
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer JSON allows but no clock reaches
        return None
    # JSON parsing lets NaN and Infinity through.
    return seconds if math.isfinite(seconds) else None


def _refused(message: str) -> Unauthenticated:
    return Unauthenticated(message, expression=_EXPRESSION)


_USED_BEFORE = (
    "The DPoP proof has been used before (its jti is not new); make a fresh proof for every "
    "request."
)


class ReplayStore(Protocol):
    """Where accepted proofs are recorded so that every process serving the origin refuses
    a proof another one accepted (RFC 9449 §11.1)."""

    def remember(self, digest: bytes, expires: float, now: float) -> bool:
        """Record ``digest`` (a proof acceptable until ``expires``, seconds since the epoch)
        unless it is recorded already: True if this call recorded it. Recording it must be
        atomic across processes, so that of two calls with the same digest exactly one gets
        True. Raises if it cannot say; the proof is then refused."""
        ...


class _SeenProofs:
    """The proofs accepted within the acceptance window, so each can be used only once.

    A proof whose ``iat`` lies outside the window is refused anyway, so an entry is kept only
    until its proof would be too old and is then pruned. Each entry is a SHA-256 digest of the
    key thumbprint and ``jti`` rather than the ``jti`` itself: memory per entry stays fixed
    (about 200 bytes with the heap) however long the ``jti`` a client sends, and clients
    cannot collide with each other's ``jti`` values.

    When full, nothing more is added until entries expire. Alone, the verifier then refuses
    new proofs: forgetting the oldest entries instead would let exactly those proofs be
    replayed, and refusing is the safe failure. The capacity is sized so that only a flood
    can reach it: a million proofs in one window of a little over a minute is more than ten
    thousand requests a second from holders of valid tokens, while a full cache costs some
    200 MB, which a server can afford.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._expiry: dict[bytes, float] = {}
        self._by_expiry: list[tuple[float, bytes]] = []  # a heap, to prune the oldest cheaply
        self._lock = threading.Lock()

    def add(self, key: bytes, expires: float, now: float) -> Literal["added", "seen", "full"]:
        """Remember ``key`` until ``expires``, unless it was seen or there is no room."""
        with self._lock:
            self._prune(now)
            if key in self._expiry:
                return "seen"
            if len(self._expiry) >= self._capacity:
                return "full"
            self._expiry[key] = expires
            heapq.heappush(self._by_expiry, (expires, key))
            return "added"

    def __contains__(self, key: bytes) -> bool:
        return key in self._expiry  # one dict lookup: atomic, no lock needed

    def _prune(self, now: float) -> None:
        while self._by_expiry and self._by_expiry[0][0] < now:
            _, old = heapq.heappop(self._by_expiry)
            self._expiry.pop(old, None)


class DPoPVerifier:
    """Checks DPoP proofs (RFC 9449 §4.3) and remembers the accepted ones to refuse replays.

    A proof is accepted from its ``iat`` until ``max_age`` seconds later, widened by
    ``leeway`` seconds either side for clock differences between client and server.
    ``clock`` gives the current time in seconds since the epoch.

    One instance is meant to serve all requests of a process, and is thread-safe. Without
    ``shared`` it remembers accepted proofs in memory, which is enough for one process only:
    a proof replayed to another process would not be caught (RFC 9449 §11.1). With
    ``shared``, the store every process serving the origin uses, that store decides whether
    a proof is new; the memory cache stays in front of it, so a replay to the same process
    is refused without asking the store. If the store cannot answer, the proof is refused.
    """

    #: The most proofs remembered at once; see :class:`_SeenProofs` for why it is this large.
    REPLAY_CACHE_SIZE = 1_000_000

    def __init__(
        self,
        *,
        max_age: int = 60,
        leeway: int = 5,
        clock: Callable[[], float] = time.time,
        shared: ReplayStore | None = None,
    ) -> None:
        if max_age <= 0 or leeway < 0:
            raise ValueError("max_age must be positive and leeway not negative")
        self._max_age = max_age
        self._leeway = leeway
        self._clock = clock
        self._seen = _SeenProofs(self.REPLAY_CACHE_SIZE)
        self.shared = shared

    def verify(
        self, proof: str, *, method: str, url: str, access_token: str, jkt: str | None
    ) -> str:
        """Check ``proof`` for a request and return the RFC 7638 thumbprint of its key.

        ``method`` and ``url`` are the request's; ``access_token`` is the token sent with it
        in ``Authorization: DPoP``; ``jkt`` is that token's ``cnf.jkt`` (RFC 9449 §6), or
        ``None`` to skip the binding check. The checks are those of RFC 9449 §4.3: a JWT whose
        ``typ`` is ``dpop+jwt``, an asymmetric ``alg`` from :data:`ALGORITHMS` that fits the
        public key in the ``jwk`` header, a signature by that key, ``jti``, ``htm``, ``htu``
        and ``iat`` claims, ``htm`` and ``htu`` (see :func:`normalise_htu`) naming this
        request, ``iat`` within the acceptance window, ``ath`` matching the access token, the
        key's thumbprint matching ``jkt``, and a ``jti`` not seen before in the window.
        That the request carries exactly one ``DPoP`` header (point 1) is the caller's check.

        A proof is remembered only once every other check has passed, so a refused proof
        does not use up its ``jti``. Raises :class:`Unauthenticated` naming what is wrong.
        """
        now = self._clock()
        alg, jwk = self._header(proof)
        claims = self._signed_claims(proof, alg, jwk)
        jti, iat = self._check_claims(claims, method=method, url=url, now=now)
        self._check_ath(claims, access_token)
        key_thumbprint = thumbprint(jwk)
        if jkt is not None and key_thumbprint != jkt:
            raise _refused(
                "The DPoP proof is signed with another key than the one the access token "
                "is bound to (cnf.jkt)."
            )
        replay_key = hashlib.sha256(
            f"{key_thumbprint}.{jti}".encode("utf-8", "surrogatepass")
        ).digest()
        self._remember(replay_key, iat + self._max_age + self._leeway, now)
        return key_thumbprint

    def _remember(self, key: bytes, expires: float, now: float) -> None:
        """Accept the proof ``key`` once, or refuse it (§11.1)."""
        if self.shared is None:
            added = self._seen.add(key, expires, now)
            if added == "seen":
                raise _refused(_USED_BEFORE)
            if added == "full":
                raise _refused(
                    "The server is receiving more DPoP proofs than it can keep track of; "
                    "try again shortly."
                )
            return
        if key in self._seen:
            raise _refused(_USED_BEFORE)
        try:
            new = self.shared.remember(key, expires, now)
        except Exception as exc:  # whatever it is, a proof not known to be new is refused
            log.warning("DPoP replay store unavailable, proof refused: %s", exc)
            raise _refused(
                "The server cannot check now whether this DPoP proof was used before, so it "
                "is not accepted; try again shortly with a new proof."
            ) from None
        if not new:
            raise _refused(_USED_BEFORE)
        # When full, the store alone keeps track: it is the one that decides.
        self._seen.add(key, expires, now)

    def _header(self, proof: str) -> tuple[str, dict[str, Any]]:
        """The ``alg`` and public ``jwk``, checked before the signature (§4.3 points 2, 4, 5, 7)."""
        try:
            header = jwt.get_unverified_header(proof)
        except (jwt.PyJWTError, TypeError, ValueError):
            raise _refused("The DPoP header is not a well-formed JWT.") from None
        typ = header.get("typ")
        if typ != _TYP:
            raise _refused(f'The DPoP proof\'s typ must be "{_TYP}", not {json.dumps(typ)}.')
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise _refused(
                f"The DPoP proof's alg {json.dumps(alg)} is not accepted; "
                f"use one of {', '.join(sorted(ALGORITHMS))}."
            )
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise _refused("The DPoP proof has no jwk header with its public key.")
        private = sorted(_PRIVATE_MEMBERS.intersection(jwk))
        if private:
            raise _refused(
                f"The DPoP proof's jwk contains private key material ({', '.join(private)}); "
                "it must hold the public key only."
            )
        kty, crv = _KEY_FOR_ALGORITHM[alg]
        if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
            needed = f"{kty} {crv}" if crv else kty
            raise _refused(f"The DPoP proof's alg {alg} needs an {needed} key in its jwk.")
        for member in _KEY_MEMBERS[kty]:
            value = jwk.get(member)
            if not isinstance(value, str) or not _BASE64URL.fullmatch(value):
                raise _refused(f"The DPoP proof's jwk has no valid {member!r} member.")
        return alg, jwk

    def _signed_claims(self, proof: str, alg: str, jwk: dict[str, Any]) -> dict[str, Any]:
        """The claims, once the signature is verified with the proof's own key (§4.3 point 6)."""
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
        except (jwt.PyJWTError, TypeError, ValueError):
            raise _refused(f"The DPoP proof's jwk is not a usable {alg} public key.") from None
        try:
            return jwt.decode(proof, key, algorithms=[alg], options=_DECODE_OPTIONS)
        except jwt.InvalidSignatureError:
            raise _refused(
                "The DPoP proof's signature does not verify with the key in its jwk header."
            ) from None
        except jwt.InvalidKeyError as exc:
            raise _refused(f"The DPoP proof's key is refused: {exc}") from None
        except jwt.PyJWTError as exc:
            raise _refused(f"The DPoP proof is not a valid JWT: {exc}.") from None

    def _check_claims(
        self, claims: dict[str, Any], *, method: str, url: str, now: float
    ) -> tuple[str, float]:
        """``jti`` and ``iat``, once the claims fit request and time (§4.3 points 3, 8, 9, 11)."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _refused("The DPoP proof has no jti claim (a unique identifier).")
        htm = claims.get("htm")
        if not isinstance(htm, str):
            raise _refused("The DPoP proof has no htm claim (the request's HTTP method).")
        htu = claims.get("htu")
        if not isinstance(htu, str):
            raise _refused("The DPoP proof has no htu claim (the request's URL).")
        iat = claims.get("iat")
        if iat is None:
            raise _refused("The DPoP proof has no iat claim (when it was made).")
        made = _seconds(iat)
        if made is None:
            raise _refused("The DPoP proof's iat is not a time in seconds since 1970.")

        if htm != method:
            raise _refused(f"The DPoP proof is for {htm}, but the request is {method}.")
        try:
            proof_url = normalise_htu(htu)
        except ValueError:
            raise _refused("The DPoP proof's htu is not a valid URL.") from None
        try:
            request_url = normalise_htu(url)
        except ValueError:
            raise _refused("The request's URL is not valid.") from None
        if proof_url != request_url:
            raise _refused(
                f"The DPoP proof is for {proof_url}, but the request went to {request_url}."
            )

        if made < now - self._max_age - self._leeway:
            raise _refused(
                f"The DPoP proof is too old: made {now - made:.0f} seconds ago, and proofs are "
                f"accepted for {self._max_age} seconds."
            )
        if made > now + self._leeway:
            raise _refused(
                f"The DPoP proof is dated {made - now:.0f} seconds in the future; "
                "check the client's clock."
            )
        return jti, made

    @staticmethod
    def _check_ath(claims: dict[str, Any], access_token: str) -> None:
        """The proof must be for the access token it comes with (§4.3 point 12)."""
        ath = claims.get("ath")
        if not isinstance(ath, str):
            raise _refused("The DPoP proof has no ath claim (the hash of the access token).")
        try:
            expected = access_token_hash(access_token)
        except ValueError:
            raise _refused("The access token is not ASCII.") from None
        if ath != expected:
            raise _refused("The DPoP proof's ath does not match the access token.")
