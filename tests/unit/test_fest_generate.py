"""The synthetic FEST generator: well-formed, self-consistent, deterministic extracts."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from pll.catalog.fest import read
from pll.catalog.generate import KINDS, generate

TODAY = date(2026, 11, 1)
M30_ROOT = "{http://www.kith.no/xmlstds/eresept/m30/2014-12-01}FEST"
ID = re.compile(r"ID_[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}")
ATC4 = re.compile(r"[ABCDGHJLMNPRSV]\d{2}[A-Z]{2}")
ATC5 = re.compile(r"[ABCDGHJLMNPRSV]\d{2}[A-Z]{2}\d{2}")


def local(elem: ET.Element) -> str:
    return elem.tag.rsplit("}", 1)[-1]


def children(parent: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in parent if local(c) == name]


def child(parent: ET.Element, name: str) -> ET.Element:
    found = children(parent, name)
    assert len(found) == 1, f"{local(parent)} has {len(found)} {name}"
    return found[0]


def entities(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if local(e) == name]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("fest") / "small.xml"
    with path.open("wb") as out:
        counts = generate(out, scale=0.01, today=TODAY)
    return path, counts


@pytest.fixture(scope="module")
def root(small: tuple[Path, dict[str, int]]) -> ET.Element:
    return ET.parse(small[0]).getroot()


def test_parses_with_the_fest_skeleton(
    small: tuple[Path, dict[str, int]], root: ET.Element
) -> None:
    assert small[0].read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert root.tag == M30_ROOT
    assert [local(c) for c in root] == [
        "HentetDato",
        "KatLegemiddelMerkevare",
        "KatLegemiddelpakning",
        "KatVirkestoff",
        "KatLegemiddelVirkestoff",
        "KatInteraksjon",
    ]
    assert child(root, "HentetDato").text == "2026-11-01T03:10:47"
    for catalogue in list(root)[1:]:
        assert catalogue.tag.startswith("{http://www.kith.no/xmlstds/eresept/m30/")
        for oppf in catalogue:
            assert local(oppf) == "Oppf" + local(catalogue)[3:]
            assert [local(c) for c in oppf][:3] == ["Id", "Tidspunkt", "Status"]
            assert ID.fullmatch(child(oppf, "Id").text or "")
            assert child(oppf, "Status").attrib == {"V": "A", "DN": "Aktiv oppføring"}
            assert (child(oppf, "Tidspunkt").text or "") < "2026-11-01"
            assert len(oppf) == 4


def test_counts_match_the_elements(small: tuple[Path, dict[str, int]], root: ET.Element) -> None:
    counts = small[1]
    assert set(counts) == set(KINDS)
    found = Counter(local(e) for e in root.iter())
    assert counts == {kind: found[kind] for kind in KINDS}
    assert counts == {
        "Virkestoff": 20,
        "VirkestoffMedStyrke": counts["VirkestoffMedStyrke"],
        "LegemiddelMerkevare": 60,
        "Legemiddelpakning": 100,
        "LegemiddelVirkestoff": 30,
        "Interaksjon": 250,
        "InteraksjonIkkeVurdert": 1,
    }
    assert 20 <= counts["VirkestoffMedStyrke"] <= 60


def test_at_least_one_of_each_at_a_tiny_scale() -> None:
    out = io.BytesIO()
    counts = generate(out, scale=0.001, today=TODAY)
    assert all(n >= 1 for n in counts.values()), counts
    ET.fromstring(out.getvalue())


def test_deterministic_for_a_seed() -> None:
    runs = []
    for seed in (7, 7, 8):
        out = io.BytesIO()
        generate(out, scale=0.01, seed=seed, today=TODAY)
        runs.append(out.getvalue())
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_references_resolve(root: ET.Element) -> None:
    def ids(kind: str) -> set[str]:
        return {child(e, "Id").text or "" for e in entities(root, kind)}

    brands, strengths, substances = (
        ids("LegemiddelMerkevare"),
        ids("VirkestoffMedStyrke"),
        ids("Virkestoff"),
    )
    refs = {
        name: [e.text for e in root.iter() if local(e) == name]
        for name in ("RefLegemiddelMerkevare", "RefVirkestoffMedStyrke", "RefVirkestoff")
    }
    assert len(refs["RefLegemiddelMerkevare"]) == 100
    assert set(refs["RefLegemiddelMerkevare"]) <= brands
    assert refs["RefVirkestoffMedStyrke"]
    assert set(refs["RefVirkestoffMedStyrke"]) <= strengths
    assert refs["RefVirkestoff"]
    assert set(refs["RefVirkestoff"]) <= substances
    all_ids = [e.text for e in root.iter() if local(e) == "Id"]
    assert len(all_ids) == len(set(all_ids))


def test_drugs_carry_their_substances_atc(root: ET.Element) -> None:
    atc_of_strength = {}
    for generic in entities(root, "LegemiddelVirkestoff"):
        atc = child(generic, "Atc").get("V") or ""
        assert ATC5.fullmatch(atc)
        assert child(generic, "Atc").get("S") == "2.16.578.1.12.4.1.1.7180"
        for ref in generic.iter():
            if local(ref) == "RefVirkestoffMedStyrke":
                atc_of_strength[ref.text] = atc
    combinations = 0
    for brand in entities(root, "LegemiddelMerkevare"):
        refs = [r.text for r in brand.iter() if local(r) == "RefVirkestoffMedStyrke"]
        combinations += len(refs) > 1
        if len(refs) == 1 and refs[0] in atc_of_strength:
            assert child(brand, "Atc").get("V") == atc_of_strength[refs[0]]
    assert combinations >= 1
    for package in entities(root, "Legemiddelpakning"):
        assert ATC5.fullmatch(child(package, "Atc").get("V") or "")
        assert child(package, "Reseptgruppe").get("V") in ("A", "B", "C", "F")


def test_interactions_have_two_groups_with_atc_codes(root: ET.Element) -> None:
    interactions = entities(root, "Interaksjon")
    assert len(interactions) == 250
    levels: Counter[int] = Counter()
    for interaction in interactions:
        assert child(interaction, "Relevans").get("V") in ("1", "2", "3")
        assert child(interaction, "KliniskKonsekvens").text
        groups = children(interaction, "Substansgruppe")
        assert len(groups) == 2
        for group in groups:
            members = children(group, "Substans")
            assert members
            for member in members:
                assert child(member, "Substans").text
                atc = child(member, "Atc").get("V") or ""
                assert ATC5.fullmatch(atc) or ATC4.fullmatch(atc), atc
                levels[len(atc)] += 1
    assert levels[7] > levels[5] > 0
    relevance = Counter(child(i, "Relevans").get("V") for i in interactions)
    assert relevance["1"] < relevance["3"] < relevance["2"]
    for not_assessed in entities(root, "InteraksjonIkkeVurdert"):
        assert ATC5.fullmatch(child(not_assessed, "Atc").get("V") or "")


def test_packages(root: ET.Element) -> None:
    packages = entities(root, "Legemiddelpakning")
    varenr = [child(p, "Varenr").text or "" for p in packages]
    assert all(re.fullmatch(r"\d{6}", v) for v in varenr)
    assert len(set(varenr)) == len(varenr)
    deregistered = [e.text or "" for p in packages for e in p.iter() if local(e) == "AvregDato"]
    assert deregistered
    assert all(d < TODAY.isoformat() for d in deregistered)
    groups = Counter(e.text for p in packages for e in p.iter() if local(e) == "RefByttegruppe")
    assert 20 <= sum(groups.values()) <= 60
    assert all(n >= 2 for n in groups.values())


def test_progress_is_reported_every_thousand_entries() -> None:
    seen: list[int] = []
    counts = generate(io.BytesIO(), scale=0.05, today=TODAY, progress=seen.append)
    total = sum(counts.values())
    assert seen == [*range(1000, total, 1000), total]


def test_the_importer_reads_it(small: tuple[Path, dict[str, int]]) -> None:
    with small[0].open("rb") as stream:
        header, items = read(stream, TODAY)
        kinds = Counter(type(item).__name__ for item in items)  # raises on what it cannot read
    assert kinds["Interaction"] == small[1]["Interaksjon"]
    assert kinds["NotAssessed"] == small[1]["InteraksjonIkkeVurdert"]
    assert header.extracted_at is not None


@pytest.mark.slow
def test_full_scale(tmp_path: Path) -> None:
    path = tmp_path / "fest.xml"
    with path.open("wb") as out:
        counts = generate(out, scale=1.0, today=TODAY)
    assert counts["Virkestoff"] == 2000
    assert 3000 <= counts["VirkestoffMedStyrke"] <= 5000
    assert counts["LegemiddelMerkevare"] == 6000
    assert counts["Legemiddelpakning"] == 10000
    assert counts["LegemiddelVirkestoff"] == 3000
    assert counts["Interaksjon"] == 25000
    assert counts["InteraksjonIkkeVurdert"] == 50
    assert path.stat().st_size > 10_000_000
