"""Several ``Dosage`` elements as one text: elements with the same ``sequence`` taken in the
same period and joined with ``og``, increasing sequences as steps that follow one another
(``, deretter``) and never overlap (the conventions are in :mod:`pll.domain.dosage`; FHIR R4
``Dosage.sequence``: https://hl7.org/fhir/R4/dosage-definitions.html#Dosage.sequence)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pll.domain.dosage.element import Element, parse_element
from pll.domain.dosage.words import WHEN, join
from pll.domain.errors import InvalidInput


@dataclass
class _Cluster:
    """Fixed-time doses of one step that share interval, as-needed and maximum."""

    suffix: str
    first_index: int
    doses: dict[str, str] = field(default_factory=dict)  # when code -> dose


@dataclass
class _Step:
    bounds: str
    clusters: dict[str, _Cluster] = field(default_factory=dict)
    others: list[Element] = field(default_factory=list)


def plan_steps(dosages: Sequence[Mapping[str, Any]], expression: str) -> str | list[_Step]:
    if isinstance(dosages, str | bytes | Mapping) or not isinstance(dosages, Sequence):
        raise InvalidInput("The dosage must be a JSON array of Dosage elements.", expression)
    if not dosages:
        raise InvalidInput("The dosage array is empty: there is no dosage to write.", expression)
    elements = [parse_element(raw, i, f"{expression}[{i}]") for i, raw in enumerate(dosages)]
    if len(elements) == 1 and elements[0].free_text is not None:
        return elements[0].free_text
    for element in elements:
        where = f"{expression}[{element.index}]"
        if element.free_text is not None:
            raise InvalidInput(
                "A dosage element given only as text must be the only element; describe the "
                "whole dosage in that text, or give this element timing and dose.",
                where,
            )
        if len(elements) > 1 and element.sequence is None:
            raise InvalidInput(
                "With more than one dosage element, each needs a sequence: the same number "
                "for doses taken in the same period, increasing numbers for steps that follow "
                "one another.",
                f"{where}.sequence",
            )
    return _steps(elements, expression)


def _steps(elements: list[Element], expression: str) -> list[_Step]:
    by_sequence: dict[int, list[Element]] = {}
    for element in elements:
        by_sequence.setdefault(element.sequence or 0, []).append(element)
    steps: list[_Step] = []
    ordered = sorted(by_sequence.items())
    for position, (sequence, members) in enumerate(ordered):
        step = _Step(bounds=members[0].bounds)
        for element in members:
            where = f"{expression}[{element.index}]"
            if element.bounds != step.bounds:
                raise InvalidInput(
                    f"Dosage elements with the same sequence ({sequence}) are taken in the "
                    "same period and must have the same timing.repeat.boundsDuration.",
                    f"{where}.timing.repeat.boundsDuration",
                )
            _add_to_step(step, element, sequence, where)
        if not step.bounds and position < len(ordered) - 1:
            raise InvalidInput(
                f"The dosage with sequence {sequence} is followed by sequence "
                f"{ordered[position + 1][0]} but has no timing.repeat.boundsDuration, so it "
                "never ends; say how long it lasts.",
                f"{expression}[{members[0].index}].timing.repeat.boundsDuration",
            )
        steps.append(step)
    return steps


def _add_to_step(step: _Step, element: Element, sequence: int, where: str) -> None:
    if not element.times:
        step.others.append(element)
        return
    cluster = step.clusters.setdefault(
        element.suffix, _Cluster(suffix=element.suffix, first_index=element.index)
    )
    for code in element.times:
        if code in cluster.doses:
            raise InvalidInput(
                f"The time of day {code} ({WHEN[code][1]}) is given in more than one dosage "
                f"element with sequence {sequence}; give each time once, with its dose.",
                f"{where}.timing.repeat.when",
            )
        cluster.doses[code] = element.dose


def render_step(step: _Step) -> str:
    items: list[tuple[tuple[int, int, int], str]] = []
    for cluster in step.clusters.values():
        codes = sorted(cluster.doses, key=lambda code: WHEN[code][0])
        doses = {cluster.doses[code] for code in codes}
        if len(doses) == 1:
            text = f"{doses.pop()} {join(WHEN[code][1] for code in codes)}"
        else:
            text = join(f"{cluster.doses[code]} {WHEN[code][1]}" for code in codes)
        items.append(((0, WHEN[codes[0]][0], cluster.first_index), text + cluster.suffix))
    for element in step.others:
        items.append(((1, 0, element.index), f"{element.dose}{element.suffix}"))
    return join(text for _, text in sorted(items)) + step.bounds
