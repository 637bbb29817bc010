"""The words and codes the synthetic catalogue is made of: real ATC level-2 groups, the
syllables invented names are built from, pharmaceutical forms, strength ladders and
prescription groups. Data only; :mod:`.plan` draws from it.
"""

from __future__ import annotations

from typing import NamedTuple

# Real ATC level-2 groups (WHO), with Norwegian names; levels 3-5 below them are invented.
ATC2 = (
    ("A02", "Midler mot syrerelaterte lidelser"),
    ("A03", "Midler mot funksjonelle gastrointestinale lidelser"),
    ("A06", "Midler mot forstoppelse"),
    ("A10", "Antidiabetika"),
    ("A11", "Vitaminer"),
    ("B01", "Antitrombotiske midler"),
    ("B03", "Antianemika"),
    ("C01", "Hjerteterapi"),
    ("C02", "Antihypertensiva"),
    ("C03", "Diuretika"),
    ("C07", "Betablokkere"),
    ("C08", "Kalsiumantagonister"),
    ("C09", "Midler med virkning på renin-angiotensinsystemet"),
    ("C10", "Lipidmodifiserende midler"),
    ("D01", "Antimykotika til dermatologisk bruk"),
    ("D07", "Kortikosteroider til dermatologisk bruk"),
    ("G03", "Kjønnshormoner og midler med effekt på genitalia"),
    ("G04", "Urologika"),
    ("H02", "Kortikosteroider til systemisk bruk"),
    ("H03", "Tyreoideaterapi"),
    ("J01", "Antibakterielle midler til systemisk bruk"),
    ("J02", "Antimykotika til systemisk bruk"),
    ("J05", "Antivirale midler til systemisk bruk"),
    ("L01", "Antineoplastiske midler"),
    ("L04", "Immunsuppressiver"),
    ("M01", "Antiinflammatoriske og antirevmatiske midler"),
    ("M05", "Midler til behandling av skjelettsykdommer"),
    ("N02", "Analgetika"),
    ("N03", "Antiepileptika"),
    ("N05", "Psykoleptika"),
    ("N06", "Psykoanaleptika"),
    ("N07", "Andre midler med virkning på nervesystemet"),
    ("P01", "Midler mot protozoer"),
    ("R03", "Midler mot obstruktiv lungesykdom"),
    ("R06", "Antihistaminer til systemisk bruk"),
    ("S01", "Oftalmologika"),
)
ATC_LETTERS = "ABCDEFGHJKLMNPRSTVX"

# Name parts: substances are prefix syllables + a class stem ("Tav" + "oksin").
ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "br", "kl", "tr", "dr")
VOWELS = ("a", "e", "i", "o", "u", "y", "a", "o", "e")
CODAS = ("", "", "", "l", "n", "r", "s", "v", "k", "m")
STEMS = (
    "oksin", "amil", "azol", "olol", "pril", "sartan", "statin", "tidin", "mab", "tinib",
    "avir", "cyklin", "micin", "floksacin", "profen", "dipin", "gliptin", "lukast", "setron",
    "triptan", "zepam", "tiazid", "parin", "dronat", "olon", "amin", "etin", "osid",
)  # fmt: skip
CLASS_KINDS = ("hemmere", "antagonister", "agonister", "derivater", "analoger", "midler")
BRAND_ENDINGS = ("ex", "a", "in", "on", "ol", "ix", "ar", "el", "um", "ia", "or")
COMPANIES = (
    "Nordfarma", "Fjordpharma", "Vestlab", "Polarmed", "Skogfarma", "Havpharma", "Norlysmed",
    "Fjellfarma", "Kystpharma", "Brefarma", "Dalmed", "Elvfarma", "Viddepharma", "Tindmed",
)  # fmt: skip


class Form(NamedTuple):
    code: str  #: kodeverk 7448
    name: str  #: DN, and LegemiddelformLang
    short: str  #: the form word in NavnFormStyrke
    kind: str  #: solid, liquid, injection or topical


# Codes 3-53 are quoted in the M30 model and guide; 901-904 are invented for forms the
# reference names no code for.
FORMS = (
    Form("53", "Tablett", "Tab", "solid"),
    Form("901", "Kapsel, hard", "Kaps", "solid"),
    Form("5", "Dispergerbar tablett", "Disp tab", "solid"),
    Form("10", "Oppløselig tablett", "Oppl tab", "solid"),
    Form("9", "Mikstur", "Mikst", "liquid"),
    Form("14", "Sirup", "Sirup", "liquid"),
    Form("6", "Dråper", "Dråper", "liquid"),
    Form("902", "Injeksjonsvæske, oppløsning", "Inj", "injection"),
    Form("903", "Krem", "Krem", "topical"),
    Form("904", "Salve", "Salve", "topical"),
)
# Forms only the demo's drugs have (an inhaler, insulin), after the others so that adding
# them changes nothing the random catalogue draws.
DEMO_FORMS = (
    Form("905", "Inhalasjonsaerosol, suspensjon", "Inh aerosol", "inhaler"),
    Form("906", "Injeksjonsvæske, suspensjon", "Inj", "injection"),
)
ALL_FORMS = FORMS + DEMO_FORMS
FORMS_BY_KIND = {
    kind: [i for i, f in enumerate(FORMS) if f.kind == kind]
    for kind in ("solid", "liquid", "injection", "topical")
}
FORM_WEIGHTS = {"53": 12, "901": 5, "5": 1, "10": 1}  # others weight 1
KIND_WEIGHTS = (("solid", 70), ("liquid", 12), ("injection", 10), ("topical", 8))

SOLID_STRENGTHS: tuple[str, ...] = (
    "0.5", "1", "2", "2.5", "5", "10", "20", "25", "40", "50", "80", "100", "150", "200", "250",
    "400", "500", "1000",
)  # fmt: skip
CONCENTRATIONS = ("0.1", "0.5", "1", "2", "2.5", "5", "10", "20", "25", "40", "50", "100")
RX = (("A", 5), ("B", 10), ("C", 75), ("CF", 5), ("F", 5))


def decimal(value: str) -> str:
    """Display form of a number: decimal comma, as in NavnFormStyrke."""
    return value.replace(".", ",")
