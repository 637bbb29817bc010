"""Development access tokens: RS256 JWTs signed by a key kept in the data directory.

This is the seam the HelseID work replaces (issue 3): :func:`verify` turns a bearer token
into an :class:`~pll.domain.model.Author`; the claim names are HelseID's already
(https://utviklerportal.nhn.no/informasjonstjenester/helseid/), plus a development-only
``pll:authorization`` claim standing in for the HPR authorisation a real deployment looks up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pll.domain.errors import Unauthenticated
from pll.domain.model import Author, Role

ISSUER = "pll-dev"
AUDIENCE = "pll"
CLAIM_HPR = "helseid://claims/hpr/hpr_number"
CLAIM_PID = "helseid://claims/identity/pid"
CLAIM_ORG = "helseid://claims/client/claims/orgnr_parent"
CLAIM_ORG_NAME = "pll:org_name"
CLAIM_AUTHORIZATION = "pll:authorization"

#: HPR authorisation codes (kodeverk 9060) to the role the list rules use.
AUTHORIZATIONS = {
    "LE": Role.DOCTOR,
    "SP": Role.NURSE,
    "FA1": Role.PHARMACIST,
    "FA2": Role.PHARMACIST,
}


@dataclass(frozen=True)
class Persona:
    name: str
    authorization: str | None
    hpr: str | None
    org_id: str | None
    org_name: str | None


# Invented people and organisations; HPR numbers are in the test range and belong to nobody.
PERSONAS: dict[str, Persona] = {
    "gp": Persona("Kari Fastlege", "LE", "9144889", "974600951", "Bergen legesenter"),
    "hospital-doctor": Persona(
        "Ola Sykehuslege", "LE", "9144897", "983974724", "Haukeland universitetssjukehus"
    ),
    "nurse": Persona(
        "Siri Sykepleier", "SP", "9144900", "964338531", "Bergen kommune hjemmetjeneste"
    ),
    "pharmacist": Persona(
        "Per Farmasøyt", "FA1", "9144919", "985563756", "Apotek 1 Bergen multidose"
    ),
    "patient": Persona("Pasient", None, None, None, None),
}


def key_path(data_dir: Path) -> Path:
    return data_dir / "dev-signing-key.pem"


def signing_key(data_dir: Path) -> rsa.RSAPrivateKey:
    """The development signing key, made on first use and kept private to this machine."""
    path = key_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        tmp.replace(path)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise TypeError(f"{path} is not an RSA private key")
    return loaded


def issue(data_dir: Path, persona: str, pid: str | None = None, ttl: int = 8 * 3600) -> str:
    """A development token for ``persona`` (``pll token``)."""
    try:
        who = PERSONAS[persona]
    except KeyError:
        raise ValueError(
            f"unknown persona {persona!r}; choose one of {', '.join(PERSONAS)}"
        ) from None
    if persona == "patient" and not pid:
        raise ValueError("the patient persona needs --pid (the patient's fødselsnummer)")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "sub": who.hpr or pid,
        "name": who.name if persona != "patient" else f"Pasient {pid}",
    }
    if who.hpr:
        claims[CLAIM_HPR] = who.hpr
        claims[CLAIM_AUTHORIZATION] = who.authorization
    if who.org_id:
        claims[CLAIM_ORG] = who.org_id
        claims[CLAIM_ORG_NAME] = who.org_name
    if pid:
        claims[CLAIM_PID] = pid
    return jwt.encode(claims, signing_key(data_dir), algorithm="RS256")


class Verifier:
    """Checks development tokens against the public half of the data directory's key.

    A verified token is remembered until it expires: a journal system sends the same token
    for many requests, and an RSA check per request costs more than the list read itself.
    """

    CACHE_SIZE = 10_000
    LEEWAY = 30

    def __init__(self, data_dir: Path) -> None:
        self._public = signing_key(data_dir).public_key()
        self._cache: dict[str, tuple[Author, float]] = {}

    def verify(self, token: str) -> Author:
        hit = self._cache.get(token)
        if hit is not None:
            author, expires = hit
            if time.time() < expires + self.LEEWAY:
                return author
            self._cache.pop(token, None)
        author, expires = self._verify(token)
        if len(self._cache) >= self.CACHE_SIZE:
            self._cache.clear()
        self._cache[token] = (author, expires)
        return author

    def _verify(self, token: str) -> tuple[Author, float]:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self.LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"The access token was refused: {exc}.") from None
        return author_from_claims(claims), float(claims["exp"])


def author_from_claims(claims: dict[str, Any]) -> Author:
    hpr = claims.get(CLAIM_HPR)
    if hpr:
        role = AUTHORIZATIONS.get(str(claims.get(CLAIM_AUTHORIZATION)))
        if role is None:
            raise Unauthenticated(
                "The token's HPR authorisation is not one PLL knows (LE, SP, FA1, FA2)."
            )
        return Author(
            name=str(claims.get("name", "")),
            role=role,
            hpr=str(hpr),
            org_id=claims.get(CLAIM_ORG),
            org_name=claims.get(CLAIM_ORG_NAME),
        )
    pid = claims.get(CLAIM_PID)
    if pid:
        return Author(name=str(claims.get("name", "Pasient")), role=Role.PATIENT, pid=str(pid))
    raise Unauthenticated(
        "The token names neither a health worker (HPR number) nor a patient (pid)."
    )
