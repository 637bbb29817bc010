"""Reading the ``Parameters`` of a FHIR operation (https://hl7.org/fhir/R4/parameters.html):
each name known, each given once unless it may repeat, each value of the type the operation
expects — and where it is not, an error that names the parameter and its place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pll.domain.dispensing import moment
from pll.domain.errors import InvalidInput
from pll.fhir.validate import validate

_REFERENCE = re.compile(
    r"(?P<type>[A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<v>\d{1,9}))?"
)


@dataclass(frozen=True)
class Param:
    """One parameter (or part) and where it stands in the request."""

    name: str
    where: str
    data: dict[str, Any]

    def value(self, kind: str) -> Any:
        """``value[kind]``; refused when the parameter carries another type or none."""
        key = f"value{kind}"
        if key not in self.data:
            raise InvalidInput(f"Give {self.name!r} as {key}.", self.where)
        return self.data[key]

    def text(self) -> str:
        value = self.value("String")
        if not str(value).strip():
            raise InvalidInput(f"{self.name!r} is empty.", self.where)
        return str(value).strip()

    def code(self) -> str:
        return str(self.value("Code"))

    def integer(self) -> int:
        return int(self.value("Integer"))

    def instant(self, kind: str = "DateTime") -> tuple[str, datetime]:
        text = str(self.value(kind))
        found = moment(text)
        if found is None:  # pragma: no cover - the FHIR model refuses it first
            raise InvalidInput(f"{text!r} is not a date or time.", self.where)
        return text, found

    def reference(self, rtype: str, *, versioned: bool | None = False) -> tuple[str, int | None]:
        """The id (and the version, if ``versioned`` allows one) a ``valueReference`` names;
        ``versioned=True`` requires the version."""
        ref = str((self.value("Reference") or {}).get("reference") or "")
        found = _REFERENCE.fullmatch(ref)
        if found is None or found["type"] != rtype:
            shape = f"{rtype}/<id>" + ("/_history/<version>" if versioned else "")
            raise InvalidInput(f"Expected a reference to {shape}, got {ref!r}.", self.where)
        version = int(found["v"]) if found["v"] else None
        if versioned is False and version is not None:
            raise InvalidInput(f"Name the {rtype} without a version.", self.where)
        if versioned is True and version is None:
            raise InvalidInput(
                f"Name the version you saw: {rtype}/{found['id']}/_history/<version>.", self.where
            )
        return found["id"], version

    def resource(self, rtype: str) -> dict[str, Any]:
        data = self.data.get("resource")
        if not isinstance(data, dict) or data.get("resourceType") != rtype:
            raise InvalidInput(f"Give {self.name!r} as a {rtype} resource.", self.where)
        return data

    def parts(self, known: dict[str, bool]) -> Params:
        return Params(self.data.get("part") or [], known, f"{self.where}.part", self.name)


class Params:
    """The parameters (or the parts of one) by name; ``known`` says which names there are
    and whether each may repeat."""

    def __init__(self, items: list[Any], known: dict[str, bool], where: str, what: str) -> None:
        self.found: dict[str, list[Param]] = {}
        for i, data in enumerate(items):
            name = str(data.get("name", ""))
            here = f"{where}[{i}]"
            if name not in known:
                names = ", ".join(known) or "nothing"
                raise InvalidInput(
                    f"Unknown parameter {name!r}; {what} takes {names}.", f"{here}.name"
                )
            if self.found.get(name) and not known[name]:
                raise InvalidInput(f"Give {name!r} once.", here)
            self.found.setdefault(name, []).append(Param(name, here, data))

    def one(self, name: str) -> Param | None:
        found = self.found.get(name)
        return found[0] if found else None

    def required(self, name: str, where: str) -> Param:
        found = self.one(name)
        if found is None:
            raise InvalidInput(f"{name!r} is required.", where)
        return found

    def all(self, name: str) -> list[Param]:
        return self.found.get(name, [])


def parameters(data: Any, known: dict[str, bool], operation: str) -> Params:
    """A validated ``Parameters`` body of ``operation``; ``None`` (no body) has none."""
    if data is None:
        return Params([], known, "Parameters.parameter", operation)
    resource = validate(data, "Parameters")
    return Params(resource.get("parameter") or [], known, "Parameters.parameter", operation)
