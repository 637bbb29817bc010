"""Which journal systems may show PLL's pages in a frame, and the headers that say so.

A page refuses to be framed (``Content-Security-Policy: frame-ancestors 'none'`` and
``X-Frame-Options: DENY``): a page in a frame on a foreign site can be overlaid and clicked
through (clickjacking). A journal system that embeds PLL's doctor pages (SFM "med
brukergrensesnitt") is let in by name: ``PLL_EMBED_ORIGINS`` lists, per client system (the
``client_id`` of its HelseID tokens), the origins of the pages that may frame PLL::

    PLL_EMBED_ORIGINS="epj-a=https://epj.a.no https://web.epj.a.no; epj-b=https://b.example"

Only the responses of a web session opened by a SMART launch from that client system
(:mod:`pll.web.launch`) carry ``frame-ancestors`` with its origins; every other response
keeps ``'none'``. An origin is a scheme, a host and an optional port, nothing else: no
wildcard, no path, and ``http`` only on the loopback interface (for tests and development).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

_CLIENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}")
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
#: The memory key (pll.services.logins state) naming the client system that launched a login.
EMBEDDED_BY = "embedded_by"

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; form-action 'self'; frame-ancestors {ancestors}"
)


def parse_embed_origins(text: str | None) -> dict[str, tuple[str, ...]]:
    """``PLL_EMBED_ORIGINS`` as client id → origins. ``ValueError`` naming the fault for
    anything else than ``client=origin origin…`` parts separated by ``;``: a server does
    not start with a framing rule it cannot keep."""
    allowed: dict[str, tuple[str, ...]] = {}
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        client, equals, origins = part.partition("=")
        client = client.strip()
        if not equals or not _CLIENT.fullmatch(client):
            raise ValueError(
                f"PLL_EMBED_ORIGINS: {part.strip()[:80]!r} is not client_id=origin [origin…]."
            )
        if client in allowed:
            raise ValueError(f"PLL_EMBED_ORIGINS names the client {client!r} twice.")
        listed = tuple(_origin(o) for o in origins.split())
        if not listed:
            raise ValueError(f"PLL_EMBED_ORIGINS names no origin for the client {client!r}.")
        allowed[client] = listed
    return allowed


def _origin(text: str) -> str:
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.netloc.rsplit(":", 1)[0] if port else parts.netloc
    fine = (
        parts.scheme in ("https", "http")
        and parts.hostname
        and port != -1
        and "*" not in text
        and "@" not in parts.netloc
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
        and (parts.scheme == "https" or host in _LOOPBACK)
    )
    if not fine:
        raise ValueError(
            f"PLL_EMBED_ORIGINS: {text[:80]!r} is not an origin such as https://epj.example.no "
            "(https, a host and an optional port; http only on localhost)."
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def frame_headers(embedded_by: object, allowed: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """The framing headers of a page for a login launched by ``embedded_by`` (a client id,
    or nothing for a login of PLL's own): its configured origins, else none at all."""
    origins = allowed.get(embedded_by) if isinstance(embedded_by, str) else None
    if not origins:
        return {
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": CSP.format(ancestors="'none'"),
        }
    # no X-Frame-Options: its ALLOW-FROM is gone from browsers, and CSP frame-ancestors
    # overrides it where both are present (CSP Level 2 §7.7.1)
    return {"Content-Security-Policy": CSP.format(ancestors=" ".join(origins))}


def refusal_headers(allowed: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """The framing headers of a launch's refusal page (:mod:`pll.web.launch`): any
    configured journal system may show it, since the launch that failed names none that
    PLL can trust. The page holds a message and nothing to act on, nothing about anyone."""
    origins = tuple(dict.fromkeys(o for listed in allowed.values() for o in listed))
    if not origins:
        return frame_headers(None, allowed)
    return {"Content-Security-Policy": CSP.format(ancestors=" ".join(origins))}
