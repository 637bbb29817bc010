"""Access tokens: HelseID claims become callers; DPoP binding; what is refused."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pll.auth.dpop import make_proof
from pll.auth.jwks import Issuer, KeySet, public_jwk
from pll.auth.tokens import (
    CLAIM_HPR,
    CLAIM_HPR_DETAILS,
    CLAIM_ORG_CHILD,
    CLAIM_ORG_PARENT,
    CLAIM_PID,
    CLAIM_SECURITY_LEVEL,
    OPERATIONS_SCOPE,
    Authenticator,
    dev_issuer,
    dpop_key,
    hpr_details,
    issue,
)
from pll.domain.errors import Forbidden, Unauthenticated
from pll.domain.model import Role

URL = "http://pll.test/fhir/List"


def _auth(tmp_path: Path, **kwargs: Any) -> Authenticator:
    return Authenticator([dev_issuer(tmp_path)], **kwargs)


def _bearer(auth: Authenticator, token: str) -> Any:
    return auth.authenticate(f"Bearer {token}", None, "GET", URL)


def test_personas_become_callers(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    gp = _bearer(auth, issue(tmp_path, "gp")).actor
    assert (gp.role, gp.hpr, gp.org_id) == (Role.DOCTOR, "9144889", "974600951")
    assert _bearer(auth, issue(tmp_path, "nurse")).actor.role is Role.NURSE
    assert _bearer(auth, issue(tmp_path, "pharmacist")).actor.role is Role.PHARMACIST
    assert _bearer(auth, issue(tmp_path, "other-pharmacist")).actor.role is Role.PHARMACIST
    patient = _bearer(auth, issue(tmp_path, "patient", "17855116340"))
    assert (patient.actor.role, patient.actor.pid) == (Role.PATIENT, "17855116340")
    assert patient.client_id == "pll-dev-client"
    proxy = _bearer(auth, issue(tmp_path, "proxy")).actor
    assert (proxy.role, proxy.pid) == (Role.PATIENT, "09857215521")


def _signed(tmp_path: Path, claims: dict[str, Any]) -> tuple[Authenticator, str]:
    """A token from a second, HelseID-like issuer with its own key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = Issuer(
        "https://helseid.test", "nhn:pll", KeySet.from_jwks({"keys": [public_jwk(key, "k1")]})
    )
    now = int(time.time())
    base = {"iss": "https://helseid.test", "aud": "nhn:pll", "iat": now, "exp": now + 300}
    token = jwt.encode(base | claims, key, algorithm="RS256", headers={"kid": "k1"})
    return Authenticator([dev_issuer(tmp_path), issuer]), token


def test_helseid_claims_are_mapped(tmp_path: Path) -> None:
    details = orjson.dumps(hpr_details("565501872", "LE")).decode()  # HelseID sends JSON text
    auth, token = _signed(
        tmp_path,
        {
            CLAIM_HPR: "565501872",
            CLAIM_HPR_DETAILS: details,
            CLAIM_PID: "13116900216",
            CLAIM_SECURITY_LEVEL: "4",
            CLAIM_ORG_PARENT: "983974724",
            CLAIM_ORG_CHILD: "974557746",
            "client_id": "journal-x",
            "scope": "openid nhn:pll/api",
            "name": "Lege Legesen",
        },
    )
    caller = _bearer(auth, token)
    assert caller.actor.role is Role.DOCTOR
    assert (caller.actor.hpr, caller.actor.org_id, caller.client_id) == (
        "565501872",
        "974557746",  # the child organisation (the department) the doctor acts for
        "journal-x",
    )
    assert caller.actor.pid is None  # a health worker is never taken for a patient


@pytest.mark.parametrize(
    ("professions", "role"),
    [
        (["TL"], Role.DENTIST),
        (["JO"], Role.MIDWIFE),
        # a midwife is nearly always a nurse too: she prescribes as a midwife
        (["SP", "JO"], Role.MIDWIFE),
        # a doctor who is also a dentist prescribes as a doctor
        (["TL", "LE"], Role.DOCTOR),
        # any other profession: other health personnel, who read (issue 18)
        (["PS"], Role.HEALTH_WORKER),
        (["FT"], Role.HEALTH_WORKER),
    ],
)
def test_hpr_professions_map_to_roles(tmp_path: Path, professions: list[str], role: Role) -> None:
    details = hpr_details("565501872", professions[0])
    details["approvals"] = [dict(details["approvals"][0], profession=code) for code in professions]
    auth, token = _signed(tmp_path, {CLAIM_HPR: "565501872", CLAIM_HPR_DETAILS: details})
    assert _bearer(auth, token).actor.role is role


def test_a_health_worker_without_an_authorised_profession_is_refused(tmp_path: Path) -> None:
    details = hpr_details("565501872", "PS")
    details["approvals"] = []
    auth, token = _signed(tmp_path, {CLAIM_HPR: "565501872", CLAIM_HPR_DETAILS: details})
    with pytest.raises(Forbidden, match="authorised profession"):
        _bearer(auth, token)


