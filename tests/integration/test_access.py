"""Who may see and change a list (DESIGN §3 rules 4 and 5), over real HTTP on both databases.

The matrix runs every persona through the same operations and checks the status and the
audit record each access to patient data leaves: who, for which organisation, on which
basis, with what outcome.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa

from pll.api.app import create_app
from pll.auth.dpop import make_proof
from pll.auth.tokens import (
    CLAIM_HPR,
    CLAIM_HPR_DETAILS,
    DEV_KID,
    dpop_key,
    hpr_details,
    issue,
    signing_key,
)
from pll.services.access import register_proxy
from pll.store.schema import audit_event
from tests.conftest import LiveServer, server_settings, serving
from tests.integration.builders import (
    DRUGS,
    block_consent,
    new_fnr,
    ok,
    outcome_text,
    patient,
    statement,
)

HPR = "urn:oid:2.16.578.1.12.4.1.4.4"
GP_HPR = "9144889"
STRANGER = "17855116340"


@dataclass
class Scene:
    pid: str
    fnr: str
    list_id: str
    entry: dict[str, Any]


@pytest.fixture
def scene(server: LiveServer) -> Scene:
    """A patient with a PLL holding one entry, and a registered proxy holder."""
    fnr = new_fnr()
    with server.client() as gp:
        pid = ok(gp.post("/fhir/Patient", json=patient(fnr)), 201)["id"]
        lst = ok(
            gp.post(
                "/fhir/List",
                json={
                    "resourceType": "List",
                    "status": "current",
                    "mode": "working",
                    "subject": {"reference": f"Patient/{pid}"},
                },
            ),
            201,
        )
        entry = ok(
            gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[0])), 201
        )
    register_proxy(server.db, "09857215521", fnr, add=True)
    return Scene(pid, fnr, lst["id"], entry)


def records(server: LiveServer) -> list[Any]:
    with server.db.read() as conn:
        return list(conn.execute(sa.select(audit_event).order_by(audit_event.c.id)).all())


def _client(server: LiveServer, who: str, scene: Scene, basis: str | None) -> httpx.Client:
    if who in ("patient", "another-patient"):
        return server.client("patient", scene.fnr if who == "patient" else STRANGER)
    return server.client(who, basis=basis)


def _read(client: httpx.Client, scene: Scene, op: str) -> httpx.Response:
    if op == "read":
        return client.get("/fhir/List", params={"patient": scene.pid, "_include": "List:item"})
    if op == "history":
        return client.get(f"/fhir/List/{scene.list_id}/_history")
    return client.get("/fhir/AuditEvent", params={"patient": scene.pid})


def _write(client: httpx.Client, server: LiveServer, scene: Scene) -> tuple[httpx.Response, int]:
    """A dose change on the entry's current version; returns the response and how many
    audit records there were just before it (the gp's lookup of the version comes first)."""
    with server.client() as gp:
        body = ok(gp.get(f"/fhir/MedicationStatement/{scene.entry['id']}"))
    before = len(records(server))
    dose = body["dosage"][0]["doseAndRate"][0]["doseQuantity"]
    dose["value"] = 3 - dose["value"]  # 1 <-> 2
    r = client.put(
        f"/fhir/MedicationStatement/{scene.entry['id']}",
        json=body,
        headers={"If-Match": f'W/"{body["meta"]["versionId"]}"'},
    )
    return r, before


T = "HPBEHANDLINGSRELASJON"
#: persona, basis, then the status of read / history / write / access log
MATRIX = [
    ("gp", T, 200, 200, 200, 403),
    ("hospital-doctor", "HPAKUTT", 200, 200, 200, 403),
    ("hospital-doctor", "HPMOTTATTSAMTYKKE", 200, 200, 200, 403),
    ("nurse", "HPUNNTAK", 200, 200, 403, 403),
    ("pharmacist", T, 200, 200, 403, 403),
    ("other-pharmacist", T, 200, 200, 403, 403),
    ("patient", None, 200, 200, 403, 200),
    ("proxy", None, 200, 200, 403, 200),
    ("another-patient", None, 403, 403, 403, 403),
    ("gp", None, 403, 403, 403, 403),  # no basis, no data
]


@pytest.mark.parametrize(("who", "basis", "read", "history", "write", "log"), MATRIX)
def test_access_matrix(
    server: LiveServer,
    scene: Scene,
    who: str,
    basis: str | None,
    read: int,
    history: int,
    write: int,
    log: int,
) -> None:
    expected = {"read": read, "history": history, "write": write, "log": log}
    for op, status in expected.items():
        with _client(server, who, scene, basis) as client:
            if op == "write":
                r, before = _write(client, server, scene)
            else:
                before = len(records(server))
                r = _read(client, scene, op)
        assert r.status_code == status, f"{who} {op}: {r.status_code} {r.text[:300]}"
        if status == 403:
            text = outcome_text(r)
            assert scene.fnr not in text
            assert scene.pid not in text
        new = records(server)[before:]
        assert len(new) == 1, f"{who} {op}: expected one audit record, got {new}"
        rec = new[0]
        assert rec.patient_id == scene.pid
        assert rec.outcome == ("0" if status == 200 else "4")
        assert rec.mac  # sealed with its MAC when written
        persons = ("patient", "proxy", "another-patient")
        assert rec.basis == (None if who in persons else basis)
        if who in persons:
            assert '"role":"patient"' in rec.actor
        else:
            assert '"hpr":' in rec.actor
            assert '"org_id":' in rec.actor
            assert '"client_id":"pll-dev-client"' in rec.actor


# -- tokens that are refused: 401, and nothing about any patient is touched ----------------


def _forged(server: LiveServer, **changes: Any) -> str:
    """A gp token with some claims changed, signed by the development key (or ``key``)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "pll-dev",
        "aud": "pll",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "name": "Kari Fastlege",
        CLAIM_HPR: GP_HPR,
        CLAIM_HPR_DETAILS: hpr_details(GP_HPR, "LE"),
    }
    key = changes.pop("key", None) or signing_key(server.data_dir)
    claims.update(changes)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": DEV_KID})


def _unsigned(server: LiveServer) -> str:
    import base64

    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{header}.{_forged(server).split('.')[1]}."


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "Send an access token"),
        ("expired", "expired"),
        ("wrong audience", "audience"),
        ("wrong issuer", "issuer"),
        ("bad signature", "signature"),
        ("alg none", "algorithm"),
    ],
)
def test_refused_tokens(server: LiveServer, scene: Scene, case: str, message: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    tokens = {
        "missing": None,
        "expired": _forged(server, exp=int(time.time()) - 600),
        "wrong audience": _forged(server, aud="another-api"),
        "wrong issuer": _forged(server, iss="https://helseid-sts.example"),
        "bad signature": _forged(
            server, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "alg none": _unsigned(server),
    }
    token = tokens[case]
    headers = {"X-PLL-Access-Basis": T}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    before = len(records(server))
    r = httpx.get(
        f"{server.base}/fhir/List",
        params={"patient": scene.pid, "_include": "List:item"},
        headers=headers,
    )
    assert r.status_code == 401
    assert message.lower() in outcome_text(r).lower()
    assert "DPoP" in r.headers["WWW-Authenticate"]
    assert len(records(server)) == before  # no identity, no patient data, nothing to log


# -- blocks ----------------------------------------------------------------------------------


def _block(hpr: str, pid: str) -> dict[str, Any]:
    return block_consent(hpr, pid, "Kari Fastlege")


def test_a_blocked_worker_is_refused_except_in_an_emergency(
    server: LiveServer, scene: Scene
) -> None:
    with server.client("patient", scene.fnr) as me:
        block = ok(me.post("/fhir/Consent", json=_block(GP_HPR, scene.pid)), 201)
        assert block["status"] == "active"
        assert ok(me.get("/fhir/Consent", params={"patient": scene.pid}))["total"] == 1
    with server.client("gp") as gp:
        r = gp.get("/fhir/List", params={"patient": scene.pid, "_include": "List:item"})
        assert r.status_code == 403
        assert "blocked" in outcome_text(r)
        assert "HPAKUTT" in outcome_text(r)
        r = gp.get(f"/fhir/MedicationStatement/{scene.entry['id']}")
        assert r.status_code == 403
    # another doctor is not affected
    with server.client("hospital-doctor") as other:
        ok(other.get("/fhir/List", params={"patient": scene.pid, "_include": "List:item"}))
    # in an emergency the blocked doctor gets the list; the access is flagged
    with server.client("gp", basis="HPAKUTT") as gp:
        ok(gp.get("/fhir/List", params={"patient": scene.pid, "_include": "List:item"}))
        ok(gp.get(f"/fhir/List/{scene.list_id}"))
    flagged = [r for r in records(server) if r.flag]
    assert [(r.flag, r.basis, r.outcome) for r in flagged] == [
        ("emergency-override-of-block", "HPAKUTT", "0")
    ] * 2
    # ... and the patient sees it, and the refusals, in the access log
    with server.client("patient", scene.fnr) as me:
        log = ok(me.get("/fhir/AuditEvent", params={"patient": scene.pid, "_count": 100}))
        events = [e["resource"] for e in log["entry"]]
        emergency = [e for e in events if e.get("meta", {}).get("tag")]
        assert len(emergency) == 2
        assert "Nødtilgang" in emergency[0]["outcomeDesc"]
        assert emergency[0]["purposeOfEvent"][0]["coding"][0]["code"] == "HPAKUTT"
        assert emergency[0]["agent"][0]["who"]["identifier"]["value"] == GP_HPR
        refused = [e for e in events if e["outcome"] == "4"]
        assert len(refused) == 2
        # unblocking ends the block and keeps it on record
        ended = ok(me.delete(f"/fhir/Consent/{block['id']}"))
        assert ended["status"] == "inactive"
        assert "end" in ended["provision"]["period"]
    with server.client("gp") as gp:
        ok(gp.get("/fhir/List", params={"patient": scene.pid, "_include": "List:item"}))


def test_blocks_are_the_patients_own(server: LiveServer, scene: Scene) -> None:
    with server.client("gp") as gp:
        r = gp.post("/fhir/Consent", json=_block("9144897", scene.pid))
        assert r.status_code == 403
        assert "patient's own" in outcome_text(r)
    with server.client("patient", STRANGER) as stranger:
        assert stranger.post("/fhir/Consent", json=_block(GP_HPR, scene.pid)).status_code == 403
        r = stranger.get("/fhir/AuditEvent", params={"patient": scene.pid})
        assert r.status_code == 403
    with server.client("proxy") as proxy:  # a proxy acts for the patient
        ok(proxy.post("/fhir/Consent", json=_block("9144897", scene.pid)), 201)
    with server.client("patient", scene.fnr) as me:
        again = me.post("/fhir/Consent", json=_block("9144897", scene.pid))
        assert again.status_code == 409


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"provision": {"type": "permit"}}, "Consent.provision.type"),
        ({"provision": {"type": "deny", "actor": []}}, "Consent.provision.actor"),
        (
            {
                "provision": {
                    "type": "deny",
                    "actor": [
                        {
                            "role": {"coding": [{"code": "PRCP"}]},
                            "reference": {"identifier": {"system": HPR, "value": "12ab"}},
                        }
                    ],
                }
            },
            "Consent.provision.actor[0].reference.identifier",
        ),
        ({"patient": {"reference": "Group/1"}}, "Consent.patient"),
        ({"status": "rejected"}, "Consent.status"),
    ],
)
def test_bad_blocks_are_refused(
    server: LiveServer, scene: Scene, change: dict[str, Any], where: str
) -> None:
    with server.client("patient", scene.fnr) as me:
        r = me.post("/fhir/Consent", json=_block(GP_HPR, scene.pid) | change)
    assert r.status_code == 400, r.text
    assert where in [e for i in r.json()["issue"] for e in i.get("expression", [])]
    with server.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM access_block")).scalar_one() == 0


# -- patients and proxies ----------------------------------------------------------------------


def test_a_proxy_reads_by_fodselsnummer_and_a_stranger_learns_nothing(
    server: LiveServer, scene: Scene
) -> None:
    params = {"patient.identifier": f"urn:oid:2.16.578.1.12.4.1.4.1|{scene.fnr}"}
    with server.client("proxy") as proxy:
        doc = ok(proxy.get("/fhir/List", params=params | {"_include": "List:item"}))
        assert doc["entry"][0]["resource"]["id"] == scene.list_id
    with server.client("patient", STRANGER) as stranger:
        existing = stranger.get("/fhir/List", params=params)
        nobody = stranger.get(
            "/fhir/List",
            params={"patient.identifier": f"urn:oid:2.16.578.1.12.4.1.4.1|{new_fnr()}"},
        )
    assert existing.status_code == nobody.status_code == 403
    assert existing.json() == nobody.json()
    register_proxy(server.db, "09857215521", scene.fnr, add=False)
    with server.client("proxy") as proxy:
        assert proxy.get("/fhir/List", params=params).status_code == 403


def test_the_access_log_is_valid_fhir_and_names_who_and_why(
    server: LiveServer, scene: Scene
) -> None:
    from fhir.resources.R4B.auditevent import AuditEvent

    with server.client("nurse", basis="HPMOTTATTSAMTYKKE") as nurse:
        ok(nurse.get(f"/fhir/List/{scene.list_id}"))
    with server.client("patient", scene.fnr) as me:
        log = ok(me.get("/fhir/AuditEvent", params={"patient": f"Patient/{scene.pid}"}))
    newest = log["entry"][0]["resource"]
    AuditEvent.model_validate(newest)
    assert newest["agent"][0]["who"]["display"] == "Siri Sykepleier"
    assert newest["agent"][1]["who"]["identifier"]["value"] == "964338531"
    assert newest["purposeOfEvent"][0]["coding"][0]["code"] == "HPMOTTATTSAMTYKKE"
    assert newest["entity"][1]["what"]["reference"] == f"List/{scene.list_id}"
    # the gp's registration and changes are in the log too, oldest last
    assert log["total"] >= 4
    assert log["entry"][-1]["resource"]["action"] == "C"


def test_an_unknown_basis_is_refused(server: LiveServer, scene: Scene) -> None:
    with server.client("gp", basis="BECAUSE") as gp:
        r = gp.get(f"/fhir/List/{scene.list_id}")
    assert r.status_code == 400
    assert "HPAKUTT" in outcome_text(r)


# -- DPoP over HTTP --------------------------------------------------------------------------


def test_dpop_bound_token_over_http(server: LiveServer, scene: Scene, tmp_path: Any) -> None:
    key_file = tmp_path / "dpop.pem"
    token = issue(server.data_dir, "gp", dpop_key_file=key_file)
    key = dpop_key(key_file)
    url = f"{server.base}/fhir/List/{scene.list_id}"

    def get(proof: str | None, target: str = url) -> httpx.Response:
        headers = {"Authorization": f"DPoP {token}", "X-PLL-Access-Basis": T}
        if proof:
            headers["DPoP"] = proof
        return httpx.get(target, headers=headers)

    proof = make_proof(key, method="GET", url=url, access_token=token)
    assert get(proof).status_code == 200
    replayed = get(proof)
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in replayed.headers["WWW-Authenticate"]
    assert get(make_proof(key, method="GET", url=url + "x", access_token=token)).status_code == 401
    assert get(make_proof(key, method="POST", url=url, access_token=token)).status_code == 401
    stale = make_proof(key, method="GET", url=url, access_token=token, iat=int(time.time()) - 600)
    assert get(stale).status_code == 401
    assert get(make_proof(key, method="GET", url=url)).status_code == 401  # no ath
    other = dpop_key(tmp_path / "other.pem")
    assert get(make_proof(other, method="GET", url=url, access_token=token)).status_code == 401
    # a query string is not part of htu
    search = f"{server.base}/fhir/List"
    fresh = make_proof(key, method="GET", url=search, access_token=token)
    r = get(fresh, f"{search}?patient={scene.pid}")
    assert r.status_code == 200, r.text
    # the bound token cannot be used as a plain bearer token
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}", "X-PLL-Access-Basis": T})
    assert r.status_code == 401


def test_dev_jwks_is_served(server: LiveServer) -> None:
    jwks = ok(httpx.get(f"{server.base}/dev/jwks.json"))
    assert [k["kid"] for k in jwks["keys"]] == [DEV_KID]
    assert "d" not in jwks["keys"][0]


# -- what the review found: refusals before lookups, one record per access, htu -------------


def test_a_block_matches_however_the_hpr_number_is_written(
    server: LiveServer, scene: Scene
) -> None:
    with server.client("patient", scene.fnr) as me:
        block = ok(me.post("/fhir/Consent", json=_block("0" + GP_HPR, scene.pid)), 201)
    assert block["provision"]["actor"][0]["reference"]["identifier"]["value"] == GP_HPR
    with server.client("gp") as gp:
        assert gp.get(f"/fhir/List/{scene.list_id}").status_code == 403


def test_without_a_basis_nobody_learns_who_is_registered(server: LiveServer, scene: Scene) -> None:
    unknown = new_fnr()
    before = len(records(server))
    answers = []
    for fnr in (scene.fnr, unknown):
        ident = f"urn:oid:2.16.578.1.12.4.1.4.1|{fnr}"
        with server.client("gp", basis=None) as gp:
            answers.append(gp.get("/fhir/Patient", params={"identifier": ident}))
            answers.append(gp.get("/fhir/List", params={"patient.identifier": ident}))
        with server.client("nurse") as nurse:
            subject = {"identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": fnr}}
            body = statement("Patient/x", *DRUGS[1]) | {"subject": subject}
            answers.append(nurse.post("/fhir/MedicationStatement", json=body))
    assert {r.status_code for r in answers} == {403}
    half = len(answers) // 2
    assert [r.json() for r in answers[:half]] == [r.json() for r in answers[half:]]
    assert len(records(server)) == before  # refused before any lookup: no patient touched


def test_a_search_by_fodselsnummer_is_logged_once(server: LiveServer, scene: Scene) -> None:
    ident = f"urn:oid:2.16.578.1.12.4.1.4.1|{scene.fnr}"
    with server.client("patient", scene.fnr) as me:
        before = len(records(server))
        ok(me.get("/fhir/AuditEvent", params={"patient.identifier": ident}))
        assert len(records(server)) == before + 1
    with server.client("gp") as gp:
        before = len(records(server))
        ok(gp.get("/fhir/MedicationStatement", params={"patient.identifier": ident}))
        assert len(records(server)) == before + 1
        r = gp.get("/fhir/AuditEvent", params={"patient.identifier": ident})
        assert r.status_code == 403
        assert len(records(server)) == before + 1  # refused before the lookup


def test_a_patient_naming_someone_else_is_in_that_persons_log(
    server: LiveServer, scene: Scene
) -> None:
    with server.client("patient", STRANGER) as stranger:
        r = stranger.get(
            "/fhir/List",
            params={"patient.identifier": f"urn:oid:2.16.578.1.12.4.1.4.1|{scene.fnr}"},
        )
    assert r.status_code == 403
    tried = [rec for rec in records(server) if STRANGER in rec.actor]
    assert [(rec.patient_id, rec.outcome) for rec in tried] == [(scene.pid, "4")]


def test_an_overlong_provenance_version_is_not_found(server: LiveServer, scene: Scene) -> None:
    with server.client() as gp:
        r = gp.get(f"/fhir/Provenance/{scene.list_id}-99999999999999999999999")
    assert r.status_code == 404


def test_dpop_proofs_must_name_the_public_url(
    server: LiveServer, scene: Scene, tmp_path: Any
) -> None:
    """With PLL_PUBLIC_URL set, a proof made for another host is refused whatever Host
    header comes with it."""
    app = create_app(
        server_settings(server.data_dir, server.db, public_url="https://pll.example.no/"),
        server.service,
    )
    key_file = tmp_path / "dpop.pem"
    token = issue(server.data_dir, "gp", dpop_key_file=key_file)
    key = dpop_key(key_file)
    path = f"/fhir/List/{scene.list_id}"
    with serving(app) as base:

        def get(htu: str, host: str | None = None) -> int:
            headers = {
                "Authorization": f"DPoP {token}",
                "X-PLL-Access-Basis": T,
                "DPoP": make_proof(key, method="GET", url=htu, access_token=token),
            }
            if host:
                headers["Host"] = host
            return httpx.get(base + path, headers=headers).status_code

        assert get("https://pll.example.no" + path) == 200
        assert get(base + path) == 401
        assert get("http://evil.example" + path, host="evil.example") == 401


class _WatchedStore:
    """The server's replay record, noting whether each proof was recorded on the event loop."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.on_loop: list[bool] = []

    def remember(self, digest: bytes, expires: float, now: float) -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.on_loop.append(False)
        else:
            self.on_loop.append(True)
        return bool(self.store.remember(digest, expires, now))


def test_dpop_proofs_are_recorded_off_the_event_loop(
    server: LiveServer, scene: Scene, tmp_path: Any
) -> None:
    """Recording a proof is a database write: the hot read, whose handler stays on the event
    loop, must not make the loop wait for it."""
    app = create_app(server_settings(server.data_dir, server.db), server.service)
    watched = _WatchedStore(app.state.authenticator.dpop.shared)
    app.state.authenticator.dpop.shared = watched
    key_file = tmp_path / "dpop.pem"
    token = issue(server.data_dir, "gp", dpop_key_file=key_file)
    key = dpop_key(key_file)
    with serving(app) as base:
        # the List read's handler is a coroutine; its history's runs in a thread
        read = f"{base}/fhir/List/{scene.list_id}"
        headers = {"Authorization": f"DPoP {token}", "X-PLL-Access-Basis": T}
        proof = make_proof(key, method="GET", url=read, access_token=token)
        assert httpx.get(read, headers={**headers, "DPoP": proof}).status_code == 200
        history = f"{base}/fhir/List/{scene.list_id}/_history"
        proof = make_proof(key, method="GET", url=history, access_token=token)
        assert httpx.get(history, headers={**headers, "DPoP": proof}).status_code == 200
    assert watched.on_loop == [False, False]
