"""SMART EHR launch of the doctor pages (issue 18), over real HTTP on both databases.

A journal system registers a launch with its user's token and the patient it has open
(``POST /smart/launch``); the browser opens ``/launch?iss=…&launch=…`` and lands on that
patient's list, logged in as that user, on the basis the journal system stated. A launch
opens once, for minutes, at this server only; framing is allowed per client system
(``PLL_EMBED_ORIGINS``) and only for sessions that client launched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pll.api.app import create_app
from pll.auth.tokens import issue
from pll.services.launches import LIFETIME
from pll.store.schema import smart_launch
from pll.web.oidc import CALLBACK_PATH, OidcClient
from pll.web.oidc_key import ClientKey
from tests.conftest import Clock, LiveServer, server_settings, serving, snapshot
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import new_fnr, new_patient_with_list, outcome_text
from tests.integration.test_oidc import CLIENT_ID, Provider
from tests.integration.test_web import TOKEN, csrf, logged_in

TREATMENT = "HPBEHANDLINGSRELASJON"
CONSENT = "HPMOTTATTSAMTYKKE"


def register(
    base: str,
    token: str,
    patient: str,
    basis: str | None = TREATMENT,
    scheme: str = "Bearer",
) -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"}
    if basis is not None:
        headers["X-PLL-Access-Basis"] = basis
    return httpx.post(f"{base}/smart/launch", json={"patient": patient}, headers=headers)


def launch_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["launch"])


def browser(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30, follow_redirects=False)


def open_launch(client: httpx.Client, base: str, launch: str, **extra: str) -> httpx.Response:
    return client.get("/launch?" + urlencode({"iss": f"{base}/fhir", "launch": launch, **extra}))


def test_smart_configuration_is_served_at_the_server_and_the_fhir_base(
    server: LiveServer,
) -> None:
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        r = httpx.get(server.base + path)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        document = r.json()
        assert {"launch-ehr", "context-ehr-patient", "permission-user"} <= set(
            document["capabilities"]
        )
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert "authorization_code" in document["grant_types_supported"]
        assert document["launch_registration_endpoint"] == server.base + "/smart/launch"
        assert document["launch_url"] == server.base + "/launch"
        # development without HelseID: no authorization server to name
        assert "authorization_endpoint" not in document


def test_with_helseid_the_smart_configuration_names_its_endpoints(
    server: LiveServer, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "client-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    provider = Provider(key.public_key())
    with serving(provider.app()) as issuer:
        provider.base = issuer
        app = create_app(server_settings(server.data_dir, server.db), server.service)
        with serving(app) as base:
            web: Any = app.routes[-1].app  # the web UI, mounted last
            web.state.oidc = OidcClient(
                issuer, CLIENT_ID, ClientKey.load(key_file), base + CALLBACK_PATH
            )
            document = httpx.get(base + "/fhir/.well-known/smart-configuration").json()
    assert document["issuer"] == issuer
    assert document["authorization_endpoint"] == issuer + "/connect/authorize"
    assert document["token_endpoint"] == issuer + "/connect/token"
    assert document["jwks_uri"] == issuer + "/jwks"
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert {"launch-ehr", "sso-openid-connect", "client-confidential-asymmetric"} <= set(
        document["capabilities"]
    )


def test_a_launch_opens_the_patients_list_as_the_user_on_the_stated_basis(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    # consent: a basis the journal system states, unlike the treatment relationship the
    # scene was set up with, so the log shows which one the launched page read on
    r = register(server.base, server.token("gp"), scene.fnr, CONSENT)
    answer = r.json()
    assert r.status_code == 201
    assert answer["expires_in"] == LIFETIME.total_seconds()
    assert r.headers["cache-control"] == "no-store"
    url = urlsplit(answer["url"])
    assert url.path == "/launch"
    assert parse_qs(url.query) == {"iss": [f"{server.base}/fhir"], "launch": [answer["launch"]]}
    with browser(server.base) as frame:
        opened = frame.get(answer["url"].removeprefix(server.base))
        assert opened.status_code == 303
        assert opened.headers["location"] == f"/lege/pasient/{scene.pid}"
        # the used launch no longer holds the doctor's token (the login does)
        with server.db.read() as conn:
            kept = conn.execute(sa.select(smart_launch.c.token, smart_launch.c.used_at)).all()
        assert len(kept) == 1
        assert kept[0].token == ""
        assert kept[0].used_at is not None
        page = frame.get(opened.headers["location"])
        # no basis asked, no search: the list, with the patient and the user named
        assert page.status_code == 200, page.text
        assert METFORMIN[2] in page.text
        assert scene.fnr in page.text
        assert "Kari Fastlege" in page.text
        # the read was logged with the basis the journal system stated
        with server.client("patient", scene.fnr, basis=None) as own:
            events = own.get(f"/fhir/AuditEvent?patient={scene.pid}").json()
        reasons = {
            c.get("code")
            for e in events.get("entry", [])
            for p in e["resource"].get("purposeOfEvent", [])
            for c in p.get("coding", [])
        }
        assert CONSENT in reasons


def test_a_launch_names_its_patient_whatever_the_address_adds(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with server.client("gp") as gp:
        other, _ = new_patient_with_list(gp, new_fnr())
    launch = launch_id(register(server.base, server.token("gp"), scene.fnr))
    with browser(server.base) as frame:
        opened = open_launch(frame, server.base, launch, patient=other)
        assert opened.headers["location"] == f"/lege/pasient/{scene.pid}"
        # the other patient has no basis in this session: asked for, nothing read
        r = frame.get(f"/lege/pasient/{other}")
        assert r.status_code == 303
        assert r.headers["location"].startswith(f"/grunnlag/{other}")


@contextmanager
def nothing_opened(server: LiveServer, frame: httpx.Client) -> Iterator[None]:
    before = snapshot(server.db, audit=False)
    yield
    assert snapshot(server.db, audit=False) == before
    r = frame.get("/lege")
    assert r.status_code == 303
    assert r.headers["location"] == "/logg-inn"


def test_an_unknown_used_or_expired_launch_opens_nothing(server: LiveServer, clock: Clock) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    used = launch_id(register(server.base, server.token("gp"), scene.fnr))
    with browser(server.base) as first:
        assert open_launch(first, server.base, used).status_code == 303
    old = launch_id(register(server.base, server.token("gp"), scene.fnr))
    clock.advance(seconds=LIFETIME.total_seconds() + 1)
    cases = {
        "forged-" + used[7:]: "ikke gyldig",
        used: "allerede brukt",
        old: "for gammel",
    }
    for launch, said in cases.items():
        with browser(server.base) as frame, nothing_opened(server, frame):
            r = open_launch(frame, server.base, launch)
            assert r.status_code == 400
            assert said in r.text
            assert "Åpne pasientens legemiddelliste på nytt fra journalsystemet" in r.text
            assert scene.fnr not in r.text


def test_a_launch_for_another_server_or_without_its_code_opens_nothing(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    launch = launch_id(register(server.base, server.token("gp"), scene.fnr))
    with browser(server.base) as frame, nothing_opened(server, frame):
        r = frame.get(
            "/launch?" + urlencode({"iss": "https://pll.other.no/fhir", "launch": launch})
        )
        assert r.status_code == 400
        assert "en annen PLL-server" in r.text
        r = frame.get("/launch?" + urlencode({"iss": f"{server.base}/fhir"}))
        assert r.status_code == 400
        assert "mangler oppstartskoden" in r.text
    # refused for the wrong server, the launch was not used up
    with browser(server.base) as frame:
        assert open_launch(frame, server.base, launch).status_code == 303


@pytest.mark.parametrize(
    ("persona", "basis", "patient", "status", "said"),
    [
        ("pharmacist", TREATMENT, None, 403, "Only health personnel who use"),
        ("patient", None, None, 403, "Only health personnel who use"),
        ("gp", None, None, 400, "X-PLL-Access-Basis"),
        ("gp", "HPNOE", None, 400, "Unknown access basis"),
        ("gp", TREATMENT, "12345678901", 400, None),
        ("gp", TREATMENT, "", 400, "Name the patient"),
    ],
)
def test_a_launch_is_registered_only_by_health_personnel_for_a_known_patient(
    server: LiveServer,
    persona: str,
    basis: str | None,
    patient: str | None,
    status: int,
    said: str | None,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    pid = scene.fnr if persona == "patient" else None
    before = snapshot(server.db, audit=False)
    r = register(
        server.base, server.token(persona, pid), scene.fnr if patient is None else patient, basis
    )
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    if said:
        assert said in outcome_text(r)
    assert snapshot(server.db, audit=False) == before


def test_a_launch_needs_a_registered_patient_and_a_bearer_token(server: LiveServer) -> None:
    unknown = new_fnr()
    r = register(server.base, server.token("gp"), unknown)
    assert r.status_code == 404
    assert unknown in outcome_text(r)
    r = httpx.post(f"{server.base}/smart/launch", json={"patient": unknown})
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"


def test_a_launch_comes_from_a_named_client_system(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    before = snapshot(server.db, audit=False)
    r = register(server.base, issue(server.data_dir, "gp", client_id=""), scene.fnr)
    assert r.status_code == 403
    assert "names no client_id" in outcome_text(r)
    assert snapshot(server.db, audit=False) == before


EPJ = "epj-a"
EPJ_ORIGINS = "http://127.0.0.1:9 https://epj.a.example"


@pytest.fixture
def embedding(server: LiveServer) -> Iterator[str]:
    """PLL with ``PLL_EMBED_ORIGINS`` naming the journal system ``epj-a``."""
    settings = server_settings(
        server.data_dir, server.db, embed_origins=f"{EPJ}={EPJ_ORIGINS}; epj-b=https://b.example"
    )
    with serving(create_app(settings, server.service)) as base:
        yield base


def frame_ancestors(response: httpx.Response) -> str:
    policy = response.headers["content-security-policy"]
    return next(
        d.strip().removeprefix("frame-ancestors ")
        for d in policy.split(";")
        if d.strip().startswith("frame-ancestors")
    )


def test_only_a_session_launched_by_a_configured_client_may_be_framed_by_its_origins(
    server: LiveServer, embedding: str
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    epj_token = issue(server.data_dir, "gp", client_id=EPJ)
    other_token = issue(server.data_dir, "gp", client_id="epj-unlisted")
    with browser(embedding) as frame:
        r = open_launch(frame, embedding, launch_id(register(embedding, epj_token, scene.fnr)))
        page = frame.get(r.headers["location"])
        assert page.status_code == 200
        assert frame_ancestors(page) == EPJ_ORIGINS
        assert "x-frame-options" not in page.headers
        assert "default-src 'self'" in page.headers["content-security-policy"]
        # every page of that session, not only the first
        assert frame_ancestors(frame.get(f"/lege/pasient/{scene.pid}/historikk")) == EPJ_ORIGINS
    with browser(embedding) as frame:
        r = open_launch(frame, embedding, launch_id(register(embedding, other_token, scene.fnr)))
        page = frame.get(r.headers["location"])
        # launched by a client system with no origins: shown, but never framed
        assert page.status_code == 200
        assert METFORMIN[2] in page.text
        assert frame_ancestors(page) == "'none'"
        assert page.headers["x-frame-options"] == "DENY"
    with browser(embedding) as top:
        # a login of PLL's own is never framed, nor is the login page
        assert frame_ancestors(top.get("/logg-inn")) == "'none'"
        form = {"csrf": csrf(top), "persona": "gp"}
        assert top.post("/logg-inn/utvikler", data=form).status_code == 303
        assert frame_ancestors(top.get("/lege")) == "'none'"
        # a refused launch may be shown in any configured journal system's frame
        refused = open_launch(top, embedding, "forged")
        assert refused.status_code == 400
        assert frame_ancestors(refused) == f"{EPJ_ORIGINS} https://b.example"


def test_without_embed_origins_nothing_is_framed(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with browser(server.base) as frame:
        r = open_launch(
            frame, server.base, launch_id(register(server.base, server.token("gp"), scene.fnr))
        )
        page = frame.get(r.headers["location"])
        assert frame_ancestors(page) == "'none'"
        assert page.headers["x-frame-options"] == "DENY"
    with logged_in(server, "gp") as gp:
        assert frame_ancestors(gp.get("/lege")) == "'none'"


def test_a_server_with_a_non_ascii_embed_origin_does_not_start(server: LiveServer) -> None:
    """The origins go verbatim into a latin-1 header: a host name that is not ASCII would
    make every framed page a 500, so the app is not made, and the message says punycode."""
    settings = server_settings(
        server.data_dir, server.db, embed_origins="epj-a=https://журнал.example"
    )
    with pytest.raises(ValueError, match="punycode"):
        create_app(settings, server.service)


@pytest.mark.parametrize("persona", ["dentist", "midwife", "nurse", "physiotherapist"])
def test_every_clinician_of_the_doctor_pages_can_be_launched(
    server: LiveServer, persona: str
) -> None:
    """The doctor pages serve every clinician (dentists and midwives too, issue 18), so a
    dental or midwifery journal system opens them for its patient like a GP's."""
    scene = patient_with_medicines(server, METFORMIN)
    launch = launch_id(register(server.base, server.token(persona), scene.fnr))
    with browser(server.base) as frame:
        r = open_launch(frame, server.base, launch)
        assert r.headers["location"] == f"/lege/pasient/{scene.pid}"
        assert METFORMIN[2] in frame.get(r.headers["location"]).text


