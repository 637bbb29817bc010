"""Development tokens: what is accepted, what is refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pll.auth.tokens import Unauthenticated, Verifier, issue
from pll.domain.model import Role


def test_personas_become_authors(tmp_path: Path) -> None:
    verifier = Verifier(tmp_path)
    gp = verifier.verify(issue(tmp_path, "gp"))
    assert (gp.role, gp.hpr, gp.org_id) == (Role.DOCTOR, "9144889", "974600951")
    assert verifier.verify(issue(tmp_path, "nurse")).role is Role.NURSE
    assert verifier.verify(issue(tmp_path, "pharmacist")).role is Role.PHARMACIST
    patient = verifier.verify(issue(tmp_path, "patient", "17855116340"))
    assert (patient.role, patient.pid) == (Role.PATIENT, "17855116340")


def test_expired_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Unauthenticated, match="expired"):
        Verifier(tmp_path).verify(issue(tmp_path, "gp", ttl=-60))


def test_token_from_another_key_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    with pytest.raises(Unauthenticated, match="Signature"):
        Verifier(tmp_path).verify(issue(other, "gp"))


def test_unsigned_token_is_refused(tmp_path: Path) -> None:
    good = issue(tmp_path, "gp")
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        .rstrip(b"=")
        .decode()
    )
    unsigned = f"{header}.{good.split('.')[1]}."
    with pytest.raises(Unauthenticated):
        Verifier(tmp_path).verify(unsigned)


def test_a_remembered_token_is_still_checked_for_expiry(tmp_path: Path) -> None:
    verifier = Verifier(tmp_path)
    token = issue(tmp_path, "gp", ttl=-20)  # expired, but within the clock-skew leeway
    author = verifier.verify(token)
    assert verifier.verify(token) is author  # remembered
    verifier.LEEWAY = 0  # no more leeway: the remembered token must not outlive its expiry
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token)
