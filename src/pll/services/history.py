"""Reading a list's past: its versions, Provenance, the difference between two versions, and
the versions of its entries and prescriptions. Every read decides access and is logged."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from pll.auth.access import Access, Verb
from pll.domain.diff import ListDifference, Versions, diff_lists
from pll.domain.errors import InvalidInput, NotFound
from pll.domain.model import Author, ListVersion, Touched
from pll.domain.overrides import KeptOverride, parse
from pll.domain.prescriptions import local_day
from pll.fhir import expiry, systems
from pll.fhir import resources as fhir
from pll.services.base import ServiceBase, Stored, guarded, members
from pll.store import repository as repo

TARGET = re.compile(
    r"(List|MedicationStatement|MedicationRequest)/([A-Za-z0-9\-.]{1,64})(?:/_history/([0-9]{1,9}))?"
)
VERSION = re.compile(r"[0-9]{1,9}")
#: Overrides read back at most for one page: they are rare, and the newest matter.
OVERRIDES_SHOWN = 100
#: Versions looked through for the baton holder's last change (newest first).
BATON_LOOKBACK = 50


@dataclass(frozen=True)
class ListNotes:
    """The baton holder, since when (``None``: not among the newest versions), and the
    overrides kept, newest first."""

    baton: str
    baton_since: datetime | None
    overrides: tuple[KeptOverride, ...]


class ListHistory(ServiceBase):
    """The reads of what was: list versions, Provenance, diffs, resource versions."""

    @guarded
    def list_version(self, access: Access, list_id: str, version: int) -> Stored:
        with self.db.read() as conn:
            head = repo.list_row(conn, list_id=list_id)
            if head is None:
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            self.trail.admit(conn, access, Verb.READ, head.patient_id, "vread", "List", list_id)
            row = repo.list_version_row(conn, list_id, version)
            if row is None:
                raise NotFound(
                    f"List/{list_id} has no version {version} (the newest is {head.version}).",
                    "List.meta.versionId",
                )
            return Stored(row.list_json, row.version, row.recorded_at, head.patient_id)

    @guarded
    def list_history(
        self, access: Access, list_id: str, count: int, offset: int, upto: int | None = None
    ) -> tuple[int, list[tuple[Stored, ListVersion]], int]:
        """A page of the list's versions, newest first, and the newest version the paging
        covers (pass it back for the next page so pages do not shift as the list moves)."""
        with self.db.read() as conn:
            head = repo.list_row(conn, list_id=list_id)
            if head is None:
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            self.trail.admit(conn, access, Verb.READ, head.patient_id, "history", "List", list_id)
            upto = head.version if upto is None else min(upto, head.version)
            total, rows = repo.list_versions(conn, list_id, count, offset, upto)
            items = [
                (Stored(r.list_json, r.version, r.recorded_at, head.patient_id), _record(r))
                for r in rows
            ]
            return total, items, upto

    @guarded
    def provenance(
        self, access: Access, target: str, count: int, offset: int, upto: int | None = None
    ) -> tuple[int, list[dict[str, Any]], int]:
        """``Provenance`` for every change that wrote ``target``: ``List/x``, an entry or a
        prescription, or one version of it (``MedicationStatement/x/_history/2``)."""
        match = TARGET.fullmatch(target)
        if match is None:
            raise InvalidInput(
                "target must be List/<id>, MedicationStatement/<id> or MedicationRequest/<id>, "
                "optionally with /_history/<version>.",
                "target",
            )
        rtype, rid, version = match.group(1), match.group(2), match.group(3)
        with self.db.read() as conn:
            if rtype == "List":
                head = repo.list_row(conn, list_id=rid)
            else:
                res = repo.resource_row(conn, rtype, rid)
                head = repo.list_row(conn, list_id=res.list_id) if res else None
            if head is None:
                return 0, [], 0
            patient_id = head.patient_id
            upto = head.version if upto is None else min(upto, head.version)
            self.trail.admit(conn, access, Verb.READ, patient_id, "search", "Provenance", rid)
            total, rows = repo.provenance_rows(
                conn, rtype, rid, int(version) if version else None, count, offset, upto
            )
            return total, [fhir.provenance(r.list_id, _record(r)) for r in rows], upto

    @guarded
    def read_provenance(self, access: Access, provenance_id: str) -> dict[str, Any]:
        """One change as ``Provenance``; its id is ``<list id>-<list version>``."""
        list_id, _, version = provenance_id.rpartition("-")
        if not VERSION.fullmatch(version) or not list_id:
            raise NotFound(f"Provenance/{provenance_id} does not exist.", "Provenance.id")
        with self.db.read() as conn:
            head = repo.list_row(conn, list_id=list_id)
            row = repo.list_version_row(conn, list_id, int(version)) if head else None
            if head is None or row is None:
                raise NotFound(f"Provenance/{provenance_id} does not exist.", "Provenance.id")
            self.trail.admit(
                conn, access, Verb.READ, head.patient_id, "read", "Provenance", provenance_id
            )
            return fhir.provenance(list_id, _record(row))

    @guarded
    def diff(
        self,
        access: Access,
        list_id: str,
        from_version: int,
        to_version: int,
    ) -> ListDifference:
        """What changed on the list between two of its versions. Part of a page view that
        has already logged its read of the patient (``Access.reads``), it adds no record."""
        with self.db.read() as conn:
            head = repo.list_row(conn, list_id=list_id)
            if head is None:
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            self.trail.admit(conn, access, Verb.READ, head.patient_id, "diff", "List", list_id)
            snapshots = []
            for name, v in (("from", from_version), ("to", to_version)):
                row = repo.list_version_row(conn, list_id, v)
                if row is None:
                    raise InvalidInput(
                        f"List/{list_id} has no version {v} (versions 1 to {head.version}).", name
                    )
                snapshots.append(orjson.loads(row.list_json))
            before, after = (members(s) for s in snapshots)
            low, high = sorted((from_version, to_version))
            touched = repo.touched_between(conn, list_id, low, high)
            rx_ids = {rid for rtype, rid in touched if rtype == "MedicationRequest"}
            entry_history = repo.versions_until(
                conn, "MedicationStatement", set(before) | set(after), high
            )
            rx_history = repo.versions_until(conn, "MedicationRequest", rx_ids, high)
            kept = _kept(repo.overridden_versions(conn, list_id, low + 1, high, OVERRIDES_SHOWN))
        contents = {
            (rid, version): repo.content_of(text)
            for history in (entry_history, rx_history)
            for rid, rows in history.items()
            for version, _, text in rows
        }
        entries = {
            eid: Versions(
                _version_at(entry_history.get(eid, []), from_version),
                _version_at(entry_history.get(eid, []), to_version),
                eid in after,
            )
            for eid in set(before) | set(after)
        }
        prescriptions = {
            rid: Versions(
                _version_at(rx_history.get(rid, []), from_version),
                _version_at(rx_history.get(rid, []), to_version),
            )
            for rid in rx_ids
        }
        return diff_lists(
            from_version,
            to_version,
            entries,
            prescriptions,
            contents,
            _list_state(snapshots[0]),
            _list_state(snapshots[1]),
            kept,
        )

    @guarded
    def notes(self, access: Access, list_id: str) -> ListNotes:
        """What a doctor about to change the list is told: since when the baton holder has
        held it, and the overrides the list's versions kept (DESIGN §3 rules 2 and 6).

        Part of a page that has read (and logged) the list in the same request: access is
        decided (a refusal is logged and raised), but an allowed read adds no record of its
        own, so the patient's access log shows one read per page, not two."""
        with self.db.read() as conn:
            head = repo.list_row(conn, list_id=list_id)
            if head is None:
                raise NotFound(f"List/{list_id} does not exist.", "List.id")
            self.trail.admit_unlogged(
                conn, access, Verb.READ, head.patient_id, "history", "List", list_id
            )
            kept = _kept(repo.overridden_versions(conn, list_id, 1, head.version, OVERRIDES_SHOWN))
            holder = Author.from_json(orjson.loads(head.baton))
            # the holder took the baton with their last change; versions the rules or the
            # pharmacy made since do not move it
            _, recent = repo.list_versions(conn, list_id, BATON_LOOKBACK, 0, head.version)
            since = next(
                (
                    r.recorded_at
                    for r in recent
                    if Author.from_json(orjson.loads(r.author)) == holder
                ),
                None,
            )
            return ListNotes(holder.label(), since, kept)

    @guarded
    def read_resource(self, access: Access, rtype: str, rid: str) -> Stored:
        with self.db.read() as conn:
            row = repo.resource_row(conn, rtype, rid)
            if row is None:
                raise NotFound(f"{rtype}/{rid} does not exist.", f"{rtype}.id")
            self.trail.admit(conn, access, Verb.READ, row.patient_id, "read", rtype, rid)
            return Stored(
                self._as_read(rtype, row.resource, row.recorded_at),
                row.version,
                row.last_changed,
                row.patient_id,
            )

    @guarded
    def resource_version(self, access: Access, rtype: str, rid: str, version: int) -> Stored:
        with self.db.read() as conn:
            row = repo.resource_row(conn, rtype, rid)
            if row is None:
                raise NotFound(f"{rtype}/{rid} does not exist.", f"{rtype}.id")
            self.trail.admit(conn, access, Verb.READ, row.patient_id, "vread", rtype, rid)
            old = repo.resource_version(conn, rtype, rid, version)
            if old is None:
                raise NotFound(
                    f"{rtype}/{rid} has no version {version} (the newest is {row.version}).",
                    f"{rtype}.meta.versionId",
                )
            return Stored(old.resource, old.version, old.recorded_at, row.patient_id)

    @guarded
    def resource_history(self, access: Access, rtype: str, rid: str) -> list[Stored]:
        with self.db.read() as conn:
            row = repo.resource_row(conn, rtype, rid)
            if row is None:
                raise NotFound(f"{rtype}/{rid} does not exist.", f"{rtype}.id")
            self.trail.admit(conn, access, Verb.READ, row.patient_id, "history", rtype, rid)
            rows = repo.resource_versions(conn, rtype, rid)
            return [Stored(r.resource, r.version, r.recorded_at, row.patient_id) for r in rows]

    @guarded
    def search_resources(
        self, access: Access, rtype: str, patient_id: str, count: int, offset: int
    ) -> tuple[int, list[str]]:
        with self.db.read() as conn:
            head = repo.list_row(conn, patient_id=patient_id)
            if head is None:
                return 0, []
            self.trail.admit(conn, access, Verb.READ, patient_id, "search", rtype, None)
            total, rows = repo.resources_for_list(conn, rtype, head.id, count, offset)
            return total, [self._as_read(rtype, r.resource, r.recorded_at) for r in rows]

    def _as_read(self, rtype: str, text: str, recorded: datetime | None) -> str:
        """A current resource as read now: a prescription past its validity end carries the
        expired marker (:mod:`pll.fhir.expiry`; ``recorded``: when PLL first recorded it).
        Versions (``vread``, ``_history``) are served as they were recorded."""
        if rtype != "MedicationRequest":
            return text
        return expiry.marked_text(text, local_day(self.clock()), recorded)


