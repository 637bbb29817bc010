"""The thin HTTP edge: authentication, errors as OperationOutcome, FHIR JSON responses.

Handlers are plain functions ``(ctx) -> Response`` that run in a worker thread (the services
are synchronous); :func:`endpoint` wraps them so every refusal becomes the same
OperationOutcome with the right status, and nothing a handler raises leaks a stack trace.
The hot current-list reads are coroutines that stay on the event loop
(:func:`async_endpoint`), with the same authentication, checks and errors.

A database that cannot be reached or is lost mid-request (its server died; a failover is
under way) is no fault of the request: the answer is 503 with ``Retry-After``
(:func:`unavailable_response`). A read (GET, HEAD) is first tried once more, on a fresh
connection; a change never is, as the server cannot know whether it was made: the client
repeats it with its ``If-Match``, and it is then made once or refused with 412
(docs/operations.md, "Failover").
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import Any, overload
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pll.api.metrics import count_refusal
from pll.auth.access import BASIS_HEADER, Access, parse_basis
from pll.auth.tokens import Authenticator
from pll.domain.errors import (
    ChecksRefused,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    RuleRefused,
    Unauthenticated,
    Unavailable,
    VersionConflict,
)
from pll.fhir.findings import OVERRIDE_FINDINGS_HEADER, OVERRIDE_HEADER
from pll.fhir.outcome import from_error, issue, outcome
from pll.fhir.validate import parse_json
from pll.services.lists import PLLService
from pll.services.reads import ListReads
from pll.services.rollout_reports import count_refusal as count_for_client
from pll.store.db import DatabaseUnavailable

log = logging.getLogger("pll.api")

FHIR_JSON = "application/fhir+json; charset=utf-8"
STATUS: list[tuple[type[DomainError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (VersionConflict, 412),
    (PreconditionRequired, 428),
    (Conflict, 409),
    (ChecksRefused, 422),
    (RuleRefused, 422),
    (InvalidInput, 400),
    (Unavailable, 503),
]
MAX_COUNT = 500
#: FHIR R4 id (https://hl7.org/fhir/R4/datatypes.html#id) and our version ids.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
VERSION_ID = re.compile(r"[0-9]{1,9}")
#: The methods that change nothing (RFC 9110 §9.2.1): such a request that failed on a lost
#: database connection is tried once more, on a fresh one.
SAFE_METHODS = frozenset({"GET", "HEAD"})
_HOST = re.compile(r"(?:[A-Za-z0-9\-.]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=256)
def fhir_base(scheme: str, host: str, server: tuple[Any, ...], root_path: str) -> str:
    """The FHIR base URL for a request: the Host header when it is a well-formed host
    (anything else could put foreign text into fullUrls and Location headers), else the
    address the server listens on."""
    if not _HOST.fullmatch(host):
        if len(server) == 2:
            name, port = str(server[0]), int(server[1])
            name = f"[{name}]" if ":" in name else name
            host = name if _DEFAULT_PORTS.get(scheme) == port else f"{name}:{port}"
        else:
            host = "localhost"
    return f"{scheme}://{host}{root_path.rstrip('/')}/fhir"


def check_id(value: str, where: str) -> str:
    if not FHIR_ID.fullmatch(value):
        raise InvalidInput(f"{value[:80]!r} is not a FHIR id (1-64 of A-Z a-z 0-9 - .).", where)
    return value


def check_version(value: str, where: str) -> int:
    if not VERSION_ID.fullmatch(value):
        raise InvalidInput(f"{value[:80]!r} is not a version number.", where)
    return int(value)


class UnsupportedMedia(DomainError):
    """The body is not FHIR JSON."""


@dataclass
class Ctx:
    """What a handler gets: the request, its body, the caller's access, the services."""

    request: Request
    body: bytes
    access: Access
    service: PLLService
    reads: ListReads

    @property
    def base(self) -> str:
        """This server's FHIR base as the client addressed it (``http://host:port/fhir``).

        Read from the ASGI scope directly: Starlette's ``base_url`` builds and parses a URL
        object, which costs more than the hot read's database round trip.
        """
        scope = self.request.scope
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        return fhir_base(
            scope.get("scheme", "http"),
            host.decode("latin-1"),
            tuple(scope.get("server") or ()),
            scope.get("root_path", ""),
        )

    @property
    def path(self) -> Mapping[str, str]:
        return self.request.path_params

    def json(self) -> Any:
        media = (
            self.request.headers.get("content-type", "application/fhir+json").split(";")[0].strip()
        )
        if media not in ("application/fhir+json", "application/json"):
            raise UnsupportedMedia(
                f"Send FHIR JSON (Content-Type: application/fhir+json), not {media!r}."
            )
        return parse_json(self.body)

    def query(self, allowed: set[str]) -> dict[str, str]:
        """The search parameters, refusing any this server does not support."""
        params = query_params(self.request.scope["query_string"].decode("latin-1"))
        unknown = sorted(set(params) - allowed - {"_format"})
        if unknown:
            raise InvalidInput(
                f"Unsupported search parameter(s): {', '.join(unknown)}. "
                f"Supported here: {', '.join(sorted(allowed))}.",
                unknown[0],
            )
        return params

    def paging(self, params: Mapping[str, str]) -> tuple[int, int]:
        count = _int(params.get("_count", "50"), "_count", 1, MAX_COUNT)
        offset = _int(params.get("_offset", "0"), "_offset", 0, 10**9)
        return count, offset

    def page_urls(self, count: int, offset: int, total: int, **keep: int) -> tuple[str, str | None]:
        """This page's URL and the next one's; ``keep`` holds what pins the paging (such
        as ``_upto``) so later pages show the same set."""
        url = self.request.url
        self_url = str(url)
        if offset + count >= total:
            return self_url, None
        return self_url, str(url.include_query_params(_offset=offset + count, _count=count, **keep))

    def upto(self, params: Mapping[str, str]) -> int | None:
        return check_version(params["_upto"], "_upto") if "_upto" in params else None

    def reason(self) -> str | None:
        """The why of a change, from an ``X-Provenance`` header (FHIR R4 http.html#provenance)."""
        raw = self.request.headers.get("x-provenance")
        if not raw:
            return None
        where = "X-Provenance"
        try:
            # HTTP headers reach us as latin-1; clients send UTF-8 (æøå in a reason).
            data = orjson.loads(raw.encode("latin-1"))
        except (orjson.JSONDecodeError, UnicodeEncodeError):
            raise InvalidInput(
                "X-Provenance must be a Provenance resource as JSON.", where
            ) from None
        if not isinstance(data, dict) or data.get("resourceType") != "Provenance":
            raise InvalidInput("X-Provenance must be a Provenance resource as JSON.", where)
        reasons = data.get("reason", [])
        if not isinstance(reasons, list) or not all(isinstance(r, dict) for r in reasons):
            raise InvalidInput(
                "Provenance.reason is a list of CodeableConcepts.", f"{where}.reason"
            )
        texts = []
        for i, concept in enumerate(reasons):
            codings = concept.get("coding", [])
            if not isinstance(codings, list) or not all(isinstance(c, dict) for c in codings):
                raise InvalidInput("coding is a list of Codings.", f"{where}.reason[{i}].coding")
            text = concept.get("text") or next(
                (c.get("display") or c.get("code") for c in codings), None
            )
            if text is not None and not isinstance(text, str):
                raise InvalidInput("A reason's text is a string.", f"{where}.reason[{i}]")
            if text:
                texts.append(text)
        return "; ".join(texts) or None


