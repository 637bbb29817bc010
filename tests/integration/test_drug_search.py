"""Drug search as a doctor types it, and what FEST says about prescribing, on both databases
(issue 16): the demo catalogue's drugs are found by brand, substance, ATC and strength, ranked
and grouped; a % is a character; validity and pack reach the rows and the FHIR Medication."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from pll.catalog.fest import words
from pll.catalog.generate import generate
from pll.catalog.importer import import_fest
from pll.domain.errors import InvalidInput
from pll.fhir.medication import EXT_PACK, EXT_VALIDITY
from pll.services.catalogue import Catalogue
from pll.store import catalog as store
from pll.store.db import Database
from tests.conftest import empty_tables


@pytest.fixture(scope="module")
def catalogue(database: Database) -> Catalogue:
    empty_tables(database)
    extract = io.BytesIO()
    generate(extract, scale=0.05, seed=2026, demo=True)
    extract.seek(0)
    import_fest(database, extract, "demo", now=datetime(2026, 11, 22, tzinfo=UTC))
    return Catalogue(database)


def test_a_brand_is_found_with_form_strength_and_packs_under_it(catalogue: Catalogue) -> None:
    found = catalogue.find("Imovane")
    heads = [(g.drug.name, g.drug.kind, g.drug.form, g.drug.strength) for g in found.groups]
    assert heads == [
        ("Imovane Tab 5 mg", "brand", "Tablett", "5 mg"),
        ("Imovane Tab 7,5 mg", "brand", "Tablett", "7,5 mg"),
    ]
    packs = [(p.kind, p.name, p.pack) for p in found.groups[0].packages]
    assert packs == [
        ("package", "Imovane Tab 5 mg", "Blisterpakning, 30 stk"),
        ("package", "Imovane Tab 5 mg", "Boks, 100 stk"),
    ]
    # a strength typed narrows to that strength; the substance and the ATC code find it too
    assert [g.drug.name for g in catalogue.find("imovane 7,5").groups] == ["Imovane Tab 7,5 mg"]
    assert [g.drug.name for g in catalogue.find("zopiklon").groups] == [
        "Imovane Tab 5 mg",
        "Imovane Tab 7,5 mg",
    ]
    assert [g.drug.name for g in catalogue.find("N05CF01").groups] == [
        "Imovane Tab 5 mg",
        "Imovane Tab 7,5 mg",
    ]


def test_the_strength_typed_ranks_first(catalogue: Catalogue) -> None:
    names = [g.drug.name for g in catalogue.find("Tab 100").groups]
    hundred = [n for n in names if "100" in words(n)]
    thousand = [n for n in names if "1000" in words(n)]
    assert hundred, names
    assert all(names.index(h) < names.index(t) for h in hundred for t in thousand), names
    assert [g.drug.name for g in catalogue.find("Zoloft 100").groups] == ["Zoloft Tab 100 mg"]
    # exact name before the names it begins
    assert catalogue.find("Paracet Tab 500 mg").groups[0].drug.name == "Paracet Tab 500 mg"


def test_percent_and_underscore_are_characters_not_wildcards(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidInput, match="Skriv minst én bokstav eller ett tall"):
        catalogue.find("%")
    assert catalogue.find("_").groups == []
    assert catalogue.find("imo_ane").groups == []
    assert [g.drug.name for g in catalogue.find("Imovane%").groups][:1] == ["Imovane Tab 5 mg"]
    with pytest.raises(InvalidInput, match="høyst 100 tegn"):
        catalogue.find("a" * 101)


def test_a_common_word_reads_a_bounded_part_of_the_index(catalogue: Catalogue) -> None:
    found = catalogue.find("tab")
    assert found.more
    assert 0 < len(found.groups) <= 25


def test_validity_and_pack_from_fest(catalogue: Catalogue) -> None:
    apocillin = catalogue.find("Apocillin").groups[0]
    imovane = catalogue.find("Imovane 5").groups[0]
    with catalogue.db.read() as conn:
        version = store.active(conn)
        assert version is not None
        rows = store.drugs_by_code(
            conn,
            version,
            [apocillin.packages[0].code, imovane.packages[0].code, apocillin.drug.code],
        )
    # antibiotics ten days (the guide), packages as their brand
    assert rows[apocillin.drug.code].validity == "P10D"
    assert rows[apocillin.packages[0].code].validity == "P10D"
    assert rows[imovane.packages[0].code].validity == "P1Y"
    assert (
        rows[imovane.packages[0].code].pack_amount,
        rows[imovane.packages[0].code].pack_unit,
    ) == (
        30.0,
        "stk",
    )
    medication = catalogue.read(apocillin.packages[0].id)
    extensions = {e["url"]: e for e in medication["extension"]}
    assert extensions[EXT_VALIDITY]["valueDuration"] == {
        "value": 10,
        "unit": "dager",
        "system": "http://unitsofmeasure.org",
        "code": "d",
    }
    assert extensions[EXT_PACK]["valueString"] == "Blisterpakning, 30 stk"
    assert medication["amount"]["numerator"] == {"value": 30.0, "unit": "stk"}
