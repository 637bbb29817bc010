"""Web login with HelseID: OpenID Connect authorization code flow with PKCE.

A doctor who logs in to the web UI is sent to HelseID, logs in there, and comes back with a
one-time code that this server exchanges for tokens (OpenID Connect Core §3.1,
https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth). What HelseID demands
of such a client (https://utviklerportal.nhn.no/informasjonstjenester/helseid/) and how it
is done here:

* **PKCE** (RFC 7636, https://www.rfc-editor.org/rfc/rfc7636) with ``S256``: a fresh
  ``code_verifier`` per login, only its hash travels through the browser.
* **private_key_jwt** client authentication (RFC 7523 §2.2 and OpenID Connect Core §9): a
  signed assertion with ``iss`` = ``sub`` = the client id, ``aud`` = the token endpoint,
  a unique ``jti`` and a life of 60 seconds (HelseID's maximum). Client secrets are not
  accepted by HelseID.
* **Pushed authorization requests** (PAR, RFC 9126) when the provider offers them, as
  HelseID does (they are mandatory for new HelseID clients that log users in): the
  parameters go to the provider over the back channel and the browser carries only a
  ``request_uri``.
* ``state`` and ``nonce`` (from :mod:`secrets`) tie the answer and the ID token to the
  login this browser started; the answer's ``iss`` (RFC 9207) is checked when present.

:class:`OidcClient` does the protocol: :meth:`~OidcClient.begin` makes the address to send
the browser to and the :class:`Pending` state to keep in the session until it returns;
:meth:`~OidcClient.complete` checks the answer, redeems the code and verifies the ID token
against the provider's keys (:mod:`pll.auth.jwks`). Every failure raises
:class:`LoginFailed` with a message in Norwegian fit to show the user; the details go to
the log.

:mod:`pll.web.helseid_pages` has the two pages: ``GET /logg-inn/helseid`` and the redirect
URI ``GET /logg-inn/helseid/svar``; the client's key is a :class:`~pll.web.oidc_key.ClientKey`.
The access token the login yields is kept in the session
and verified on every request by PLL's own :class:`~pll.auth.tokens.Authenticator`, exactly
like a token a journal system sends to the API: ``PLL_ISSUER`` must name the same HelseID
issuer (and ``PLL_AUDIENCE`` the audience HelseID gives PLL's API), and since the web UI
presents the token as ``Bearer``, ``PLL_ALLOW_BEARER`` must stay on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import jwt

from pll.auth.jwks import Issuer, KeySet, verify_token
from pll.config import Settings
from pll.domain.errors import Unauthenticated
from pll.web.oidc_key import ClientKey

log = logging.getLogger(__name__)

LOGIN_PATH = "/logg-inn/helseid"
#: The redirect URI's path; the full URI is ``PLL_PUBLIC_URL`` + this, and must be
#: registered for the client in HelseID Selvbetjening exactly so.
CALLBACK_PATH = "/logg-inn/helseid/svar"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


class LoginFailed(Exception):
    """A login that could not be completed. ``message`` is in Norwegian and fit to show the
    user as it is (HTML-escape it); ``status`` is the HTTP status a page showing it has:
    400 for a refused or broken answer, 502 when the provider cannot be reached or answers
    nonsense."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def s256(code_verifier: str) -> str:
    """The PKCE ``S256`` code challenge of a verifier: BASE64URL(SHA256(ASCII(verifier)))
    without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return _b64(digest)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Pending:
    """What a started login must remember until the browser comes back: kept in the
    session as a plain dict (:meth:`to_session`), used once."""

    state: str
    nonce: str
    code_verifier: str
    #: when the login started (seconds since the epoch)
    started: float

    def to_session(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_session(cls, data: object) -> Pending:
        """The pending login kept in the session; :class:`LoginFailed` when there is none
        (never started in this browser, or already completed: the code cannot be replayed)
        or it is not one."""
        if not isinstance(data, dict):
            raise LoginFailed(
                "Fant ingen påbegynt innlogging i denne nettleseren. Den kan allerede være "
                "fullført, eller startet i en annen fane eller nettleser. Start innloggingen "
                "på nytt."
            )
        strings = [data.get(name) for name in ("state", "nonce", "code_verifier")]
        started = data.get("started")
        if not all(isinstance(s, str) and s for s in strings) or not isinstance(
            started, int | float
        ):
            raise LoginFailed("Den påbegynte innloggingen er ugyldig. Start innloggingen på nytt.")
        state, nonce, verifier = (str(s) for s in strings)
        return cls(state, nonce, verifier, float(started))


@dataclass(frozen=True)
class Login:
    """A completed login."""

    #: for PLL's API and :class:`~pll.auth.tokens.Authenticator`, sent as ``Bearer``
    access_token: str
    #: the verified ID token's claims (who logged in: ``sub``, ``name``, HelseID claims)
    id_token_claims: dict[str, Any]
    #: when the access token expires (seconds since the epoch)
    expires_at: float


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the provider's metadata (OpenID Connect Discovery §3) used here."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    par_endpoint: str | None
    #: the provider puts ``iss`` in its authorization answers (RFC 9207 §3)
    iss_in_answers: bool
    keys: KeySet


class OidcClient:
    """A confidential OpenID Connect client (authorization code + PKCE, private_key_jwt).

    The provider's metadata is found by discovery on first use and kept for
    :attr:`metadata_max_age` seconds (a failed refresh keeps the old one); its signing keys
    are cached by :class:`~pll.auth.jwks.KeySet`. Safe to share between threads; the
    methods block on HTTP, so call them off the event loop.
    """

    #: seconds the discovered metadata is used before it is fetched again
    metadata_max_age: float = 3600.0
    #: seconds a started login may take before its answer is refused
    pending_max_age: float = 600.0
    #: lifetime of a client assertion (HelseID accepts at most 60 seconds)
    assertion_lifetime: int = 60

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_key: ClientKey,
        redirect_uri: str,
        *,
        scope: str = "openid",
        use_par: bool | None = None,
        timeout: float = 10.0,
    ) -> None:
        """``use_par``: push the authorization request (RFC 9126) — ``None`` does when the
        provider's metadata offers an endpoint for it. ``timeout`` bounds each HTTP call."""
        if "openid" not in scope.split():
            raise ValueError("The OIDC scope must include 'openid'.")
        _require_secure(issuer, "PLL_OIDC_ISSUER")
        _require_secure(redirect_uri, "the redirect URI (PLL_PUBLIC_URL)")
        self.issuer = issuer
        self.client_id = client_id
        self.client_key = client_key
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.use_par = use_par
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._provider: ProviderMetadata | None = None
        self._fetched_at = -float("inf")
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcClient | None:
        """The client ``settings`` describe, or ``None`` when HelseID login is not
        configured (no ``PLL_OIDC_ISSUER``). A partial configuration raises ``ValueError``
        naming what is missing, so a server does not start with a login that cannot
        work."""
        if not settings.oidc_issuer:
            return None
        missing = [
            name
            for name, value in (
                ("PLL_OIDC_CLIENT_ID", settings.oidc_client_id),
                ("PLL_OIDC_CLIENT_KEY", settings.oidc_client_key),
                ("PLL_PUBLIC_URL", settings.public_url),
            )
            if not value
        ]
        client_id, key, public_url = (
            settings.oidc_client_id,
            settings.oidc_client_key,
            settings.public_url,
        )
        if not client_id or not key or not public_url:
            raise ValueError(f"HelseID login (PLL_OIDC_ISSUER) also needs {', '.join(missing)}.")
        return cls(
            settings.oidc_issuer,
            client_id,
            ClientKey.load(key),
            f"{public_url.rstrip('/')}{CALLBACK_PATH}",
            scope=settings.oidc_scope,
        )

    # -- the two steps ---------------------------------------------------------------

    def begin(self) -> tuple[str, Pending]:
        """Start a login: the address to send the browser to, and what to keep in the
        session until it comes back (:meth:`Pending.to_session`)."""
        provider = self.metadata()
        pending = Pending(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            # 43 to 128 unreserved characters (RFC 7636 §4.1): 64 random bytes give 86
            code_verifier=secrets.token_urlsafe(64),
            started=time.time(),
        )
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": self.scope,
            "redirect_uri": self.redirect_uri,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": s256(pending.code_verifier),
            "code_challenge_method": "S256",
        }
        use_par = self.use_par if self.use_par is not None else bool(provider.par_endpoint)
        if use_par:
            params = {"client_id": self.client_id, "request_uri": self._push(provider, params)}
        return _with_query(provider.authorization_endpoint, params), pending

    def complete(self, params: Mapping[str, str], pending: Pending) -> Login:
        """Finish a login from the query of the redirect back (``params``) and the pending
        state :meth:`begin` made. Checks, in order: the login's age, ``state`` (constant
        time), the answer's ``iss``, an ``error`` answer; then redeems the code with the
        verifier and a client assertion, and verifies the ID token: signature by the
        provider's keys, ``iss``, ``aud`` (and ``azp``) = the client id, ``exp``,
        ``nonce``, and ``at_hash`` when present. :class:`LoginFailed` on any failure."""
        if time.time() - pending.started > self.pending_max_age:
            raise LoginFailed("Innloggingen tok for lang tid. Start innloggingen på nytt.")
        if not _same(params.get("state"), pending.state):
            log.warning("OIDC answer with a state that is not this session's")
            raise LoginFailed(
                "Svaret fra HelseID hører ikke til innloggingen som ble startet i denne "
                "nettleseren. Start innloggingen på nytt."
            )
        provider = self.metadata()
        iss = params.get("iss")
        if (iss is not None or provider.iss_in_answers) and iss != provider.issuer:
            log.warning("OIDC answer from issuer %r, expected %r", iss, provider.issuer)
            raise LoginFailed("Svaret kom ikke fra HelseID. Start innloggingen på nytt.")
        if "error" in params:
            raise LoginFailed(_error_message(params["error"], params.get("error_description")))
        code = params.get("code")
        if not code:
            raise LoginFailed("Svaret fra HelseID mangler innloggingskoden. Prøv igjen.")
        tokens = self._redeem(provider, code, pending)
        claims = self._verify_id_token(provider, tokens, pending)
        return Login(tokens["access_token"], claims, _expiry(tokens, claims))

    # -- the provider ----------------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        """The provider's metadata by discovery (OpenID Connect Discovery §4), cached."""
        with self._lock:
            fresh = time.monotonic() - self._fetched_at < self.metadata_max_age
            if self._provider is not None and fresh:
                return self._provider
            cached = self._provider
            try:
                provider = self._discover(cached)
            except LoginFailed:
                if cached is None:
                    raise
                log.warning("Keeping the cached OpenID configuration of %s", self.issuer)
                provider = cached
            self._provider, self._fetched_at = provider, time.monotonic()
            return provider

    def _discover(self, previous: ProviderMetadata | None) -> ProviderMetadata:
        url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        document = self._json(httpx.get, url, headers={"Accept": "application/json"})
        if not isinstance(document, dict):
            document = {}
        issuer = document.get("issuer")
        endpoints = [
            document.get(name) for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        ]
        par = document.get("pushed_authorization_request_endpoint")
        methods = document.get("code_challenge_methods_supported", ["S256"])
        problem = None
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.issuer.rstrip("/"):
            problem = f"names the issuer {issuer!r}, not {self.issuer!r}"
        elif not all(isinstance(e, str) and _secure(e, like=issuer) for e in endpoints):
            problem = "lacks an authorization, token or JWKS endpoint (or one is not https)"
        elif par is not None and not (isinstance(par, str) and _secure(par, like=issuer)):
            problem = "names an unusable PAR endpoint"
        elif not isinstance(methods, list) or "S256" not in methods:
            problem = "does not offer PKCE with S256"
        if problem:
            log.error("The OpenID configuration at %s %s", url, problem)
            raise LoginFailed(
                "HelseID-innloggingen er feil satt opp (oppsettet fra HelseID passer ikke). "
                "Kontakt den som drifter PLL.",
                502,
            )
        authorize, token, jwks_uri = (str(e) for e in endpoints)
        keys = (
            previous.keys
            if previous is not None and previous.jwks_uri == jwks_uri
            else KeySet.from_url(jwks_uri, timeout=self.timeout.read or 10.0)
        )
        return ProviderMetadata(
            issuer=str(issuer),
            authorization_endpoint=authorize,
            token_endpoint=token,
            jwks_uri=jwks_uri,
            par_endpoint=par,
            iss_in_answers=document.get("authorization_response_iss_parameter_supported") is True,
            keys=keys,
        )

    # -- back-channel calls ----------------------------------------------------------

    def client_assertion(self, audience: str) -> str:
        """A fresh client assertion (RFC 7523 §3) for a request to ``audience``."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "nbf": now,
            "exp": now + self.assertion_lifetime,
        }
        headers = {"kid": self.client_key.kid} if self.client_key.kid else None
        return jwt.encode(
            claims, self.client_key.key, algorithm=self.client_key.algorithm, headers=headers
        )

    def _authenticated(self, provider: ProviderMetadata, form: dict[str, str]) -> dict[str, str]:
        # The token endpoint as audience: RFC 7523 §3 and OpenID Connect Core §9 name it,
        # and a PAR endpoint must accept it too (RFC 9126 §2).
        return {
            **form,
            "client_id": self.client_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.client_assertion(provider.token_endpoint),
        }

    def _push(self, provider: ProviderMetadata, params: dict[str, str]) -> str:
        if provider.par_endpoint is None:
            log.error("PAR is asked for, but %s offers no PAR endpoint", self.issuer)
            raise LoginFailed(
                "HelseID-innloggingen er feil satt opp. Kontakt den som drifter PLL.", 502
            )
        answer = self._json(
            httpx.post, provider.par_endpoint, data=self._authenticated(provider, params)
        )
        request_uri = answer.get("request_uri") if isinstance(answer, dict) else None
        if not isinstance(request_uri, str) or not request_uri:
            log.error("The PAR answer from %s has no request_uri", provider.par_endpoint)
            raise LoginFailed("HelseID svarte ikke som ventet. Prøv igjen om litt.", 502)
        return request_uri

    def _redeem(self, provider: ProviderMetadata, code: str, pending: Pending) -> dict[str, str]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        answer = self._json(
            httpx.post, provider.token_endpoint, data=self._authenticated(provider, form)
        )
        if not isinstance(answer, dict):
            answer = {}
        tokens = {
            name: value
            for name in ("access_token", "id_token", "token_type")
            if isinstance(value := answer.get(name), str) and value
        }
        if len(tokens) < 3:
            log.error("The token answer from %s lacks a token or its type", self.issuer)
            raise LoginFailed("HelseID svarte ikke som ventet. Prøv igjen om litt.", 502)
        if tokens["token_type"].lower() != "bearer":
            # A DPoP-bound token would need proofs the browser session cannot make.
            log.error("HelseID issued a %s token; the web login needs Bearer", tokens["token_type"])
            raise LoginFailed(
                "HelseID ga en tilgangsbillett av en type PLL-nettsidene ikke kan bruke "
                f"({tokens['token_type']}). Kontakt den som drifter PLL.",
                502,
            )
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            tokens["expires_in"] = str(expires_in)
        return tokens

    def _json(self, send: Callable[..., httpx.Response], url: str, **kwargs: Any) -> Any:
        """A JSON answer from the provider; an OAuth error answer (RFC 6749 §5.2) or a
        failure to reach it becomes :class:`LoginFailed`."""
        try:
            response = send(url, timeout=self.timeout, **kwargs)
        except httpx.HTTPError as exc:
            log.warning("HelseID request to %s failed: %s", url, exc)
            raise LoginFailed("Fikk ikke kontakt med HelseID. Prøv igjen om litt.", 502) from None
        try:
            document = response.json()
        except ValueError:
            document = None
        if response.status_code >= 400 and isinstance(document, dict) and "error" in document:
            error, description = document.get("error"), document.get("error_description")
            log.warning("HelseID refused a request to %s: %s %s", url, error, description)
            raise LoginFailed(
                _error_message(str(error), description if isinstance(description, str) else None)
            )
        if not response.is_success or document is None:
            log.warning("HelseID answered %s from %s", response.status_code, url)
            raise LoginFailed("HelseID svarte ikke som ventet. Prøv igjen om litt.", 502)
        return document

    # -- the ID token ----------------------------------------------------------------

    def _verify_id_token(
        self, provider: ProviderMetadata, tokens: Mapping[str, str], pending: Pending
    ) -> dict[str, Any]:
        issuer = Issuer(provider.issuer, self.client_id, provider.keys)
        try:
            claims = verify_token(tokens["id_token"], {provider.issuer: issuer})
        except Unauthenticated as exc:
            log.warning("ID token refused: %s", exc.message)
            raise LoginFailed(
                "Identitetsbeviset fra HelseID kunne ikke bekreftes. Start innloggingen på nytt."
            ) from None
        aud, azp = claims.get("aud"), claims.get("azp")
        several = isinstance(aud, list) and len(aud) > 1
        if (several or azp is not None) and azp != self.client_id:
            problem = "azp"
        elif not _same(claims.get("nonce"), pending.nonce):
            problem = "nonce"
        elif not isinstance(claims.get("sub"), str):
            problem = "sub"
        elif "at_hash" in claims and not _same(
            claims["at_hash"], _at_hash(tokens["access_token"], tokens["id_token"])
        ):
            problem = "at_hash"
        else:
            return claims
        log.warning("ID token refused: its %s does not fit this login", problem)
        raise LoginFailed(
            "Identitetsbeviset fra HelseID hører ikke til denne innloggingen "
            f"({problem}). Start innloggingen på nytt."
        )


def _at_hash(access_token: str, id_token: str) -> str:
    """``at_hash`` (OpenID Connect Core §3.1.3.6): the left half of the access token's hash
    by the hash of the ID token's algorithm (all that :mod:`pll.auth.jwks` accepts use
    SHA-256)."""
    alg = str(jwt.get_unverified_header(id_token).get("alg", ""))
    digest = _HASHES.get(alg[-3:], hashlib.sha256)
    full = digest(access_token.encode("utf-8")).digest()
    return _b64(full[: len(full) // 2])


def _expiry(tokens: Mapping[str, str], claims: Mapping[str, Any]) -> float:
    """When the access token expires: by ``expires_in``, else its own ``exp`` (read, not
    verified: the Authenticator verifies it on use), else the ID token's."""
    if "expires_in" in tokens:
        return time.time() + float(tokens["expires_in"])
    try:
        exp = jwt.decode(tokens["access_token"], options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        exp = None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return float(claims["exp"])


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(
        given.encode("utf-8"), expected.encode("utf-8")
    )


#: OAuth error codes (RFC 6749 §4.1.2.1 and §5.2, OpenID Connect Core §3.1.2.6) in words
_ERRORS = {
    "access_denied": "Innloggingen ble avbrutt eller avvist i HelseID.",
    "login_required": "HelseID krever at du logger inn på nytt.",
    "interaction_required": "HelseID krever at du logger inn på nytt.",
    "consent_required": "HelseID trenger ditt samtykke før du kan logge inn.",
    "account_selection_required": "Velg hvilken konto du vil logge inn med i HelseID.",
    "temporarily_unavailable": "HelseID er midlertidig utilgjengelig. Prøv igjen om litt.",
    "server_error": "HelseID fikk en feil under innloggingen. Prøv igjen om litt.",
    "invalid_grant": "Innloggingskoden ble ikke godtatt av HelseID (den kan være brukt eller "
    "utløpt). Start innloggingen på nytt.",
}


def _error_message(error: str, description: str | None) -> str:
    """A readable message for an OAuth error answer, with the code and the provider's own
    description (shortened) for whoever helps the user."""
    text = _ERRORS.get(
        error,
        "HelseID avviste innloggingen. Kontakt den som drifter PLL hvis det gjentar seg.",
    )
    detail = error[:60]
    if description:
        detail += f": {description[:300]}"
    return f"{text} ({detail})"


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1")


def _secure(url: str, *, like: str) -> bool:
    """``url`` is https, or http on the loopback interface for a provider that is too."""
    scheme = urlsplit(url).scheme
    return scheme == "https" or (scheme == "http" and _loopback(url) and _loopback(like))


def _require_secure(url: str, what: str) -> None:
    if not _secure(url, like=url):
        raise ValueError(f"{what} must be an https URL (http only on localhost): {url!r}")
