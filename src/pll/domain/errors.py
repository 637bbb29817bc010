"""Errors the domain raises when a request breaks a rule.

Each carries what was wrong and where (a FHIRPath-like expression), so every entry point
can turn it into the same FHIR ``OperationOutcome`` (DESIGN §3 rule 8). The HTTP status a
kind of error maps to lives with the API, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DomainError(Exception):
    """A request the domain refuses; nothing has been changed."""

    message: str
    expression: str | None = None
    #: extra facts a client may need (current version, who changed it, ...)
    details: dict[str, str] = field(default_factory=dict)
    #: further problems found in the same input, as (message, expression)
    others: list[tuple[str, str | None]] = field(default_factory=list)
    #: resources that help the client act, such as the current version after a conflict
    resources: list[dict[str, Any]] = field(default_factory=list)
    #: further OperationOutcome issues as they are (with their own severity and code)
    issues: list[dict[str, Any]] = field(default_factory=list)
    #: the same refusal in Norwegian (bokmål), for a person reading a page; the API
    #: answers ``message`` (journal systems match on it). ``None``: ``message`` is all there is
    norwegian: str | None = None

    def __str__(self) -> str:
        where = f" (at {self.expression})" if self.expression else ""
        return f"{self.message}{where}"


class InvalidInput(DomainError):
    """The input is malformed or breaks a value rule (bad code, bad check digit, ...)."""


class NotFound(DomainError):
    """The resource the request names does not exist."""


class Conflict(DomainError):
    """The request contradicts the current state (a second PLL, a discontinued entry, ...)."""


class VersionConflict(DomainError):
    """The client's version is stale: someone else changed the resource (relay baton)."""


class PreconditionRequired(DomainError):
    """A write to an existing resource came without the version it was based on."""


class Unauthenticated(DomainError):
    """No usable credentials: the client must (re)authenticate (HTTP 401)."""


class ChecksRefused(DomainError):
    """Decision support found something that needs an explicit override (rule 6)."""


class RuleRefused(DomainError):
    """Well-formed input that an operation's rules refuse (an SFM send that leaves out
    what its read showed)."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class Unavailable(DomainError):
    """The service cannot answer now (its database failed); nothing was served or changed,
    and the same request may succeed when tried again (HTTP 503)."""
