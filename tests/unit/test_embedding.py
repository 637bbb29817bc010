"""``PLL_EMBED_ORIGINS``: which journal systems may frame PLL's pages (issue 18)."""

from __future__ import annotations

import pytest

from pll.web.embedding import frame_headers, parse_embed_origins, refusal_headers


def test_origins_are_read_per_client_system() -> None:
    allowed = parse_embed_origins(
        " epj-a = https://EPJ.a.no https://web.a.no:8443/ ;epj-b=http://127.0.0.1:8080; "
    )
    assert allowed == {
        "epj-a": ("https://epj.a.no", "https://web.a.no:8443"),
        "epj-b": ("http://127.0.0.1:8080",),
    }
    assert parse_embed_origins(None) == {}
    assert parse_embed_origins("") == {}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("epj-a=*", "not an origin"),
        ("epj-a=https://*.a.no", "not an origin"),
        ("epj-a=https://a.no/journal", "not an origin"),
        ("epj-a=https://a.no?x=1", "not an origin"),
        ("epj-a=http://epj.a.no", "not an origin"),
        ("epj-a=https://user@a.no", "not an origin"),
        ("epj-a=https://a.no:port", "not an origin"),
        ("epj-a='self'", "not an origin"),
        ("epj-a=https://'self'", "not an origin"),
        ('epj-a=https://x"no', "not an origin"),
        ("epj-a=https://x.no:", "not an origin"),
        ("epj-a=https://x.no:0", "not an origin"),
        ("epj-a=https://x.no:65536", "not an origin"),
        ("epj-a=https://-x.no", "not an origin"),
        ("epj-a=https://x_y.no", "not an origin"),
        ("epj-a=http://[::1]:8080", "not an origin"),
        ("epj-a=https://\u212aari.no", "not an origin"),
        ("epj-a=", "names no origin"),
        ("https://a.no", "is not client_id=origin"),
        ("epj-a=https://a.no; epj-a=https://b.no", "twice"),
    ],
)
def test_anything_but_origins_per_client_is_refused(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_embed_origins(text)


def test_an_internationalised_host_must_be_given_in_punycode() -> None:
    """The origin goes verbatim into a latin-1 header: a host such as ``журнал.example``
    would make every framed page a 500, so the server does not start with it, and the
    message says how to write it."""
    with pytest.raises(ValueError, match="punycode"):
        parse_embed_origins("epj-a=https://журнал.example")
    assert parse_embed_origins("epj-a=https://xn--80ajgh0ag.example:08443") == {
        "epj-a": ("https://xn--80ajgh0ag.example:8443",)
    }


def test_only_the_launching_clients_origins_may_frame() -> None:
    allowed = parse_embed_origins("epj-a=https://a.no https://b.no; epj-b=https://c.no")
    mine = frame_headers("epj-a", allowed)
    assert mine["Content-Security-Policy"].endswith("frame-ancestors https://a.no https://b.no")
    assert "X-Frame-Options" not in mine
    for nobody in (None, "epj-unlisted", ["epj-a"]):
        closed = frame_headers(nobody, allowed)
        assert closed["Content-Security-Policy"].endswith("frame-ancestors 'none'")
        assert closed["X-Frame-Options"] == "DENY"
    assert refusal_headers(allowed)["Content-Security-Policy"].endswith(
        "frame-ancestors https://a.no https://b.no https://c.no"
    )
    assert refusal_headers({})["X-Frame-Options"] == "DENY"
