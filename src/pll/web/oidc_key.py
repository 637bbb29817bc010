"""The key a confidential OpenID Connect client signs its assertions with (private_key_jwt,
RFC 7523 §2.2; HelseID accepts no client secrets): loaded from a PEM or JWK file, as HelseID
Selvbetjening hands them out, and checked before the server starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

#: Algorithms a client key may sign its assertions with (HelseID: asymmetric only).
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)


@dataclass(frozen=True)
class ClientKey:
    """The client's private key and how its assertions are signed."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    algorithm: str
    kid: str | None = None

    @classmethod
    def load(cls, path: Path) -> ClientKey:
        """A private key from a PEM file (PKCS#8 or traditional, unencrypted) or a JWK file
        (as HelseID Selvbetjening hands them out; a JWK Set with one key also does). A JWK
        keeps its ``kid`` and ``alg``; otherwise RSA signs with RS256 and EC with ES256.
        ``ValueError`` when the file cannot be used."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"The OIDC client key {path} cannot be read: {exc}") from None
        text = raw.strip()
        if text.startswith(b"{"):
            return cls._from_jwk(raw, path)
        try:
            key = serialization.load_pem_private_key(raw, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"The OIDC client key {path} is neither a JWK nor an unencrypted PEM private "
                f"key: {exc}"
            ) from None
        return cls._checked(key, None, None, path)

    @classmethod
    def _from_jwk(cls, raw: bytes, path: Path) -> ClientKey:
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"The OIDC client key {path} is not valid JSON: {exc}") from None
        if isinstance(document, dict) and isinstance(document.get("keys"), list):
            keys = document["keys"]
            if len(keys) != 1:
                raise ValueError(f"The JWK Set in {path} must hold exactly one key.")
            document = keys[0]
        if not isinstance(document, dict) or "d" not in document:
            raise ValueError(f"The JWK in {path} is not a private key (it has no 'd').")
        try:
            key = jwt.PyJWK(document).key
        except jwt.PyJWTError as exc:
            raise ValueError(f"The JWK in {path} cannot be used: {exc}") from None
        kid, alg = document.get("kid"), document.get("alg")
        return cls._checked(
            key, alg if isinstance(alg, str) else None, kid if isinstance(kid, str) else None, path
        )

    @classmethod
    def _checked(cls, key: object, alg: str | None, kid: str | None, path: Path) -> ClientKey:
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 2048:
                raise ValueError(f"The RSA key in {path} is shorter than 2048 bits.")
            alg = alg or "RS256"
            fits = alg[:2] in ("RS", "PS")
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            curve_alg = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
            default = curve_alg.get(key.curve.name)
            if default is None:
                raise ValueError(f"The EC key in {path} is on an unsupported curve.")
            alg = alg or default
            fits = alg == default
        else:
            raise ValueError(f"The key in {path} is not an RSA or EC private key.")
        if alg not in SIGNING_ALGORITHMS or not fits:
            raise ValueError(f"The key in {path} cannot sign with {alg}.")
        return cls(key, alg, kid)
