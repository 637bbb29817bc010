"""Search, history and operation results as FHIR JSON.

Stored resources arrive as JSON *text* and are spliced into the Bundle text unparsed, so a
search or history page costs no JSON decoding of what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import orjson

from pll.domain.diff import FieldChange, ListDifference
from pll.fhir.resources import instant


class Version(Protocol):
    """A stored version of a resource, as JSON text."""

    @property
    def text(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def updated(self) -> datetime: ...


def _links(self_url: str, next_url: str | None) -> list[dict[str, str]]:
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return links


def searchset(
    base: str, resources: Sequence[str], total: int, self_url: str, next_url: str | None, rtype: str
) -> bytes:
    """A searchset Bundle around stored resource texts, each ``{"resourceType":..,"id":..}``."""
    head = orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": _links(self_url, next_url),
        }
    )
    parts = []
    for text in resources:
        rid = orjson.loads(text)["id"] if rtype == "*" else _id_of(text)
        kind = rtype if rtype != "*" else orjson.loads(text)["resourceType"]
        parts.append(
            b'{"fullUrl":'
            + orjson.dumps(f"{base}/{kind}/{rid}")
            + b',"resource":'
            + text.encode()
            + b',"search":{"mode":"match"}}'
        )
    return head[:-1] + b',"entry":[' + b",".join(parts) + b"]}"


def _id_of(text: str) -> str:
    # Stored resources start with resourceType then id (see fhir.resources.with_meta).
    data: dict[str, Any] = orjson.loads(text)
    return str(data["id"])


def history(
    base: str,
    rtype: str,
    rid: str,
    items: Sequence[Version],
    total: int,
    self_url: str,
    next_url: str | None,
) -> bytes:
    """A history Bundle (https://hl7.org/fhir/R4/http.html#history), newest first."""
    head = orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "history",
            "total": total,
            "link": _links(self_url, next_url),
        }
    )
    parts = []
    for item in items:
        method, status = ("POST", "201 Created") if item.version == 1 else ("PUT", "200 OK")
        url = rtype if method == "POST" else f"{rtype}/{rid}"
        meta = {
            "request": {"method": method, "url": url},
            "response": {
                "status": status,
                "etag": f'W/"{item.version}"',
                "lastModified": instant(item.updated),
            },
        }
        parts.append(
            b'{"fullUrl":'
            + orjson.dumps(f"{base}/{rtype}/{rid}")
            + b',"resource":'
            + item.text.encode()
            + b","
            + orjson.dumps(meta)[1:]
        )
    return head[:-1] + b',"entry":[' + b",".join(parts) + b"]}"


def search_bundle(
    base: str,
    resources: Sequence[dict[str, Any]],
    total: int | None,
    self_url: str,
    next_url: str | None,
    outcome: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A searchset Bundle. ``total`` is ``None`` when the search did not count every match
    (``Bundle.total`` is then left out, as R4 allows); ``outcome`` is an OperationOutcome
    about the search itself, in an entry of its own (``search.mode`` ``outcome``)."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = _links(self_url, next_url)
    bundle["entry"] = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ]
    if outcome is not None:
        bundle["entry"].append({"resource": outcome, "search": {"mode": "outcome"}})
    return bundle


def _field_parts(change: FieldChange) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"name": "name", "valueString": change.element}]
    if change.before is not None:
        parts.append({"name": "before", "valueString": change.before})
    if change.after is not None:
        parts.append({"name": "after", "valueString": change.after})
    return parts


def diff_parameters(diff: ListDifference) -> dict[str, Any]:
    """``List/$diff`` result: one ``entry`` part per changed entry, one ``prescription`` part
    per changed prescription, one ``list`` part per change to the list itself."""
    params: list[dict[str, Any]] = [
        {"name": "from", "valueInteger": diff.from_version},
        {"name": "to", "valueInteger": diff.to_version},
    ]
    changed = [("entry", "MedicationStatement", d) for d in diff.entries]
    changed += [("prescription", "MedicationRequest", d) for d in diff.prescriptions]
    for name, rtype, d in changed:
        parts: list[dict[str, Any]] = [
            {"name": name, "valueReference": {"reference": f"{rtype}/{d.entry_id}"}},
            {"name": "change", "valueCode": d.kind},
            {"name": "medication", "valueString": d.medication},
        ]
        if d.before_version is not None:
            parts.append({"name": "fromVersion", "valueInteger": d.before_version})
        if d.after_version is not None:
            parts.append({"name": "toVersion", "valueInteger": d.after_version})
        parts += [{"name": "element", "part": _field_parts(f)} for f in d.fields]
        params.append({"name": name, "part": parts})
    for change in diff.list_changes:
        params.append({"name": "list", "part": _field_parts(change)})
    return {"resourceType": "Parameters", "parameter": params}
