"""Which journal systems may show PLL's pages in a frame, and the headers that say so.

A page refuses to be framed (``Content-Security-Policy: frame-ancestors 'none'`` and
``X-Frame-Options: DENY``): a page in a frame on a foreign site can be overlaid and clicked
through (clickjacking). A journal system that embeds PLL's doctor pages (SFM "med
brukergrensesnitt") is let in by name: ``PLL_EMBED_ORIGINS`` lists, per client system (the
``client_id`` of its HelseID tokens), the origins of the pages that may frame PLL::

    PLL_EMBED_ORIGINS="epj-a=https://epj.a.no https://web.epj.a.no; epj-b=https://b.example"

Only the responses of a web session opened by a SMART launch from that client system
(:mod:`pll.web.launch`) carry ``frame-ancestors`` with its origins; every other response
keeps ``'none'``. An origin is a scheme, an ASCII host (letters, digits, dots, hyphens;
an internationalised name in punycode) and an optional port 1-65535, nothing else: no
wildcard, no path, no quote, and ``http`` only on ``localhost`` and ``127.0.0.1`` (for tests
and development).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_CLIENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}")
_LOOPBACK = ("localhost", "127.0.0.1")
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?/?",
    re.ASCII | re.IGNORECASE,
)
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
    """One origin, lower-cased and without a trailing ``/``. Only ASCII is let through, since
    the origin goes verbatim into a ``Content-Security-Policy`` header (latin-1, and a quote
    or an empty port there would change the policy): an internationalised host name is given
    in punycode (``xn--…``), as browsers serialise it in an origin."""
    match = _ORIGIN.fullmatch(text)
    port = match["port"] if match else None
    fine = (
        match is not None
        and (match["scheme"].lower() == "https" or match["host"].lower() in _LOOPBACK)
        and (port is None or 1 <= int(port) <= 65535)
    )
    if not match or not fine:
        raise ValueError(
            f"PLL_EMBED_ORIGINS: {text[:80]!r} is not an origin such as https://epj.example.no "
            "(https, an ASCII host of letters, digits, dots and hyphens, an optional port "
            "1-65535; http only on localhost and 127.0.0.1; a host name with other letters "
            "in punycode, xn--...)."
        )
    suffix = f":{int(port)}" if port is not None else ""
    return f"{match['scheme'].lower()}://{match['host'].lower()}{suffix}"


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
