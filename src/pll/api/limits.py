"""How much of a request body the server takes, and what a client that leaves mid-body costs.

Pure ASGI middleware around the API and the web UI alike (DESIGN §3 rule 8: every request's
size is bounded). A body whose declared ``Content-Length`` passes the limit is refused with
413 before a byte of it is read; a body sent without a length (chunked) is counted as it
arrives and refused the moment it passes. A client that disconnects before its body is in
is no application error: it is logged as one line at info level, and nothing was done.
"""

from __future__ import annotations

import logging

import orjson
from starlette.requests import ClientDisconnect
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
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._refuse(scope, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
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
            # the client went away mid-body: there is no one to answer, and nothing was done
            log.info("client disconnected before its body was read: %s %s", *_line(scope))

    async def _refuse(self, scope: Scope, send: Send) -> None:
        limit = f"{self.max_body:,}".replace(",", " ")
        if scope["path"].startswith(_API_PREFIXES):
            body = _outcome_json(
                f"The request body is larger than this server accepts ({limit} bytes); "
                "nothing was read or changed."
            )
            media = b"application/fhir+json; charset=utf-8"
        else:
            body = (
                "<!doctype html><html lang=nb><meta charset=utf-8><title>For stor</title>"
                f"<p>Det du sendte er større enn serveren tar imot ({limit} byte). "
                "Ingenting er lagret.</p></html>"
            ).encode()
            media = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                # the body is left unread: the connection cannot be reused
                "headers": [
                    (b"content-type", media),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server itself refuses a malformed length
    return None


def _line(scope: Scope) -> tuple[str, str]:
    return scope["method"], scope["path"]


def _outcome_json(message: str) -> bytes:
    return orjson.dumps(outcome(issue(message, code="too-costly")))
