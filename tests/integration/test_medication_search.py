"""``GET /fhir/Medication?name=…`` over real HTTP on both databases (issue 16): ranked as the
prescribing page ranks (one ranking, :mod:`pll.catalog.ranking`), paged with ``_count`` and
``_offset`` like every FHIR search here, ``%`` and ``_`` literal, a query that cannot be
searched a 400 OperationOutcome naming ``name``, and a search that reads as far as it may
says so instead of giving a wrong total."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pll.catalog.generate import generate
from pll.catalog.importer import import_fest
from pll.services import catalogue
from pll.services.catalogue import Catalogue
from tests.conftest import LiveServer, empty_tables

BRAND, GENERIC, PACKAGE = "2", "1", "3"  # sfm-festregistrationtype


@pytest.fixture(scope="module")
def demo(live_server: LiveServer) -> Iterator[LiveServer]:
    """The live server with the demo catalogue (the demo lists' drugs among ~950 invented)."""
    empty_tables(live_server.db)
    extract = io.BytesIO()
    generate(extract, scale=0.05, seed=2026, demo=True)
    extract.seek(0)
    import_fest(live_server.db, extract, "demo", now=datetime(2026, 11, 22, tzinfo=UTC))
    yield live_server
    empty_tables(live_server.db)


@pytest.fixture
def gp(demo: LiveServer) -> Iterator[httpx.Client]:
    with demo.client() as client:
        yield client


def _search(gp: httpx.Client, **params: Any) -> dict[str, Any]:
    r = gp.get("/fhir/Medication", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _rows(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, FEST registration type) of each match, in the Bundle's order."""
    return [
        (e["resource"]["code"]["text"], e["resource"]["extension"][0]["valueCoding"]["code"])
        for e in bundle["entry"]
        if e["search"]["mode"] == "match"
    ]


def _next(bundle: dict[str, Any]) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


def test_name_search_is_ranked_brands_before_their_packages(gp: httpx.Client) -> None:
    imovane = _search(gp, name="Imovane")
    assert imovane["total"] == 6
    assert _rows(imovane) == [
        ("Imovane Tab 5 mg", BRAND),
        ("Imovane Tab 7,5 mg", BRAND),
        ("Imovane Tab 5 mg", PACKAGE),
        ("Imovane Tab 5 mg", PACKAGE),
        ("Imovane Tab 7,5 mg", PACKAGE),
        ("Imovane Tab 7,5 mg", PACKAGE),
    ]
    # a strength typed narrows to it; % and _ are characters: the % is no letter or digit,
    # and no name has "imo_ane" in it
    assert _rows(_search(gp, name="imovane 7,5"))[0] == ("Imovane Tab 7,5 mg", BRAND)
    assert _rows(_search(gp, name="Imovane%")) == _rows(imovane)
    assert _search(gp, name="imo_ane")["total"] == 0
    assert _search(gp, name="_")["total"] == 0
    # the exact name first, before names it begins
    assert _rows(_search(gp, name="Paracet Tab 500 mg"))[0] == ("Paracet Tab 500 mg", BRAND)


def test_the_strength_typed_ranks_first(gp: httpx.Client) -> None:
    names = [n for n, _ in _rows(_search(gp, name="Tab 100", _count=500))]
    hundred = [i for i, n in enumerate(names) if " 100 mg" in n]
    thousand = [i for i, n in enumerate(names) if " 1000 mg" in n]
    assert hundred
    assert thousand
    assert max(hundred) < min(thousand), names


@pytest.mark.parametrize("query", ["Imovane", "Tab 100", "Zoloft 100", "Paracet", "imovane 7,5"])
def test_the_api_ranks_as_the_prescribing_page(
    gp: httpx.Client, demo: LiveServer, query: str
) -> None:
    """One ranking: the drugs the page shows (brands and generics, packages under them)
    come in the same order from the API."""
    page = [g.drug.name for g in Catalogue(demo.db).find(query).groups]
    api = [n for n, kind in _rows(_search(gp, name=query, _count=500)) if kind != PACKAGE]
    assert page
    assert api[: len(page)] == page


def test_pages_follow_on_and_add_up_to_the_whole(gp: httpx.Client) -> None:
    whole = _search(gp, name="Tab 100", _count=500)
    assert _next(whole) is None
    total = whole["total"]
    assert total > 25
    seen: list[tuple[str, str]] = []
    bundle = _search(gp, name="Tab 100", _count=10)
    pages = 1
    while True:
        assert bundle["total"] == total
        assert len(bundle["entry"]) == min(10, total - len(seen))
        seen += _rows(bundle)
        url = _next(bundle)
        if url is None:
            break
        assert "_offset=" in url
        r = gp.get(url)
        assert r.status_code == 200, r.text
        bundle = r.json()
        pages += 1
    assert pages == -(-total // 10)
    assert seen == _rows(whole)
    assert _search(gp, name="Tab 100", _count=10, _offset=total)["entry"] == []


@pytest.mark.parametrize(
    ("params", "where", "said"),
    [
        ({"name": "%"}, "name", "no letters or digits"),
        ({"name": "%% -"}, "name", "no letters or digits"),
        ({"name": "a" * 101}, "name", "at most 100 characters"),
        ({"name": "Imovane\n"}, "name", "printable"),
        ({"name": "Imovane", "_count": "0"}, "_count", "between 1 and 500"),
        ({"name": "Imovane", "_offset": "-1"}, "_offset", "between 0 and"),
        ({"name": "Imovane", "colour": "blue"}, "colour", "Unsupported search parameter"),
    ],
)
def test_a_query_that_cannot_be_searched_is_a_400_naming_it(
    gp: httpx.Client, params: dict[str, str], where: str, said: str
) -> None:
    r = gp.get("/fhir/Medication", params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    (issue,) = body["issue"]
    assert where in issue["expression"][0]
    assert said in issue["diagnostics"]


def test_a_search_past_what_it_reads_says_so_and_claims_no_total(
    gp: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the server runs in this process: a smaller bound stands in for a larger catalogue
    monkeypatch.setattr(catalogue, "MATCHES", 40)
    bundle = _search(gp, name="tab", _count=5)
    assert "total" not in bundle
    notes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(notes) == 1
    (issue,) = notes[0]["issue"]
    assert (issue["severity"], issue["code"], issue["expression"]) == (
        "warning",
        "too-costly",
        ["name"],
    )
    assert "Type more of the name" in issue["diagnostics"]
    assert len(_rows(bundle)) == 5
    assert _next(bundle) is not None
    # a selective name reads all it names: counted, no note
    imovane = _search(gp, name="Imovane")
    assert imovane["total"] == 6
    assert all(e["search"]["mode"] == "match" for e in imovane["entry"])


def test_the_capability_statement_says_how_names_are_ranked_and_paged(
    gp: httpx.Client,
) -> None:
    statement = gp.get("/fhir/metadata").json()
    medication = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Medication")
    params = {p["name"]: p["documentation"] for p in medication["searchParam"]}
    assert {"name", "code", "substance", "_count", "_offset"} <= set(params)
    assert "100 before 1000" in params["name"]
    assert "% and _ are characters" in params["name"]