def test_a_patient_needs_security_level_4(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    with pytest.raises(Forbidden, match="security level 4"):
        _bearer(auth, issue(tmp_path, "patient", "17855116340", security_level="3"))


def test_a_required_scope_is_enforced(tmp_path: Path) -> None:
    token = issue(tmp_path, "gp")
    assert _bearer(_auth(tmp_path, required_scope="nhn:pll/api"), token)
    with pytest.raises(Forbidden, match="scope"):
        _bearer(_auth(tmp_path, required_scope="nhn:other/api"), token)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Send an access token"),
        ("Basic dXNlcjpwdw==", "Send an access token"),
        ("Bearer ", "Send an access token"),
        ("Bearer not.a.jwt", "access token"),
    ],
)
def test_missing_or_malformed_credentials(tmp_path: Path, header: str | None, message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        _auth(tmp_path).authenticate(header, None, "GET", URL)


def test_expired_wrong_audience_and_foreign_key_are_refused(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    with pytest.raises(Unauthenticated, match="expired"):
        _bearer(auth, issue(tmp_path, "gp", ttl=-120))
    with pytest.raises(Unauthenticated, match="audience"):
        _bearer(auth, issue(tmp_path, "gp", audience="someone-else"))
    with pytest.raises(Unauthenticated, match="signature"):
        _bearer(auth, issue(tmp_path / "other", "gp"))


def test_alg_none_is_refused(tmp_path: Path) -> None:
    good = issue(tmp_path, "gp")
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        _bearer(_auth(tmp_path), f"{header}.{good.split('.')[1]}.")


def test_a_remembered_token_still_expires(tmp_path: Path) -> None:
    token = issue(tmp_path, "gp", ttl=2)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    now = [expires - 2.0]  # the authenticator's clock, moved instead of waited for
    auth = _auth(tmp_path, clock=lambda: now[0])
    first = _bearer(auth, token)
    assert _bearer(auth, token) is first  # remembered, not verified again
    now[0] = expires - 0.1
    assert _bearer(auth, token) is first
    now[0] = expires + 0.1
    # past exp but inside the issuer's clock-skew leeway: verified again, not served stale
    assert _bearer(auth, token) is not first


def test_only_a_verified_bearer_token_is_known_without_work(tmp_path: Path) -> None:
    """What the API may decide on the event loop (pll.api.http.endpoint): a Bearer token
    verified lately and still valid; anything else is authenticated in a thread."""
    auth = _auth(tmp_path)
    token = issue(tmp_path, "gp", ttl=2)
    assert auth.remembered(f"Bearer {token}", None) is None  # never verified
    first = _bearer(auth, token)
    assert auth.remembered(f"Bearer {token}", None) is first
    assert auth.remembered(f"bearer  {token}", None) is first
    assert auth.remembered(f"Bearer {token}", "a proof") is None
    assert auth.remembered(f"DPoP {token}", None) is None
    assert auth.remembered(None, None) is None
    bound = issue(tmp_path, "gp", dpop_key_file=tmp_path / "client-dpop.pem")
    key = dpop_key(tmp_path / "client-dpop.pem")
    auth.authenticate(
        f"DPoP {bound}", make_proof(key, method="GET", url=URL, access_token=bound), "GET", URL
    )
    assert auth.remembered(f"Bearer {bound}", None) is None  # bound to a key: needs its proof
    assert _auth(tmp_path, allow_bearer=False).remembered(f"Bearer {token}", None) is None
    time.sleep(2.1)
    assert auth.remembered(f"Bearer {token}", None) is None  # expired: verified again


def test_dpop_bound_tokens(tmp_path: Path) -> None:
    key_file = tmp_path / "client-dpop.pem"
    token = issue(tmp_path, "gp", dpop_key_file=key_file)
    key = dpop_key(key_file)
    auth = _auth(tmp_path)
    proof = make_proof(key, method="GET", url=URL, access_token=token)
    assert auth.authenticate(f"DPoP {token}", proof, "GET", URL).actor.hpr == "9144889"
    with pytest.raises(Unauthenticated, match="used before"):
        auth.authenticate(f"DPoP {token}", proof, "GET", URL)
    with pytest.raises(Unauthenticated, match="bound to a DPoP key"):
        auth.authenticate(f"Bearer {token}", None, "GET", URL)
    with pytest.raises(Unauthenticated, match="needs a DPoP proof"):
        auth.authenticate(f"DPoP {token}", None, "GET", URL)
    other = make_proof(dpop_key(tmp_path / "stolen.pem"), method="GET", url=URL, access_token=token)
    with pytest.raises(Unauthenticated):
        auth.authenticate(f"DPoP {token}", other, "GET", URL)


def test_an_unbound_token_cannot_pose_as_dpop(tmp_path: Path) -> None:
    token = issue(tmp_path, "gp")
    proof = make_proof(dpop_key(tmp_path / "k.pem"), method="GET", url=URL, access_token=token)
    with pytest.raises(Unauthenticated, match="not bound"):
        _auth(tmp_path).authenticate(f"DPoP {token}", proof, "GET", URL)


def test_bearer_can_be_turned_off(tmp_path: Path) -> None:
    with pytest.raises(Unauthenticated, match="use DPoP"):
        _bearer(_auth(tmp_path, allow_bearer=False), issue(tmp_path, "gp"))


def test_an_operator_is_a_system_token_with_the_operations_scope(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    operator = _bearer(auth, issue(tmp_path, "operator"))
    assert operator.actor.role is Role.OPERATOR
    assert (operator.actor.org_id, operator.actor.hpr, operator.actor.pid) == (
        "999000010",
        None,
        None,
    )
    assert operator.client_id == "demo-journal"
    # a HelseID client-credentials token: no person, the scope, the organisation
    auth, token = _signed(
        tmp_path,
        {CLAIM_ORG_PARENT: "999000029", "client_id": "vendor-ops", "scope": OPERATIONS_SCOPE},
    )
    assert _bearer(auth, token).actor.org_id == "999000029"
    auth, token = _signed(tmp_path, {"client_id": "vendor-ops", "scope": OPERATIONS_SCOPE})
    with pytest.raises(Forbidden, match="organisation"):
        _bearer(auth, token)
    # a system token without the scope is no one
    auth, token = _signed(
        tmp_path, {CLAIM_ORG_PARENT: "999000029", "client_id": "x", "scope": "nhn:pll/api"}
    )
    with pytest.raises(Unauthenticated, match="operator"):
        _bearer(auth, token)
