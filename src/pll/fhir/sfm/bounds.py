"""How much one SFM Basis document may hold, counted before any of it is read (issue 15;
DESIGN §3 rule 8).

A document is counted as it came — entries of the Bundle, ``MedicationStatement`` s and
``MedicationRequest`` s (:data:`~pll.domain.limits.MAX_SFM_ENTRIES` and its neighbours) —
before it is validated, and a send's statements are checked as PLL will keep them before
the transaction opens (:func:`check_ahead`), so that a send holds the database only for
the work on the list itself. What the send would leave on the list, and how many medicines
how much it writes, is told before anything is written. Nothing here touches a database.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pll.domain.errors import InvalidInput, RuleRefused
from pll.domain.limits import (
    MAX_LIST_ENTRIES,
    MAX_SFM_ENTRIES,
    MAX_SFM_REQUESTS,
    MAX_SFM_STATEMENTS,
    MAX_SFM_WRITES,
)
from pll.domain.model import IN_USE
from pll.fhir.sfm.reading import check_item
from pll.fhir.sfm.terms import Document


def within_limits(bundle: dict[str, Any]) -> None:
    """Refuse a document past :data:`MAX_SFM_ENTRIES` entries, :data:`MAX_SFM_STATEMENTS`
    statements or :data:`MAX_SFM_REQUESTS` requests, before any of it is read."""
    entries = bundle.get("entry")
    entries = entries if isinstance(entries, list) else []
    kinds = Counter(
        e["resource"].get("resourceType")
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    )
    for count, limit, what in (
        (len(entries), MAX_SFM_ENTRIES, "entries"),
        (kinds["MedicationStatement"], MAX_SFM_STATEMENTS, "MedicationStatement resources"),
        (kinds["MedicationRequest"], MAX_SFM_REQUESTS, "MedicationRequest resources"),
    ):
        if count > limit:
            raise RuleRefused(
                f"Nothing was read: the document holds {count} {what}, more than the {limit} "
                "an SFM document may hold here (the fullest list PLL keeps, with its history, "
                "fits many times over).",
                "Bundle.entry",
                {"limit": str(limit), "found": str(count), "counted": what.split()[0]},
            )


def check_ahead(doc: Document) -> None:
    """Check every statement of the section as PLL would keep it, now, outside any
    transaction; what is wrong with one is kept on it and raised only where the send
    changes that statement (as :func:`~pll.fhir.sfm.reading.check_item` would have)."""
    for item in doc.items:
        try:
            check_item(item)
        except InvalidInput as exc:
            item.refusal = exc
        item.checked = True


def projected_size(doc: Document) -> int:
    """Medicines the list will at least hold after the send: each statement of the section
    in use that is an entry (named by its PLL id, or new). A prescription shown without an
    entry is not counted (the send may recall it), nor is anything the send did not name."""
    return sum(
        1
        for item in doc.items
        if item.entry.get("status") in IN_USE
        and not item.discontinued
        and (item.pll_id is not None or item.resept_id is None or item.create)
    )


def within_list_limit(doc: Document) -> None:
    """Refuse, before anything is written, a send whose list would pass
    :data:`MAX_LIST_ENTRIES` medicines."""
    size = projected_size(doc)
    if size > MAX_LIST_ENTRIES:
        raise RuleRefused(
            f"Nothing was saved: the list would hold at least {size} medicines (the send's "
            f"statements in use); a list holds at most {MAX_LIST_ENTRIES}.",
            "Bundle.entry[0].resource.section",
            {"limit": str(MAX_LIST_ENTRIES), "size": str(size)},
        )


def within_writes(count: int, *, at_least: bool = False) -> None:
    """Refuse a send that writes more than :data:`MAX_SFM_WRITES` resources (each
    prescription and entry it creates or changes, and for a renewal the prescription it
    renews), before any of it is written; ``at_least`` when ``count`` is a lower bound, known
    before the send is planned (each new prescription writes at least itself)."""
    if count > MAX_SFM_WRITES:
        some = "at least " if at_least else ""
        raise RuleRefused(
            f"Nothing was saved: the send writes {some}{count} prescriptions and entries (a "
            "renewal writes the prescription it renews too); one send writes at most "
            f"{MAX_SFM_WRITES}. Send the changes in parts, each on a new $getMedication.",
            "Bundle.entry[0].resource.section",
            {"limit": str(MAX_SFM_WRITES), "writes": str(count)},
        )
