"""How much of a request body the server takes, and what a client that leaves mid-body costs.

Pure ASGI middleware around the API and the web UI alike (DESIGN §3 rule 8: every request's
size is bounded). A body whose declared ``Content-Length`` passes the limit is refused with
413 before a byte of it is read (for the web UI, as its page first reads the form, so that
the web UI answers with a page of its own); a body sent without a length (chunked) is
counted as it arrives and refused the moment it passes. A client that disconnects before
its body is in is no application error: it is logged as one line at info level, and
nothing was done.
"""

from __future__ import annotations

import logging

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pll.fhir.outcome import issue, outcome

log = logging.getLogger("pll.api")

#: Paths whose clients read FHIR; the rest is the web UI, which answers in Norwegian.
_API_PREFIXES = ("/fhir", "/cds-services", "/stats")


class BodyTooLarge(Exception):
    """The body passed the limit while it was being read."""


class BodyLimit:
    """Refuse request bodies larger than ``max_body`` bytes with 413."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, has_body = _body_framing(scope)
        if not has_body:
            # no body (the hot reads): nothing to count, so no wrappers around the request
            try:
                await self.app(scope, receive, send)
            except ClientDisconnect:
                disconnected(scope)
            return
        over = declared is not None and declared > self.max_body
        if over and scope["path"].startswith(_API_PREFIXES):
            await self._refuse(scope, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            if over:
                # a web page's form: refused as it is read, so the web UI answers with a
                # page of its own (header, the user's name, a way back); still unread
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send)
        except ClientDisconnect:
            disconnected(scope)  # there is no one to answer, and nothing was done

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await too_large(scope["path"], self.max_body)(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def too_large(path: str, max_body: int) -> Response:
    """The 413 for a body past ``max_body``: FHIR for the API, a Norwegian page for the web
    UI. The body is left unread, so the connection is closed after it."""
    limit = f"{max_body:,}".replace(",", " ")
    headers = {"Connection": "close"}
    if path.startswith(_API_PREFIXES):
        message = (
            f"The request body is larger than this server accepts ({limit} bytes); "
            "nothing was read or changed."
        )
        return Response(
            orjson.dumps(outcome(issue(message, code="too-costly"))),
            413,
            headers=headers,
            media_type="application/fhir+json; charset=utf-8",
        )
    page = (
        "<!doctype html><html lang=nb><meta charset=utf-8><title>For stor</title>"
        f"<p>Det du sendte er større enn serveren tar imot ({limit} byte). "
        "Ingenting er lagret.</p></html>"
    )
    return HTMLResponse(page, 413, headers=headers)


def disconnected(scope: Scope) -> None:
    """Log a client that went away mid-body: one line, at info level (nothing was done)."""
    log.info("client disconnected before its body was read: %s %s", *_line(scope))


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared ``Content-Length`` (``None`` when absent or malformed: the server itself
    refuses a malformed one), and whether the request may have a body: one with neither a
    length nor a ``Transfer-Encoding``, or a length of 0, has none (RFC 9112 §6.3)."""
    length, has_body = None, False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
            has_body = has_body or length != 0
        elif name == b"transfer-encoding":
            has_body = True
    return length, has_body


def _line(scope: Scope) -> tuple[str, str]:
    return scope["method"], scope["path"]
