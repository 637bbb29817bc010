"""Saving a change from a page, and the two answers of the service that get pages of their
own: decision support's findings, and a relay-baton conflict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
from starlette.responses import Response

from pll.domain.diff import element_text, medication_name
from pll.domain.errors import ChecksRefused, VersionConflict
from pll.domain.model import ENDED, REMOVED
from pll.domain.operation_rules import reason_text
from pll.services.lists import ChangeResult, Op
from pll.web.doctor.common import patient_url
from pll.web.doctor.notes import TYPED
from pll.web.edge import SEEN, Web, whole
from pll.web.views import FIELD_NAMES


def override_of(web: Web) -> tuple[str | None, frozenset[str] | None]:
    """The reason for an override, and the findings it accepts: the codes of the blocking
    findings the findings page showed, comma-separated in one field (a form's fields are
    bounded; the blocking findings of one answer are not)."""
    reason = web.field("override-reason")[:1000] or None
    codes = frozenset(c for v in web.fields("override-code") for c in v.split(",") if c)
    return reason, codes if reason else None


def save(
    web: Web,
    pid: str,
    ops: Callable[[], list[Op]],
    reason: str | None,
    done: str,
    *,
    form_page: bool = True,
    edit: str | None = None,
) -> Response:
    """Apply ``ops`` as one list change; findings and conflicts get their own pages, where
    the doctor can go on with the same form (its fields are carried along). ``form_page``:
    the form was posted to the address of the page that shows it (so "Endre" on the
    findings page opens it again with what was typed), or to ``edit`` when given (with the
    query that page needs); else it was on the list page."""
    override, accepted = override_of(web)
    planned = ops()
    try:
        result = web.service.change(
            web.access(pid, override=override, accepted=accepted), pid, planned, reason
        )
    except ChecksRefused as exc:
        saving = [op.resource for op in planned if op.resource and op.rtype == STATEMENT]
        edit = (edit or web.request.url.path) if form_page else None
        return findings_page(web, exc.issues, saving=saving, edit=edit)
    except VersionConflict as exc:
        return _conflict_page(web, pid, exc, planned)
    web.memory.pop(TYPED, None)  # saved: nothing typed is waiting for its form
    _notice_result(web, result, done)
    return web.redirect(patient_url(pid))


def _notice_result(web: Web, result: ChangeResult, done: str) -> None:
    if result.list_version is None:
        web.notice("Ingenting var endret, så listen fikk ingen ny versjon.")
        return
    web.notice(f"{done} Listen er nå versjon {result.list_version}, og du holder stafettpinnen.")
    web.notice_findings(result.findings)


def _carried(web: Web, *, drop: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    skip = {"csrf", "override-reason", "override-code", *drop}
    return [(k, v) for k, v in web.form.multi_items() if k not in skip and isinstance(v, str)]


STATEMENT = "MedicationStatement"


def findings_page(
    web: Web,
    issues: list[dict[str, Any]],
    *,
    saving: Sequence[dict[str, Any]] = (),
    edit: str | None = None,
) -> Response:
    """The change again, with what decision support found; it goes on with the same form,
    and a blocking finding needs the reason for overriding it (DESIGN §3 rule 6).

    ``saving``: the entries the change would save, named with their dose so the doctor
    sees what the findings are about. ``edit``: the page that shows the form again with
    what was typed ("Endre"; the form's own address, where it reads what this page
    remembers, :func:`~pll.web.doctor.notes.typed_for`). Sent again without the reason a
    blocking finding needs, the page says so beside the field."""
    found = [
        {
            "severity": i.get("severity"),
            "text": i.get("diagnostics", ""),
            "code": next((c.get("display") for c in i.get("details", {}).get("coding", [])), ""),
        }
        for i in issues
    ]
    blocking = [f for f in found if f["severity"] == "error"]
    errors: dict[str, str] = {}
    if blocking and web.field(SEEN) == "1" and not web.field("override-reason"):
        errors["override-reason"] = (
            "Skriv hvorfor du overstyrer de alvorlige funnene; begrunnelsen lagres med "
            "endringen og vises til neste lege."
        )
    if edit is not None:
        _remember_typed(web, urlsplit(edit).path, conflict=False)
    # 200: a question to the doctor on the way to saving, not a failed request; 400 when
    # the reason asked for is missing
    return web.render(
        "doctor/findings.html",
        400 if errors else 200,
        findings=found,
        blocking=blocking,
        saving=[
            {"drug": medication_name(r), "dose": element_text("dosage", r.get("dosage"))}
            for r in saving
        ],
        edit=edit,
        pid=web.request.path_params.get("pid"),
        action=web.request.url.path,
        carried=_carried(web, drop=(SEEN,)),
        seen=SEEN,
        errors=errors,
        values={},
    )


def _conflict_page(web: Web, pid: str, exc: VersionConflict, planned: list[Op]) -> Response:
    """Someone else changed the entry since this doctor opened it (relay baton, rule 2):
    name the drug, show side by side what they saved and what this doctor tried to save,
    and offer to reopen the form on the current version with this doctor's values filled
    in, to look at before saving (never a blind overwrite)."""
    details = exc.details
    rtype, _, rid = details.get("resource", "").partition("/")
    if rtype == "List":
        return _list_conflict_page(web, pid, rid, details)
    current = exc.resources[0] if exc.resources else {}
    tried = next((op.resource for op in planned if op.rid == rid and op.resource), {})
    seen: dict[str, Any] = {}
    if rtype and rid and details.get("yourVersion"):
        stored = web.service.resource_version(
            web.access(pid), rtype, rid, int(details["yourVersion"])
        )
        seen = orjson.loads(stored.text)
    action = web.request.url.path
    drug = medication_name(current or seen)
    ended = current.get("status") in ENDED | {REMOVED}
    represcribe = None
    if not ended:
        _remember_typed(web, action)
    elif any(k.startswith(DOSE_FIELD) for k in web.form):
        # a discontinued entry cannot be changed (rule 3): a doctor who was dosing it means
        # the drug in use again, so offer to prescribe it anew with the dose they typed
        represcribe = f"{patient_url(pid, '/ny')}?{urlencode({'q': drug[:100]})}"
        _remember_typed(web, patient_url(pid, "/ny"), only=DOSE_FIELD)
    return web.render(
        "doctor/conflict.html",
        pid=pid,
        fnr=web.fnr(pid),
        drug=drug,
        who=details.get("changedBy", ""),
        when=details.get("changedAt", ""),
        rows=conflict_rows(seen, current, tried),
        ended=ended,
        ended_status=current.get("status"),
        ended_reason=reason_text(current) if ended else None,
        reopen=None if ended else action,
        represcribe=represcribe,
    )


#: Elements that are bookkeeping, not what a clinician changed.
_BOOKKEEPING = frozenset({"meta", "id", "resourceType", "subject"})


def conflict_rows(
    seen: dict[str, Any], theirs: dict[str, Any], mine: dict[str, Any]
) -> list[dict[str, str | None]]:
    """The elements either doctor changed from the version this doctor opened: its
    Norwegian name, and the value as opened, as the other doctor saved it, and as this
    doctor tried to save it, each as a clinician reads it. A change is built on the entry
    as it is now, so what this doctor changed is what differs from the current entry."""
    rows = []
    for key in sorted((set(seen) | set(theirs) | set(mine)) - _BOOKKEEPING):
        if key not in FIELD_NAMES:
            continue
        theirs_changed = seen.get(key) != theirs.get(key)
        mine_changed = bool(mine) and mine.get(key) != theirs.get(key)
        if not theirs_changed and not mine_changed:
            continue
        rows.append(
            {
                "element": key,
                "name": FIELD_NAMES[key],
                "before": element_text(key, seen.get(key)),
                "theirs": element_text(key, theirs.get(key)),
                "mine": element_text(key, mine.get(key) if mine_changed else seen.get(key)),
                "mine_changed": "1" if mine_changed else "",
            }
        )
    return rows


#: The dosage editor's fields (its names all begin so, pll.web.dosage_editor).
DOSE_FIELD = "dose-"


def _remember_typed(web: Web, path: str, *, only: str = "", conflict: bool = True) -> None:
    """Keep what the doctor typed (the fields whose names begin with ``only``), for the
    form at ``path`` a conflict or the findings page opens
    (:func:`~pll.web.doctor.notes.typed_for`): kept with the login's page state, not in
    the page, and bounded like a form."""
    fields = [(k, v) for k, v in _carried(web, drop=("version", SEEN)) if k.startswith(only)]
    if sum(len(k) + len(v) for k, v in fields) <= MAX_TYPED:
        web.memory[TYPED] = {"path": path, "fields": dict(fields), "conflict": conflict}


#: Largest form kept for reopening after a conflict (a dose or discontinue form is small).
MAX_TYPED = 8 * 1024


def _list_conflict_page(web: Web, pid: str, list_id: str, details: dict[str, str]) -> Response:
    """The list moved on before a confirmation (or a resume, which confirms): a doctor may
    confirm only a version they have seen, so show what changed and send them back to it."""
    seen = whole(details.get("yourVersion", ""), "version")
    now = whole(details.get("currentVersion", ""), "version")
    difference = web.service.diff(web.access(pid), list_id, seen, now)
    return web.render(
        "doctor/list_conflict.html",
        pid=pid,
        fnr=web.fnr(pid),
        who=details.get("changedBy", ""),
        when=details.get("changedAt", ""),
        low=seen,
        high=now,
        difference=difference,
        field_names=FIELD_NAMES,
    )
