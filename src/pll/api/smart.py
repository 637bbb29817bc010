"""``POST /smart/launch``: a journal system registers a SMART EHR launch of PLL's doctor
pages (:mod:`pll.services.launches`) with its user's access token and the patient it has
open, and gets the opaque ``launch`` to open ``/launch?iss=…&launch=…`` with
(:mod:`pll.web.launch`).

Body ``{"patient": "<fødselsnummer or D-nummer>"}`` (``application/json``); the basis of the
access the pages then make comes, as on every API call, in ``X-PLL-Access-Basis``. Answers
201 with ``{"launch", "expires_in", "url"}``, where ``url`` is the launch URL to open in
the frame; refusals are OperationOutcomes, as everywhere in the API.
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from pll.api.http import Ctx, endpoint, fhir_base
from pll.domain.errors import InvalidInput, Unauthenticated
from pll.services.launches import Launches

LAUNCH_PATH = "/launch"
REGISTER_PATH = "/smart/launch"


def public_base(request: Request) -> str:
    """This server's origin as clients know it: ``PLL_PUBLIC_URL``, else the request's."""
    configured = getattr(request.app.state, "public_url", None)
    if configured:
        return str(configured).rstrip("/")
    scope = request.scope
    host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
    base = fhir_base(scope.get("scheme", "http"), host, tuple(scope.get("server") or ()), "")
    return base.removesuffix("/fhir")


def register_launch(ctx: Ctx) -> Response:
    """Register a launch for the caller and the patient the body names."""
    launches: Launches = ctx.request.app.state.launches
    scheme, _, token = ctx.request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        # the pages act with this token, and a browser session cannot make DPoP proofs
        raise Unauthenticated(
            "Register a launch with a Bearer token: the web pages it opens act with that "
            "token and cannot make DPoP proofs."
        )
    body = ctx.json()
    patient = body.get("patient") if isinstance(body, dict) else None
    if not isinstance(patient, str) or not patient.strip():
        raise InvalidInput(
            'Name the patient: {"patient": "<fødselsnummer or D-nummer>"}.', "patient"
        )
    launch, expires = launches.register(ctx.access, token.strip(), patient.strip())
    base = public_base(ctx.request)
    url = f"{base}{LAUNCH_PATH}?{urlencode({'iss': base + '/fhir', 'launch': launch})}"
    lifetime = round((expires - launches.clock()).total_seconds())
    answer = {"launch": launch, "expires_in": lifetime, "url": url}
    return Response(
        orjson.dumps(answer),
        201,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


register = endpoint(register_launch)
