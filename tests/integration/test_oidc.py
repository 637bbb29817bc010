"""Web login with HelseID (OpenID Connect, code flow with PKCE), over real HTTP.

A fake OpenID provider runs on its own socket and checks what HelseID checks: the PKCE
verifier against the challenge, and the client assertion's signature (by the client's
public key) and claims. PLL's two login routes run in a small app with sessions; the tests
play the browser and follow each redirect by hand.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pll.auth.jwks import Issuer, KeySet, public_jwk
from pll.auth.tokens import CLAIM_HPR, CLAIM_HPR_DETAILS, Authenticator, hpr_details
from pll.config import Settings
from pll.domain.model import Role
from pll.services.logins import WebLogins
from pll.store.db import Database
from pll.web.helseid_pages import ROUTES
from pll.web.oidc import OidcClient
from tests.conftest import serving

CLIENT_ID = "pll-web-test"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HPR = "9144889"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Provider:
    """A small OpenID provider that behaves as HelseID does for a confidential client."""

    client_key: rsa.RSAPublicKey
    signing_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    base: str = ""
    redirect_uri: str = ""
    #: offer pushed authorization requests (HelseID does, and requires them of new clients)
    par: bool = True
    #: answer the authorization with this error (code, description) instead of a code
    deny: tuple[str, str] | None = None
    #: put this nonce in the ID token instead of the one asked for
    nonce: str | None = None
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    pushed: dict[str, dict[str, str]] = field(default_factory=dict)
    #: every accepted client assertion's claims, and the jtis seen
    assertions: list[dict[str, Any]] = field(default_factory=list)
    #: why each refused back-channel request was refused
    refusals: list[str] = field(default_factory=list)
    token_requests: int = 0

    def reset(self) -> None:
        self.par, self.deny, self.nonce = True, None, None
        self.codes.clear()
        self.pushed.clear()
        self.assertions.clear()
        self.refusals.clear()
        self.token_requests = 0

    # -- endpoints -------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.configuration),
                Route("/jwks", self.jwks),
                Route("/connect/par", self.push, methods=["POST"]),
                Route("/connect/authorize", self.authorize),
                Route("/connect/token", self.token, methods=["POST"]),
            ]
        )

    async def configuration(self, request: Request) -> Response:
        document = {
            "issuer": self.base,
            "authorization_endpoint": f"{self.base}/connect/authorize",
            "token_endpoint": f"{self.base}/connect/token",
            "jwks_uri": f"{self.base}/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "authorization_response_iss_parameter_supported": True,
        }
        if self.par:
            document["pushed_authorization_request_endpoint"] = f"{self.base}/connect/par"
        return JSONResponse(document)

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [public_jwk(self.signing_key, "op-1")]})

    def refuse(self, why: str, error: str = "invalid_client", status: int = 401) -> Response:
        self.refusals.append(why)
        return JSONResponse({"error": error, "error_description": why}, status)

    def client_refusal(self, form: dict[str, str]) -> str | None:
        """Why the client's authentication (private_key_jwt) fails, or None."""
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return "client_assertion_type"
        try:
            claims = jwt.decode(
                form.get("client_assertion", ""),
                self.client_key,
                algorithms=["RS256"],
                audience=f"{self.base}/connect/token",
                issuer=CLIENT_ID,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            return f"client assertion: {exc}"
        if claims["sub"] != CLIENT_ID or form.get("client_id") != CLIENT_ID:
            return "client assertion: sub"
        if claims["exp"] - claims["iat"] > 60:
            return "client assertion: lives longer than 60 seconds"
        if any(a["jti"] == claims["jti"] for a in self.assertions):
            return "client assertion: jti used before"
        self.assertions.append(claims)
        return None

    async def push(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        if why := self.client_refusal(form):
            return self.refuse(why)
        request_uri = f"urn:ietf:params:oauth:request_uri:{secrets.token_urlsafe(16)}"
        self.pushed[request_uri] = form
        return JSONResponse({"request_uri": request_uri, "expires_in": 60}, 201)

    async def authorize(self, request: Request) -> Response:
        """The browser arrives; the user "logs in" at once and is sent back."""
        query = dict(request.query_params)
        if "request_uri" in query:
            params = self.pushed.pop(query["request_uri"], None)
            if params is None or query.get("client_id") != CLIENT_ID:
                return Response("unknown request_uri", 400)
        elif self.par:
            return Response("this client must push its authorization requests", 400)
        else:
            params = query
        if (
            params.get("client_id") != CLIENT_ID
            or params.get("redirect_uri") != self.redirect_uri
            or params.get("response_type") != "code"
            or params.get("code_challenge_method") != "S256"
            or not params.get("code_challenge")
            or "openid" not in params.get("scope", "").split()
        ):
            return Response("bad authorization request", 400)
        answer = {"state": params["state"], "iss": self.base}
        if self.deny is not None:
            answer |= {"error": self.deny[0], "error_description": self.deny[1]}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = params
            answer["code"] = code
        return RedirectResponse(f"{self.redirect_uri}?{urlencode(answer)}", 302)

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {k: str(v) for k, v in (await request.form()).items()}
        if why := self.client_refusal(form):
            return self.refuse(why)
        if form.get("grant_type") != "authorization_code":
            return self.refuse("grant_type", "unsupported_grant_type", 400)
        asked = self.codes.pop(form.get("code", ""), None)
        if asked is None:
            return self.refuse("unknown or used code", "invalid_grant", 400)
        if form.get("redirect_uri") != asked["redirect_uri"]:
            return self.refuse("redirect_uri", "invalid_grant", 400)
        verifier = form.get("code_verifier", "")
        if b64(hashlib.sha256(verifier.encode("ascii")).digest()) != asked["code_challenge"]:
            return self.refuse("PKCE code_verifier does not match", "invalid_grant", 400)
        now = int(time.time())
        access_token = jwt.encode(
            {
                "iss": self.base,
                "aud": "pll",
                "iat": now,
                "exp": now + 600,
                "sub": HPR,
                "client_id": CLIENT_ID,
                "scope": asked["scope"],
                CLAIM_HPR: HPR,
                CLAIM_HPR_DETAILS: hpr_details(HPR, "LE"),
            },
            self.signing_key,
            algorithm="RS256",
            headers={"kid": "op-1"},
        )
        id_token = jwt.encode(
            {
                "iss": self.base,
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "sub": HPR,
                "name": "Kari Fastlege",
                "nonce": self.nonce if self.nonce is not None else asked["nonce"],
                "at_hash": b64(hashlib.sha256(access_token.encode()).digest()[:16]),
            },
            self.signing_key,
            algorithm="RS256",
            headers={"kid": "op-1"},
        )
        return JSONResponse(
            {
                "access_token": access_token,
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": 600,
            }
        )


# -- the PLL side ------------------------------------------------------------------


async def session(request: Request) -> Response:
    """What the session holds (the test's window into the signed cookie)."""
    return JSONResponse(dict(request.session))


async def set_csrf(request: Request) -> Response:
    request.session["csrf"] = "from-before-login"
    return Response("ok")


async def spoil_verifier(request: Request) -> Response:
    """Make the pending login send a wrong PKCE verifier."""
    pending = dict(request.session["oidc"])
    pending["code_verifier"] = secrets.token_urlsafe(64)
    request.session["oidc"] = pending
    return Response("ok")


def pll_app(logins: WebLogins) -> Starlette:
    app = Starlette(
        routes=[
            *ROUTES,
            Route("/", session),
            Route("/test/csrf", set_csrf),
            Route("/test/spoil-verifier", spoil_verifier),
        ],
        middleware=[Middleware(SessionMiddleware, secret_key=secrets.token_hex(32))],
    )
    app.state.oidc = None
    app.state.logins = logins
    return app


@dataclass
class Setup:
    provider: Provider
    app: Starlette
    base: str
    settings: Settings

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=10)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path_factory.mktemp("oidc") / "client-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    provider = Provider(key.public_key())
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('oidc-db') / 'pll.sqlite3'}")
    db.upgrade()
    app = pll_app(WebLogins(db))
    with serving(provider.app()) as op_base, serving(app) as base:
        provider.base = op_base
        provider.redirect_uri = f"{base}/logg-inn/helseid/svar"
        settings = Settings(
            data_dir=Path(),
            database_url="sqlite://",
            public_url=base,
            oidc_issuer=op_base,
            oidc_client_id=CLIENT_ID,
            oidc_client_key=key_file,
        )
        yield Setup(provider, app, base, settings)
    db.dispose()


