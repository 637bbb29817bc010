"""e-multidose: the registration (M27), paper multidose, the packing basis (M25.1), the
pharmacy's proposals (M25.2) with the doctor's decisions, and packing reports (M25.3).

Every operation opens one transaction, decides access through the audit trail (the
responsible pharmacy proposes and reports, the responsible doctor decides and ends the
registration), applies the rules of :mod:`pll.domain.multidose`, and writes — in that same
transaction — what it changes and one outgoing event. What changes what the list shows is a
list version (:meth:`PLLService.record_in`); an accepted proposal is a change of the list
under the doctor's name, through :meth:`PLLService.apply_in` like every other change
(access, decision support, audit, version, event). If anything is refused, nothing is
written.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from pll.auth.access import Access, Verb
from pll.domain import multidose as rules
from pll.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    VersionConflict,
)
from pll.domain.model import IN_USE, Author, MedicationList, Multidose, Role
from pll.domain.paused import check_change_of_paused
from pll.domain.prescriptions import local_day
from pll.fhir import multidose as fhir_md
from pll.fhir import resources as fhir
from pll.fhir.expiry import marked
from pll.fhir.sfm.document import list_message_id
from pll.services import access_events
from pll.services import multidose_packing as packing
from pll.services.lists import ChangeResult, Op, PLLService
from pll.store import multidose as store
from pll.store import repository as repo
from pll.store import sfm as messages
from pll.store.dispensing import dispense_patient

_ENTRY = "MedicationStatement"


def party(author: Author, role: str) -> dict[str, str]:
    """A health worker and their organisation as SFM's ``Party`` (kodeverk 7490 ``role``)."""
    out = {
        "name": author.name,
        "hpr": author.hpr,
        "org_name": author.org_name,
        "org_id": author.org_id,
        "her": author.her,
    }
    return {**{k: v for k, v in out.items() if v}, "role": role}


