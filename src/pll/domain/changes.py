"""The rules of changing a PLL (DESIGN §3), applied to a loaded list without any I/O.

A :class:`ListChange` is one accepted change in the making. Every entry point — a single
FHIR write, a transaction Bundle, later the SFM operations and the UI — builds one, applies
its operations, and calls :meth:`ListChange.finish`, which makes exactly one new list version.
If any operation raises, the caller throws the whole change away, so nothing is written.

What each operation is held to (the version it is based on, an entry's status changes) is
:mod:`pll.domain.operation_rules`; the versions PLL makes on its own (the 90-day drop-off,
withdrawn drugs) are :mod:`pll.domain.list_upkeep`.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime
from typing import Any

from pll.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    RuleRefused,
)
from pll.domain.limits import MAX_LIST_ENTRIES
from pll.domain.list_upkeep import SYSTEM, expire_entries, flag_withdrawn
from pll.domain.model import (
    ENDED,
    IN_USE,
    REMOVED,
    RX_ACTIVE,
    Author,
    Confirmation,
    Entry,
    ListVersion,
    MedicationList,
    Pause,
    Prescription,
    Touched,
)
from pll.domain.operation_rules import (
    check_transition,
    check_version,
    entry_activity,
    reason_text,
    refs_to,
)
from pll.domain.prescribers import (
    Originators,
    require_doctor,
    require_own,
    require_prescriber,
)
from pll.domain.prescriptions import issue, local_day, with_issue_of
from pll.domain.treatment import check_treatment

# The versions PLL makes on its own are in list_upkeep; they stay importable from here.
__all__ = [
    "RECALL_ON_DISCONTINUE",
    "SYSTEM",
    "ListChange",
    "expire_entries",
    "flag_withdrawn",
    "list_size",
    "start_list",
]

RECALL_ON_DISCONTINUE = "Tilbakekalt fordi legemidlet er seponert"


def start_list(
    list_id: str, patient_id: str, author: Author, now: datetime, *, exists: bool
) -> MedicationList:
    """A new, empty PLL for a patient who has none (rule 1: at most one per patient).

    It has version 0 until a :class:`ListChange` on it is finished, so that creating a
    list together with its first entries (a transaction Bundle) is one version.
    A dentist or midwife starts one with what they prescribe (SFM creates the list with
    the first send); confirming it stays with doctors.
    """
    require_prescriber(author)
    if exists:
        raise Conflict(
            "This patient already has a PLL; a patient has exactly one list. "
            "Read it with GET /fhir/List?patient=<id>.",
            "List.subject",
            norwegian="Pasienten har allerede en legemiddelliste; en pasient har bare én.",
        )
    return MedicationList(
        id=list_id, patient_id=patient_id, version=0, created=now, updated=now, baton=author
    )


def list_size(lst: MedicationList, now: datetime) -> int:
    """The medicines on a list as :data:`~pll.domain.limits.MAX_LIST_ENTRIES` counts them:
    the entries it shows (in use, or discontinued within 90 days) and the prescriptions in
    use that no entry in use holds."""
    held = {rx for e in lst.entries.values() if e.status in IN_USE for rx in e.prescription_ids}
    return sum(1 for e in lst.entries.values() if e.visible_at(now)) + sum(
        1 for p in lst.prescriptions.values() if p.status in RX_ACTIVE and p.id not in held
    )


class ListChange:
    """One change to one PLL by one prescriber; becomes one new list version when finished.

    A doctor changes anything on it. A dentist or midwife changes only what they put on it
    (:mod:`pll.domain.prescribers`): ``originators`` says who recorded the entries and
    prescriptions the change may touch; what is not in it, and was not made in this change,
    is not theirs.
    """

    def __init__(
        self,
        lst: MedicationList,
        author: Author,
        now: datetime,
        reason: str | None = None,
        originators: Originators | None = None,
    ) -> None:
        require_prescriber(author)
        self.originators = originators or Originators()
        #: what this change itself made, the author's own whoever they are
        self._made: set[tuple[str, str]] = set()
        self.list = lst
        self.author = author
        self.now = now
        self.reason = reason
        self.touched: list[Touched] = []
        self.activities: list[str] = []
        self._reasons: list[str] = []
        self._held: dict[tuple[str, str], int] = {}
        self._list_changed = False
        self._size = list_size(lst, now)
        if lst.version == 0:
            self._list_touch("create-list")

    # -- entries -------------------------------------------------------------------------

    def add_entry(self, entry_id: str, content: dict[str, Any]) -> Entry:
        """Put a new medicine on the list."""
        status = content.get("status")
        if status not in IN_USE:
            raise InvalidInput(
                f"A new entry must have status 'active' or 'on-hold', not {status!r}.",
                "MedicationStatement.status",
            )
        if entry_id in self.list.entries:
            raise Conflict(
                f"MedicationStatement/{entry_id} already exists.", "MedicationStatement.id"
            )
        self._check_links(entry_id, content)
        check_treatment(content, local_day(self.now))
        entry = Entry(entry_id, 1, content, self.now, self.author)
        self.list.entries[entry_id] = entry
        self._made.add(("MedicationStatement", entry_id))
        self._touch("MedicationStatement", entry_id, 1, "create", "add-entry")
        return entry

    def update_entry(self, entry_id: str, content: dict[str, Any], if_match: int | None) -> Entry:
        """Change an entry: dose change, pause, resume, discontinue, or entered-in-error.

        Refused when ``if_match`` is missing or stale (relay baton, rule 2). A write that
        changes nothing keeps the entry's version and ``last changed`` (rule 3).
        """
        entry = self.list.entries.get(entry_id)
        if entry is None:
            raise NotFound(
                f"MedicationStatement/{entry_id} is not on this list.", "MedicationStatement.id"
            )
        self._own("MedicationStatement", entry_id)
        check_version(
            "MedicationStatement",
            entry_id,
            self._held_version("MedicationStatement", entry_id, entry.version),
            entry.changed_by,
            entry.last_changed,
            if_match,
        )
        if content == entry.content:
            return entry
        old, new = entry.status, str(content.get("status"))
        check_transition(entry_id, old, new)
        reason = reason_text(content)
        if (new in ENDED or new == REMOVED) and new != old and not reason:
            raise InvalidInput(
                f"Setting status {new!r} needs a reason in statusReason (why the medicine is "
                "discontinued or why the entry was registered in error).",
                "MedicationStatement.statusReason",
            )
        self._check_links(entry_id, content, already=entry.prescription_ids)
        if content.get("effectivePeriod") != entry.content.get("effectivePeriod"):
            # a period stored before the rule stays readable and changeable as it was
            check_treatment(content, local_day(self.now))
        ended_at = entry.ended_at
        if new in ENDED and old not in ENDED:
            ended_at = self.now
        version = self._next_version("MedicationStatement", entry_id, entry.version)
        updated = Entry(entry_id, version, content, self.now, self.author, ended_at)
        self.list.entries[entry_id] = updated
        activity = entry_activity(old, new)
        if reason and new != old:
            self._reasons.append(reason)
        self._touch("MedicationStatement", entry_id, updated.version, "update", activity)
        if new == "stopped" and old != "stopped":
            # Only what this entry already held: a link added in the same write was checked
            # above, and a prescription another entry in use still holds is never recalled.
            held_elsewhere = {
                rx
                for other in self.list.entries.values()
                if other.id != entry_id and other.status in IN_USE
                for rx in other.prescription_ids
            }
            for rx_id in entry.prescription_ids:
                if rx_id not in held_elsewhere:
                    rx = self.list.prescriptions.get(rx_id)
                    if rx is not None and rx.status in RX_ACTIVE:
                        # discontinuing recalls it: that is a change to the prescription
                        self._own("MedicationRequest", rx_id)
                    self._recall(rx_id, RECALL_ON_DISCONTINUE)
        return updated

    def _check_links(
        self, entry_id: str, content: dict[str, Any], already: tuple[str, ...] = ()
    ) -> None:
        """New links must name an active prescription of this patient that no other active
        entry holds. Links the entry already had stay valid even if the prescription was
        recalled since: the medicine may still be in use."""
        ids = [
            ref.get("reference", "").removeprefix("MedicationRequest/")
            for ref in content.get("basedOn") or []
        ]
        for index, rx_id in enumerate(ids):
            if rx_id in already:
                continue
            where = f"MedicationStatement.basedOn[{index}]"
            rx = self.list.prescriptions.get(rx_id)
            if rx is None:
                raise InvalidInput(
                    f"MedicationRequest/{rx_id} is not a prescription of this patient.", where
                )
            # a dentist or midwife puts on the list only what they prescribed
            self._own("MedicationRequest", rx_id)
            if rx.status not in RX_ACTIVE:
                successor = next(
                    (p.id for p in self.list.prescriptions.values() if p.prior_id == rx_id), None
                )
                hint = (
                    f" Link the head of its renewal chain, MedicationRequest/{successor}."
                    if successor
                    else ""
                )
                raise Conflict(
                    f"MedicationRequest/{rx_id} is {rx.status}, not active.{hint}",
                    where,
                    norwegian="Resepten er ikke lenger gyldig (fornyet, tilbakekalt eller "
                    "avsluttet); velg den gjeldende resepten.",
                )
            for other in self.list.entries.values():
                if (
                    other.id != entry_id
                    and other.status in IN_USE
                    and rx_id in other.prescription_ids
                ):
                    raise Conflict(
                        f"MedicationRequest/{rx_id} is already linked to the active entry "
                        f"MedicationStatement/{other.id}; a prescription is never on two "
                        "active entries.",
                        where,
                        norwegian="Resepten hører allerede til et annet legemiddel i bruk; "
                        "en resept står aldri på to legemidler i bruk.",
                    )

    # -- prescriptions -------------------------------------------------------------------

    def add_prescription(
        self,
        rx_id: str,
        content: dict[str, Any],
        fest_validity: str | None = None,
        form: str | None = None,
    ) -> Prescription:
        """Prescribe; with ``priorPrescription`` this is a renewal of a head of chain. The
        prescription is issued today with its validity (see :func:`prescriptions.issue`;
        ``fest_validity`` is the drug's FEST prescription validity, ``None`` for none;
        ``form`` its FEST form, which the quantity's unit must fit)."""
        if content.get("status") != "active":
            raise InvalidInput(
                "A new prescription must have status 'active'.", "MedicationRequest.status"
            )
        if content.get("intent") != "order":
            raise InvalidInput(
                "A prescription (e-resept) has intent 'order'.", "MedicationRequest.intent"
            )
        if rx_id in self.list.prescriptions:
            raise Conflict(f"MedicationRequest/{rx_id} already exists.", "MedicationRequest.id")
        content = issue(content, local_day(self.now), fest_validity, form)
        rx = Prescription(rx_id, 1, content, self.now, self.author, self.now)
        activity = "prescribe"
        self._made.add(("MedicationRequest", rx_id))
        if rx.prior_id is not None:
            activity = "renew"
            self._renew(rx.prior_id, rx_id)
        self.list.prescriptions[rx_id] = rx
        self._touch("MedicationRequest", rx_id, 1, "create", activity)
        return rx

    def _renew(self, prior_id: str, new_id: str) -> None:
        where = "MedicationRequest.priorPrescription"
        prior = self.list.prescriptions.get(prior_id)
        if prior is None:
            raise InvalidInput(
                f"MedicationRequest/{prior_id} is not a prescription of this patient.", where
            )
        self._own("MedicationRequest", prior_id)
        successor = next(
            (p.id for p in self.list.prescriptions.values() if p.prior_id == prior_id), None
        )
        if successor is not None:
            raise Conflict(
                f"MedicationRequest/{prior_id} was already renewed by "
                f"MedicationRequest/{successor}; "
                "renew the head of the chain.",
                where,
                norwegian="Resepten er allerede fornyet; forny den nyeste resepten i kjeden.",
            )
        if prior.status not in RX_ACTIVE:
            raise Conflict(
                f"MedicationRequest/{prior_id} is {prior.status} and cannot be renewed.",
                where,
                norwegian="Resepten er ikke gyldig lenger (tilbakekalt eller avsluttet) og "
                "kan ikke fornyes; skriv en ny resept.",
            )
        content = copy.deepcopy(prior.content)
        content["status"] = "completed"
        self._put_prescription(prior, content, "renew")
        # Entries point at the head of the chain, so the renewal moves their link along.
        for entry in list(self.list.entries.values()):
            if prior_id in entry.prescription_ids and entry.status in IN_USE:
                self._own("MedicationStatement", entry.id)
                moved = copy.deepcopy(entry.content)
                for ref in moved["basedOn"]:
                    if ref.get("reference") == f"MedicationRequest/{prior_id}":
                        ref["reference"] = f"MedicationRequest/{new_id}"
                version = self._next_version("MedicationStatement", entry.id, entry.version)
                new_entry = replace(
                    entry,
                    version=version,
                    content=moved,
                    last_changed=self.now,
                    changed_by=self.author,
                )
                self.list.entries[entry.id] = new_entry
                self._touch("MedicationStatement", entry.id, new_entry.version, "update", "renew")

    def update_prescription(
        self, rx_id: str, content: dict[str, Any], if_match: int | None
    ) -> Prescription:
        """Recall (status ``stopped`` with a reason); a prescription's content never changes."""
        rx = self.list.prescriptions.get(rx_id)
        if rx is None:
            raise NotFound(
                f"MedicationRequest/{rx_id} is not a prescription of this patient.",
                "MedicationRequest.id",
            )
        self._own("MedicationRequest", rx_id)
        check_version(
            "MedicationRequest",
            rx_id,
            self._held_version("MedicationRequest", rx_id, rx.version),
            rx.changed_by,
            rx.last_changed,
            if_match,
        )
        content = with_issue_of(rx.content, content)
        if content == rx.content:
            return rx
        rest_old = {k: v for k, v in rx.content.items() if k not in ("status", "statusReason")}
        rest_new = {k: v for k, v in content.items() if k not in ("status", "statusReason")}
        if rest_old != rest_new or content.get("status") != "stopped":
            raise InvalidInput(
                "A prescription cannot be edited: recall it (status 'stopped' with a statusReason) "
                "and prescribe anew, or renew it with a new MedicationRequest whose "
                "priorPrescription points at it.",
                "MedicationRequest",
            )
        if rx.status not in RX_ACTIVE:
            raise Conflict(
                f"MedicationRequest/{rx_id} is {rx.status} and cannot be recalled.",
                "MedicationRequest.status",
                norwegian="Resepten er allerede tilbakekalt, fornyet eller avsluttet, så den "
                "kan ikke tilbakekalles.",
            )
        reason = reason_text(content)
        if not reason:
            raise InvalidInput(
                "A recall needs a reason in statusReason.", "MedicationRequest.statusReason"
            )
        self._reasons.append(reason)
        return self._put_prescription(rx, content, "recall")

    def _recall(self, rx_id: str, reason: str) -> None:
        rx = self.list.prescriptions.get(rx_id)
        if rx is None or rx.status not in RX_ACTIVE:
            return
        content = copy.deepcopy(rx.content)
        content["status"] = "stopped"
        content["statusReason"] = {"text": reason}
        self._put_prescription(rx, content, "recall")

    def _put_prescription(
        self, rx: Prescription, content: dict[str, Any], activity: str
    ) -> Prescription:
        version = self._next_version("MedicationRequest", rx.id, rx.version)
        updated = Prescription(rx.id, version, content, self.now, self.author, rx.recorded)
        self.list.prescriptions[rx.id] = updated
        self._touch("MedicationRequest", rx.id, updated.version, "update", activity)
        return updated

    # -- bringing in a list another system kept -------------------------------------------

    def import_prescription(self, rx_id: str, content: dict[str, Any]) -> Prescription:
        """Bring in a prescription as another system recorded it, whatever its status
        (``pll import sfm``). Only while the list is being created: once PLL keeps a list,
        every change follows the rules above."""
        self._require_new()
        if content.get("status") not in RX_ACTIVE | {"stopped", "completed"}:
            raise InvalidInput(
                f"Unknown prescription status {content.get('status')!r}.",
                "MedicationRequest.status",
            )
        if rx_id in self.list.prescriptions:
            raise Conflict(f"MedicationRequest/{rx_id} appears twice.", "MedicationRequest.id")
        rx = Prescription(rx_id, 1, content, self.now, self.author, self.now)
        if rx.prior_id is not None and rx.prior_id not in self.list.prescriptions:
            raise InvalidInput(
                f"MedicationRequest/{rx_id} renews MedicationRequest/{rx.prior_id}, "
                "which is not part of what is brought in.",
                "MedicationRequest.priorPrescription",
            )
        self.list.prescriptions[rx_id] = rx
        self._touch("MedicationRequest", rx_id, 1, "create", "import")
        return rx

    def import_entry(
        self, entry_id: str, content: dict[str, Any], ended_at: datetime | None
    ) -> Entry:
        """Bring in an entry as another system recorded it: in use, or ended at ``ended_at``
        (so the 90 days count from when it really ended, rule 3)."""
        self._require_new()
        status = content.get("status")
        if status not in IN_USE | ENDED:
            raise InvalidInput(
                f"An entry brought in is in use or ended, not {status!r}.",
                "MedicationStatement.status",
            )
        if entry_id in self.list.entries:
            raise Conflict(
                f"MedicationStatement/{entry_id} appears twice.", "MedicationStatement.id"
            )
        ended = status in ENDED
        if ended and ended_at is None:
            raise InvalidInput(
                f"MedicationStatement/{entry_id} is {status}: say when it ended.",
                "MedicationStatement",
            )
        ids = refs_to(content)
        for rx_id in ids:
            if rx_id not in self.list.prescriptions:
                raise InvalidInput(
                    f"MedicationRequest/{rx_id} is not part of what is brought in.",
                    "MedicationStatement.basedOn",
                )
            if not ended and any(
                rx_id in other.prescription_ids
                for other in self.list.entries.values()
                if other.status in IN_USE
            ):
                raise Conflict(
                    f"MedicationRequest/{rx_id} is on two entries in use; a prescription is "
                    "never on two active entries.",
                    "MedicationStatement.basedOn",
                )
        entry = Entry(entry_id, 1, content, self.now, self.author, ended_at if ended else None)
        self.list.entries[entry_id] = entry
        self._touch("MedicationStatement", entry_id, 1, "create", "import")
        return entry

    def _require_new(self) -> None:
        if self.list.version != 0:
            raise Conflict(
                "This patient already has a PLL; only a new list can be brought in from "
                "another system. Change the existing list through the API.",
                "List",
            )

    # -- the list as a whole -------------------------------------------------------------

    def confirm(self, if_match: int | None) -> None:
        """Confirm the list as reconciled (*samstemt*): only the version the doctor saw."""
        require_doctor(self.author, self.list.id, "confirm the list", "bekrefter listen")
        check_version(
            "List", self.list.id, self.list.version, self.list.baton, self.list.updated, if_match
        )
        self.list.confirmation = Confirmation(self.author, self.now, self.list.version + 1)
        self._list_touch("confirm")

    def pause(self, reason: str | None) -> None:
        """Pause the whole PLL (for example at a hospital admission)."""
        require_doctor(self.author, self.list.id, "pause the list", "pauser listen")
        if self.list.pause is not None:
            raise Conflict(
                f"The PLL is already paused (by {self.list.pause.by.label()} at "
                f"{self.list.pause.at.isoformat()}).",
                "List",
                norwegian=f"Legemiddellisten er allerede pauset av {self.list.pause.by.label()}.",
            )
        if not reason:
            raise InvalidInput(
                "Pausing the PLL needs a reason (for example 'innlagt på sykehus').",
                "reason",
                norwegian="Skriv hvorfor listen pauses (for eksempel «innlagt på sykehus»).",
            )
        self.list.pause = Pause(self.author, self.now, reason)
        self._reasons.append(reason)
        self._list_touch("pause-list")

    def resume(self, if_match: int | None, *, confirm: bool = True) -> None:
        """Resume a paused PLL, on the version the doctor saw. By default resuming confirms
        the list as it now stands (DESIGN: "resumed with a confirmed list"); with
        ``confirm`` false the doctor resumes it without vouching for it, and the list's
        last confirmation stays what it was (readers see when that was)."""
        require_doctor(self.author, self.list.id, "resume the list", "gjenopptar listen")
        if self.list.pause is None:
            raise Conflict(
                "The PLL is not paused.", "List", norwegian="Legemiddellisten er ikke pauset."
            )
        if confirm:
            self.confirm(if_match)
        else:
            check_version(
                "List",
                self.list.id,
                self.list.version,
                self.list.baton,
                self.list.updated,
                if_match,
            )
            self._list_touch("resume-list")
        self.list.pause = None
        self.activities[-1] = "resume-list"

    def _own(self, rtype: str, rid: str) -> None:
        require_own(self.author, self.originators, self._made, rtype, rid)

    # -- finishing -----------------------------------------------------------------------

    def _next_version(self, rtype: str, rid: str, current: int) -> int:
        # A resource written twice within one change gets one new version, not two.
        if any(t.resource_type == rtype and t.id == rid for t in self.touched):
            return current
        self._held.setdefault((rtype, rid), current)
        return current + 1

    def _held_version(self, rtype: str, rid: str, current: int) -> int:
        """The version a client can hold: as stored before this change began. A renewal
        earlier in the same change may already have moved the entry on."""
        return self._held.get((rtype, rid), current)

    def _touch(self, rtype: str, rid: str, version: int, action: str, activity: str) -> None:
        earlier = next((t for t in self.touched if t.resource_type == rtype and t.id == rid), None)
        if earlier is not None:
            self.touched.remove(earlier)
            action = earlier.action
        self.touched.append(Touched(rtype, rid, version, action))
        self.activities.append(activity)

    def _list_touch(self, activity: str) -> None:
        self._list_changed = True
        self.activities.append(activity)

    def finish(self) -> ListVersion | None:
        """Make the new list version, or ``None`` when nothing really changed."""
        if not self.touched and not self._list_changed:
            return None
        size = list_size(self.list, self.now)
        if size > MAX_LIST_ENTRIES and size > self._size:
            raise RuleRefused(
                f"Nothing was saved: the list would hold {size} medicines (entries in use, "
                "entries discontinued in the last 90 days, and prescriptions in use without "
                f"an entry); a list holds at most {MAX_LIST_ENTRIES}.",
                "List.entry",
                {"limit": str(MAX_LIST_ENTRIES), "size": str(size)},
            )
        lst = self.list
        lst.version += 1
        lst.updated = self.now
        lst.baton = self.author
        activities = list(dict.fromkeys(self.activities))
        reason = self.reason or ("; ".join(dict.fromkeys(self._reasons)) or None)
        action = "create" if lst.version == 1 else "update"
        touched = (Touched("List", lst.id, lst.version, action), *self.touched)
        return ListVersion(
            lst.version, self.now, self.author, "+".join(activities), reason, touched
        )