def _record(row: Any) -> ListVersion:
    touched = tuple(
        Touched(t["type"], t["id"], t["version"], t["action"]) for t in orjson.loads(row.touched)
    )
    return ListVersion(
        row.version,
        row.recorded_at,
        Author.from_json(orjson.loads(row.author)),
        row.activity,
        row.reason,
        touched,
        row.override,
    )


def _kept(rows: Any) -> tuple[KeptOverride, ...]:
    return tuple(
        KeptOverride(
            r.version,
            r.recorded_at,
            Author.from_json(orjson.loads(r.author)).label(),
            parse(r.override),
        )
        for r in rows
    )


def _version_at(history: list[tuple[int, int, str]], list_version: int) -> int | None:
    """A resource's version as a list version saw it (``None`` if not yet written)."""
    return max((v for v, at, _ in history if at <= list_version), default=None)


def _list_state(list_json: dict[str, Any]) -> dict[str, str | None]:
    state: dict[str, str | None] = {"paused": None, "confirmed": None}
    for ext in list_json.get("extension", []):
        parts = {e["url"]: e for e in ext.get("extension", [])}
        if ext["url"] == systems.EXT_PAUSED:
            state["paused"] = f"{parts['at']['valueDateTime']}: {parts['reason']['valueString']}"
        elif ext["url"] == systems.EXT_CONFIRMED:
            state["confirmed"] = (
                f"{parts['at']['valueDateTime']} av {parts['by']['valueReference']['display']}"
            )
    return state