@dataclass
class MultidoseService:
    service: PLLService

    # -- the registration (M27) and paper multidose ---------------------------------------------

    def state(self, access: Access, patient_id: str) -> dict[str, Any]:
        """The patient's e-multidose registration and paper multidose."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            svc.trail.admit(conn, access, Verb.READ, patient_id, "read", "Patient", patient_id)
            return fhir_md.registration_answer(store.state(conn, patient_id), None)

    def register(
        self, access: Access, patient_id: str, data: Any, reason: str | None
    ) -> dict[str, Any]:
        """The calling doctor becomes the patient's responsible multidose doctor, with the
        named pharmacy as the one multidose pharmacy (M27)."""
        pharmacy, given, receiver = fhir_md.registration_request(data)
        why = given or reason or f"Multidoseansvarlig lege, med {pharmacy.label()} som apotek"
        if receiver is not None and not given:
            why += f"; posene leveres til {receiver.label()}"

        def change(current: Multidose, now: datetime) -> Multidose | None:
            return rules.register(current, access.actor, pharmacy, now, receiver)

        return self._change(access, patient_id, Verb.WRITE, "multidose-register", change, why)

    def end(self, access: Access, patient_id: str, data: Any, reason: str | None) -> dict[str, Any]:
        """End the registration: only the registered doctor may (M27)."""
        why = fhir_md.reason_request(data, "$multidose-end") or reason

        def change(current: Multidose, _: datetime) -> Multidose:
            return rules.end(current, access.actor)

        return self._change(
            access, patient_id, Verb.DECIDE, "multidose-end", change, why or "Avsluttet e-multidose"
        )

    def paper(self, access: Access, patient_id: str, data: Any) -> dict[str, Any]:
        """Record paper multidose beside the list (a doctor or a pharmacy knows of it)."""
        pharmacy, note = fhir_md.paper_request(data)
        verb = _paper_verb(access)

        def change(current: Multidose, now: datetime) -> Multidose:
            return rules.register_paper(current, access.actor, pharmacy, note, now)

        return self._change(access, patient_id, verb, "paper-multidose", change, rules.PAPER_RISK)

    def paper_end(
        self, access: Access, patient_id: str, data: Any, reason: str | None
    ) -> dict[str, Any]:
        """The patient no longer gets paper multidose: the risk leaves the list."""
        why = fhir_md.reason_request(data, "$paper-multidose-end") or reason
        verb = _paper_verb(access)

        def change(current: Multidose, _: datetime) -> Multidose:
            return rules.end_paper(current, access.actor)

        return self._change(
            access,
            patient_id,
            verb,
            "paper-multidose-end",
            change,
            why or "Papirmultidose avsluttet",
        )

    def _change(
        self,
        access: Access,
        patient_id: str,
        verb: Verb,
        action: str,
        change: Callable[[Multidose, datetime], Multidose | None],
        reason: str,
    ) -> dict[str, Any]:
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            # locks in the order every write takes them: the list, then anything else
            head = repo.list_row(conn, patient_id=patient_id, lock=True)
            store.lock(conn, patient_id)
            svc.trail.admit(conn, access, verb, patient_id, action, "Patient", patient_id)
            before = store.state(conn, patient_id)
            # a paused list is changed by nobody, and a hospital stay is exactly when
            # multidose must not start or stop: the pause is the reason given first; a
            # change that changes nothing passes, as a send that changes nothing does
            pause = repo.pause_of(head) if head is not None else None
            try:
                after = change(before, svc.clock())
            except DomainError:
                check_change_of_paused(pause, resumes=False, expression="List")
                raise
            if after is None or after == before:
                return fhir_md.registration_answer(before, None)
            check_change_of_paused(pause, resumes=False, expression="List")
            # the list version first: it compares the new state with the one stored
            record = svc.record_in(
                conn,
                patient_id,
                lambda lst, now: rules.record(lst, after, access.actor, now, action, reason),
            )
            store.save(conn, patient_id, before, after)
            if record is None and _parties(before) != _parties(after):
                # no list to write a version of: who may act as the patient's multidose
                # doctor or pharmacy changed all the same (the read copy's access facts)
                access_events.changed(
                    conn, svc.ids(), patient_id, head, access_events.MULTIDOSE, svc.clock()
                )
            if before.registration is not None and (
                after.registration is None
                or after.registration.pharmacy != before.registration.pharmacy
            ):
                # a pharmacy's proposals end with its responsibility: a later doctor must
                # not accept what another pharmacy asked for
                store.close_pending(
                    conn, patient_id, svc.clock(), access.actor, "E-multidoseregistreringen endret"
                )
            return fhir_md.registration_answer(after, record.version if record else None)

    # -- the packing basis (M25.1) and packing reports (M25.3) ----------------------------------

    def packing_basis(self, access: Access, list_id: str) -> dict[str, Any]:
        """What the pharmacy packs from: the list as it stands, whether it may be packed
        now (not while paused), and each medicine in use, marked packed or not."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            head = _head(conn, list_id)
            svc.trail.admit(
                conn, access, Verb.READ, head.patient_id, "packing-basis", "List", list_id
            )
            return _packing_basis(svc, conn, head)

    def pharmacy_basis(self, access: Access, patient_id: str) -> tuple[str, dict[str, Any] | None]:
        """The patient's fødselsnummer/D-nummer and the packing basis of their list, for the
        responsible pharmacy's own work (the web UI's pharmacy pages): admitted as the
        pharmacy's work on the patient (:attr:`Verb.PACK`), so only the registered pharmacy
        gets it and any other caller is refused and logged, where :meth:`packing_basis` lets
        any health worker with a basis read it. The basis is ``None`` when the patient has no
        list yet (nothing to pack from)."""
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            head = repo.list_row(conn, patient_id=patient_id)
            rtype, rid = ("List", head.id) if head is not None else ("Patient", patient_id)
            facts = svc.trail.admit(
                conn, access, Verb.PACK, patient_id, "packing-basis", rtype, rid
            )
            basis = _packing_basis(svc, conn, head) if head is not None else None
            return facts.identifier, basis

    def packing_report(self, access: Access, list_id: str, data: Any) -> dict[str, Any]:
        """Keep what the responsible pharmacy packed for which period (M25.3); refused for a
        paused list, which must not be packed."""
        report = fhir_md.packing_request(data)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            head = _head(conn, list_id, lock=True)  # a pause at the same moment is seen
            patient_id = head.patient_id
            svc.trail.admit(conn, access, Verb.PACK, patient_id, "packing-report", "List", list_id)
            now = svc.clock()
            lst = repo.load_list(conn, head, now, [i.entry_id for i in report.items])
            rules.check_packing(
                lst, lst.multidose, report.start, report.end, report.items, report.basis
            )
            for item in report.items:
                if item.dispense_id and dispense_patient(conn, item.dispense_id) != patient_id:
                    raise InvalidInput(
                        f"MedicationDispense/{item.dispense_id} is not a dispensing of this "
                        "patient.",
                        f"{item.where}.dispense",
                    )
            basis = report.basis or lst.version
            message_id = svc.ids()
            deliveries = [
                {
                    "entry": item.entry_id,
                    "prescription": next(iter(lst.entries[item.entry_id].prescription_ids), None),
                    "first_dose": fhir.instant(item.first),
                    "last_dose": fhir.instant(item.last),
                    "dispense": item.dispense_id,
                }
                for item in report.items
            ]
            detail = {
                "period": {"start": fhir.instant(report.start), "end": fhir.instant(report.end)},
                "deliveries": deliveries,
            }
            messages.add_message(
                conn,
                message_id,
                patient_id,
                "M25.3",
                message_id,
                now,
                party(access.actor, "A"),
                detail,
                basis,
            )
            _event(svc, conn, lst, "multidose-packed", now, {"message": message_id})
            return fhir_md.packing_answer(message_id, basis, lst.version)

    # -- proposals (M25.2) and the doctor's decisions -------------------------------------------

    def propose(self, access: Access, list_id: str, data: Any) -> dict[str, Any]:
        """Keep the responsible pharmacy's proposal for the doctor; the list itself does not
        change until the doctor accepts an item. The proposal is read before the transaction
        opens; one that would leave more than ``MAX_PENDING_ITEMS`` items waiting for
        the doctor is refused."""
        parsed, note = fhir_md.proposal_request(data)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            # the list locked: two proposals at once are counted one after the other
            head = _head(conn, list_id, lock=True)
            patient_id = head.patient_id
            svc.trail.admit(conn, access, Verb.PROPOSE, patient_id, "propose", "List", list_id)
            items = fhir_md.for_patient(parsed, patient_id)
            now = svc.clock()
            named = [i.entry_id for i in items if i.entry_id]
            lst = repo.load_list(conn, head, now, named, packing.prescriptions_named(items))
            rules.check_proposal(lst, items)
            packing.check_proposal(conn, lst, items, now)
            fhir_md.within_pending(store.pending_count(conn, patient_id), len(items))
            proposal_id = svc.ids()
            detail: dict[str, Any] = {"items": len(items)}
            if note:
                detail["note"] = note
            author = party(access.actor, "A")
            messages.add_message(
                conn,
                proposal_id,
                patient_id,
                "M25.2",
                proposal_id,
                now,
                author,
                detail,
                lst.version,
            )
            held = []
            for seq, item in enumerate(items):
                item_id = svc.ids()
                store.add_item(
                    conn,
                    item_id,
                    proposal_id,
                    patient_id,
                    seq,
                    item.action,
                    item.entry_id,
                    item.entry_version,
                    item.content,
                    item.reason,
                )
                held.append(
                    rules.Held(
                        item_id,
                        proposal_id,
                        item.action,
                        "pending",
                        item.entry_id,
                        item.entry_version,
                        item.content,
                        item.reason,
                    )
                )
            _event(svc, conn, lst, "multidose-proposal", now, {"proposal": proposal_id})
            return fhir_md.proposal_answer(
                fhir_md.proposal_parameter(
                    proposal_id, now, access.actor.label(), note, lst.version, held
                )
            )

    def proposals(self, access: Access, list_id: str, status: str | None) -> dict[str, Any]:
        """The pharmacy's proposals for this list, newest first (only items in ``status``)."""
        if status not in (None, "pending", "accepted", "rejected"):
            raise InvalidInput("status is pending, accepted or rejected.", "status")
        svc = self.service
        with svc.guard(access), svc.db.read() as conn:
            head = _head(conn, list_id)
            svc.trail.admit(conn, access, Verb.READ, head.patient_id, "proposals", "List", list_id)
            found = []
            for first, rows in store.proposals(conn, head.patient_id, status):
                detail = repo.content_of(first.detail) if first.detail else {}
                author = store.author_label(first.author)
                found.append(
                    fhir_md.proposal_parameter(
                        first.proposal_id,
                        first.sent_at,
                        author,
                        detail.get("note"),
                        None,
                        [store.held(r) for r in rows],
                    )
                )
            return fhir_md.proposals_answer(found, store.pending_count(conn, head.patient_id))

    def decide(
        self, access: Access, list_id: str, data: Any, reason: str | None
    ) -> tuple[dict[str, Any], ChangeResult | None]:
        """The responsible doctor accepts or rejects the items of the pharmacy's proposals.
        The accepted items are one change of the list under the doctor's name (one version,
        checked like every change); a rejected item changes nothing on the list."""
        rulings = fhir_md.decision_request(data)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            head = _head(conn, list_id, lock=True)  # the list first, then the items
            patient_id = head.patient_id
            svc.trail.admit(
                conn, access, Verb.DECIDE, patient_id, "decide-proposal", "List", list_id
            )
            held = store.items(conn, patient_id, [r.item_id for r in rulings], lock=True)
            rules.check_rulings(held, rulings)
            ops: list[Op] = []
            made: dict[str, str] = {}
            for ruling in rulings:
                if ruling.accept:
                    op = _accepted(svc, conn, held[ruling.item_id], ruling.where)
                    ops.append(op)
                    made[ruling.item_id] = str(op.rid)
            result = None
            if ops:
                why = reason or "Forslag fra multidoseapoteket (M25.2) godtatt av lege"
                try:
                    result = svc.apply_in(conn, access, patient_id, ops, why)
                except VersionConflict as exc:
                    raise Conflict(
                        exc.message.replace(
                            "you hold version", "the proposal was made on version"
                        ).replace(
                            "Read it again and redo your change on the current version.",
                            "The entry changed after the pharmacy proposed this: reject the "
                            "item, and the pharmacy can propose again on the current version.",
                        ),
                        exc.expression,
                        exc.details,
                    ) from None
            now = svc.clock()
            version = result.list_version if result is not None else None
            for ruling in rulings:
                store.decide(
                    conn,
                    ruling.item_id,
                    "accepted" if ruling.accept else "rejected",
                    now,
                    access.actor,
                    ruling.reason,
                    version if ruling.accept else None,
                    made.get(ruling.item_id),
                )
            if version is None:
                lst = _plain_list(head)
                _event(
                    svc,
                    conn,
                    lst,
                    "multidose-decision",
                    now,
                    {"items": [r.item_id for r in rulings]},
                )
            decided = store.items(conn, patient_id, [r.item_id for r in rulings])
            answer = fhir_md.decision_answer(
                version,
                [decided[r.item_id] for r in rulings],
                len(result.findings) if result else 0,
            )
            return answer, result


