"""``Patient/$sendMedication``: a doctor's complete list, sent as an SFM Basis document, applied
to PLL's list (https://simplifier.net/guide/SFMAPIBasis, sendMedication).

The send is bounded (:mod:`pll.fhir.sfm.bounds`) before any of it is read, held to the read it
relates to (:func:`.reads.held_read`), planned against what that read showed (:class:`.plan.Plan`)
and written through the same path as every other change (:meth:`PLLService.apply_in`: access,
decision support, audit, one list version, the outgoing event), all in one transaction. A
conflict with a change made since the read refuses the whole send, with nothing written; after
the send, the read is brought up to what the list now shows.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import orjson

from pll.auth.access import Access, Verb
from pll.domain.errors import Conflict, InvalidInput, RuleRefused, VersionConflict
from pll.fhir.sfm import bounds
from pll.fhir.sfm.document import write_document
from pll.fhir.sfm.reading import medication_document, read_document
from pll.fhir.validate import validate
from pll.services.lists import ChangeResult, Op, PLLService, early_refusal
from pll.services.sfm.plan import Plan
from pll.services.sfm.reads import held_read, shown_json
from pll.services.sfm.shared import load_snapshot
from pll.store import repository as repo
from pll.store import sfm as store


def send_medication(
    svc: PLLService, access: Access, parameters: Any, reason: str | None = None
) -> tuple[dict[str, Any], ChangeResult | None]:
    """Apply a doctor's complete list sent as an SFM document; returns SFM's answer."""
    early_refusal(access, Verb.PRESCRIBE)  # only prescribers send, refused before any lookup
    bundle = medication_document(parameters)
    bounds.within_limits(bundle)  # counted before any of it is read
    validate(parameters, "Parameters")
    # statements are checked as PLL would keep them when the send changes them (Plan),
    # the checking itself done here, before the transaction
    doc = read_document(bundle, check=False)
    if not doc.relates_to:
        raise InvalidInput(
            "The Composition must relate to your last $getMedication: "
            "relatesTo.targetIdentifier.value = that Composition's identifier.",
            "Bundle.entry[0].resource.relatesTo",
        )
    bounds.within_list_limit(doc)
    bounds.within_writes(sum(1 for i in doc.items if i.create), at_least=True)
    bounds.check_ahead(doc)
    with svc.guard(access), svc.db.write() as conn:
        now = svc.clock()
        # the list first, then the read: every write path locks the list first
        probe = store.get_read(conn, str(doc.relates_to))
        if probe is not None:
            repo.list_row(conn, patient_id=probe.patient_id, lock=True)
        read = held_read(conn, access, doc, now)
        patient_id = str(read.patient_id)
        shown = orjson.loads(read.shown)
        # the list row is locked by apply_in; its id is all the plan needs before that
        head = repo.list_row(conn, patient_id=patient_id)
        entries = {e.id: e for e in repo.all_entries(conn, head.id)} if head else {}
        rxs = repo.all_prescriptions(conn, head.id) if head else {}
        plan = Plan(svc, conn, access, patient_id, doc, shown, entries, rxs, now)
        ops = [replace(o, by_sfm=True) for o in plan.with_sent_dosing(plan.ops(), bundle)]
        resume = next((m.resume for m in doc.messages if m.kind == "M25.1" and m.resume), None)
        if resume is not None:
            # on the list version the read showed, as List/$resume with If-Match
            ops = [Op("resume", if_match=read.list_version, confirm=resume.confirm), *ops]
        # a renewal also completes the prescription it renews
        renewed = [
            o for o in ops if o.kind == "create" and "priorPrescription" in (o.resource or {})
        ]
        bounds.within_writes(len(ops) + len(renewed))
        try:
            # SFM creates the PLL with the first send (createPLL): so does PLL
            result = svc.apply_in(
                conn,
                access,
                patient_id,
                ops,
                reason,
                create_list=head is None,
                refuse_while_paused="Bundle.entry[0].resource.section",
            )
        except RuleRefused as exc:
            exc.expression = plan.unit_place(exc.expression)
            raise
        except VersionConflict as exc:
            # An operation has no If-Match: the read is the version the send is based on.
            raise Conflict(
                exc.message.replace(
                    "you hold version", "your $getMedication showed version"
                ).replace(
                    "Read it again and redo your change on the current version.",
                    "Do a new $getMedication and send again.",
                ),
                exc.expression,
                exc.details,
            ) from None
        after = load_snapshot(conn, patient_id, now)
        document, now_shown = write_document(after, str(uuid.uuid4()), access.actor, now)
        store.update_read(
            conn, doc.relates_to, now_shown.list_version, shown_json(document, now_shown)
        )
        return plan.answer(result), result
