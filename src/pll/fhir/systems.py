"""Identifier and code systems PLL uses, with where each comes from.

Norwegian OIDs are from the Directorate of e-health's identifier registry (Volven / KITH);
the SFM Basis test response in ``shared/reference/sfm-basis`` uses the same ones.
"""

FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
DNR = "urn:oid:2.16.578.1.12.4.1.4.2"
HPR = "urn:oid:2.16.578.1.12.4.1.4.4"
ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101"
ATC = "http://www.whocc.no/atc"
#: Kodeverk 9101 *Legemiddelbruk*: 1 Fast, 2 Kur, 3 Behov (M30 information model).
TREATMENT_TYPE = "urn:oid:2.16.578.1.12.4.1.1.9101"
TREATMENT_TYPES = {"1": "Fast", "2": "Kur", "3": "Behov"}
LOINC = "http://loinc.org"

#: Base of PLL's own extensions and code systems. ``.invalid`` is a reserved top-level
#: domain (RFC 2606), so this can never be mistaken for a published profile.
PLL_BASE = "http://pll.invalid/fhir"
EXT_PAUSED = f"{PLL_BASE}/StructureDefinition/pll-paused"
EXT_CONFIRMED = f"{PLL_BASE}/StructureDefinition/pll-confirmed"
EXT_OUTCOME_DETAIL = f"{PLL_BASE}/StructureDefinition/outcome-detail"
ACTIVITY = f"{PLL_BASE}/CodeSystem/pll-activity"
#: On the List: the e-multidose registration (responsible doctor, multidose pharmacy).
EXT_MULTIDOSE = f"{PLL_BASE}/StructureDefinition/pll-multidose"
#: On the List: paper multidose beside the PLL, a risk of a fragmented list.
EXT_PAPER_MULTIDOSE = f"{PLL_BASE}/StructureDefinition/pll-paper-multidose"
#: On a List entry: the last dispensing of its prescription and what remains.
EXT_DISPENSED = f"{PLL_BASE}/StructureDefinition/pll-dispensed"
