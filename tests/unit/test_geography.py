"""Geography for the rollout statistics (issue 8): municipalities, their health regions and
residents, and the organisation register that places each organisation in a region."""

from __future__ import annotations

import pytest

from pll.stats import geography, organisations
from pll.stats.ambitions import ACTOR_TYPES, REGIONS
from pll.stats.geography import Municipality, municipalities, population, region_of
from pll.stats.organisations import Organisation, demo, orgnr_valid

HEADER = "kommunenummer,name,county,region,population\n"
ORG_HEADER = "orgnr,name,kommunenummer,actor_type,her_id\n"
#: The demo personas' organisations (pll.auth.tokens), fixed by the personas.
PERSONA_ORGS = {
    ("974600951", "Bergen legesenter", "4601", "fastlege"),
    ("983974724", "Haukeland universitetssjukehus", "4601", "sykehus"),
    ("964338531", "Bergen kommune hjemmetjeneste", "4601", "sykehjem_hjemmetjeneste"),
    ("985563756", "Apotek 1 Bergen multidose", "4601", "apotek"),
    ("987654325", "Vitusapotek Trondheim", "5001", "apotek"),
}


@pytest.mark.parametrize(
    ("code", "region"),
    [
        ("1804", "Nord"),  # Bodø, Nordland
        ("5501", "Nord"),  # Tromsø, Troms
        ("5601", "Nord"),  # Alta, Finnmark
        ("1508", "Midt-Norge"),  # Ålesund, Møre og Romsdal
        ("5001", "Midt-Norge"),  # Trondheim, Trøndelag
        ("1103", "Vest"),  # Stavanger, Rogaland
        ("4601", "Vest"),  # Bergen, Vestland
        ("0301", "Sør-Øst"),  # Oslo
        ("3201", "Sør-Øst"),  # Bærum, Akershus
        ("3403", "Sør-Øst"),  # Hamar, Innlandet
        ("4204", "Sør-Øst"),  # Kristiansand, Agder
    ],
)
def test_the_region_follows_from_the_county(code: str, region: str) -> None:
    assert region_of(code) == region


@pytest.mark.parametrize(
    "code",
    [
        "1201",  # Bergen before 2020: Hordaland is gone
        "5401",  # Tromsø in Troms og Finnmark (2020-2023)
        "3024",  # Bærum in Viken (2020-2023)
        "9901",
        "301",
        "03010",
        "",
        "46x1",
        "４６０１",  # full-width digits are digits to str.isdigit, not to a register
    ],
)
def test_a_malformed_number_or_a_county_that_is_gone_has_no_region(code: str) -> None:
    assert region_of(code) is None


def test_the_packaged_file_has_every_municipality_in_its_region() -> None:
    places = municipalities()
    assert len(places) == 357
    assert {m.region for m in places.values()} == set(REGIONS)
    assert all(region_of(code) == m.region for code, m in places.items())
    assert places["0301"] == Municipality(
        "0301", "Oslo", "Oslo", "Sør-Øst", places["0301"].population
    )
    assert (places["4601"].name, places["4601"].county) == ("Bergen", "Vestland")
    # the 2024 split of Ålesund
    assert places["1508"].name == "Ålesund"
    assert places["1580"].name == "Haram"
    assert municipalities() is places  # read once


@pytest.mark.parametrize(
    ("region", "low", "high"),
    [
        ("Sør-Øst", 3_000_000, 3_300_000),
        ("Vest", 1_000_000, 1_300_000),
        ("Midt-Norge", 700_000, 800_000),
        ("Nord", 450_000, 500_000),
        (None, 5_400_000, 5_700_000),
    ],
)
def test_each_regions_population_is_plausible(region: str | None, low: int, high: int) -> None:
    # Wide bounds: the packaged figures are recalled, not SSB's (see the file's header).
    assert low < population(region) < high


def test_the_regions_add_up_to_the_country() -> None:
    assert sum(population(r) for r in REGIONS) == population()
    with pytest.raises(ValueError, match="Vestlandet"):
        population("Vestlandet")


def test_a_good_file_is_read_past_comments_and_blank_lines() -> None:
    text = f"# a comment\n{HEADER}\n4601,Bergen,Vestland,Vest,291940\n# another\n"
    assert geography.parse("ok.csv", text) == {
        "4601": Municipality("4601", "Bergen", "Vestland", "Vest", 291940)
    }


