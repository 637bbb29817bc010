"""What the FEST reader takes for prescribing (issue 16): Reseptgyldighet, Pakningsinfo and
strengths, from extracts written as the M30 model describes them."""

from __future__ import annotations

import io
from datetime import date

import pytest

from pll.catalog.fest import Drug, FestError, Strength, read

M30 = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"
FS = "http://www.kith.no/xmlstds/eresept/forskrivning/2014-12-01"


def extract(brand: str = "", package: str = "", strength: str = "") -> bytes:
    def oppf(kind: str, body: str) -> str:
        return (
            f"<Oppf{kind}><Id>ID_{kind}</Id><Tidspunkt>2024-01-01T00:00:00</Tidspunkt>"
            f'<Status V="A"/>{body}</Oppf{kind}>'
        )

    common = '<NavnFormStyrke>Abc Tab 5 mg</NavnFormStyrke><Reseptgruppe V="C"/>'
    parts = [f'<FEST xmlns="{M30}"><HentetDato>2024-05-06T03:10:47</HentetDato>']
    if brand is not None:
        parts.append(
            "<KatLegemiddelMerkevare>"
            + oppf(
                "LegemiddelMerkevare",
                f'<LegemiddelMerkevare xmlns="{FS}">{common}<Id>B1</Id>'
                f"<Varenavn>Abc</Varenavn>{brand}</LegemiddelMerkevare>",
            )
            + "</KatLegemiddelMerkevare>"
        )
    if package:
        parts.append(
            "<KatLegemiddelpakning>"
            + oppf(
                "Legemiddelpakning",
                f'<Legemiddelpakning xmlns="{FS}">{common}<Id>P1</Id><Varenr>012345</Varenr>'
                f"{package}</Legemiddelpakning>",
            )
            + "</KatLegemiddelpakning>"
        )
    if strength:
        parts.append(
            "<KatVirkestoff>"
            + oppf(
                "Virkestoff",
                f'<VirkestoffMedStyrke xmlns="{FS}"><Id>S1</Id>{strength}'
                "<RefVirkestoff>V1</RefVirkestoff></VirkestoffMedStyrke>",
            )
            + "</KatVirkestoff>"
        )
    parts.append("</FEST>")
    return "".join(parts).encode()


def items(data: bytes) -> list[object]:
    _, found = read(io.BytesIO(data), date(2026, 11, 1))
    return list(found)


def brand(validity: str) -> Drug:
    drug = items(extract(brand=validity))[0]
    assert isinstance(drug, Drug)
    return drug


def gyldighet(duration: str, sex: str = "") -> str:
    kjonn = f'<Kjonn V="{sex}" DN="x"/>' if sex else ""
    return f"<Reseptgyldighet>{kjonn}<Varighet>{duration}</Varighet></Reseptgyldighet>"


def test_prescription_validity_for_both_sexes_else_the_shorter() -> None:
    assert brand(gyldighet("P10D")).validity == "P10D"
    assert brand("").validity is None
    # isotretinoin: a week for women, a year for men: the week
    assert brand(gyldighet("P1Y", "1") + gyldighet("P7D", "2")).validity == "P7D"
    # one that holds for both sexes wins over one for a sex
    assert brand(gyldighet("P7D", "2") + gyldighet("P1Y")).validity == "P1Y"


@pytest.mark.parametrize("bad", ["1 år", "P", "P1X", "P10D" * 5])
def test_a_validity_that_is_no_duration_is_refused(bad: str) -> None:
    with pytest.raises(FestError, match="Reseptgyldighet"):
        brand(gyldighet(bad))


def pakningsinfo(size: str, unit: str, kind: tuple[str, str], amount: str, more: str = "") -> str:
    return (
        "<Pakningsinfo><RefLegemiddelMerkevare>B1</RefLegemiddelMerkevare>"
        f'<Pakningsstr>{size}</Pakningsstr><EnhetPakning V="{unit}" DN="{unit}"/>'
        f'<Pakningstype V="{kind[0]}" DN="{kind[1]}"/>{more}<Mengde>{amount}</Mengde>'
        "</Pakningsinfo>"
    )


def package(info: str) -> Drug:
    found = [i for i in items(extract(package=info)) if isinstance(i, Drug) and i.kind == "package"]
    return found[0]


def test_the_pack_as_a_doctor_reads_it() -> None:
    blister = package(pakningsinfo("30", "stk", ("909", "Blisterpakning"), "30"))
    assert (blister.pack, blister.pack_amount, blister.pack_unit) == (
        "Blisterpakning, 30 stk",
        30.0,
        "stk",
    )
    ampoules = package(pakningsinfo("5x0,5", "ml", ("6", "Ampulle"), "0,5", "<Antall>5</Antall>"))
    assert (ampoules.pack, ampoules.pack_amount, ampoules.pack_unit) == (
        "Ampulle, 5x0,5 ml",
        2.5,
        "ml",
    )
    # "(ikke angitt)" says nothing to a doctor
    assert package(pakningsinfo("100", "ml", ("1", "(ikke angitt)"), "100")).pack == "100 ml"
    assert package("<Ean>7046260000000</Ean>").pack is None


def test_strength_labels_use_the_decimal_comma_and_the_denominator() -> None:
    def label(xml: str) -> str | None:
        found = [i for i in items(extract(brand="", strength=xml)) if isinstance(i, Strength)]
        return found[0].label

    assert label('<Styrke V="2.50" U="mg"/>') == "2,5 mg"
    assert label('<Styrke V="0.1" U="mg"/><StyrkeNevner V="1" U="dose"/>') == "0,1 mg/dose"
    assert label('<Styrke V="5" U="mg"/><StyrkeNevner V="2" U="ml"/>') == "5 mg/2 ml"
    assert label('<Styrke V="100" U="mg"/>') == "100 mg"
