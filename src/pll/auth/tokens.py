"""Access tokens: HelseID-style JWTs, optionally DPoP-bound, turned into who the caller is.

:class:`Authenticator` verifies a request's ``Authorization`` header — ``Bearer <jwt>`` or
``DPoP <jwt>`` with a ``DPoP`` proof (RFC 9449) — against the trusted issuers' JWKS
(:mod:`pll.auth.jwks`) and maps the HelseID claims
(https://utviklerportal.nhn.no/informasjonstjenester/helseid/) to an
:class:`~pll.domain.model.Author`:

* ``helseid://claims/hpr/hpr_number`` and the professions in
  ``helseid://claims/hpr/hpr_details`` (``approvals[].profession``, kodeverk 9060: LE; TL
  and JO, who prescribe within their scope; FA1, FA2; SP; HF, a care worker who gives
  medicines by delegation; any other profession, other health personnel who read) make a
  health worker;
  ``orgnr_child`` (else ``orgnr_parent``) is the organisation they act for;
* otherwise ``helseid://claims/identity/pid`` at ``security_level`` 4 (ID-porten "high")
  makes a patient, who may also act for the persons they hold a proxy for;
* otherwise a system token (no person) with the scope ``nhn:pll/operations`` and an
  organisation number makes an **operator** of client systems, who handles technical cases
  sent to that organisation and sees no patient's data (issue 18);
* otherwise a token with the scope ``nhn:pll/rollout`` makes a member of the **rollout and
  payment team** (issue 19), who reads the non-public rollout reports (first lists per GP,
  per journal system, per GP office) and no patient's data;
* ``client_id`` names the journal system, ``scope`` may be required (``PLL_REQUIRED_SCOPE``).

For development, ``pll token`` issues such tokens for invented personas, signed by a key in
the data directory whose public half is served as a JWKS (``/dev/jwks.json``) and verified
exactly like a real issuer's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pll.auth.dpop import DPoPVerifier, thumbprint
from pll.auth.dpop import public_jwk as dpop_jwk
from pll.auth.jwks import Issuer, KeySet, public_jwk, verify_token
from pll.domain.errors import Forbidden, Unauthenticated
from pll.domain.model import Author, Role

DEV_ISSUER = "pll-dev"
DEV_KID = "pll-dev-1"
AUDIENCE = "pll"
#: The client system development tokens are issued to, unless told otherwise.
DEV_CLIENT = "pll-dev-client"
CLAIM_HPR = "helseid://claims/hpr/hpr_number"
CLAIM_HPR_DETAILS = "helseid://claims/hpr/hpr_details"
CLAIM_PID = "helseid://claims/identity/pid"
CLAIM_SECURITY_LEVEL = "helseid://claims/identity/security_level"
CLAIM_ORG_PARENT = "helseid://claims/client/claims/orgnr_parent"
CLAIM_ORG_CHILD = "helseid://claims/client/claims/orgnr_child"
#: Not a HelseID claim: the organisation's name, for development tokens' display only.
CLAIM_ORG_NAME = "pll:org_name"
#: The scope a client system's operator is given (a system token, no person): technical
#: cases sent to the organisation in its ``orgnr`` claim, and nothing of any patient's.
OPERATIONS_SCOPE = "nhn:pll/operations"
#: The scope of the rollout and payment team (issue 19): the non-public rollout reports, and
#: nothing of any patient's.
ROLLOUT_SCOPE = "nhn:pll/rollout"

#: HPR professions (kodeverk 9060) to the role the list rules use; the first one a worker
#: holds in this order decides (a doctor who is also a dentist prescribes as a doctor; a
#: midwife, nearly always a nurse too, prescribes as a midwife).
PROFESSIONS = {
    "LE": Role.DOCTOR,
    "TL": Role.DENTIST,
    "JO": Role.MIDWIFE,
    "FA1": Role.PHARMACIST,
    "FA2": Role.PHARMACIST,
    "SP": Role.NURSE,
    # helsefagarbeider: gives medicines at a care unit by delegation, prescribes nothing
    "HF": Role.CARE_WORKER,
}
#: Any other authorised HPR profession (physiotherapist FT, psychologist PS, ...): other
#: health personnel, who read with a basis and report discrepancies, never write.
OTHER_PROFESSION = Role.HEALTH_WORKER


@dataclass(frozen=True)
class Caller:
    """Who a verified token says the caller is."""

    actor: Author
    client_id: str | None
    #: until when the verification may be reused (the token's exp, or sooner)
    expires: float


@dataclass(frozen=True)
class Persona:
    name: str
    profession: str | None
    hpr: str | None
    org_id: str | None
    org_name: str | None
    #: the persona's own fødselsnummer, when it is a person logging in as themself
    pid: str | None = None
    #: the client system the token names (default: PLL's own development client)
    client_id: str = "pll-dev-client"


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
    "other-pharmacist": Persona(
        "Pia Reseptar", "FA2", "9144927", "987654325", "Vitusapotek Trondheim"
    ),
    # A nursing home (in the demo organisation register) with a nurse and a care worker
    # (helsefagarbeider, no prescriber's authorisation) who gives medicines by delegation.
    "nursing-home-nurse": Persona(
        "Nora Sykepleier", "SP", "9144935", "883416031", "Oslo kommune sykehjem Ullern"
    ),
    "care-worker": Persona(
        "Hege Helsefagarbeider", "HF", "9144943", "883416031", "Oslo kommune sykehjem Ullern"
    ),
    # The operator of an invented journal system (client id ``demo-journal``): a system
    # token for its operations, registered with `pll clients add --orgnr 999000010`.
    "operator": Persona(
        "Journalsystem AS drift",
        None,
        None,
        "999000010",
        "Journalsystem AS",
        client_id="demo-journal",
    ),
    # PLL's own operations: the national queue for cases about unregistered client systems
    # (PLL_OPERATIONS_ORGNR; this is its default).
    "operations": Persona(
        "PLL drift",
        None,
        None,
        "999000002",
        "PLL drift (nasjonal kø)",
        client_id="pll-operations",
    ),
    # Prescribers other than doctors (issue 18): they put what they prescribe on the list
    # and change only their own entries.
    "dentist": Persona("Tor Tannlege", "TL", "9144951", "991000100", "Bergen tannklinikk"),
    "midwife": Persona(
        "Jorunn Jordmor", "JO", "9144978", "991000208", "Bergen kommune jordmortjeneste"
    ),
    # Health personnel without prescribing rights: read with a basis, report discrepancies.
    "public-health-nurse": Persona(
        "Helga Helsesykepleier", "SP", "9144986", "991000305", "Bergen kommune helsestasjon"
    ),
    "physiotherapist": Persona(
        "Fredrik Fysioterapeut", "FT", "9144994", "991000402", "Bergen fysioterapi"
    ),
    # The rollout and payment team (issue 19): reads the non-public rollout reports, with a
    # token that carries the rollout scope (in production a HelseID scope).
    "rollout": Persona(
        "Rita Rapport",
        None,
        None,
        "999000029",
        "Helsedirektoratet innføring og kompensasjon",
        client_id="pll-rollout",
    ),
    "patient": Persona("Pasient", None, None, None, None),
    # A synthetic fødselsnummer (month + 80); registered as proxy with `pll proxy add`.
    "proxy": Persona("Fullmektig Nordmann", None, None, None, None, pid="09857215521"),
}


#: The personas that are operators of client systems (system tokens, no person).
OPERATOR_PERSONAS = frozenset({"operator", "operations"})
#: The personas of the rollout and payment team (a token with :data:`ROLLOUT_SCOPE`).
ROLLOUT_PERSONAS = frozenset({"rollout"})


def key_path(data_dir: Path) -> Path:
    return data_dir / "dev-signing-key.pem"


def jwks_path(data_dir: Path) -> Path:
    return data_dir / "dev-jwks.json"


def signing_key(data_dir: Path) -> rsa.RSAPrivateKey:
    """The development signing key, made on first use and kept private to this machine;
    its public half is written beside it as a JWKS."""
    path = key_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(path, pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise TypeError(f"{path} is not an RSA private key")
    jwks = jwks_path(data_dir)
    if not jwks.exists() or jwks.stat().st_mtime < path.stat().st_mtime:
        document = {"keys": [public_jwk(loaded, DEV_KID)]}
        tmp = jwks.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(document))
        tmp.replace(jwks)
    return loaded


def _write_private(path: Path, pem: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    tmp.replace(path)


def dpop_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A client's DPoP key (EC P-256, PEM), made at ``path`` when it does not exist."""
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(
            path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key (DPoP keys here are P-256)")
    return loaded


def hpr_details(hpr: str, profession: str) -> dict[str, Any]:
    """The ``hpr_details`` claim as HelseID shapes it, for one authorised profession."""
    return {
        "hpr_number": hpr,
        "approvals": [
            {
                "profession": profession,
                "authorization": {"value": "1", "description": "Autorisasjon"},
                "requisition_rights": [],
                "specialities": [],
            }
        ],
    }


def issue(
    data_dir: Path,
    persona: str,
    pid: str | None = None,
    ttl: int = 8 * 3600,
    *,
    dpop_key_file: Path | None = None,
    security_level: str = "4",
    audience: str = AUDIENCE,
    client_id: str = DEV_CLIENT,
) -> str:
    """A development token for ``persona`` (``pll token``); with ``dpop_key_file`` it is
    bound to that key (``cnf.jkt``) and must be sent with DPoP proofs. ``client_id`` names
    the journal system it was issued to (one client system per ``PLL_EMBED_ORIGINS`` part)."""
    try:
        who = PERSONAS[persona]
    except KeyError:
        raise ValueError(
            f"unknown persona {persona!r}; choose one of {', '.join(PERSONAS)}"
        ) from None
    pid = pid or who.pid
    rollout = persona in ROLLOUT_PERSONAS
    operator = persona in OPERATOR_PERSONAS or rollout
    if who.hpr is None and not pid and not operator:
        raise ValueError("the patient persona needs --pid (the patient's fødselsnummer)")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "sub": who.hpr or pid or who.client_id,
        "name": who.name if who.hpr or persona == "proxy" or operator else f"Pasient {pid}",
        # an operator persona is its vendor's own system; anyone else uses the client named
        "client_id": who.client_id if operator else client_id,
        "scope": (
            ROLLOUT_SCOPE if rollout else OPERATIONS_SCOPE if operator else "openid nhn:pll/api"
        ),
        CLAIM_SECURITY_LEVEL: security_level,
    }
    if who.hpr and who.profession:
        claims[CLAIM_HPR] = who.hpr
        claims[CLAIM_HPR_DETAILS] = hpr_details(who.hpr, who.profession)
    if who.org_id:
        claims[CLAIM_ORG_PARENT] = who.org_id
        claims[CLAIM_ORG_NAME] = who.org_name
    if pid and not operator:
        claims[CLAIM_PID] = pid
    if dpop_key_file is not None:
        claims["cnf"] = {"jkt": thumbprint(dpop_jwk(dpop_key(dpop_key_file)))}
    return jwt.encode(claims, signing_key(data_dir), algorithm="RS256", headers={"kid": DEV_KID})