def test_a_launch_into_another_persons_login_asks_before_switching(server: LiveServer) -> None:
    """A launch opened where another person is logged in to PLL does not take that login
    over silently (login CSRF: what Kari writes next would go under another HPR): a page
    asks, and only its form, with the anti-forgery token, switches or cancels."""
    scene = patient_with_medicines(server, METFORMIN)
    other = server.token("hospital-doctor")
    with logged_in(server, "gp") as kari:
        launch = launch_id(register(server.base, other, scene.fnr))
        asked = open_launch(kari, server.base, launch)
        assert asked.status_code == 200, asked.text
        assert "Du er logget inn som Kari Fastlege; åpne pasienten som Ola Sykehuslege?" in (
            asked.text
        )
        # nothing switched, the launch not used up yet
        assert "Kari Fastlege" in kari.get("/lege").text
        with server.db.read() as conn:
            assert conn.execute(sa.select(smart_launch.c.used_at)).scalar_one() is None
        form = {"iss": f"{server.base}/fhir", "launch": launch, "valg": "fortsett"}
        forged = kari.post("/launch", data=form)
        assert forged.status_code == 403
        assert "Kari Fastlege" in kari.get("/lege").text
        form["csrf"] = TOKEN.search(asked.text)[1]  # type: ignore[index]
        switched = kari.post("/launch", data=form)
        assert switched.status_code == 303, switched.text
        assert switched.headers["location"] == f"/lege/pasient/{scene.pid}"
        assert kari.get(switched.headers["location"]).status_code == 200
        page = kari.get("/lege").text
        assert "Ola Sykehuslege" in page
        assert "Kari Fastlege" not in page


def test_a_cancelled_launch_keeps_the_login_and_is_used_up(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as kari:
        launch = launch_id(register(server.base, server.token("hospital-doctor"), scene.fnr))
        asked = open_launch(kari, server.base, launch)
        form = {
            "csrf": TOKEN.search(asked.text)[1],  # type: ignore[index]
            "iss": f"{server.base}/fhir",
            "launch": launch,
            "valg": "avbryt",
        }
        assert kari.post("/launch", data=form).status_code == 303
        page = kari.get("/lege").text
        assert "Kari Fastlege" in page
        assert "Ola Sykehuslege" not in page
        assert open_launch(kari, server.base, launch).status_code == 400


def test_a_launch_by_the_person_already_logged_in_goes_straight_on(server: LiveServer) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    with logged_in(server, "gp") as kari:
        launch = launch_id(register(server.base, server.token("gp"), scene.fnr))
        r = open_launch(kari, server.base, launch)
        assert r.status_code == 303
        assert r.headers["location"] == f"/lege/pasient/{scene.pid}"