def query_params(raw: str) -> dict[str, str]:
    """``dict(parse_qsl(raw, keep_blank_values=True))``, the last value of a name winning;
    without escapes (``%``, ``+``) by splitting alone, as the hot reads' queries come."""
    if "%" in raw or "+" in raw:
        return dict(parse_qsl(raw, keep_blank_values=True))
    params = {}
    for pair in raw.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params[name] = value
    return params


def _int(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {value!r}.", name) from None
    if not low <= number <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}.", name)
    return number


def fhir_response(
    body: bytes | str | dict[str, Any],
    status: int = 200,
    *,
    version: int | None = None,
    updated: datetime | None = None,
    location: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if isinstance(body, dict):
        body = orjson.dumps(body)
    out = dict(headers or {})
    if version is not None:
        out["ETag"] = f'W/"{version}"'
    if updated is not None:
        out["Last-Modified"] = format_datetime(updated, usegmt=True)
    if location is not None:
        out["Location"] = location
    return Response(body, status, headers=out, media_type=FHIR_JSON)


def error_response(error: DomainError) -> Response:
    count_refusal(error)  # those made outside a use case; each is counted once
    status = next(
        (code for kind, code in STATUS if isinstance(error, kind)),
        415 if isinstance(error, UnsupportedMedia) else 400,
    )
    headers = None
    if status == 401:
        # RFC 9449 §7.1 and RFC 6750 §3: which schemes are accepted, and a bad proof named.
        dpop = 'DPoP algs="ES256 RS256 PS256"'
        if error.expression == "DPoP":
            dpop += ', error="invalid_dpop_proof"'
        headers = {"WWW-Authenticate": f'{dpop}, Bearer realm="pll"'}
    elif status == 503:
        headers = {"Retry-After": "1"}
    return fhir_response(from_error(error), status, headers=headers)


def unavailable_response(
    method: str, error: DatabaseUnavailable, *, reads: bool = False
) -> Response:
    """503 for a database that could not be reached or was lost: what may have happened to
    the request, and that it may be repeated (``Retry-After``, RFC 9110 §10.2.3). ``reads``:
    the route only reads, though its method is ``POST`` (``$getMedication``): what it may
    have written is its audit record, so it is answered as a ``GET`` is."""
    if reads or method in SAFE_METHODS:
        message = (
            "The database cannot be reached just now (its server is down, or a failover is "
            "under way), so nothing was read and nothing was changed. Try again shortly."
        )
    elif error.maybe_done and method == "POST":
        # a create carries no If-Match: sent again blindly, it would be made twice
        message = (
            "The database was lost while this request was being handled (its server died, "
            "or a failover is under way), so it may or may not have been made. Read the list "
            "first, and send it again only if it is not there: a new resource sent twice is "
            "made twice."
        )
    elif error.maybe_done:
        message = (
            "The database was lost while this change was being made (its server died, or a "
            "failover is under way), so it may or may not have been made. Read the resource "
            "again, or send the same change again with the same If-Match: it is then made "
            "once or refused with 412, never made twice."
        )
    else:
        message = (
            "The database cannot be reached just now (its server is down, or a failover is "
            "under way); nothing was changed. Send the change again shortly."
        )
    return fhir_response(
        outcome(issue(message, code="transient")), 503, headers={"Retry-After": "1"}
    )


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """The application's handler of :class:`DatabaseUnavailable` from the routes outside
    :func:`endpoint` (``/healthz``: a load balancer then takes this server out of turn)."""
    if not isinstance(exc, DatabaseUnavailable):  # pragma: no cover - registered for it only
        raise exc
    _database_lost(request, exc, again=False)
    return unavailable_response(request.method, exc)


def _database_lost(request: Request, error: DatabaseUnavailable, again: bool) -> None:
    log.warning(
        "database unavailable on %s %s (%s)%s",
        request.method,
        request.url.path,
        str(error).splitlines()[0] if str(error) else type(error.__cause__).__name__,
        "; trying once more" if again else "",
    )


Handler = Callable[[Ctx], Response]
AsyncHandler = Callable[[Ctx], Awaitable[Response]]


def endpoint(handler: Handler, *, reads: bool = False) -> Callable[[Request], Any]:
    """Wrap a handler: authenticate, then read the body, run it in a thread, map errors.
    ``reads``: the handler changes nothing but its audit record, whatever its method
    (:func:`unavailable_response`).

    The caller is known before a byte of the body is read: an anonymous client is refused
    without the server holding what it sends (the size of what is read is bounded by
    :mod:`pll.api.limits`). Authentication runs in a thread when it has work that may
    wait (an issuer's keys to fetch, a DPoP proof to record); a Bearer token verified
    lately is known on the event loop, which saves a thread hop (issue 20).
    """

    async def run(request: Request) -> Response:
        try:
            authenticator = request.app.state.authenticator
            access = _authenticate(request, authenticator, remembered_only=True)
            if access is None:
                access = await run_in_threadpool(_authenticate, request, authenticator)
        except DomainError as exc:
            return error_response(exc)
        except DatabaseUnavailable as exc:
            _database_lost(request, exc, again=False)
            return unavailable_response(request.method, exc, reads=reads)
        except Exception:
            return _internal_error(request)
        body = await request.body()
        return await run_in_threadpool(_call, handler, request, body, access, reads)

    run.__name__ = handler.__name__
    return run


def async_endpoint(handler: AsyncHandler) -> Callable[[Request], Any]:
    """Wrap a handler that stays on the event loop (the hot reads); same checks and errors.

    A request with a DPoP proof is authenticated in a worker thread: accepting the proof
    writes it to the database (:mod:`pll.store.dpop_proofs`), which must not hold up the
    loop.
    """

    async def run(request: Request) -> Response:
        try:
            access = None
            if any(name == b"dpop" for name, _ in request.scope["headers"]):
                access = await run_in_threadpool(
                    _authenticate, request, request.app.state.authenticator
                )
            try:
                return await handler(_context(request, b"", access))
            except DatabaseUnavailable as exc:
                if request.method not in SAFE_METHODS:
                    raise
                _database_lost(request, exc, again=True)
                return await handler(_context(request, b"", access))
        except DomainError as exc:
            return error_response(exc)
        except DatabaseUnavailable as exc:
            _database_lost(request, exc, again=False)
            return unavailable_response(request.method, exc)
        except Exception:
            return _internal_error(request)

    run.__name__ = handler.__name__
    return run


def _context(request: Request, body: bytes, access: Access | None = None) -> Ctx:
    """Authenticate (unless done) and check the path's ids: what every handler can rely on."""
    if access is None:
        access = _authenticate(request, request.app.state.authenticator)
    for name, value in request.path_params.items():
        if name == "vid":
            check_version(value, "versionId")
        else:
            check_id(value, name)
    return Ctx(request, body, access, request.app.state.service, request.app.state.reads)


def _call(handler: Handler, request: Request, body: bytes, access: Access, reads: bool) -> Response:
    try:
        try:
            return handler(_context(request, body, access))
        except DatabaseUnavailable as exc:
            if request.method not in SAFE_METHODS:
                raise
            # a read changes nothing: once more, on a connection made now (the pool has
            # dropped those it had), to whichever server is the primary by now
            _database_lost(request, exc, again=True)
            return handler(_context(request, body, access))
    except DatabaseUnavailable as exc:
        _database_lost(request, exc, again=False)
        return unavailable_response(request.method, exc, reads=reads)
    except DomainError as exc:
        # per client system, for the rollout team (issue 19): what the API refuses before a
        # use case sees it (a body that is not valid) too — for a change only: a refused
        # read (a malformed query) sent nothing and writes nothing. Best effort, never raises.
        if request.method not in ("GET", "HEAD"):
            service = request.app.state.service
            count_for_client(service.db, access, exc, service.clock())
        return error_response(exc)
    except Exception:
        return _internal_error(request)


def _internal_error(request: Request) -> Response:
    incident = str(uuid.uuid4())
    log.exception("internal error %s on %s %s", incident, request.method, request.url.path)
    return fhir_response(
        outcome(
            issue(
                f"Internal server error (incident {incident}); nothing was changed.",
                code="exception",
                severity="fatal",
            )
        ),
        500,
    )


_AUTH_HEADERS = (
    b"authorization",
    b"dpop",
    BASIS_HEADER.lower().encode(),
    b"host",
    OVERRIDE_HEADER.lower().encode(),
    OVERRIDE_FINDINGS_HEADER.lower().encode(),
)


@overload
def _authenticate(request: Request, authenticator: Authenticator) -> Access: ...


@overload
def _authenticate(
    request: Request, authenticator: Authenticator, *, remembered_only: bool
) -> Access | None: ...


def _authenticate(
    request: Request, authenticator: Authenticator, *, remembered_only: bool = False
) -> Access | None:
    """Who is calling, through which client, on what basis: decided once per request.
    ``remembered_only``: ``None`` unless the caller is known without any work that may
    wait (:meth:`~pll.auth.tokens.Authenticator.remembered`).

    The few headers it needs are taken in one pass over the raw ASGI headers: this runs on
    every request, and Starlette's header mapping scans the list once per lookup.
    """
    scope = request.scope
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _AUTH_HEADERS:
            if name == b"dpop" and name in found:
                raise Unauthenticated("Send exactly one DPoP proof header.", "DPoP")
            found.setdefault(name, value.decode("latin-1"))
    authorization = found.get(b"authorization")
    url = ""
    if authorization is not None and authorization[:5].lower() == "dpop ":
        # htu (RFC 9449 §4.3): the configured public origin, else the Host the client used
        base = request.app.state.public_url or fhir_base(
            scope.get("scheme", "http"),
            found.get(b"host", ""),
            tuple(scope.get("server") or ()),
            "",
        ).removesuffix("/fhir")
        url = base + scope.get("root_path", "") + scope["path"]
    if remembered_only:
        known = authenticator.remembered(authorization, found.get(b"dpop"))
        if known is None:
            return None
        caller = known
    else:
        caller = authenticator.authenticate(authorization, found.get(b"dpop"), scope["method"], url)
    basis = None
    if caller.actor.hpr is not None:
        basis = parse_basis(found.get(_AUTH_HEADERS[2]))
    override = _override(found.get(_AUTH_HEADERS[4]))
    accepted = frozenset(
        code.strip() for code in found.get(_AUTH_HEADERS[5], "").split(",") if code.strip()
    )
    return Access(caller.actor, basis, caller.client_id, override, accepted if override else None)


def _override(raw: str | None) -> str | None:
    """The override reason: free text (UTF-8, which HTTP headers carry as latin-1)."""
    if raw is None or not raw.strip():
        return None
    try:
        text = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidInput(f"{OVERRIDE_HEADER} must be UTF-8 text.", OVERRIDE_HEADER) from None
    return text.strip()[:1000]
