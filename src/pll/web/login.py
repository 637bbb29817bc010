"""Logging in and out of the web UI.

In production a health worker logs in with HelseID (:mod:`pll.web.oidc`, OpenID Connect
with PKCE); the access token HelseID issues is kept in the session and verified on every
request by the same :class:`~pll.auth.tokens.Authenticator` the API uses. In development
(``PLL_DEV_AUTH=1``) one chooses an invented persona instead, and the page mints the same
development token ``pll token`` does.
"""

from __future__ import annotations

import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pll.auth import tokens
from pll.domain.errors import Forbidden, InvalidInput
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import Role
from pll.services.care_round import CareRound
from pll.web.edge import CSRF_FIELD, error_page, norwegian, render
from pll.web.sessions import begin_login, caller_of, end_login

#: Where each kind of user starts (a nurse of a care unit starts on the unit's chart:
#: :func:`start_page`).
HOME = {
    Role.DOCTOR: "/lege",
    # the other prescribers and other health personnel use the doctor's list pages; what
    # they may change there is the access policy's (pll.auth.policy)
    Role.DENTIST: "/lege",
    Role.MIDWIFE: "/lege",
    Role.NURSE: "/lege",
    Role.HEALTH_WORKER: "/lege",
    Role.PHARMACIST: "/apotek",
    Role.CARE_WORKER: "/kurve",
    Role.PATIENT: "/pasient",
    # the rollout and payment team's reports (issue 19, pll.web.rollout)
    Role.ROLLOUT: "/statistikk/utrulling",
}
#: The care unit's chart (pll.web.kurve).
CHART = "/kurve"

PERSONA_NAMES = {
    "gp": "Kari Fastlege – fastlege, Bergen legesenter",
    "hospital-doctor": "Ola Sykehuslege – lege, Haukeland universitetssjukehus",
    "nurse": "Siri Sykepleier – sykepleier, hjemmetjenesten",
    "nursing-home-nurse": "Nora Sykepleier – sykepleier, Oslo kommune sykehjem Ullern",
    "care-worker": "Hege Helsefagarbeider – helsefagarbeider, Oslo kommune sykehjem Ullern",
    "dentist": "Tor Tannlege – tannlege, Bergen tannklinikk",
    "midwife": "Jorunn Jordmor – jordmor, Bergen kommune",
    "public-health-nurse": "Helga Helsesykepleier – helsesykepleier, helsestasjonen",
    "physiotherapist": "Fredrik Fysioterapeut – fysioterapeut, Bergen fysioterapi",
    "pharmacist": "Per Farmasøyt – multidoseapotek, Apotek 1 Bergen",
    "other-pharmacist": "Pia Reseptar – farmasøyt, Vitusapotek Trondheim",
    "rollout": "Rita Rapport – innførings- og kompensasjonsteamet",
    "patient": "Pasient – meg selv (fyll inn fødselsnummer)",
    "proxy": "Fullmektig Nordmann – handler for en annen",
}


def start_page(request: Request, role: Role, org: str | None) -> str:
    """Where a user starts: a nurse whose organisation is a care unit PLL knows (one that
    has registered patients) starts on the unit's chart, other nurses on the list pages;
    everyone else by their role (:data:`HOME`). Blocking: call it in a worker thread."""
    if role is Role.NURSE and org and CareRound(request.app.state.service).is_care_unit(org):
        return CHART
    return HOME.get(role, "/logg-inn")


async def home(request: Request) -> Response:
    caller = await caller_of(request)
    if caller is None:
        return RedirectResponse("/logg-inn", status_code=303)
    actor = caller.actor
    target = await run_in_threadpool(start_page, request, actor.role, actor.org_id)
    return RedirectResponse(target, status_code=303)


async def login_page(
    request: Request,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    """The login page; a refused development login comes back with what was chosen and
    typed, and the message beside the field (the convention of :mod:`pll.web.edge`)."""
    return render(
        request,
        "login.html",
        status,
        caller=await caller_of(request),
        personas=list(PERSONA_NAMES.items()),
        helseid=request.app.state.oidc is not None,
        values=values or {},
        errors=errors or {},
    )


def _csrf_ok(request: Request, sent: object) -> bool:
    expected = request.session.get(CSRF_FIELD)
    return (
        isinstance(sent, str)
        and isinstance(expected, str)
        and hmac.compare_digest(sent.encode(), expected.encode())
    )


async def dev_login(request: Request) -> Response:
    """Log in as a development persona (only with ``PLL_DEV_AUTH=1``)."""
    if not request.app.state.dev_login:
        return error_page(request, Forbidden("Utviklingsinnlogging er slått av."), None)
    form = await request.form(max_fields=10)
    if not _csrf_ok(request, form.get(CSRF_FIELD)):
        return error_page(
            request,
            Forbidden("Skjemaet mangler et gyldig sikkerhetsmerke (CSRF). Last siden på nytt."),
            None,
        )
    persona = str(form.get("persona", ""))
    pid = str(form.get("pid", "")).strip() or None
    sent = {"persona": persona, "pid": pid or ""}
    if persona not in tokens.PERSONAS:
        return await login_page(request, 400, sent, {"persona": "Velg en av personene på listen."})
    if persona == "patient":
        if pid is None:
            said = "En pasient logger inn med sitt fødselsnummer."
            return await login_page(request, 400, sent, {"pid": said})
        try:
            parse_person_identifier(None, pid, "pid")
        except InvalidInput as exc:
            return await login_page(request, 400, sent, {"pid": norwegian(exc)})
    elif persona != "proxy":
        pid = None
    # the first token made may generate the development key: off the event loop
    token = await run_in_threadpool(tokens.issue, request.app.state.data_dir, persona, pid)
    target = await run_in_threadpool(begin_login, request, token, "dev", None)
    if target == "/":
        chosen = tokens.PERSONAS[persona]
        role = (
            tokens.PROFESSIONS.get(chosen.profession, tokens.OTHER_PROFESSION)
            if chosen.profession
            else Role.ROLLOUT
            if persona in tokens.ROLLOUT_PERSONAS
            else Role.PATIENT
        )
        target = await run_in_threadpool(start_page, request, role, chosen.org_id)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    # Always: a tab opened before a new login carries an old anti-forgery token, and a user
    # who asks to log out must be logged out. A forged logout costs a login, nothing more.
    await run_in_threadpool(end_login, request)
    return RedirectResponse("/logg-inn", status_code=303)


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/logg-inn", login_page, methods=["GET"]),
    Route("/logg-inn/utvikler", dev_login, methods=["POST"]),
    Route("/logg-ut", logout, methods=["POST"]),
]
