"""Importing FEST extracts, on both databases: what is read, what replaces what, and bad
files that leave the catalogue in use untouched (issue 4)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from pll.catalog.fest import FestError
from pll.catalog.importer import import_fest
from pll.store import catalog as store
from pll.store.db import Database

SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "fest" / "small.xml"
NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture
def db(database: Database) -> Database:
    from tests.conftest import empty_tables

    empty_tables(database)
    return database


def load(db: Database, text: str, name: str = "extract.xml") -> object:
    return import_fest(db, io.BytesIO(text.encode()), name, now=NOW)


def levels(*atcs: str) -> list[str]:
    """The ATC codes at every level, as decision support asks for them."""
    return [p for atc in atcs for p in store.prefixes(atc)]


def snapshot(db: Database) -> tuple[int | None, list[tuple[object, ...]]]:
    with db.read() as conn:
        version = store.active(conn)
        rows = conn.execute(
            sa.text("SELECT catalog, id, code, active FROM fest_drug ORDER BY catalog, id")
        ).all()
    return version, [tuple(r) for r in rows]


def test_the_small_extract_is_read_element_by_element(db: Database) -> None:
    result = import_fest(db, io.BytesIO(SMALL.read_bytes()), "small.xml", now=NOW)
    assert result.counts["Drug"] == 12
    assert result.counts["Interaction"] == 3
    assert result.counts["NotAssessed"] == 1
    assert result.extracted_at == datetime(2024, 5, 6, 1, 10, 47, tzinfo=UTC)  # Oslo summer time
    with db.read() as conn:
        v = store.active(conn)
        assert v == result.version
        packages = store.drugs_by_code(conn, v, ["081245", "046321"])
        assert packages["081245"].active is False  # AvregDato in the past
        assert packages["046321"].exchange_group == "ID_C5A1618D-6EEE-4EFE-B7F4-7BBCB5E6D768"
        subs = store.substances_of(conn, v, [packages["046321"].id])[packages["046321"].id]
        assert [s.name for s in subs] == ["Simvastatin"]  # package → brand → strength → substance
        rules = store.interactions(conn, v, levels("J01FA09", "C10AA01", "B01AA03"))
        assert {r.relevance for r, _ in rules} == {"1", "2", "3"}  # J01FA09 and the class J01FA
        assert store.interactions(conn, v, levels("J01FA09")) == []  # only pairs on the list
        assert store.not_assessed(conn, v, ["C10AX15", "C10AA01"]) == {"C10AX15"}
        hits = store.search(conn, v, "klaritro", 10, ["package", "brand", "generic"])
        assert {h.kind for h in hits} == {"package", "brand", "generic"}


def test_a_new_extract_replaces_the_old_one(db: Database) -> None:
    first = import_fest(db, io.BytesIO(SMALL.read_bytes()), "a.xml", now=NOW)
    newer = SMALL.read_text().replace(
        "Simvastatin Fjordpharma Tab 20 mg", "Simvastatin Ny Tab 20 mg"
    )
    second = load(db, newer, "b.xml")
    assert second.replaced == first.version  # type: ignore[attr-defined]
    version, rows = snapshot(db)
    assert version == second.version  # type: ignore[attr-defined]
    # the old version is kept, retired, for checks that began before the switch ...
    assert {r[0] for r in rows} == {first.version, version}
    third = load(db, newer, "c.xml")
    _, rows = snapshot(db)
    # ... until the next import
    assert {r[0] for r in rows} == {version, third.version}  # type: ignore[attr-defined]
    with db.read() as conn:
        assert store.search(conn, version, "ny", 5, ["brand"])  # type: ignore[arg-type]


def _break(how: str) -> str:  # noqa: PLR0911 - one way to break it per return
    text = SMALL.read_text()
    if how == "truncated":
        return text[: len(text) // 2]
    if how == "wrong namespace":
        return text.replace("http://www.kith.no/xmlstds/eresept/m30/2014-12-01", "urn:other", 1)
    if how == "unknown catalogue":
        return text.replace("<KatInteraksjon>", "<KatTannlegeting/><KatInteraksjon>", 1)
    if how == "duplicate id":
        entry = re.search(r"<OppfVirkestoff>.*?</OppfVirkestoff>", text, re.S)
        assert entry is not None
        return text.replace(entry.group(0), entry.group(0) * 2, 1)
    if how == "missing substance":
        return text.replace(
            "<RefVirkestoff>ID_3302DF5B-25F4-4B98-BEAA-CC5C11E27447</RefVirkestoff>",
            "<RefVirkestoff>ID_00000000-0000-0000-0000-000000000000</RefVirkestoff>",
            1,
        )
    if how == "not xml":
        return "Varenr;Navn\n081245;Warfarin\n"
    if how == "empty":
        return re.sub(r"<Kat.*</Kat\w+>", "", text, flags=re.S)
    if how == "dtd":
        return text.replace("<FEST ", '<!DOCTYPE FEST [<!ENTITY x "y">]>\n<FEST ', 1)
    if how == "duplicate varenr":
        return text.replace("<Varenr>046332</Varenr>", "<Varenr>046321</Varenr>", 1)
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated", "truncated"),
        ("wrong namespace", "not a FEST M30 extract"),
        ("unknown catalogue", "Unknown FEST catalogue 'KatTannlegeting'"),
        ("duplicate id", "twice"),
        ("missing substance", "which it lacks"),
        ("not xml", "not well-formed"),
        ("empty", "no packages or no interactions"),
        ("dtd", "DTD"),
        ("duplicate varenr", "Varenr 046321 is on 2 packages"),
    ],
)
def test_a_bad_extract_leaves_the_catalogue_in_place(db: Database, how: str, message: str) -> None:
    import_fest(db, io.BytesIO(SMALL.read_bytes()), "good.xml", now=NOW)
    before = snapshot(db)
    with pytest.raises(FestError, match=message):
        load(db, _break(how))
    assert snapshot(db) == before
    with db.read() as conn:
        statuses = conn.execute(sa.text("SELECT status FROM fest_catalog")).scalars().all()
    assert statuses == ["active"]  # the half-loaded version is gone


def test_edge_cases_the_guide_names(db: Database) -> None:
    """An expired entry (Status U, as increments carry them) is not imported; a package
    whose brand the extract lacks is kept and counted; a substance group named at ATC
    level 4 covers the codes below it."""
    text = SMALL.read_text()
    expired = """    <OppfLegemiddelpakning>
      <Id>ID_00000000-AAAA-4000-8000-000000000001</Id>
      <Tidspunkt>2024-05-01T03:10:22</Tidspunkt>
      <Status V="U" DN="Utgått oppføring"/>
    </OppfLegemiddelpakning>
  </KatLegemiddelpakning>"""
    text = text.replace("  </KatLegemiddelpakning>", expired, 1)
    text = text.replace(
        "<RefLegemiddelMerkevare>ID_799943B7-5050-439F-B1B5-E170BAACA29C</RefLegemiddelMerkevare>",
        "<RefLegemiddelMerkevare>ID_00000000-0000-0000-0000-00000000BEEF</RefLegemiddelMerkevare>",
        1,
    )
    result = load(db, text)
    assert result.counts["Drug"] == 12  # type: ignore[attr-defined]
    assert result.dangling_brands == 1  # type: ignore[attr-defined]
    with db.read() as conn:
        version = store.active(conn)
        assert version is not None
        rules = store.interactions(conn, version, levels("J01FA10", "B01AA03"))  # another macrolide
        assert [r.relevance for r, _ in rules] == ["2"]


def test_one_import_at_a_time(db: Database) -> None:
    """A second import while one is loading is refused, and does not disturb the first
    or the catalogue in use; one that died (hours ago) is cleared by the next."""
    import_fest(db, io.BytesIO(SMALL.read_bytes()), "good.xml", now=NOW)
    before = snapshot(db)
    with db.write() as conn:
        loading = store.begin(conn, "a slow import", NOW)
    assert loading is not None
    with pytest.raises(FestError, match="Another FEST import is in progress"):
        import_fest(db, io.BytesIO(SMALL.read_bytes()), "second.xml", now=NOW)
    assert snapshot(db) == before
    later = NOW + store.STALE + store.STALE
    result = import_fest(db, io.BytesIO(SMALL.read_bytes()), "third.xml", now=later)
    with db.read() as conn:
        assert store.active(conn) == result.version
        statuses = (
            conn.execute(sa.text("SELECT status FROM fest_catalog ORDER BY version"))
            .scalars()
            .all()
        )
    assert statuses == ["retired", "active"]  # the dead import's version is gone


def test_like_wildcards_are_plain_text(db: Database) -> None:
    import_fest(db, io.BytesIO(SMALL.read_bytes()), "good.xml", now=NOW)
    with db.read() as conn:
        version = store.active(conn)
        assert version is not None
        assert store.substances_named(conn, version, "%") == []
        assert store.substances_named(conn, version, "_arfarin") == []
        assert len(store.substances_named(conn, version, "warf")) == 1
