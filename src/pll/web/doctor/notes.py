"""What a doctor is told before changing the list: who holds the relay baton and since when
(DESIGN §3 rule 2), and the overrides of severe findings that concern an entry (rule 6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pll.web.edge import Web
from pll.web.views import ListView

#: The page-state key of what a doctor typed before a relay-baton conflict.
TYPED = "typed"


@dataclass(frozen=True)
class Baton:
    """Another doctor holds the baton: a change now takes it over."""

    holder: str
    since: datetime | None


@dataclass(frozen=True)
class EntryOverride:
    """The newest override that concerns one entry: why, of what, by whom and when."""

    reason: str
    findings: str
    author: str
    at: datetime
    version: int


def list_notes(web: Web, pid: str, lst: ListView | None) -> dict[str, Any]:
    """The page context for the notes: ``baton`` (``None`` when the caller holds it or
    there is no list) and ``overrides``, the newest override per entry it concerns."""
    if lst is None:
        return {"baton": None, "overrides": {}}
    notes = web.service.notes(web.access(pid), lst.id)
    baton = None
    if notes.baton != web.caller.actor.label():
        baton = Baton(notes.baton, notes.baton_since)
    overrides: dict[str, EntryOverride] = {}
    for kept in notes.overrides:  # newest first: the first one an entry meets is its note
        for entry in lst.entries:
            concerning = kept.override.concerning(entry.id)
            if concerning and entry.id not in overrides:
                overrides[entry.id] = EntryOverride(
                    kept.override.reason,
                    "; ".join(f.summary or f"{f.kind} {f.code}" for f in concerning),
                    kept.author,
                    kept.recorded,
                    kept.version,
                )
    return {"baton": baton, "overrides": overrides}


def entry_notes(web: Web, pid: str, lst: ListView, entry_id: str) -> dict[str, Any]:
    """The notes on a form that changes one entry: the baton, and that entry's override."""
    notes = list_notes(web, pid, lst)
    return {"baton": notes["baton"], "overridden": notes["overrides"].get(entry_id)}


def typed_after_conflict(web: Web) -> bool:
    """Whether what :func:`typed_for` will give was kept at a relay-baton conflict (the
    form then opens on a newer version), not when the doctor chose to change the form
    from the findings page."""
    kept = web.memory.get(TYPED)
    return isinstance(kept, dict) and kept.get("conflict", True) is True


def typed_for(web: Web) -> dict[str, str] | None:
    """What the doctor typed in this form before a conflict or the findings page sent them
    elsewhere, once: the form reopens with it, on the current version."""
    kept = web.memory.get(TYPED)
    if not isinstance(kept, dict) or kept.get("path") != web.request.url.path:
        return None
    web.memory.pop(TYPED, None)
    fields = kept.get("fields")
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else None
