"""The prescription's SFM extensions in a ``$getMedication`` document: the
``sfm-reseptamendment`` (as the prescriber's system sent it, with a recall or renewal since
added, or built from PLL's elements), the discontinuation, and the delivery summary of its
dispensings (https://simplifier.net/guide/SFMAPIBasis, ``shared/reference/sfm-basis``).
Used by :mod:`pll.fhir.sfm.document`."""

from __future__ import annotations

import copy
from typing import Any

from pll.domain.model import RX_ACTIVE, Entry, Prescription
from pll.fhir.medication import FEST
from pll.fhir.resources import instant
from pll.fhir.sfm import codes as c


def text_of(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, dict):
        return None
    text = value.get("text") or next(
        (x.get("display") for x in value.get("coding") or [] if x.get("display")), None
    )
    return str(text) if text else None


def dosage_text(dosages: list[dict[str, Any]] | None) -> str | None:
    texts = [str(d["text"]) for d in dosages or [] if d.get("text")]
    return "\n".join(texts) or None


def amendment(
    rx: Prescription | None, entry: Entry | None, successor: str | None
) -> dict[str, Any]:
    """``sfm-reseptamendment``: as the prescriber's system sent it when PLL has that, with
    what has happened since (a recall, a renewal) added; built from PLL's elements if not."""
    if rx is not None:
        stored = next(iter(c.ext(rx.content, c.AMENDMENT)), None)
        amendment = copy.deepcopy(stored) if stored else _built_amendment(rx)
        subs = amendment.setdefault("extension", [])
        recall = _recall_info(rx, successor)
        if recall is not None and not c.first(amendment, "recallinfo"):
            subs.append(recall)
        if not (stored and rx.version == 1 and c.first(stored, "rfstatus")):
            # as the intermediary said, until PLL changes the prescription
            _set_rf_status(subs, rx, successor is not None)
        if rx.version > 1 or not stored:
            # changed in PLL since the prescriber's system sent it
            subs[:] = [e for e in subs if e.get("url") != "lastchanged"]
            subs.append({"url": "lastchanged", "valueDateTime": instant(rx.last_changed)})
        return amendment
    if entry is None:
        return {"url": c.AMENDMENT, "extension": []}
    subs = []
    start = entry.content.get("effectiveDateTime") or (
        entry.content.get("effectivePeriod") or {}
    ).get("start")
    if start:
        subs.append({"url": "reseptdate", "valueDate": str(start)[:10]})
    text = dosage_text(entry.content.get("dosage"))
    if text:
        subs.append({"url": "dssn", "valueString": text})
    subs += [
        {"url": "reit", "valueString": "0"},
        {"url": "itemgroup", "valueCodeableConcept": c.concept(c.ITEM_GROUP, "L", "Legemiddel")},
        {"url": "lastchanged", "valueDateTime": instant(entry.last_changed)},
        {"url": "typeresept", "valueCodeableConcept": c.concept(c.TYPE_RESEPT, "U", "Uten resept")},
    ]
    return {"url": c.AMENDMENT, "extension": subs}


_RF = {"E": "Ekspederbar", "U": "Under ekspedering", "T": "Tilbakekalt"}


def _set_rf_status(subs: list[dict[str, Any]], rx: Prescription, renewed: bool) -> None:
    """``rfstatus`` follows PLL's status, whatever the stored copy says: a prescription in use
    is dispensable (E, or U while a pharmacy is dispensing it), a recalled or renewed one is
    T, and one that is simply done (dispensed in full, expired) has none."""
    old = c.code_of(c.sub_value(c.first({"extension": subs}, "rfstatus"), "status"), c.RF_STATUS)
    if rx.status in RX_ACTIVE:
        code: str | None = old if old in ("E", "U") else "E"
    elif rx.status == "stopped" or renewed:
        code = "T"
    else:
        code = None
    kept = [e for e in subs if e.get("url") != "rfstatus"]
    if code == old and len(kept) == len(subs) - 1:
        return  # as stored, with whatever else the intermediary said (nameDispenser, …)
    subs[:] = kept
    if code is not None:
        concept = c.concept(c.RF_STATUS, code, _RF[code])
        subs.append(
            {"url": "rfstatus", "extension": [{"url": "status", "valueCodeableConcept": concept}]}
        )