@pytest.fixture
def setup(running: Setup) -> Setup:
    """A fresh client (so discovery sees the provider as the test sets it) and provider."""
    running.provider.reset()
    running.app.state.oidc = OidcClient.from_settings(running.settings)
    return running


def start(browser: httpx.Client) -> str:
    """Begin a login; the address PLL sends the browser to."""
    response = browser.get("/logg-inn/helseid")
    assert response.status_code in (302, 303), response.text
    assert response.headers["cache-control"] == "no-store"
    return response.headers["location"]


def at_provider(url: str) -> str:
    """The provider's redirect back to PLL, with its answer."""
    response = httpx.get(url, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def assert_refused(response: httpx.Response, *fragments: str) -> None:
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    assert 'href="/logg-inn"' in response.text
    for fragment in fragments:
        assert fragment in response.text


def test_a_full_login_keeps_the_access_token_on_the_server(setup: Setup) -> None:
    provider = setup.provider
    with setup.browser() as browser:
        browser.get("/test/csrf")
        authorize = start(browser)
        # PAR: the browser carries only the client id and the pushed request's handle
        assert set(parse_qs(urlsplit(authorize).query)) == {"client_id", "request_uri"}
        done = browser.get(at_provider(authorize))
        assert done.status_code == 303
        assert done.headers["location"] == "/"
        kept = browser.get("/").json()

    assert kept["login"] == "helseid"
    assert "oidc" not in kept
    assert "csrf" not in kept, "a login must get a new anti-forgery token"
    # The token is the one PLL's API verifies, with the same Authenticator and issuer.
    authenticator = Authenticator([Issuer(provider.base, "pll", KeySet.from_issuer(provider.base))])
    # the token stays on the server; the cookie holds only the login's handle
    assert "token" not in kept
    token = setup.app.state.logins.token(kept["login_id"])
    caller = authenticator.authenticate(f"Bearer {token}", None, "GET", "")
    assert (caller.actor.hpr, caller.actor.role) == (HPR, Role.DOCTOR)
    # private_key_jwt: one assertion for the pushed request, one for the code, each unique
    assert provider.refusals == []
    assert len(provider.assertions) == 2
    for claims in provider.assertions:
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == f"{provider.base}/connect/token"
        assert claims["exp"] - claims["iat"] <= 60


def test_without_par_the_browser_carries_the_challenge_but_never_the_verifier(
    setup: Setup,
) -> None:
    setup.provider.par = False
    with setup.browser() as browser:
        authorize = start(browser)
        pending = browser.get("/").json()["oidc"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert query["state"] == pending["state"]
        assert query["nonce"] == pending["nonce"]
        assert pending["code_verifier"] not in authorize
        assert 43 <= len(pending["code_verifier"]) <= 128
        done = browser.get(at_provider(authorize))
        assert done.status_code == 303
        assert browser.get("/").json()["login"] == "helseid"


def test_an_answer_with_another_state_is_refused(setup: Setup) -> None:
    with setup.browser() as browser:
        back = at_provider(start(browser))
        refused = browser.get(with_param(back, state=secrets.token_urlsafe(32)))
        assert_refused(refused, "hører ikke til innloggingen")
        assert "token" not in browser.get("/").json()
        # The attempt used up the pending login: the right answer is now refused too.
        assert_refused(browser.get(back), "Fant ingen påbegynt innlogging")
    assert setup.provider.token_requests == 0


def test_an_answer_is_used_once(setup: Setup) -> None:
    with setup.browser() as browser:
        back = at_provider(start(browser))
        assert browser.get(back).status_code == 303
        assert_refused(browser.get(back), "Fant ingen påbegynt innlogging")
    assert setup.provider.token_requests == 1


def test_an_answer_in_a_browser_that_started_no_login_is_refused(setup: Setup) -> None:
    with setup.browser() as victim, setup.browser() as attacker:
        back = at_provider(start(attacker))
        assert_refused(victim.get(back), "Fant ingen påbegynt innlogging")
        assert "token" not in victim.get("/").json()
    assert setup.provider.token_requests == 0


def test_an_answer_from_another_issuer_is_refused(setup: Setup) -> None:
    with setup.browser() as browser:
        back = at_provider(start(browser))
        assert_refused(browser.get(with_param(back, iss="https://evil.example")), "HelseID")
        assert "token" not in browser.get("/").json()
    assert setup.provider.token_requests == 0


def test_an_id_token_with_another_nonce_is_refused(setup: Setup) -> None:
    setup.provider.nonce = "a-nonce-from-another-login"
    with setup.browser() as browser:
        refused = browser.get(at_provider(start(browser)))
        assert_refused(refused, "Identitetsbeviset", "nonce")
        assert "token" not in browser.get("/").json()


def test_a_wrong_pkce_verifier_is_refused_by_the_provider_and_shown(setup: Setup) -> None:
    with setup.browser() as browser:
        back = at_provider(start(browser))
        browser.get("/test/spoil-verifier")
        refused = browser.get(back)
        assert_refused(refused, "invalid_grant", "PKCE code_verifier does not match")
        assert "token" not in browser.get("/").json()
    assert setup.provider.refusals == ["PKCE code_verifier does not match"]


def test_access_denied_gives_a_readable_page(setup: Setup) -> None:
    setup.provider.deny = ("access_denied", "Brukeren avbrøt innloggingen")
    with setup.browser() as browser:
        refused = browser.get(at_provider(start(browser)))
        assert_refused(
            refused,
            "Innloggingen ble avbrutt eller avvist i HelseID.",
            "Brukeren avbrøt innloggingen",
        )
        assert 'lang="nb"' in refused.text
        assert "token" not in browser.get("/").json()
    assert setup.provider.token_requests == 0


def test_what_the_provider_says_is_html_escaped(setup: Setup) -> None:
    setup.provider.deny = ("access_denied", "<script>alert('x')</script> & <b>")
    with setup.browser() as browser:
        refused = browser.get(at_provider(start(browser)))
        assert_refused(refused, "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;")
        assert "<script>" not in refused.text
        assert "<b>" not in refused.text


def test_without_configuration_both_pages_say_so(setup: Setup) -> None:
    setup.app.state.oidc = None
    with setup.browser() as browser:
        for path in ("/logg-inn/helseid", "/logg-inn/helseid/svar?code=x&state=y"):
            response = browser.get(path)
            assert response.status_code == 404
            assert "HelseID-innlogging er ikke satt opp" in response.text


def test_an_unreachable_provider_gives_a_readable_page(setup: Setup) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    setup.app.state.oidc = OidcClient.from_settings(
        dataclasses.replace(setup.settings, oidc_issuer=closed)
    )
    with setup.browser() as browser:
        response = browser.get("/logg-inn/helseid")
        assert response.status_code == 502
        assert "Fikk ikke kontakt med HelseID" in response.text
        assert "oidc" not in browser.get("/").json()
