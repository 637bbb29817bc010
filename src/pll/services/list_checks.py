"""Decision support in the list services (DESIGN §3 rule 6): on what each accepted change
brings — findings returned with the change, a blocking one refused unless overridden with a
reason that is kept with the version, a dose unit the drug's form does not take refused — and
on demand, on the list as it is (``List/$check``) or with draft medicines (CDS Hooks
``order-select``/``order-sign``, https://cds-hooks.hl7.org/). The checks themselves are
:mod:`pll.services.decision_support` and the domain's."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from pll.auth.access import Access, Verb
from pll.domain import overrides
from pll.domain.checks import DOSE_KINDS, Finding, Kind
from pll.domain.errors import ChecksRefused, NotFound, RuleRefused
from pll.domain.model import IN_USE, RX_ACTIVE, ListVersion, MedicationList, Touched
from pll.fhir.findings import OVERRIDE_FINDINGS_HEADER, OVERRIDE_HEADER
from pll.fhir.findings import issues as finding_issues
from pll.services.base import ServiceBase, guarded, relocate
from pll.services.decision_support import (
    CatalogueInUse,
    Named,
    dosed_items,
    drug_key,
    items,
    named,
    review,
)
from pll.store import repository as repo


class ListChecks(ServiceBase):
    """Decision support on a change to a list, and on demand."""

    def _checked(
        self,
        conn: Connection,
        access: Access,
        lst: MedicationList,
        record: ListVersion,
        places: dict[str, str],
        sent: dict[str, tuple[dict[str, Any], ...]] | None = None,
        *,
        catalogue: CatalogueInUse | None = None,
        reactions: bool = True,
    ) -> tuple[list[Finding], ListVersion]:
        """Decision support on what this change brings (rule 6): findings come back with the
        accepted change. A blocking one refuses it unless the caller overrides it with a
        reason, which is then kept with the version — but only when the change brings the
        medicine (a new entry or prescription, another drug, or one back in use) or, for a
        dose finding, brings or changes its dosage. Pausing or stopping a medicine already
        on the list is never blocked, so an old entry dosed wrongly can still be stopped.

        A dose in a unit the drug's form does not take is refused outright (422, at the
        unit; no override) when the change brings the medicine or changes its dosage.
        ``places`` gives where a resource sits in the request (a Bundle entry), by id;
        ``sent`` what the checks also judge of its dosage (:attr:`Op.sent_dosing`), by id.
        ``catalogue`` and ``reactions``: as :func:`review` takes them."""
        touched = {t.id: t for t in record.touched if t.resource_type in repo.RESOURCE_TABLES}
        if not touched:
            return [], record
        entries, prescriptions = lst.entries.values(), lst.prescriptions.values()
        findings = review(
            conn,
            lst.patient_id,
            items(entries, prescriptions),
            set(touched),
            sent,
            # every touched entry and prescription answers for its dose, linked or not
            dosed_items(entries, prescriptions, set(touched)),
            catalogue,
            reactions=reactions,
        )
        # the list flags what the catalogue no longer has (rule 6): touched entries anew
        gone = {f.entries[0] for f in findings if f.kind is Kind.WITHDRAWN}
        lst.withdrawn = frozenset(
            e
            for e in (lst.withdrawn - set(touched)) | (gone & set(lst.entries))
            if e in lst.entries and lst.entries[e].status in IN_USE
        )
        fresh, dosed = (
            self._fresh(conn, lst, touched) if any(f.blocking for f in findings) else (set(), set())
        )
        blocking = [
            f
            for f in findings
            if f.blocking and set(f.entries) & (dosed if f.kind in DOSE_KINDS else fresh)
        ]
        for f in blocking:
            if f.kind is Kind.UNIT_FORM:
                rtype = touched[f.entries[0]].resource_type
                key = "dosage" if rtype == "MedicationStatement" else "dosageInstruction"
                where = f"{rtype}.{key}{f.details['element']}"
                place = places.get(f.entries[0])
                raise RuleRefused(
                    f.message,
                    relocate(where, rtype, place) if place else where,
                )
        if not blocking:
            return findings, record
        codes = {f.code for f in blocking}
        accepted = access.override_findings
        if not access.override or (accepted is not None and not codes <= accepted):
            missing = sorted(codes - (accepted or set()))
            raise ChecksRefused(
                f"Nothing was saved: {len(blocking)} finding(s) need a deliberate override "
                f"({blocking[0].message}). To go ahead, give the reason in {OVERRIDE_HEADER} "
                f"and name the findings in {OVERRIDE_FINDINGS_HEADER}: {', '.join(missing)}. "
                "Both are kept with the change.",
                OVERRIDE_HEADER,
                # each of them shown in this answer: its cap never leaves out a blocking
                # finding, so an override never covers one its author did not see
                {"overrideFindings": ",".join(missing)},
                issues=finding_issues(findings),
            )
        # kept with the entries each finding concerns, to be shown on them (rule 6)
        return findings, replace(record, override=overrides.describe(access.override, blocking))

    @staticmethod
    def _fresh(
        conn: Connection, lst: MedicationList, touched: dict[str, Touched]
    ) -> tuple[set[str], set[str]]:
        """The touched entries and prescriptions in use that bring a medicine to the list,
        and those that bring a medicine or a new dosage (which the dose findings block)."""
        brought, dosed = set(), set()
        for rid, t in touched.items():
            current = lst.entries.get(rid) or lst.prescriptions.get(rid)
            if current is None or current.status not in IN_USE | RX_ACTIVE:
                continue
            if t.action == "create":
                brought.add(rid)
                continue
            old = repo.resource_version(conn, t.resource_type, rid, t.version - 1)
            before = repo.content_of(old.resource) if old is not None else {}
            if before.get("status") not in IN_USE | RX_ACTIVE or drug_key(before) != drug_key(
                current.content
            ):
                brought.add(rid)
            key = "dosage" if t.resource_type == "MedicationStatement" else "dosageInstruction"
            if before.get(key) != current.content.get(key):
                dosed.add(rid)
        return brought, dosed | brought

    @guarded
    def check_list(self, access: Access, list_id: str) -> tuple[str, list[Finding]]:
        """Every decision-support finding on the list as it is (``List/$check``); returns
        the patient and the findings."""
        with self.db.read() as conn:
            head = repo.list_row(conn, list_id=list_id)
            if head is None:
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            self.trail.admit(conn, access, Verb.READ, head.patient_id, "check", "List", list_id)
            lst = repo.load_list(conn, head, self.clock())
            entries, prescriptions = lst.entries.values(), lst.prescriptions.values()
            listed = items(entries, prescriptions)
            dosed = dosed_items(entries, prescriptions)
            return head.patient_id, review(conn, head.patient_id, listed, None, dosed=dosed)

    @guarded
    def check_drafts(
        self, access: Access, patient_id: str, drafts: list[tuple[str, dict[str, Any]]]
    ) -> list[Finding]:
        """What decision support would find if these medicines (id, FHIR content with
        ``medicationCodeableConcept``) joined the patient's list (CDS Hooks ``order-select``
        and ``order-sign``)."""
        with self.db.read() as conn:
            if repo.get_patient(conn, patient_id) is None:
                raise NotFound(f"Patient/{patient_id} does not exist.", "context.patientId")
            self.trail.admit(conn, access, Verb.READ, patient_id, "check", "List", None)
            head = repo.list_row(conn, patient_id=patient_id)
            listed: list[Named] = []
            if head is not None:
                lst = repo.load_list(conn, head, self.clock())
                listed = items(lst.entries.values(), lst.prescriptions.values())
            listed += [named(rid, content) for rid, content in drafts]
            return review(conn, patient_id, listed, {rid for rid, _ in drafts})

    def log_check(self, access: Access, patient_id: str, list_id: str | None) -> None:
        """The record of a dry run (its own records went with its rolled-back transaction)."""
        with self.trail.refusals(), self.db.write() as conn:
            self.trail.admit(conn, access, Verb.READ, patient_id, "check", "List", list_id)