def _built_amendment(rx: Prescription) -> dict[str, Any]:
    content = rx.content
    dispense = content.get("dispenseRequest") or {}
    subs: list[dict[str, Any]] = []
    if content.get("authoredOn"):
        subs.append({"url": "reseptdate", "valueDate": str(content["authoredOn"])[:10]})
    end = (dispense.get("validityPeriod") or {}).get("end")
    if end:
        subs.append({"url": "expirationdate", "valueDate": str(end)[:10]})
    text = dosage_text(content.get("dosageInstruction"))
    if text:
        subs.append({"url": "dssn", "valueString": text})
    if dispense.get("quantity"):
        subs.append({"url": "amount", "valueQuantity": dispense["quantity"]})
    subs.append({"url": "reit", "valueString": str(dispense.get("numberOfRepeatsAllowed", 0))})
    subs.append(
        {"url": "itemgroup", "valueCodeableConcept": c.concept(c.ITEM_GROUP, "L", "Legemiddel")}
    )
    subs.append(
        {"url": "typeresept", "valueCodeableConcept": c.concept(c.TYPE_RESEPT, "E", "Eresept")}
    )
    return {"url": c.AMENDMENT, "extension": subs}


def _recall_info(rx: Prescription, successor: str | None) -> dict[str, Any] | None:
    if successor is not None:
        return {
            "url": "recallinfo",
            "extension": [
                {"url": "recallId", "valueString": successor},
                {
                    "url": "recallcode",
                    "valueCodeableConcept": c.concept(c.RECALL_CODE, c.RECALL_RENEW, "Fornying"),
                },
                {"url": "performed", "valueDateTime": instant(rx.last_changed)},
            ],
        }
    if rx.status != "stopped":
        return None
    reason = rx.content.get("statusReason") or {}
    code = c.code_of(reason, c.RECALL_CODE) or c.RECALL_DISCONTINUE
    subs: list[dict[str, Any]] = [
        {
            "url": "recallcode",
            "valueCodeableConcept": c.concept(c.RECALL_CODE, code, c.RECALLS.get(code)),
        }
    ]
    text = text_of(reason)
    if text:
        subs.append({"url": "text", "valueString": text})
    subs.append({"url": "performed", "valueDateTime": instant(rx.last_changed)})
    return {"url": "recallinfo", "extension": subs}


def discontinuation(entry: Entry) -> dict[str, Any]:
    subs: list[dict[str, Any]] = []
    if entry.ended_at is not None:
        subs.append({"url": "timedate", "valueDateTime": instant(entry.ended_at)})
    for reason in entry.content.get("statusReason") or []:
        if c.code_of(reason, c.DISCONTINUATION_REASON):
            subs.append({"url": "reason", "valueCodeableConcept": reason})
        elif text_of(reason):
            subs.append({"url": "note", "valueString": text_of(reason)})
    return {"url": c.DISCONTINUATION, "extension": subs}


def delivery_summary(
    dispensed: list[tuple[str, dict[str, Any], str | None]],
) -> dict[str, Any] | None:
    """``sfm-deliverysummary``: the last dispensing of the prescription and how much in all."""
    done = [d for _, d, _ in dispensed if d.get("whenHandedOver")]
    if not done:
        return None
    done.sort(key=lambda d: str(d["whenHandedOver"]))
    last = done[-1]
    total = sum(float((d.get("quantity") or {}).get("value") or 0) for d in done)
    med: dict[str, Any] = next(iter(last.get("contained") or []), {})
    fest: dict[str, Any] = next(
        (x for x in (med.get("code") or {}).get("coding") or [] if x.get("system") == FEST), {}
    )
    subs: list[dict[str, Any]] = []
    for amount in c.ext(med.get("amount"), f"{c.SD}/sfm-amountText"):
        quantity = c.sub_value(amount, "quantity")
        if quantity:
            subs.append({"url": "pakningsstr", "valueQuantity": quantity})
    if fest.get("code"):
        subs.append({"url": "varenummer", "valueString": fest["code"]})
    if fest.get("display"):
        subs.append({"url": "varenavn", "valueString": fest["display"]})
    subs.append({"url": "antallpkntotalt", "valueDecimal": total})
    subs.append(
        {
            "url": "antallpknsiste",
            "valueDecimal": float((last.get("quantity") or {}).get("value") or 0),
        }
    )
    handed = str(last["whenHandedOver"])
    subs.append(
        {
            "url": "sistutlevert",
            "valueDateTime": handed if "T" in handed else f"{handed}T00:00:00+00:00",
        }
    )
    return {"url": c.DELIVERY_SUMMARY, "extension": subs}