@pytest.mark.parametrize(
    ("rows", "line", "says"),
    [
        ("460,Bergen,Vestland,Vest,291940\n", 3, "not a kommunenummer"),
        ("1201,Bergen,Hordaland,Vest,291940\n", 3, "not a kommunenummer"),
        ("4601,Bergen,Vestland,Vestlandet,291940\n", 3, "unknown region"),
        ("4601,Bergen,Vestland,Nord,291940\n", 3, "is in Vest, not Nord"),
        ("4601,Bergen,Vestland,Vest,1\n4601,Bergen,Vestland,Vest,2\n", 4, "listed twice"),
        ("4601,,Vestland,Vest,291940\n", 3, "no name"),
        ("4601,Bergen,Vestland,Vest,0\n", 3, "not positive"),
        ("4601,Bergen,Vestland,Vest,-5\n", 3, "not positive"),
        ("4601,Bergen,Vestland,Vest,many\n", 3, "not a number"),
        ("4601,Bergen,Vestland,Vest\n", 3, "4 fields"),
    ],
)
def test_a_broken_municipality_file_is_refused_naming_the_line(
    rows: str, line: int, says: str
) -> None:
    text = f"# comment\n{HEADER}{rows}"
    with pytest.raises(ValueError, match=rf"broken\.csv, line {line}: .*{says}"):
        geography.parse("broken.csv", text)


def test_a_municipality_file_with_other_columns_is_refused() -> None:
    with pytest.raises(ValueError, match=r"broken\.csv, line 1: the columns"):
        geography.parse("broken.csv", "code,name,county,region,population\n")


def test_the_demo_register_places_every_actor_type_in_every_region() -> None:
    register = demo()
    assert len(register) >= 70
    covered = {(o.region, o.actor_type) for o in register}
    assert covered == {(r, t) for r in REGIONS for t in ACTOR_TYPES}
    places = municipalities()
    assert all(o.region == places[o.municipality].region for o in register)


def test_the_demo_register_holds_the_personas_organisations() -> None:
    register = {o.id: o for o in demo()}
    for orgnr, name, municipality, actor_type in PERSONA_ORGS:
        org = register[orgnr]
        assert (org.name, org.municipality, org.actor_type) == (name, municipality, actor_type)
    assert register["974600951"].region == "Vest"
    assert register["987654325"].region == "Midt-Norge"


def test_every_demo_orgnr_is_unique_and_carries_its_check_digit() -> None:
    register = demo()
    numbers = [o.id for o in register]
    assert len(set(numbers)) == len(numbers)
    # The personas' five pass too, so this holds for every row, not only the invented ones.
    assert [n for n in numbers if not orgnr_valid(n)] == []
    assert all(o.her is None or 6 <= len(o.her) <= 8 for o in register)
    assert any(o.her is None for o in register)


def test_demo_gives_each_caller_its_own_list() -> None:
    mine = demo()
    mine.clear()
    assert demo()


@pytest.mark.parametrize(
    ("orgnr", "valid"),
    [
        ("974600951", True),
        ("987654325", True),
        ("974600952", False),  # wrong check digit
        ("100000130", False),  # a remainder of 10 has no check digit: never issued
        ("97460095", False),
        ("9746009510", False),
        ("97460095x", False),
    ],
)
def test_the_orgnr_check_digit(orgnr: str, valid: bool) -> None:
    assert orgnr_valid(orgnr) is valid


def test_a_good_register_is_read_with_its_regions() -> None:
    text = f"{ORG_HEADER}123456789,Tromsø legesenter,5501,fastlege,\n"
    assert organisations.parse("ok.csv", text) == [
        Organisation("123456789", "Tromsø legesenter", "5501", "Nord", "fastlege", None)
    ]


@pytest.mark.parametrize(
    ("rows", "line", "says"),
    [
        ("12345678,Tromsø legesenter,5501,fastlege,\n", 3, "not nine digits"),
        ("12345678x,Tromsø legesenter,5501,fastlege,\n", 3, "not nine digits"),
        ("123456789,A,5501,fastlege,\n123456789,B,5501,fastlege,\n", 4, "listed twice"),
        ("123456789,,5501,fastlege,\n", 3, "no name"),
        ("123456789,Tromsø legesenter,5401,fastlege,\n", 3, "unknown municipality"),
        ("123456789,Tromsø legesenter,9999,fastlege,\n", 3, "unknown municipality"),
        ("123456789,Tromsø tannlege,5501,tannlege,\n", 3, "unknown actor type"),
        ("123456789,Tromsø legesenter,5501,fastlege,12ab\n", 3, "HER-id"),
    ],
)
def test_a_broken_register_is_refused_naming_the_line(rows: str, line: int, says: str) -> None:
    text = f"# comment\n{ORG_HEADER}{rows}"
    with pytest.raises(ValueError, match=rf"broken\.csv, line {line}: .*{says}"):
        organisations.parse("broken.csv", text)


def test_a_register_can_be_placed_by_other_municipalities() -> None:
    places = {"4601": Municipality("4601", "Bergen", "Vestland", "Vest", 1)}
    text = f"{ORG_HEADER}123456789,Bergen legevakt,4601,legevakt_ohd_kad,1234567\n"
    (org,) = organisations.parse("ok.csv", text, places)
    assert (org.region, org.her) == ("Vest", "1234567")
    with pytest.raises(ValueError, match="unknown municipality"):
        organisations.parse("ok.csv", f"{ORG_HEADER}123456789,X,0301,apotek,\n", places)
