"""The SMART EHR launch of the doctor pages, and SMART discovery.

* ``GET /launch?iss=…&launch=…``: a journal system opens this in a frame (or a window) with
  the launch it registered (``POST /smart/launch``, :mod:`pll.api.smart`). ``iss`` must be
  this server's FHIR base (SMART App Launch: the app checks that it knows the server it is
  launched against); the launch is redeemed once (:mod:`pll.services.launches`). A web
  session then starts afresh with the health worker's own token, the basis the journal
  system stated is the basis for that patient, and the browser goes straight to the
  patient's list, ``/lege/pasient/<id>``. A browser already logged in as another person
  is asked first, in Norwegian, whether to leave that login (``POST /launch``, with the
  page's anti-forgery token); the same person goes straight on. The session remembers
  which client system launched it: only that system's ``PLL_EMBED_ORIGINS`` may frame its pages
  (:mod:`pll.web.embedding`). Any refusal is a page in Norwegian that opens nothing.
* ``GET /.well-known/smart-configuration`` (and under ``/fhir``): the SMART configuration
  (SMART App Launch 2.x, Conformance, https://hl7.org/fhir/smart-app-launch/conformance.html).
"""

from __future__ import annotations

import contextlib
import hmac
from typing import Any

import jwt
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pll.api.smart import LAUNCH_PATH, REGISTER_PATH, public_base
from pll.auth.tokens import Authenticator
from pll.domain.errors import DomainError, Forbidden, InvalidInput, Unauthenticated
from pll.services.launches import LAUNCHABLE, LaunchContext, Launches, LaunchRefused
from pll.web.edge import CSRF_FIELD, error_page, memory_of, render
from pll.web.embedding import EMBEDDED_BY, frame_headers, refusal_headers
from pll.web.oidc import LoginFailed, OidcClient
from pll.web.sessions import LOGIN_ID, begin_login, caller_of

#: What PLL does of SMART App Launch (capability codes of the Conformance page).
CAPABILITIES = [
    # the journal system opens the doctor pages with the patient it has open
    "launch-ehr",
    "context-ehr-patient",
    # access is decided for the health worker the token names, on the basis they state
    "permission-user",
]
#: What HelseID adds, when PLL knows it (``PLL_OIDC_ISSUER``).
HELSEID_CAPABILITIES = ["sso-openid-connect", "client-confidential-asymmetric"]


async def smart_configuration(request: Request) -> Response:
    """The SMART configuration. With HelseID configured for the web login
    (``PLL_OIDC_ISSUER``), its issuer, keys and endpoints are the ones a journal system
    gets PLL's tokens from; in development without it there is no authorization server to
    name (``pll token`` makes the tokens), and only what PLL itself serves is listed."""
    base = public_base(request)
    document: dict[str, Any] = {
        "capabilities": CAPABILITIES,
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile"],
        # PLL's own: where a journal system registers a launch, and the launch URL
        "launch_registration_endpoint": base + REGISTER_PATH,
        "launch_url": base + LAUNCH_PATH,
    }
    client = getattr(request.app.state, "oidc", None)
    if isinstance(client, OidcClient):
        try:
            provider = await run_in_threadpool(client.metadata)
        except LoginFailed as exc:
            body = {"error": "temporarily_unavailable", "error_description": exc.message}
            return Response(orjson.dumps(body), 503, media_type="application/json")
        document |= {
            "issuer": provider.issuer,
            "jwks_uri": provider.jwks_uri,
            "authorization_endpoint": provider.authorization_endpoint,
            "token_endpoint": provider.token_endpoint,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "capabilities": CAPABILITIES + HELSEID_CAPABILITIES,
        }
    return Response(
        orjson.dumps(document),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _refused(request: Request, error: DomainError, status: int = 400) -> Response:
    page = error_page(request, error, None, status=status)
    # shown in the journal system's frame, where the launch was opened
    del page.headers["X-Frame-Options"]
    page.headers.update(refusal_headers(request.app.state.embed_origins))
    return page


def _expiry(token: str) -> float | None:
    """The token's ``exp``, read, not verified (the Authenticator verifies it on use)."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _start(request: Request, context: LaunchContext) -> str:
    """Open the web session of a redeemed launch (blocking): the health worker's token,
    verified now as on every later request; the patient's basis and number remembered; the
    launching client system named. Returns the patient's list page."""
    authenticator: Authenticator = request.app.state.authenticator
    caller = authenticator.authenticate(f"Bearer {context.token}", None, "GET", "")
    if caller.actor.role not in LAUNCHABLE:
        raise Unauthenticated("The launch's token is not a clinician's.")
    begin_login(request, context.token, "launch", _expiry(context.token))
    handle = request.session[LOGIN_ID]
    memory = memory_of(request)
    memory.clear()
    memory["basis"] = {context.patient_id: context.basis.value}
    memory["patients"] = {context.patient_id: context.person_number}
    memory[EMBEDDED_BY] = context.client_id
    request.app.state.logins.keep(handle, memory)
    return f"/lege/pasient/{context.patient_id}"


def _checked(request: Request, iss: str, code: str) -> Response | None:
    """The refusal page for a launch URL without a launch or for another server, else
    ``None``."""
    if not code:
        return _refused(
            request,
            InvalidInput(
                "Adressen mangler oppstartskoden (launch) fra journalsystemet; ingenting ble "
                "åpnet. Åpne pasientens legemiddelliste på nytt fra journalsystemet.",
                "launch",
            ),
        )
    if iss.rstrip("/") != public_base(request) + "/fhir":
        return _refused(
            request,
            InvalidInput(
                "Oppstarten gjelder en annen PLL-server enn denne (iss); ingenting ble åpnet. "
                "Kontakt den som drifter journalsystemet.",
                "iss",
            ),
        )
    return None


_NOT_VALID = Unauthenticated(
    "Innloggingen fra journalsystemet er utløpt eller ikke gyldig i PLL; ingenting ble "
    "åpnet. Åpne pasientens legemiddelliste på nytt fra journalsystemet."
)


async def _open(request: Request, code: str) -> Response:
    """Redeem the launch and start its session: the patient's list, or a refusal."""
    launches: Launches = request.app.state.launches
    try:
        context = await run_in_threadpool(launches.redeem, code)
    except LaunchRefused as exc:
        return _refused(request, exc)
    try:
        target = await run_in_threadpool(_start, request, context)
    except DomainError:
        request.session.clear()
        return _refused(request, _NOT_VALID, 401)
    return RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})