def _packing_basis(svc: PLLService, conn: Connection, head: Row[Any]) -> dict[str, Any]:
    """The packing basis (M25.1) of the list ``head``, its access already decided."""
    now = svc.clock()
    lst = repo.load_list(conn, head, now)
    visible = lst.visible_entries(now)
    statements = [
        (fhir.entry_resource(e), rules.packed_in_multidose(e.content))
        for e in sorted(visible, key=lambda e: e.id)
        if e.status in IN_USE
    ]
    # the prescriptions the medicines are dispensed on, marked when expired (pll.fhir.expiry)
    today = local_day(now)
    held = {rx for e in visible if e.status in IN_USE for rx in e.prescription_ids}
    prescriptions = [
        marked(fhir.prescription_resource(p), today, p.recorded)
        for p in sorted(lst.prescriptions.values(), key=lambda p: p.id)
        if p.id in held
    ]
    return fhir_md.packing_basis_answer(
        lst,
        fhir.list_resource(lst, visible),
        statements,
        list_message_id(lst.id, lst.version),
        lst.multidose,
        rules.packing_refusal(lst, lst.multidose),
        lst.baton,
        prescriptions,
    )


def _parties(state: Multidose) -> tuple[str | None, str | None]:
    """What access decisions read of a multidose state: the responsible doctor's HPR
    number and the pharmacy's organisation number (pll.auth.access.PatientFacts)."""
    reg = state.registration
    return (reg.doctor.hpr, reg.pharmacy.org_id) if reg is not None else (None, None)


