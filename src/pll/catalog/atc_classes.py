"""The names of ATC classes (level 4, "J01CE") in Norwegian, for the classes a doctor most
often records a drug reaction against and those of the demo's drugs. FEST names substances,
not classes; a class not here is named by its code (:func:`class_name`). The names follow
the WHO ATC index as Felleskatalogen and FEST's kodeverk 7180 write them in Norwegian."""

from __future__ import annotations

CLASS_NAMES: dict[str, str] = {
    "A02BC": "Protonpumpehemmere",
    "A06AD": "Osmotisk virkende laksantia",
    "A10AC": "Insuliner og analoger, middels langtidsvirkende",
    "A10BA": "Biguanider",
    "B01AA": "Vitamin K-antagonister",
    "B01AF": "Direkte faktor Xa-hemmere",
    "C03CA": "Sulfonamider, rene",
    "C07AB": "Betablokkere, selektive",
    "C08CA": "Dihydropyridinderivater",
    "C09AA": "ACE-hemmere, usammensatte",
    "C10AA": "HMG-CoA-reduktasehemmere (statiner)",
    "D07AB": "Kortikosteroider, middels sterke (gruppe II)",
    "H02AB": "Glukokortikoider",
    "H03AA": "Thyreoideahormoner",
    "J01CA": "Penicilliner med utvidet spektrum",
    "J01CE": "Betalaktamasefølsomme penicilliner",
    "J01CF": "Betalaktamaseresistente penicilliner",
    "J01DB": "Førstegenerasjons cefalosporiner",
    "J01EE": "Kombinasjoner av sulfonamider og trimetoprim",
    "J01FA": "Makrolider",
    "L04AX": "Andre immunsuppressiver",
    "M01AE": "Propionsyrederivater (NSAID)",
    "M05BA": "Bisfosfonater",
    "N02AA": "Naturlige opiumsalkaloider",
    "N02BA": "Salisylsyre og derivater",
    "N02BE": "Anilider",
    "N05CF": "Benzodiazepinlignende midler",
    "N06AB": "Selektive serotoninreopptakshemmere (SSRI)",
    "R03AC": "Selektive beta-2-agonister",
}


def class_name(code: str) -> str:
    """The ATC class's name, or "ATC-gruppe <code>" for one this table does not name."""
    return CLASS_NAMES.get(code.upper(), f"ATC-gruppe {code.upper()}")
