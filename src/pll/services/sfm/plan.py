"""Planning a ``$sendMedication``: the doctor's complete list, sent as an SFM document, turned
into operations on PLL's list against what the read it relates to showed, and SFM's answer to
the send (https://simplifier.net/guide/SFMAPIBasis, sendMedication).

The SFM rules a plan keeps: every statement and every head of chain the read showed is in the
send; each entry and prescription is sent once; a new prescription (``createeresept``) has a
new ReseptId; a recall or renewal (``recallinfo``) names a prescription of this list that no
one changed since the read. A statement the send did not change gives no operation, so what
happened since the read stands; a changed one is merged into the entry as the read showed it
(:mod:`.merge`), and the relay-baton rules of :meth:`PLLService.apply_in` decide the rest.
The plan reads the database but writes nothing.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from pll.auth.access import Access
from pll.domain.dose_checks import given_as_text
from pll.domain.errors import Conflict, InvalidInput, RuleRefused
from pll.domain.model import ENDED, IN_USE, RX_ACTIVE, Entry, Prescription
from pll.fhir import systems
from pll.fhir.sfm import codes as c
from pll.fhir.sfm.document import list_message_id, resept_id
from pll.fhir.sfm.dosing import structured_dosage
from pll.fhir.sfm.reading import check_item
from pll.fhir.sfm.terms import Document, Item, Recall
from pll.services.lists import ChangeResult, Op, PLLService
from pll.services.sfm.merge import merged_entry, plain, view
from pll.services.sfm.shared import FHIR_ID
from pll.store import repository as repo

#: where the dose checks refuse a dose unit of a statement's resource (:meth:`Plan.unit_place`)
_DOSE_UNIT = re.compile(
    r"(Bundle\.entry\[\d+\]\.resource)\.(?:dosage|dosageInstruction)\[(\d+)\]"
    r"\.doseAndRate\[0\]\.doseQuantity\.unit"
)


class Plan:
    """Turns a send into operations on the list, against what the read showed."""

    def __init__(
        self,
        svc: PLLService,
        conn: Connection,
        access: Access,
        patient_id: str,
        doc: Document,
        shown: dict[str, Any],
        entries: dict[str, Entry],
        rxs: dict[str, Prescription],
        now: datetime,
    ) -> None:
        self.svc, self.conn, self.access = svc, conn, access
        self.patient_id, self.doc, self.now = patient_id, doc, now
        self.shown_entries: dict[str, int] = shown.get("entries", {})
        self.shown_heads: dict[str, int] = shown.get("heads", {})
        self.views: dict[str, Any] = shown.get("views", {})
        self.entries, self.rxs = entries, rxs
        self.by_resept = {resept_id(rx): rx.id for rx in rxs.values()}
        self.created: list[str] = []
        self.recalled: list[str] = []
        #: where each structured dosing given to the checks has its dose units, by statement
        self.sent_units: dict[str, list[str]] = {}

    def _rx(self, resept: str | None) -> str | None:
        return self.by_resept.get(resept) if resept else None

    def ops(self) -> list[Op]:
        self._accounted()
        self._no_repeats()
        prescriptions: list[Op] = []
        statements: list[Op] = []
        subject = {"reference": f"Patient/{self.patient_id}"}
        for item in self.doc.items:
            new_rx: str | None = None
            prior: str | None = None
            if item.create or item.recall is not None or not self._unchanged(item):
                check_item(item)
            if item.create:
                new_rx, prior, op = self._prescribe(item, subject)
                prescriptions.append(op)
            elif item.recall is not None:
                recall = self._recall(item, item.recall)
                if recall is not None:
                    prescriptions.append(recall)
            elif item.resept_id and self._rx(item.resept_id) is None:
                raise InvalidInput(
                    f"ReseptId {item.resept_id!r} is not a prescription of this list; a new "
                    "prescription says so with sfm-reseptamendment.createeresept = true.",
                    f"{item.where}.identifier",
                )
            statement = self._statement(item, new_rx, prior, subject)
            if statement is not None:
                statements.append(statement)
        return prescriptions + statements

    def with_sent_dosing(self, ops: list[Op], bundle: dict[str, Any]) -> list[Op]:
        """The operations, each with the structured e-resept dosing of the statement it
        comes from (:mod:`pll.fhir.sfm.dosing`) for the dose checks to judge beside the
        dosage text PLL keeps: that of a new prescription (``createeresept``), and that of a
        medicine without prescription (no ReseptId: the amendment is SFM's account of the
        entry). A statement naming a prescription PLL holds carries that prescription's
        dosing as it was first sent, which says nothing about this send's change."""
        sent = {
            item.where: mapped
            for item in self.doc.items
            if item.create or item.resept_id is None
            if (mapped := structured_dosage(bundle["entry"][item.index]["resource"]))
        }
        out = []
        for op in ops:
            mapped = sent.get(op.where or "")
            resource = op.resource or {}
            kept = resource.get("dosage") or resource.get("dosageInstruction") or []
            if mapped is None or (op.kind == "update" and op.rtype != "MedicationStatement"):
                out.append(op)
            elif given_as_text(kept):
                self.sent_units[op.where or ""] = mapped.units
                out.append(replace(op, sent_dosing=tuple(mapped.dosage)))
            else:
                out.append(op)  # a dosage PLL keeps structured is judged as it is
        return out

    def unit_place(self, expression: str | None) -> str | None:
        """Where a refused dose unit of a statement's structured dosing is in the send (the
        ``amount`` of its ``repeatingdosage``), else ``expression`` as it is."""
        found = _DOSE_UNIT.fullmatch(expression or "")
        units = self.sent_units.get(found.group(1)) if found else None
        if found is None or units is None or int(found.group(2)) >= len(units):
            return expression
        return f"{found.group(1)}.{units[int(found.group(2))]}"

    def _unchanged(self, item: Item) -> bool:
        """The statement says of its entry what the read showed (cheap; decides whether
        the statement must be checked as content PLL will keep)."""
        if item.pll_id is None or item.pll_id not in self.views:
            return item.pll_id is None and item.resept_id is not None
        return bool(self.views[item.pll_id] == plain(view(item.entry)))

    def _no_repeats(self) -> None:
        seen: set[tuple[str, str]] = set()
        for item in self.doc.items:
            for kind, value in (("PLL", item.pll_id), ("ReseptId", item.resept_id)):
                if value is None:
                    continue
                if (kind, value) in seen:
                    raise InvalidInput(
                        f"{kind} {value} is in the send twice; each entry and prescription is "
                        "sent once.",
                        f"{item.where}.identifier",
                    )
                seen.add((kind, value))

    def _accounted(self) -> None:
        """SFM: every statement and every head of chain the read showed is in the send,
        as a statement or as the target of a recall."""
        sent_entries = {i.pll_id for i in self.doc.items if i.pll_id}
        sent_rx = {self._rx(i.resept_id) for i in self.doc.items} | {
            self._rx(i.recall.recall_id) for i in self.doc.items if i.recall and i.recall.recall_id
        }
        missing = [f"PLL {e}" for e in self.shown_entries if e not in sent_entries] + [
            f"ReseptId {resept_id(self.rxs[r]) if r in self.rxs else r}"
            for r in self.shown_heads
            if r not in sent_rx
        ]
        if missing:
            raise RuleRefused(
                "The send leaves out what your $getMedication showed: "
                + ", ".join(missing)
                + ". SFM Basis requires every MedicationStatement and every head of chain of "
                "the last read in the send; nothing was saved.",
                "Bundle.entry[0].resource.section",
            )

    def _prescribe(self, item: Item, subject: dict[str, Any]) -> tuple[str, str | None, Op]:
        if item.prescription is None or not item.resept_id:
            raise InvalidInput(
                "A new prescription (createeresept) needs a ReseptId identifier.",
                f"{item.where}.identifier",
            )
        if not FHIR_ID.fullmatch(item.resept_id):
            raise InvalidInput(
                f"ReseptId {item.resept_id!r} is not usable as an id (letters, digits, '-', '.').",
                f"{item.where}.identifier",
            )
        if item.resept_id in self.by_resept or repo.resource_row(
            self.conn, "MedicationRequest", item.resept_id
        ):
            raise Conflict(
                f"ReseptId {item.resept_id} already exists: a new prescription needs a new "
                "ReseptId (renew with recallinfo code 1 or 3 naming the old one).",
                f"{item.where}.identifier",
            )
        content = copy.deepcopy(item.prescription)
        content["status"] = "active"
        content.pop("statusReason", None)
        amendment = next(iter(c.ext(content, c.AMENDMENT)), None)
        if amendment is not None:
            # the flags of the sending act are not part of the prescription
            amendment["extension"] = [
                e
                for e in amendment.get("extension") or []
                if e.get("url") not in ("createeresept", "recallinfo", "rfstatus")
            ]
        actor = self.access.actor
        content["requester"] = {
            k: v
            for k, v in {
                "identifier": {"system": systems.HPR, "value": actor.hpr} if actor.hpr else None,
                "display": actor.name,
            }.items()
            if v
        }
        content.setdefault("authoredOn", self.now.date().isoformat())
        content["subject"] = subject
        prior = None
        if item.recall is not None and item.recall.code in (c.RECALL_RENEW, c.RECALL_RENEW_CHANGED):
            prior = self._rx(item.recall.recall_id)
            if prior is None:
                raise InvalidInput(
                    f"The renewal names ReseptId {item.recall.recall_id!r}, which is not a "
                    "prescription of this list.",
                    f"{item.where}.extension",
                )
            content["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
        self.created.append(item.resept_id)
        if prior is not None:
            self.recalled.append(resept_id(self.rxs[prior]))
        return (
            item.resept_id,
            prior,
            Op("create", "MedicationRequest", item.resept_id, content, where=item.where),
        )

    def _recall(self, item: Item, recall: Recall) -> Op | None:
        """A recall of a prescription the read showed as it still is; ``None`` for
        recallinfo on a prescription already recalled then (SFM ignores it on unchanged
        statements)."""
        named = recall.recall_id or item.resept_id
        target = self._rx(named)
        if target is None:
            raise InvalidInput(
                f"recallinfo names ReseptId {named!r}, which is not a prescription of this list.",
                f"{item.where}.extension",
            )
        rx = self.rxs[target]
        held = self.shown_heads.get(target)
        if held is not None and held != rx.version:
            raise Conflict(
                f"ReseptId {named} was changed by {rx.changed_by.label()} at "
                f"{rx.last_changed.isoformat()}, after your $getMedication (it is now "
                f"{rx.status}). Do a new $getMedication and send again.",
                f"{item.where}.extension",
            )
        if rx.status not in RX_ACTIVE:
            return None
        content = copy.deepcopy(rx.content)
        content["status"] = "stopped"
        reason = c.concept(c.RECALL_CODE, recall.code, c.RECALLS.get(recall.code))
        reason["text"] = recall.text or c.RECALLS.get(recall.code, "Tilbakekalt")
        content["statusReason"] = reason
        self.recalled.append(resept_id(rx))
        return Op("update", "MedicationRequest", target, content, rx.version, where=item.where)

    def _statement(
        self, item: Item, new_rx: str | None, prior: str | None, subject: dict[str, Any]
    ) -> Op | None:
        sent = copy.deepcopy(item.entry)
        if item.discontinued and sent.get("status") in IN_USE:
            sent["status"] = "stopped"
        if sent.get("status") in ENDED and not sent.get("statusReason"):
            sent["statusReason"] = [{"text": "Seponert (SFM $sendMedication)"}]
        entry = self.entries.get(item.pll_id) if item.pll_id else None
        if entry is None:
            return self._new_entry(item, sent, new_rx, subject)
        held = self.shown_entries.get(entry.id, entry.version)
        base = self._as_read(entry, held)
        before = self.views.get(entry.id) or plain(view(base))
        after = plain(view(sent))
        if before == after and new_rx is None:
            return None  # unchanged by this send: whatever happened since stands
        merged = merged_entry(base, sent, before, after)
        links = [
            r
            for r in (base.get("basedOn") or [])
            if r.get("reference") != f"MedicationRequest/{prior}"
        ]
        if new_rx is not None:
            links.append({"reference": f"MedicationRequest/{new_rx}"})
        if links:
            merged["basedOn"] = links
        else:
            merged.pop("basedOn", None)
        merged["subject"] = subject
        return Op("update", "MedicationStatement", entry.id, merged, held, where=item.where)

    def _new_entry(
        self, item: Item, sent: dict[str, Any], new_rx: str | None, subject: dict[str, Any]
    ) -> Op | None:
        """A medicine put on the list: newly prescribed, registered without prescription,
        or a prescription not on the list until now. SFM clients choose the PLL id."""
        existing = self._rx(item.resept_id) if new_rx is None else None
        if item.pll_id is None and new_rx is None and existing is not None:
            return None  # a prescription not on the list, and the send leaves it so
        if sent.get("status") not in IN_USE:
            return None  # nothing new that is not in use
        entry_id = self.svc.ids()
        if item.pll_id is not None:
            if not FHIR_ID.fullmatch(item.pll_id):
                raise InvalidInput(
                    f"PLL id {item.pll_id!r} is not usable as an id (letters, digits, '-', '.').",
                    f"{item.where}.identifier",
                )
            if repo.resource_row(self.conn, "MedicationStatement", item.pll_id) is not None:
                raise Conflict(
                    f"PLL id {item.pll_id} belongs to an entry that is not on this patient's "
                    "list as your $getMedication showed it; a new entry needs a new PLL id.",
                    f"{item.where}.identifier",
                )
            entry_id = item.pll_id
        content = {**sent, "subject": subject}
        rx = new_rx or existing
        if rx is not None:
            content["basedOn"] = [{"reference": f"MedicationRequest/{rx}"}]
        return Op("create", "MedicationStatement", entry_id, content, where=item.where)

    def _as_read(self, entry: Entry, version: int) -> dict[str, Any]:
        if version == entry.version:
            return copy.deepcopy(entry.content)
        row = repo.resource_version(self.conn, "MedicationStatement", entry.id, version)
        return repo.content_of(row.resource) if row is not None else copy.deepcopy(entry.content)

    def answer(self, result: ChangeResult) -> dict[str, Any]:
        """SFM's answer: how many prescriptions and recalls, each one's result, and the
        list's (https://simplifier.net/guide/SFMAPIBasis sendMedication)."""
        recalled = list(self.recalled)
        for written in result.written:
            if (
                written.rtype == "MedicationRequest"
                and not written.created
                and written.resource.get("status") in ("stopped", "completed")
            ):
                rid = resept_id(self.rxs[written.id]) if written.id in self.rxs else written.id
                if rid not in recalled:
                    recalled.append(rid)
        params: list[dict[str, Any]] = [
            {"name": "recallCount", "valueInteger": len(recalled)},
            {"name": "prescriptionCount", "valueInteger": len(self.created)},
        ]
        for rid in self.created:
            params.append(_operation_result(rid, "0", "OK"))
        for rid in recalled:
            params.append(_operation_result(rid, "1", "Tilbakekalt"))
        if result.list_version is not None:
            message = list_message_id(result.list_id, result.list_version)
            params.append(
                {
                    "name": "PllResult",
                    "part": [
                        {"name": "PllmessageID", "valueString": message},
                        {"name": "resultCode", "valueCoding": c.result_code("0", "OK")},
                    ],
                }
            )
        return {"resourceType": "Parameters", "parameter": params}


def _operation_result(rid: str, code: str, display: str) -> dict[str, Any]:
    return {
        "name": "prescriptionOperationResult",
        "part": [
            {"name": "reseptID", "valueString": rid},
            {"name": "resultCode", "valueCoding": c.result_code(code, display)},
        ],
    }