def _paper_verb(access: Access) -> Verb:
    return Verb.DISPENSE if access.actor.role is Role.PHARMACIST else Verb.WRITE


def _head(conn: Connection, list_id: str, *, lock: bool = False) -> Row[Any]:
    head = repo.list_row(conn, list_id=list_id, lock=lock)
    if head is None:
        raise NotFound(f"List/{list_id} does not exist.", "List.id")
    return head


def _plain_list(head: Row[Any]) -> MedicationList:
    """The list row as far as an event needs it (its id, patient and version)."""
    return MedicationList(
        id=head.id,
        patient_id=head.patient_id,
        version=head.version,
        created=head.created_at,
        updated=head.updated_at,
        baton=repo.author_of(head.baton),
    )


def _event(
    svc: PLLService,
    conn: Connection,
    lst: MedicationList,
    kind: str,
    now: datetime,
    extra: dict[str, Any],
) -> None:
    """The outgoing event of an accepted e-multidose message that does not change the list
    (a proposal, a packing report, rejections): in the same transaction (rule 7)."""
    repo.add_event(
        conn,
        svc.ids(),
        lst,
        kind,
        now,
        {
            "list": f"List/{lst.id}",
            "patient": f"Patient/{lst.patient_id}",
            "version": lst.version,
            **extra,
        },
    )


def _accepted(svc: PLLService, conn: Connection, item: rules.Held, where: str) -> Op:
    """The change an accepted item makes to the list, on the version the pharmacy saw."""
    if item.action == "new":
        assert item.content is not None  # noqa: S101 - checked when it was proposed
        return Op("create", _ENTRY, svc.ids(), copy.deepcopy(item.content), where=where)
    if item.action == "change":
        assert item.content is not None  # noqa: S101 - checked when it was proposed
        return Op(
            "update",
            _ENTRY,
            item.entry_id,
            copy.deepcopy(item.content),
            if_match=item.entry_version,
            where=where,
        )
    row = repo.resource_row(conn, _ENTRY, str(item.entry_id))
    if row is None:  # pragma: no cover - entries are never deleted
        raise NotFound(f"MedicationStatement/{item.entry_id} does not exist.", where)
    content = rules.removed(repo.content_of(row.resource), item.reason or "")
    return Op("update", _ENTRY, item.entry_id, content, if_match=item.entry_version, where=where)
