"""What more than one SFM operation needs: the rule for ids a client chooses, and the
snapshot of what PLL holds that an SFM document is written from
(https://simplifier.net/guide/SFMAPIBasis, :func:`pll.fhir.sfm.document.write_document`).
"""

from __future__ import annotations

import re
from datetime import datetime

import orjson
from sqlalchemy import Connection

from pll.domain.errors import NotFound
from pll.fhir.sfm.document import Snapshot, StoredMessage
from pll.fhir.sfm.parties import Party
from pll.store import allergies as allergy_store
from pll.store import multidose as multidose_store
from pll.store import repository as repo
from pll.store import sfm as store

#: A FHIR id: what a ReseptId, a PLL id or a dispense id a client sends must be to be kept.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def load_snapshot(conn: Connection, patient_id: str, now: datetime) -> Snapshot:
    """What PLL holds of the patient, as of ``now``: what an SFM document is written from."""
    prow = repo.get_patient(conn, patient_id)
    if prow is None:
        raise NotFound(f"Patient/{patient_id} does not exist.", "patient")
    head = repo.list_row(conn, patient_id=patient_id)
    lst = repo.load_list(conn, head, now) if head is not None else None
    entries = repo.all_entries(conn, head.id) if head is not None else []
    rxs = repo.all_prescriptions(conn, head.id) if head is not None else {}
    md = store.get_multidose(conn, patient_id)
    messages = []
    list_message = None
    for row in store.messages(conn, patient_id):
        message = StoredMessage(
            row.kind,
            row.identifier,
            row.sent_at,
            Party.from_json(orjson.loads(row.author)) if row.author else None,
            orjson.loads(row.detail),
        )
        if row.kind == "M25.1":
            if lst is not None and row.list_version == lst.version:
                list_message = message
        else:
            messages.append(message)
    return Snapshot(
        patient_id=patient_id,
        patient=orjson.loads(prow.resource),
        lst=lst,
        entries=entries,
        prescriptions=rxs,
        dispenses=store.dispenses(conn, patient_id),
        allergies=[orjson.loads(r.resource) for r in allergy_store.for_patient(conn, patient_id)],
        doctor=Party.from_json(orjson.loads(md.doctor)) if md is not None and md.doctor else None,
        pharmacy=Party.from_json(orjson.loads(md.pharmacy))
        if md is not None and md.pharmacy
        else None,
        list_message=list_message,
        messages=messages,
        paper=multidose_store.state(conn, patient_id).paper,
    )
