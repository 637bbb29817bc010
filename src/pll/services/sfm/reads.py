"""The reads a send must be based on: SFM Basis (https://simplifier.net/guide/SFMAPIBasis)
requires a ``$sendMedication`` to relate (``Composition.relatesTo.targetIdentifier``) to the
client's latest ``$getMedication``, made less than four hours earlier.

Each ``$getMedication`` is kept (:mod:`pll.store.sfm`) with what it showed: the version of each
entry and head of chain, and each entry as its statement said it (:func:`shown_json`). A send
is held to the read it names (:func:`held_read`) and compared with what that read showed; after
the send, the read is brought up to what the list now shows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from pll.auth.access import Access
from pll.domain.errors import InvalidInput, RuleRefused
from pll.fhir import systems
from pll.fhir.sfm.document import Shown
from pll.fhir.sfm.reading import medication_document, read_document
from pll.fhir.sfm.terms import Document
from pll.services.sfm.merge import plain, view
from pll.store import repository as repo
from pll.store import sfm as store

#: SFM Basis: a send must come within four hours of the read it relates to.
READ_VALID_FOR = timedelta(hours=4)


def reader_key(access: Access) -> str:
    """Whose read it is: SFM keeps a session per user of a client system."""
    actor = access.actor
    return f"hpr:{actor.hpr}" if actor.hpr else f"pid:{actor.pid}" if actor.pid else actor.name


def shown_json(document: dict[str, Any], shown: Shown) -> dict[str, Any]:
    """What a read showed: versions, and each entry as its statement said it (read back from
    the document itself), so a send is compared with what the doctor saw, not with what PLL
    holds beyond it."""
    views = {
        item.pll_id: plain(view(item.entry))
        for item in read_document(medication_document(document), check=False).items
        if item.pll_id
    }
    return {"entries": shown.entries, "heads": shown.heads, "views": views}


def held_read(conn: Connection, access: Access, doc: Document, now: datetime) -> Any:
    """The read a send relates to, locked, once it is the client's own, its latest, made
    less than :data:`READ_VALID_FOR` ago, and of the document's patient; refused otherwise."""
    # locked: two sends on one read are taken one after the other
    read = store.get_read(conn, str(doc.relates_to), lock=True)
    where = "Bundle.entry[0].resource.relatesTo[0].targetIdentifier"
    if read is None:
        raise RuleRefused(
            f"No $getMedication gave out the Composition {doc.relates_to!r}: "
            "relate the send to the Composition.identifier of your last read.",
            where,
        )
    if read.client_id != access.client_id or read.reader_id != reader_key(access):
        raise RuleRefused(
            "That $getMedication was made by another client system or another user; a "
            "send must relate to a read of your own.",
            where,
        )
    if now - read.read_at > READ_VALID_FOR:
        raise RuleRefused(
            f"The $getMedication this send relates to was made at {read.read_at.isoformat()}, "
            "more than 4 hours ago. Do a new $getMedication and send again.",
            where,
        )
    newest = store.latest_read_at(conn, read.patient_id, access.client_id, read.reader_id)
    if newest is not None and newest > read.read_at:
        raise RuleRefused(
            f"This send relates to a $getMedication of {read.read_at.isoformat()}, but you "
            f"read the list again at {newest.isoformat()}: relate the send to your latest "
            "read.",
            where,
        )
    if doc.patient is not None:
        stored = repo.get_patient(conn, read.patient_id)
        if stored is not None and not _same_person(doc.patient, orjson.loads(stored.resource)):
            raise InvalidInput(
                "The document's patient is not the patient of the $getMedication it relates to.",
                "Bundle.entry[0].resource.subject",
            )
    return read


def _same_person(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def ids(p: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (str(i.get("system")), str(i.get("value")))
            for i in p.get("identifier") or []
            if i.get("system") in (systems.FNR, systems.DNR)
        }

    mine = ids(a)
    return not mine or bool(mine & ids(b))
