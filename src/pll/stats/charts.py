"""Server-rendered SVG charts for the rollout statistics dashboard.

The dashboard's Content-Security-Policy (``style-src 'self'; script-src 'self'``) forbids
inline styles and scripts, so a chart is plain inline SVG: colours and sizes are presentation
attributes, which a stylesheet may override through the classes (``series-N``, ``target``,
``grid``, ...); there is no ``style`` attribute, no ``<style>`` and no ``<script>``. pygal
was not usable here: even with ``js=[]`` and ``css=[]`` it writes a ``<style>`` element, a
``<script>`` config block and ``style="opacity: 0"`` attributes.

Every chart is accessible (``role="img"``, labelled by its ``<title>`` and described by a
``<desc>`` that states the data in words), scales with its container (fixed ``viewBox``,
``width="100%"``), has ids unique within the process so that several charts can share a
page, and says "Ingen data" instead of failing on empty input. All text is escaped; numbers
are written the Norwegian way (``1 500``, ``12,5 %``). Values are counts or shares, so the
value axis starts at 0 and a negative value is an error. Pure: no I/O.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Final, Literal

from markupsafe import Markup, escape

__all__ = [
    "PALETTE",
    "Series",
    "bar_chart",
    "format_number",
    "line_chart",
    "nice_ticks",
    "stacked_bar",
]

#: No-break space: groups digits and joins a number to its unit without a line break there
#: (the group separator of CLDR's ``nb`` locale).
NBSP: Final = "\u00a0"
#: What a missing or suppressed value is shown as.
NO_VALUE: Final = "–"
_MINUS: Final = "\u2212"
_SVG_NS: Final = "http://www.w3.org/2000/svg"


@dataclass(frozen=True)
class Series:
    """One named row of values, one value per label or category.

    ``None`` is no value (suppressed for small numbers, or missing): drawn as a gap, never as 0.
    """

    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class _Colour:
    fill: str
    #: Text colour with at least 4.5:1 contrast on ``fill`` (labels inside stacked segments).
    ink: str


#: Okabe–Ito, the colour-blind-safe palette, without its yellow (too pale on white) and black
#: (kept for the target marker). Series ``i`` gets ``PALETTE[i % 6]``.
PALETTE: Final = (
    _Colour("#0072B2", "#ffffff"),  # blue
    _Colour("#E69F00", "#000000"),  # orange
    _Colour("#009E73", "#000000"),  # bluish green
    _Colour("#D55E00", "#000000"),  # vermillion
    _Colour("#CC79A7", "#000000"),  # reddish purple
    _Colour("#56B4E9", "#000000"),  # sky blue
)

WIDTH: Final = 720
HEIGHT: Final = 320
_PAD: Final = 12
_TITLE_SIZE: Final = 15
_FONT_SIZE: Final = 12
_SMALL_SIZE: Final = 11
#: Average glyph width as a share of the font size, a little generous for a sans-serif, so
#: that estimated text widths err on the side of not overlapping.
_GLYPH: Final = 0.6
_GRID: Final = "#d0d0d0"
_AXIS: Final = "#767676"
_LEGEND_MAX_CHARS: Final = 40
_TARGET_LABEL: Final = "Ambisjon"
_EMPTY_TEXT: Final = "Ingen data"

_ids = itertools.count(1)


# -- numbers ------------------------------------------------------------------------------


def format_number(value: float | None, *, decimals: int = 0, unit: str = "") -> str:
    """``value`` the Norwegian way: decimal comma, digits grouped by threes with a no-break
    space, a minus sign (U+2212) and the unit after a no-break space (``12,5 %``).

    ``None`` (and NaN or infinity) is "–", without the unit. A value that rounds to zero
    has no sign.
    """
    if value is None or not math.isfinite(value):
        return NO_VALUE
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, not {decimals}")
    digits = f"{abs(value):,.{decimals}f}"
    whole, _, fraction = digits.partition(".")
    text = whole.replace(",", NBSP) + ("," + fraction if fraction else "")
    if value < 0 and any(c not in "0,." for c in digits):
        text = _MINUS + text
    return f"{text}{NBSP}{unit}" if unit else text


def _auto(value: float | None, unit: str = "") -> str:
    """A data value: whole numbers without decimals, others with one decimal, or two
    significant digits below 1 (``0,0013``), without trailing zeros."""
    if value is None:
        return NO_VALUE
    if float(value).is_integer():
        return format_number(value, unit=unit)
    magnitude = abs(value)
    decimals = 1 if magnitude >= 1 else min(6, 1 - math.floor(math.log10(magnitude)))
    text = format_number(value, decimals=decimals)
    if "," in text:
        text = text.rstrip("0").rstrip(",")
    return f"{text}{NBSP}{unit}" if unit else text


def nice_ticks(peak: float, *, integer: bool = False) -> tuple[list[float], int]:
    """Value-axis ticks from 0 up to at least ``peak``, and the decimals to show them with.

    The step is the smallest of 1, 2, 2.5 and 5 × 10^n that needs at most five intervals,
    which always gives four to six ticks (``1430`` → 0, 500, 1000, 1500). A peak of 0 or less
    is taken as 1, so an all-zero chart still has an axis. With ``integer`` (counts) the step
    is at least 1 and the axis reaches at least 3, so that there are no fractional ticks.
    """
    top = Decimal(repr(peak)) if math.isfinite(peak) and peak > 0 else Decimal(1)
    if integer:
        top = max(top, Decimal(3))
    # Starting a decade below top/10 makes the first candidate need well over five intervals,
    # so the loop ends at the smallest step that fits; the factor between two neighbouring
    # steps is at most 2.5, so that step still needs at least three intervals.
    exponent = math.floor(math.log10(top)) - 1
    while True:
        for mantissa in ("1", "2", "2.5", "5"):
            step = Decimal(mantissa).scaleb(exponent)
            if integer and (step < 1 or step != step.to_integral_value()):
                continue
            intervals = int((top / step).to_integral_value(rounding=ROUND_CEILING))
            if intervals <= 5:
                decimals = max(0, -int(step.normalize().as_tuple().exponent))
                return [float(step * i) for i in range(intervals + 1)], decimals
        exponent += 1


def _whole(values: Iterable[float]) -> bool:
    return all(float(v).is_integer() for v in values)


# -- markup helpers -----------------------------------------------------------------------


def _px(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def _attrs(attrs: Mapping[str, object]) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        text = _px(value) if isinstance(value, float) else str(value)
        parts.append(f' {key}="{escape(text)}"')
    return "".join(parts)


def _el(tag: str, attrs: Mapping[str, object], *children: str) -> str:
    """An element; ``children`` are markup already escaped (use :func:`_text` for text)."""
    if not children:
        return f"<{tag}{_attrs(attrs)}/>"
    return f"<{tag}{_attrs(attrs)}>{''.join(children)}</{tag}>"


def _text(text: str) -> str:
    return str(escape(text))


def _tip(text: str) -> str:
    """A native tooltip (an SVG ``<title>`` child): hover details without JavaScript."""
    return f"<title>{_text(text)}</title>"


def _label(
    x: float,
    y: float,
    text: str,
    *,
    size: int = _SMALL_SIZE,
    anchor: str = "start",
    middle: bool = False,
    cls: str | None = None,
    fill: str | None = None,
    tip: str = "",
    extra: Mapping[str, object] | None = None,
) -> str:
    """A ``<text>``; ``middle`` centres it vertically on ``y``, ``tip`` is markup from
    :func:`_tip`."""
    attrs: dict[str, object] = {
        "class": cls,
        "x": x,
        "y": y,
        "dy": "0.35em" if middle else None,
        "font-size": size,
        "text-anchor": anchor if anchor != "start" else None,
        "fill": fill,
    }
    attrs.update(extra or {})
    return _el("text", attrs, _text(text), tip)


def _width(text: str, size: float) -> float:
    """Estimated rendered width of ``text``: the layout has no font metrics."""
    return len(text) * size * _GLYPH


def _shorten(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def _wrap(text: str, max_chars: int, max_lines: int = 2) -> list[str]:
    """``text`` in at most ``max_lines`` lines of ``max_chars``, the last shortened with "…"."""
    max_chars = max(max_chars, 2)
    lines: list[str] = []
    current = ""
    words = text.split()
    for index, word in enumerate(words):
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        if len(lines) == max_lines - 1:
            current = " ".join(words[index:])
            break
    lines.append(current)
    return [_shorten(line, max_chars) for line in lines[:max_lines]]


def _slug(title: str) -> str:
    text = title.lower().replace("æ", "ae").replace("ø", "o").replace("å", "a")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:40].strip("-") or "diagram"


def _chart_id(title: str) -> str:
    """An id prefix unique within the process, readable from the title."""
    return f"chart-{_slug(title)}-{next(_ids)}"


def _colour(index: int) -> _Colour:
    return PALETTE[index % len(PALETTE)]


def _series_class(index: int) -> str:
    return f"series series-{index}"


def _frame(
    kind: str,
    title: str,
    desc: str,
    body: Iterable[str],
    *,
    height: float = HEIGHT,
) -> Markup:
    chart_id = _chart_id(title)
    attrs = {
        "xmlns": _SVG_NS,
        "class": f"chart chart-{kind}",
        "viewBox": f"0 0 {WIDTH} {_px(height)}",
        "width": "100%",
        "role": "img",
        "aria-labelledby": f"{chart_id}-title",
        "aria-describedby": f"{chart_id}-desc",
        "font-size": _FONT_SIZE,
        "fill": "currentColor",
    }
    head = (
        _el("title", {"id": f"{chart_id}-title"}, _text(title)),
        _el("desc", {"id": f"{chart_id}-desc"}, _text(desc)),
        _label(
            _PAD,
            _PAD + _TITLE_SIZE,
            _shorten(title, int((WIDTH - 2 * _PAD) / (_TITLE_SIZE * _GLYPH))),
            size=_TITLE_SIZE,
            cls="chart-title",
            extra={"font-weight": "bold"},
        ),
    )
    return Markup(_el("svg", attrs, *head, *body))  # noqa: S704 -- every text went through escape()


def _empty(kind: str, title: str) -> Markup:
    note = _label(
        WIDTH / 2,
        HEIGHT / 2,
        _EMPTY_TEXT,
        size=_FONT_SIZE + 2,
        anchor="middle",
        cls="empty",
    )
    return _frame(kind, title, f"{_EMPTY_TEXT}.", [note])


_LEGEND_TOP: Final = _PAD + _TITLE_SIZE + 10
_SWATCH: Final = 12


def _legend(
    names: Sequence[str], shape: Literal["box", "line"], *, target: bool = False
) -> tuple[str, float]:
    """The legend, laid out left to right in rows under the title, and the y where it ends."""
    items: list[tuple[str, str, str]] = [
        (_series_class(i), _colour(i).fill, name) for i, name in enumerate(names)
    ]
    if target:
        items.append(("target", "currentColor", _TARGET_LABEL))
    out: list[str] = []
    x, y = float(_PAD), float(_LEGEND_TOP)
    for cls, colour, name in items:
        shown = _shorten(name, _LEGEND_MAX_CHARS)
        item_width = _SWATCH + 6 + _width(shown, _FONT_SIZE) + 16
        if x > _PAD and x + item_width > WIDTH - _PAD:
            x, y = float(_PAD), y + _SWATCH + 8
        mid = y + _SWATCH / 2
        stroke = {"x1": x, "y1": mid, "x2": x + _SWATCH, "y2": mid, "stroke": colour}
        if cls == "target":
            mark = _el("line", {**stroke, "stroke-width": 3})
        elif shape == "line":
            dot = {"cx": x + _SWATCH / 2, "cy": mid, "r": 3.0, "fill": colour}
            mark = _el("line", {**stroke, "stroke-width": 2}) + _el("circle", dot)
        else:
            box = {"x": x, "y": y, "width": _SWATCH, "height": _SWATCH, "fill": colour}
            mark = _el("rect", box)
        tip = _tip(name) if shown != name else ""
        text = _label(x + _SWATCH + 6, mid, shown, size=_FONT_SIZE, middle=True, tip=tip)
        out.append(_el("g", {"class": f"legend-item {cls}"}, mark, text))
        x += item_width
    return _el("g", {"class": "legend"}, *out), y + _SWATCH


def _value_axis(
    ticks: Sequence[float], labels: Sequence[str], left: float, right: float, y_of: _Scale
) -> str:
    lines = []
    for tick, label in zip(ticks, labels, strict=True):
        y = y_of(tick)
        lines.append(_el("line", {"x1": left, "y1": y, "x2": right, "y2": y}))
        lines.append(
            _label(left - 6, y, label, anchor="end", middle=True, extra={"stroke": "none"})
        )
    return _el("g", {"class": "grid", "stroke": _GRID, "stroke-width": 1}, *lines)


@dataclass(frozen=True)
class _Scale:
    """Value → y in the plot area; the axis runs from 0 at ``bottom`` to ``top_value``."""

    top: float
    bottom: float
    top_value: float

    def __call__(self, value: float) -> float:
        return self.bottom - (self.bottom - self.top) * value / self.top_value


def _check(values: Iterable[float | None], what: str) -> list[float]:
    """The finite values, refusing negative ones (the value axis starts at 0)."""
    present = [float(v) for v in values if v is not None and math.isfinite(v)]
    negative = [v for v in present if v < 0]
    if negative:
        raise ValueError(f"{what}: charts draw from 0, got {negative[0]}")
    return present


def _clean(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _check_lengths(count: int, series: Sequence[Series], what: str) -> None:
    for one in series:
        if len(one.values) != count:
            raise ValueError(f"series {one.name!r} has {len(one.values)} values for {count} {what}")


# -- line chart ---------------------------------------------------------------------------


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = ""
) -> Markup:
    """One line per series over ``labels`` (e.g. new PLLs per week and region).

    ``None`` breaks the line; every value also has a dot with a tooltip, so a value between
    two gaps still shows. The y axis has four to six ticks from 0 (:func:`nice_ticks`); the x
    labels are thinned from the last one backwards so that they do not overlap. The ``<desc>``
    gives each series' last value. Each series must have one value per label.
    """
    _check_lengths(len(labels), series, "labels")
    present = _check((v for s in series for v in s.values), title)
    if not labels or not present:
        return _empty("line", title)

    legend, legend_bottom = _legend([s.name for s in series], "line")
    ticks, decimals = nice_ticks(max(present), integer=_whole(present))
    tick_labels = [format_number(t, decimals=decimals, unit=unit) for t in ticks]
    label_width = max(_width(label, _SMALL_SIZE) for label in labels)
    left = _PAD + max(max(_width(t, _SMALL_SIZE) for t in tick_labels) + 8, label_width / 2)
    right = WIDTH - _PAD - label_width / 2
    scale = _Scale(top=legend_bottom + 14, bottom=HEIGHT - 28, top_value=ticks[-1])

    count = len(labels)
    spacing = (right - left) / (count - 1) if count > 1 else 0.0
    xs = [left + i * spacing for i in range(count)] if count > 1 else [(left + right) / 2]
    every = max(1, math.ceil((label_width + 8) / spacing)) if spacing else 1
    x_labels = [
        _label(xs[i], scale.bottom + 16, labels[i], anchor="middle")
        for i in range(count)
        if (count - 1 - i) % every == 0
    ]
    x_axis = _el(
        "line",
        {"x1": left, "y1": scale.bottom, "x2": right, "y2": scale.bottom, "stroke": _AXIS},
    )

    lines = []
    for index, one in enumerate(series):
        colour = _colour(index).fill
        path: list[str] = []
        dots: list[str] = []
        previous: float | None = None
        for i, raw in enumerate(one.values):
            value = _clean(raw)
            if value is None:
                previous = None
                continue
            x, y = xs[i], scale(value)
            path.append(f"{'L' if previous is not None else 'M'}{_px(x)} {_px(y)}")
            previous = value
            dots.append(
                _el(
                    "circle",
                    {"class": "point", "cx": x, "cy": y, "r": 3.0},
                    _tip(f"{one.name}, {labels[i]}: {_auto(value, unit)}"),
                )
            )
        line = _el("path", {"class": "line", "d": " ".join(path), "fill": "none"}) if path else ""
        lines.append(
            _el(
                "g",
                {
                    "class": _series_class(index),
                    "stroke": colour,
                    "fill": colour,
                    "stroke-width": 2,
                },
                line,
                *dots,
            )
        )

    desc = (
        f"Linjediagram med {len(series)} serier over {count} perioder, "
        f"fra {labels[0]} til {labels[-1]}. Siste verdi: "
        + "; ".join(_last_value(one, labels, unit) for one in series)
        + "."
    )
    body = [
        legend,
        _value_axis(ticks, tick_labels, left, right, scale),
        x_axis,
        _el("g", {"class": "x-labels", "text-anchor": "middle"}, *x_labels),
        *lines,
    ]
    return _frame("line", title, desc, body)


def _last_value(one: Series, labels: Sequence[str], unit: str) -> str:
    for label, raw in zip(reversed(labels), reversed(one.values), strict=True):
        value = _clean(raw)
        if value is not None:
            return f"{one.name} {_auto(value, unit)} ({label})"
    return f"{one.name} ingen verdi"


# -- grouped bar chart --------------------------------------------------------------------


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    targets: Sequence[float | None] | None = None,
    unit: str = "",
    max_value: float | None = None,
) -> Markup:
    """Vertical bars grouped by category, one bar per series (e.g. share live per actor type).

    ``targets`` (one per category, ``None`` for none) draws a short line across the group at
    that height, shown as "Ambisjon" in the legend. The axis reaches at least ``max_value``
    (100 for shares), the largest value and the largest target, rounded up to a tick. A
    ``None`` value has no bar but a "–" on the base line. Without any value the chart says
    "Ingen data", targets or not.
    """
    _check_lengths(len(categories), series, "categories")
    if targets is not None and len(targets) != len(categories):
        raise ValueError(f"{len(targets)} targets for {len(categories)} categories")
    present = _check((v for s in series for v in s.values), title)
    goals = _check(targets or (), f"{title} (targets)")
    if not categories or not present:
        return _empty("bar", title)

    has_targets = bool(goals)
    legend, legend_bottom = _legend([s.name for s in series], "box", target=has_targets)
    ticks, decimals = nice_ticks(
        max([*present, *goals, max_value or 0.0]), integer=_whole([*present, *goals])
    )
    tick_labels = [format_number(t, decimals=decimals, unit=unit) for t in ticks]
    left = _PAD + max(_width(t, _SMALL_SIZE) for t in tick_labels) + 8
    right = WIDTH - _PAD
    scale = _Scale(top=legend_bottom + 14, bottom=HEIGHT - 36, top_value=ticks[-1])

    group = (right - left) / len(categories)
    inner = group * 0.8
    bar = inner / len(series)
    starts = [left + c * group + (group - inner) / 2 for c in range(len(categories))]

    bars = []
    for index, one in enumerate(series):
        rects = []
        for c, raw in enumerate(one.values):
            value = _clean(raw)
            x = starts[c] + index * bar
            tip = _tip(f"{categories[c]} – {one.name}: {_auto(value, unit)}")
            if value is None:
                rects.append(
                    _label(
                        x + bar / 2,
                        scale.bottom - 4,
                        NO_VALUE,
                        anchor="middle",
                        cls="missing",
                        fill="currentColor",
                        tip=tip,
                    )
                )
                continue
            top = scale(value)
            rects.append(
                _el(
                    "rect",
                    {
                        "class": "bar",
                        "x": x + 1,
                        "y": top,
                        "width": max(bar - 2, 1.0),
                        "height": scale.bottom - top,
                    },
                    tip,
                )
            )
        bars.append(_el("g", {"class": _series_class(index), "fill": _colour(index).fill}, *rects))

    marks = []
    for c, raw in enumerate(targets or ()):
        goal = _clean(raw)
        if goal is None:
            continue
        y = scale(goal)
        marks.append(
            _el(
                "line",
                {
                    "class": "target",
                    "x1": starts[c] - 3,
                    "y1": y,
                    "x2": starts[c] + inner + 3,
                    "y2": y,
                },
                _tip(f"{categories[c]} – {_TARGET_LABEL}: {_auto(goal, unit)}"),
            )
        )

    max_chars = max(int(group / (_SMALL_SIZE * _GLYPH)), 2)
    names = []
    for c, category in enumerate(categories):
        lines = _wrap(category, max_chars)
        spans = [
            _el(
                "tspan",
                {"x": starts[c] + inner / 2, "dy": "0" if i == 0 else "1.15em"},
                _text(line),
            )
            for i, line in enumerate(lines)
        ]
        tip = _tip(category) if " ".join(lines) != " ".join(category.split()) else ""
        names.append(
            _el(
                "text",
                {"x": starts[c] + inner / 2, "y": scale.bottom + 15, "font-size": _SMALL_SIZE},
                *spans,
                tip,
            )
        )

    base = _el(
        "line",
        {"x1": left, "y1": scale.bottom, "x2": right, "y2": scale.bottom, "stroke": _AXIS},
    )
    body = [
        legend,
        _value_axis(ticks, tick_labels, left, right, scale),
        *bars,
        base,
        _el("g", {"class": "targets", "stroke": "currentColor", "stroke-width": 3}, *marks)
        if marks
        else "",
        _el("g", {"class": "x-labels", "text-anchor": "middle"}, *names),
    ]
    return _frame("bar", title, _bar_desc(categories, series, targets, unit), body)


def _bar_desc(
    categories: Sequence[str],
    series: Sequence[Series],
    targets: Sequence[float | None] | None,
    unit: str,
) -> str:
    parts = []
    for c, category in enumerate(categories):
        values = ", ".join(f"{one.name} {_auto(_clean(one.values[c]), unit)}" for one in series)
        goal = _clean(targets[c]) if targets is not None else None
        if goal is not None:
            values += f" ({_TARGET_LABEL.lower()} {_auto(goal, unit)})"
        parts.append(f"{category}: {values}")
    return f"Stolpediagram med {len(categories)} kategorier. " + "; ".join(parts) + "."


# -- 100 % stacked bars -------------------------------------------------------------------


_ROW_MIN: Final = 24.0


def stacked_bar(
    title: str, categories: Sequence[str], parts: Sequence[Series], *, unit: str = ""
) -> Markup:
    """One horizontal 100 % bar per category, split into ``parts`` (e.g. confirmation age).

    The shares are computed per category from the values; a ``None`` part is unknown and left
    out of that category's total. A category whose total is 0 says "Ingen data" in its row.
    Segments wide enough show their share; every segment's tooltip gives the count (with
    ``unit``) and the share. The chart grows taller rather than squeeze rows under 24 px.
    """
    _check_lengths(len(categories), parts, "categories")
    _check((v for p in parts for v in p.values), title)
    totals = [
        sum(v for p in parts if (v := _clean(p.values[c])) is not None)
        for c in range(len(categories))
    ]
    if not categories or not any(totals):
        return _empty("stacked", title)

    legend, legend_bottom = _legend([p.name for p in parts], "box")
    max_chars = 28
    row_labels = [_shorten(c, max_chars) for c in categories]
    left = _PAD + max(_width(label, _FONT_SIZE) for label in row_labels) + 10
    right = WIDTH - _PAD - 8
    top = legend_bottom + 12
    row = max((HEIGHT - 26 - top) / len(categories), _ROW_MIN)
    bottom = top + row * len(categories)
    height = max(float(HEIGHT), bottom + 26)
    thickness = row * 0.68

    segments: list[list[str]] = [[] for _ in parts]
    rows = []
    for c, category in enumerate(categories):
        y = top + c * row + (row - thickness) / 2
        mid = y + thickness / 2
        tip = _tip(category) if row_labels[c] != category else ""
        rows.append(
            _el(
                "text",
                {"x": left - 8, "y": mid, "dy": "0.35em", "text-anchor": "end"},
                _text(row_labels[c]),
                tip,
            )
        )
        total = totals[c]
        if not total:
            rows.append(_label(left + 4, mid, _EMPTY_TEXT, cls="empty", middle=True))
            continue
        x = left
        for index, part in enumerate(parts):
            value = _clean(part.values[c])
            if not value:
                continue
            share = 100 * value / total
            width = (right - left) * value / total
            label = format_number(share, unit="%")
            inside = ""
            if _width(label, _SMALL_SIZE) + 6 <= width:
                inside = _label(
                    x + width / 2,
                    mid,
                    label,
                    anchor="middle",
                    fill=_colour(index).ink,
                    middle=True,
                )
            segments[index].append(
                _el(
                    "rect",
                    {"class": "segment", "x": x, "y": y, "width": width, "height": thickness},
                    _tip(
                        f"{category} – {part.name}: {_auto(value, unit)} "
                        f"({format_number(share, decimals=1, unit='%')})"
                    ),
                )
                + inside
            )
            x += width

    scale_marks = []
    for percent in (0, 25, 50, 75, 100):
        x = left + (right - left) * percent / 100
        scale_marks.append(_el("line", {"x1": x, "y1": bottom, "x2": x, "y2": bottom + 4}))
        scale_marks.append(
            _label(
                x,
                bottom + 16,
                format_number(percent, unit="%"),
                anchor="middle",
                extra={"stroke": "none"},
            )
        )
    body = [
        legend,
        *[
            _el("g", {"class": _series_class(i), "fill": _colour(i).fill}, *segments[i])
            for i in range(len(parts))
        ],
        _el("g", {"class": "row-labels"}, *rows),
        _el("g", {"class": "axis", "stroke": _AXIS}, *scale_marks),
    ]
    desc = _stacked_desc(categories, parts, totals, unit)
    return _frame("stacked", title, desc, body, height=height)


def _stacked_desc(
    categories: Sequence[str], parts: Sequence[Series], totals: Sequence[float], unit: str
) -> str:
    rows = []
    for c, category in enumerate(categories):
        total = totals[c]
        if not total:
            rows.append(f"{category}: ingen data")
            continue
        shares = ", ".join(
            f"{p.name} {format_number(100 * v / total, unit='%')}"
            for p in parts
            if (v := _clean(p.values[c])) is not None
        )
        rows.append(f"{category} ({_auto(total, unit)} i alt): {shares}")
    return f"Stablede stolper, andeler per kategori. {'; '.join(rows)}."