def _launched_person(request: Request, context: LaunchContext) -> str:
    """The name of the health worker a launch's token names (blocking)."""
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.authenticate(f"Bearer {context.token}", None, "GET", "").actor.name


async def launch(request: Request) -> Response:
    """``GET /launch``: redeem the launch and go to the patient's list. A browser already
    logged in to PLL as another person is asked first (:func:`decide`): a link that opens
    a launch made with someone else's token must not silently turn the user's own login
    into that person's (login CSRF), so that what they write next goes under another HPR."""
    iss = request.query_params.get("iss", "")
    code = request.query_params.get("launch", "")
    refused = _checked(request, iss, code)
    if refused is not None:
        return refused
    launches: Launches = request.app.state.launches
    try:
        pending = await run_in_threadpool(launches.peek, code)
    except LaunchRefused as exc:
        return _refused(request, exc)
    current = await caller_of(request)
    if current is None or current.actor.hpr == pending.hpr:
        return await _open(request, code)
    try:
        launched = await run_in_threadpool(_launched_person, request, pending)
    except DomainError:
        return _refused(request, _NOT_VALID, 401)
    page = render(
        request,
        "launch_confirm.html",
        caller=current,
        current=current.actor.name,
        launched=launched,
        iss=iss,
        launch=code,
    )
    # shown where the launch was opened: the launching system's frame, if it may frame PLL
    if "X-Frame-Options" in page.headers:
        del page.headers["X-Frame-Options"]
    page.headers.update(frame_headers(pending.client_id, request.app.state.embed_origins))
    return page


async def decide(request: Request) -> Response:
    """``POST /launch``: the answer of the page that asked whether to leave another
    person's login. ``fortsett`` ends that login and opens the launch; ``avbryt`` uses the
    launch up and keeps the login as it was. Only with the page's anti-forgery token."""
    form = await request.form(max_fields=8, max_part_size=1024)
    sent, expected = form.get(CSRF_FIELD), request.session.get(CSRF_FIELD)
    if not (
        isinstance(sent, str)
        and isinstance(expected, str)
        and hmac.compare_digest(sent.encode(), expected.encode())
    ):
        return _refused(
            request,
            Forbidden(
                "Valget kunne ikke sendes: det mangler et gyldig sikkerhetsmerke (CSRF); "
                "ingenting ble endret. Åpne pasientens legemiddelliste på nytt fra "
                "journalsystemet."
            ),
            403,
        )
    iss, code = form.get("iss"), form.get("launch")
    refused = _checked(
        request, iss if isinstance(iss, str) else "", code if isinstance(code, str) else ""
    )
    if refused is not None or not isinstance(code, str):
        return refused or _refused(request, _NOT_VALID, 401)
    if form.get("valg") != "fortsett":
        launches: Launches = request.app.state.launches
        with contextlib.suppress(LaunchRefused):
            await run_in_threadpool(launches.redeem, code)
        return RedirectResponse("/", 303, headers={"Cache-Control": "no-store"})
    return await _open(request, code)


ROUTES = [
    Route(LAUNCH_PATH, launch, methods=["GET"], name="smart_launch"),
    Route(LAUNCH_PATH, decide, methods=["POST"]),
    Route("/.well-known/smart-configuration", smart_configuration, methods=["GET"]),
    Route("/fhir/.well-known/smart-configuration", smart_configuration, methods=["GET"]),
]