def dev_issuer(data_dir: Path) -> Issuer:
    """The development issuer, verified through its JWKS like any other."""
    signing_key(data_dir)
    return Issuer(DEV_ISSUER, AUDIENCE, KeySet.from_file(jwks_path(data_dir)))


class Authenticator:
    """Verifies the credentials of a request and says who the caller is.

    A verified token is remembered until it expires: a journal system sends the same token
    for many requests, and a signature check costs more than the list read itself. DPoP
    proofs are checked on every request (each is single-use).
    """

    CACHE_SIZE = 10_000
    #: a verified token is checked again after this many seconds even if it lives longer,
    #: so a withdrawn issuer key stops being honoured within minutes
    CACHE_SECONDS = 300

    def __init__(
        self,
        issuers: list[Issuer],
        *,
        allow_bearer: bool = True,
        required_scope: str | None = None,
        dpop: DPoPVerifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` (seconds since the epoch) says when a remembered token has expired; a
        test moves it instead of waiting."""
        self.issuers = {i.issuer: i for i in issuers}
        self.clock = clock
        self.allow_bearer = allow_bearer
        self.required_scope = required_scope
        self.dpop = dpop or DPoPVerifier()
        self._cache: dict[str, tuple[Caller, str | None]] = {}
        self._lock = threading.Lock()

    def authenticate(
        self, authorization: str | None, proof: str | None, method: str, url: str
    ) -> Caller:
        """The caller, from the ``Authorization`` and ``DPoP`` headers of a request to
        ``method`` ``url``; :class:`Unauthenticated` (401) or :class:`Forbidden` (403)."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        scheme = scheme.lower()
        if scheme not in ("bearer", "dpop") or not token:
            raise Unauthenticated(
                "Send an access token: Authorization: DPoP <token> with a DPoP proof, or "
                "Bearer <token> (`pll token` makes one for development)."
            )
        caller, jkt = self._verify(token)
        if scheme == "dpop":
            if not proof:
                raise Unauthenticated("A DPoP token needs a DPoP proof header.", "DPoP")
            if jkt is None:
                raise Unauthenticated(
                    "This token is not bound to a DPoP key (no cnf.jkt); send it as Bearer."
                )
            self.dpop.verify(proof, method=method, url=url, access_token=token, jkt=jkt)
        elif jkt is not None:
            raise Unauthenticated(
                "This token is bound to a DPoP key: send it as Authorization: DPoP with a "
                "DPoP proof (RFC 9449 §7.1)."
            )
        elif not self.allow_bearer:
            raise Unauthenticated("Bearer tokens are not accepted here; use DPoP (RFC 9449).")
        return caller

    def remembered(self, authorization: str | None, proof: str | None) -> Caller | None:
        """The caller :meth:`authenticate` would find, when that needs neither a signature
        check nor a key fetch nor a DPoP proof: a Bearer token verified lately, and still
        valid. ``None`` when :meth:`authenticate` has work to do (or would refuse)."""
        scheme, _, token = (authorization or "").partition(" ")
        if proof is not None or scheme.lower() != "bearer" or not self.allow_bearer:
            return None
        hit = self._cache.get(token.strip())
        if hit is None or hit[1] is not None or time.time() >= hit[0].expires:
            return None
        return hit[0]

    def _verify(self, token: str) -> tuple[Caller, str | None]:
        hit = self._cache.get(token)
        if hit is not None and self.clock() < hit[0].expires:
            return hit
        claims = verify_token(token, self.issuers)
        until = min(float(claims["exp"]), self.clock() + self.CACHE_SECONDS)
        caller = Caller(*_who(claims), until)
        scopes = str(claims.get("scope", "")).split()
        if self.required_scope and self.required_scope not in scopes:
            raise Forbidden(f"The access token lacks the scope {self.required_scope!r}.")
        cnf = claims.get("cnf")
        jkt = str(cnf["jkt"]) if isinstance(cnf, dict) and cnf.get("jkt") else None
        with self._lock:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[token] = (caller, jkt)
        return caller, jkt


def _who(claims: dict[str, Any]) -> tuple[Author, str | None]:
    client_id = claims.get("client_id")
    client = str(client_id) if client_id else None
    hpr = claims.get(CLAIM_HPR)
    if hpr:
        hpr = str(hpr)
        if not hpr.isascii() or not hpr.isdigit():
            raise Unauthenticated("The token's HPR number is not a number.")
        hpr = hpr.lstrip("0") or "0"  # as blocks store it (pll.fhir.access.normal_hpr)
        role = _role(claims.get(CLAIM_HPR_DETAILS))
        if role is None:
            raise Forbidden(
                "The token's HPR number holds no authorised profession (hpr_details.approvals)."
            )
        org = claims.get(CLAIM_ORG_CHILD) or claims.get(CLAIM_ORG_PARENT)
        return Author(
            name=str(claims.get("name", "")),
            role=role,
            hpr=str(hpr),
            org_id=str(org) if org else None,
            org_name=claims.get(CLAIM_ORG_NAME),
        ), client
    pid = claims.get(CLAIM_PID)
    if pid:
        if str(claims.get(CLAIM_SECURITY_LEVEL)) != "4":
            raise Forbidden(
                "A patient must log in at security level 4 (ID-porten high) to see a "
                "medication list."
            )
        name = str(claims.get("name", "Pasient"))
        return Author(name=name, role=Role.PATIENT, pid=str(pid)), client
    scopes = str(claims.get("scope", "")).split()
    org = claims.get(CLAIM_ORG_CHILD) or claims.get(CLAIM_ORG_PARENT)
    if OPERATIONS_SCOPE in scopes:
        if not org:
            raise Forbidden(
                "An operator's token must name the organisation it acts for (orgnr_parent)."
            )
        name = str(claims.get(CLAIM_ORG_NAME) or claims.get("name") or client or "Drift")
        return Author(name=name, role=Role.OPERATOR, org_id=str(org), org_name=name), client
    if ROLLOUT_SCOPE in scopes:
        name = str(claims.get("name") or client or "Innføringsteamet")
        where = claims.get(CLAIM_ORG_NAME)
        return Author(
            name=name,
            role=Role.ROLLOUT,
            org_id=str(org) if org else None,
            org_name=str(where) if where else None,
        ), client
    raise Unauthenticated(
        "The token names neither a health worker (HPR number) nor a person, nor is it an "
        f"operator's (scope {OPERATIONS_SCOPE} with an organisation number) or the rollout "
        f"team's (scope {ROLLOUT_SCOPE})."
    )


def _role(details: Any) -> Role | None:
    if isinstance(details, str):
        # HelseID sends structured claims as JSON text.
        try:
            details = orjson.loads(details)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(details, dict):
        return None
    held = {
        str(a["profession"])
        for a in details.get("approvals") or []
        if isinstance(a, dict) and a.get("profession")
    }
    if not held:
        return None
    return next((role for code, role in PROFESSIONS.items() if code in held), OTHER_PROFESSION)
