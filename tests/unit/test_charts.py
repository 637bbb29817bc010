"""The dashboard's SVG charts: geometry, ticks, escaping, the CSP rules, Norwegian numbers."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from itertools import pairwise

import pytest
from markupsafe import Markup, escape

from pll.stats.charts import (
    NBSP,
    PALETTE,
    Series,
    bar_chart,
    format_number,
    line_chart,
    nice_ticks,
    stacked_bar,
)

SVG = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert('x')</script> & co"


def parse(chart: Markup) -> ET.Element:
    assert isinstance(chart, Markup)
    return ET.fromstring(str(chart))


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def shown(text: ET.Element) -> str:
    """What a ``<text>`` shows: its own text and its ``<tspan>``s, not its tooltip."""
    return (text.text or "") + " ".join(t.text or "" for t in text.iter(f"{SVG}tspan"))


def texts(root: ET.Element) -> list[str]:
    return [shown(e) for e in root.iter(f"{SVG}text")]


def series_group(root: ET.Element, index: int) -> ET.Element:
    (group,) = [e for e in by_class(root, f"series-{index}") if e.tag == f"{SVG}g"][-1:]
    return group


def f(element: ET.Element, name: str) -> float:
    return float(element.get(name, "nan"))


def every_chart() -> list[Markup]:
    weeks = ["2026-U45", "2026-U46", "2026-U47"]
    return [
        line_chart("Linjer", weeks, [Series("Nord", [1, None, 3])]),
        bar_chart("Stolper", ["a", "b"], [Series("Nord", [1, None])], targets=[2, None]),
        stacked_bar("Stablet", ["a"], [Series("x", [1]), Series("y", [None])]),
        line_chart("Tom", [], []),
        bar_chart("Tom", ["a"], [Series("Nord", [None])]),
        stacked_bar("Tom", ["a"], [Series("x", [None])]),
    ]


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decimals", "unit", "expected"),
    [
        (1500, 0, "", f"1{NBSP}500"),
        (1_234_567.891, 2, "", f"1{NBSP}234{NBSP}567,89"),
        (12.5, 1, "%", f"12,5{NBSP}%"),
        (999, 0, "", "999"),
        (0, 0, "", "0"),
        (0.05, 1, "", "0,1"),
        (-1500, 0, "", f"\u22121{NBSP}500"),
        (-0.2, 0, "", "0"),
        (2.0, 0, "pasienter", f"2{NBSP}pasienter"),
        (None, 0, "%", "–"),
        (math.nan, 1, "", "–"),
        (math.inf, 0, "", "–"),
    ],
)
def test_format_number_is_norwegian(
    value: float | None, decimals: int, unit: str, expected: str
) -> None:
    assert format_number(value, decimals=decimals, unit=unit) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1500, f"1{NBSP}500"), (12.5, "12,5"), (12.04, "12"), (0.5, "0,5"), (0.0013, "0,0013")],
)
def test_tooltips_keep_small_values_readable(value: float, expected: str) -> None:
    root = parse(line_chart("T", ["u1"], [Series("Nord", [value])]))
    (tip,) = [e.text for e in root.iter(f"{SVG}title") if e.text and e.text.startswith("Nord")]
    assert tip == f"Nord, u1: {expected}"


def test_format_number_refuses_negative_decimals() -> None:
    with pytest.raises(ValueError, match="decimals"):
        format_number(1, decimals=-1)


@pytest.mark.parametrize(
    ("peak", "ticks", "decimals"),
    [
        (1430, [0, 500, 1000, 1500], 0),
        (100, [0, 20, 40, 60, 80, 100], 0),
        (3, [0, 1, 2, 3], 0),
        (7, [0, 2, 4, 6, 8], 0),
        (9, [0, 2, 4, 6, 8, 10], 0),
        (0.9, [0, 0.2, 0.4, 0.6, 0.8, 1.0], 1),
        (11, [0, 2.5, 5, 7.5, 10, 12.5], 1),
        (0, [0, 0.2, 0.4, 0.6, 0.8, 1.0], 1),
    ],
)
def test_nice_ticks(peak: float, ticks: list[float], decimals: int) -> None:
    got, got_decimals = nice_ticks(peak)
    assert got == pytest.approx(ticks)
    assert got_decimals == decimals


@pytest.mark.parametrize("peak", [0.013, 0.7, 1, 4.2, 17, 55, 99.9, 101, 2345, 98765, 3.2e7])
def test_nice_ticks_are_four_to_six_nice_steps_from_zero(peak: float) -> None:
    ticks, _ = nice_ticks(peak)
    step = ticks[1]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert 4 <= len(ticks) <= 6
    assert ticks[0] == 0
    assert ticks[-1] >= peak
    assert ticks[-2] < peak
    assert min(abs(mantissa - m) for m in (1, 2, 2.5, 5)) < 1e-9
    assert all(b - a == pytest.approx(step) for a, b in pairwise(ticks))


@pytest.mark.parametrize(
    ("peak", "ticks"),
    [
        (0, [0, 1, 2, 3]),
        (1, [0, 1, 2, 3]),
        (3, [0, 1, 2, 3]),
        (4, [0, 1, 2, 3, 4]),
        (11, [0, 5, 10, 15]),
        (1430, [0, 500, 1000, 1500]),
    ],
)
def test_nice_ticks_for_counts_are_whole(peak: float, ticks: list[float]) -> None:
    assert nice_ticks(peak, integer=True) == (ticks, 0)


def test_count_chart_has_whole_ticks_and_share_chart_may_not() -> None:
    counts = parse(line_chart("Nye", ["u1", "u2"], [Series("Nord", [1, 0])]))
    grid = by_class(counts, "grid")[0]
    assert [shown(t) for t in grid.iter(f"{SVG}text")] == ["0", "1", "2", "3"]
    shares = parse(bar_chart("Andel", ["a"], [Series("Nord", [0.5])], unit="%"))
    grid = by_class(shares, "grid")[0]
    assert [shown(t) for t in grid.iter(f"{SVG}text")][:2] == [f"0,0{NBSP}%", f"0,1{NBSP}%"]


def test_axis_labels_use_the_ticks_and_the_unit() -> None:
    root = parse(line_chart("Nye", ["u1", "u2"], [Series("Nord", [1430, 200])]))
    grid = by_class(root, "grid")[0]
    labels = ["".join(t.itertext()) for t in grid.iter(f"{SVG}text")]
    assert labels == ["0", "500", f"1{NBSP}000", f"1{NBSP}500"]
    shares = parse(bar_chart("Andel", ["a"], [Series("Nord", [42.0])], unit="%", max_value=100))
    labels = ["".join(t.itertext()) for t in by_class(shares, "grid")[0].iter(f"{SVG}text")]
    assert labels == [f"{n}{NBSP}%" for n in (0, 20, 40, 60, 80, 100)]


# -- geometry -----------------------------------------------------------------------------


def test_bar_twice_the_value_is_twice_as_tall_and_none_has_no_bar() -> None:
    root = parse(bar_chart("Andel", ["a", "b", "c"], [Series("Nord", [10, 20, None])]))
    first, second = by_class(series_group(root, 0), "bar")
    assert f(second, "height") == pytest.approx(2 * f(first, "height"))
    assert f(first, "y") + f(first, "height") == pytest.approx(f(second, "y") + f(second, "height"))
    missing = by_class(root, "missing")
    assert len(missing) == 1
    assert "–" in "".join(missing[0].itertext())
    # the gap sits in the third group, right of the two bars
    assert f(missing[0], "x") > f(second, "x") + f(second, "width")


def test_grouped_bars_one_per_series_per_category() -> None:
    regions = [Series(name, [10, 20, 30]) for name in ("Nord", "Midt-Norge", "Vest", "Sør-Øst")]
    root = parse(bar_chart("Andel", ["a", "b", "c"], regions))
    for index in range(4):
        group = series_group(root, index)
        assert group.get("fill") == PALETTE[index].fill
        assert len(by_class(group, "bar")) == 3
    # within a category, the series stand side by side in order
    xs = [f(by_class(series_group(root, i), "bar")[0], "x") for i in range(4)]
    assert xs == sorted(xs)


def test_targets_drawn_at_their_height_and_none_target_is_left_out() -> None:
    root = parse(
        bar_chart(
            "Andel i drift",
            ["Fastlege", "Sykehus", "Apotek"],
            [Series("Nord", [50, 20, 10])],
            targets=[80, None, 25],
            unit="%",
            max_value=100,
        )
    )
    bar = by_class(series_group(root, 0), "bar")[0]
    base = f(bar, "y") + f(bar, "height")
    per_unit = f(bar, "height") / 50
    marks = [m for m in by_class(root, "target") if m.tag == f"{SVG}line"]
    assert [f(m, "y1") for m in marks] == pytest.approx(
        [base - 80 * per_unit, base - 25 * per_unit]
    )
    assert all(m.get("y1") == m.get("y2") for m in marks)
    # the mark spans the group: from left of its bar to right of it
    assert f(marks[0], "x1") <= f(bar, "x")
    assert f(marks[0], "x2") >= f(bar, "x") + f(bar, "width")
    (legend,) = [g for g in by_class(root, "legend-item") if "target" in g.get("class", "")]
    assert "Ambisjon" in "".join(legend.itertext())


def test_bar_axis_reaches_max_value_and_the_highest_target() -> None:
    root = parse(bar_chart("A", ["a"], [Series("N", [10])], targets=[140], max_value=100))
    labels = ["".join(t.itertext()) for t in by_class(root, "grid")[0].iter(f"{SVG}text")]
    assert labels[-1] == "150"


def test_no_target_legend_without_targets() -> None:
    root = parse(bar_chart("A", ["a"], [Series("N", [10])], targets=[None]))
    assert not by_class(root, "target")


def test_line_none_makes_a_gap_and_values_scale_linearly() -> None:
    labels = ["u1", "u2", "u3", "u4", "u5"]
    root = parse(line_chart("Nye", labels, [Series("Nord", [0, 100, None, 200, 50])]))
    group = series_group(root, 0)
    (path,) = by_class(group, "line")
    assert path.get("d", "").count("M") == 2  # two runs: u1–u2 and u4–u5
    assert path.get("fill") == "none"
    points = by_class(group, "point")
    assert len(points) == 4
    base = f(points[0], "cy")
    heights = [base - f(p, "cy") for p in points]
    assert heights == pytest.approx([0, heights[1], 2 * heights[1], heights[1] / 2])
    xs = [f(p, "cx") for p in points]
    assert xs[2] - xs[1] == pytest.approx(2 * (xs[1] - xs[0]))  # u3 is skipped, not removed


def test_line_x_labels_are_thinned_and_keep_the_last() -> None:
    weeks = [f"2026-U{w:02d}" for w in range(1, 53)]
    root = parse(line_chart("Nye", weeks, [Series("Nord", list(range(52)))]))
    shown = by_class(root, "x-labels")[0].findall(f"{SVG}text")
    names = ["".join(t.itertext()) for t in shown]
    assert 3 < len(names) < 52
    assert names[-1] == "2026-U52"
    xs = [f(t, "x") for t in shown]
    # a label is about 8 characters at 11 px: centres further apart than that cannot overlap
    assert min(b - a for a, b in pairwise(xs)) >= 8 * 11 * 0.55


def test_short_line_chart_shows_every_label() -> None:
    root = parse(line_chart("Nye", ["u1", "u2", "u3"], [Series("Nord", [1, 2, 3])]))
    shown = by_class(root, "x-labels")[0].findall(f"{SVG}text")
    assert ["".join(t.itertext()) for t in shown] == ["u1", "u2", "u3"]


def test_stacked_shares_leave_none_out_of_the_total() -> None:
    root = parse(
        stacked_bar(
            "Bekreftelse",
            ["Fastlege"],
            [Series("0–3 mnd", [1]), Series("3–6 mnd", [None]), Series("aldri", [3])],
        )
    )
    (first,) = by_class(series_group(root, 0), "segment")
    assert not by_class(series_group(root, 1), "segment")
    (last,) = by_class(series_group(root, 2), "segment")
    assert f(last, "width") == pytest.approx(3 * f(first, "width"))
    assert f(last, "x") == pytest.approx(f(first, "x") + f(first, "width"))
    shown = texts(root)
    assert f"25{NBSP}%" in shown
    assert f"75{NBSP}%" in shown
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert f"0–3 mnd 25{NBSP}%" in (desc.text or "")
    assert f"aldri 75{NBSP}%" in (desc.text or "")


def test_stacked_rows_are_all_full_width_and_unknown_rows_say_so() -> None:
    parts = [Series("a", [1, 10, None]), Series("b", [1, 30, None])]
    root = parse(stacked_bar("S", ["x", "y", "z"], parts))
    segments = sorted(by_class(root, "segment"), key=lambda s: (f(s, "y"), f(s, "x")))
    widths = [f(s, "width") for s in segments]
    assert widths[0] + widths[1] == pytest.approx(widths[2] + widths[3])
    assert widths[3] == pytest.approx(3 * widths[2])
    assert "Ingen data" in texts(root)


def test_stacked_grows_rather_than_squeezing_rows() -> None:
    many = [f"kategori {i}" for i in range(20)]
    root = parse(stacked_bar("S", many, [Series("a", [1] * 20)]))
    height = float(root.get("viewBox", "").split()[3])
    assert height > 320
    ys = sorted(f(s, "y") for s in by_class(root, "segment"))
    assert min(b - a for a, b in pairwise(ys)) >= 24 - 1e-9


# -- markup rules -------------------------------------------------------------------------


@pytest.mark.parametrize("chart", every_chart())
def test_no_inline_style_script_or_handlers(chart: Markup) -> None:
    root = parse(chart)
    for element in root.iter():
        assert element.tag not in {f"{SVG}style", f"{SVG}script", f"{SVG}foreignObject"}
        assert "style" not in element.attrib
        assert not [name for name in element.attrib if name.lower().startswith("on")]
    assert "style=" not in str(chart)
    assert "<style" not in str(chart)
    assert "<script" not in str(chart)


@pytest.mark.parametrize("chart", every_chart())
def test_accessible_and_scalable(chart: Markup) -> None:
    root = parse(chart)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert re.fullmatch(r"0 0 720 \d+(\.\d+)?", root.get("viewBox", ""))
    ids = {e.get("id"): e for e in root.iter() if e.get("id")}
    title = ids[root.get("aria-labelledby")]
    desc = ids[root.get("aria-describedby")]
    assert title.tag == f"{SVG}title"
    assert title.text
    assert desc.tag == f"{SVG}desc"
    assert desc.text


def test_text_is_escaped_everywhere() -> None:
    charts = [
        line_chart(EVIL, [EVIL, "u2"], [Series(EVIL, [1, 2])], unit=EVIL),
        bar_chart(EVIL, [EVIL], [Series(EVIL, [1])], targets=[2], unit=EVIL),
        stacked_bar(EVIL, [EVIL], [Series(EVIL, [1])], unit=EVIL),
        line_chart(EVIL, [], []),
    ]
    for chart in charts:
        root = parse(chart)
        assert "<script>" not in str(chart)
        assert "&lt;script&gt;" in str(chart)
        assert escape(chart) == chart  # Markup: Jinja will not escape it again
        title = root.find(f"{SVG}title")
        assert title is not None
        assert title.text == EVIL  # escaped in the markup, intact as text
        assert not list(root.iter(f"{SVG}script"))


def test_long_names_are_shortened_with_the_full_name_as_tooltip() -> None:
    name = "Sykehjem og hjemmetjeneste i kommuner med interkommunalt samarbeid om legevakt"
    categories = [name, "Fastlege", "Sykehus", "Apotek", "Legevakt", "Avtalespesialist"]
    root = parse(bar_chart("A", categories, [Series(name, [1] * 6)]))
    assert name not in texts(root)
    assert any(t.endswith("…") for t in texts(root))
    tooltips = [e.text for e in root.iter(f"{SVG}title")]
    assert tooltips.count(name) >= 2  # the legend item and the category label


def test_series_colour_and_class_cycle_through_the_palette() -> None:
    series = [Series(f"s{i}", [i + 1]) for i in range(8)]
    root = parse(bar_chart("A", ["a"], series))
    assert series_group(root, 7).get("fill") == PALETTE[1].fill
    legend = by_class(root, "legend-item")
    assert [item.get("class") for item in legend] == [
        f"legend-item series series-{i}" for i in range(8)
    ]
    assert len(PALETTE) == 6
    assert len({c.fill for c in PALETTE}) == 6


def test_desc_states_the_last_value_of_each_series() -> None:
    root = parse(
        line_chart(
            "Nye PLL per uke",
            ["2026-U46", "2026-U47", "2026-U48"],
            [Series("Nord", [1200, 1500, None]), Series("Vest", [None, None, None])],
        )
    )
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert f"Nord 1{NBSP}500 (2026-U47)" in (desc.text or "")
    assert "Vest ingen verdi" in (desc.text or "")


def test_bar_desc_names_values_and_targets() -> None:
    root = parse(bar_chart("A", ["Fastlege"], [Series("Nord", [12.5])], targets=[80], unit="%"))
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert (
        desc.text
        == f"Stolpediagram med 1 kategorier. Fastlege: Nord 12,5{NBSP}% (ambisjon 80{NBSP}%)."
    )


@pytest.mark.parametrize(
    "chart",
    [
        line_chart("T", [], []),
        line_chart("T", [], [Series("Nord", [])]),
        line_chart("T", ["u1"], []),
        line_chart("T", ["u1", "u2"], [Series("Nord", [None, None])]),
        bar_chart("T", [], []),
        bar_chart("T", ["a"], [Series("Nord", [None])], targets=[50]),
        stacked_bar("T", [], []),
        stacked_bar("T", ["a"], [Series("x", [None]), Series("y", [0])]),
    ],
)
def test_empty_input_says_ingen_data(chart: Markup) -> None:
    root = parse(chart)
    assert "Ingen data" in texts(root)
    assert not by_class(root, "bar")
    assert not by_class(root, "point")
    assert not by_class(root, "segment")


def test_all_zero_is_data_not_empty() -> None:
    root = parse(line_chart("T", ["u1", "u2"], [Series("Nord", [0, 0])]))
    assert "Ingen data" not in texts(root)
    assert len(by_class(root, "point")) == 2


def test_ids_are_unique_across_charts_with_the_same_title() -> None:
    charts = [
        line_chart("Nye PLL – Sør-Øst", ["u1"], [Series("a", [1])]),
        line_chart("Nye PLL – Sør-Øst", ["u1"], [Series("a", [1])]),
        bar_chart("Nye PLL – Sør-Øst", [], []),
    ]
    page = ET.fromstring(f"<page>{''.join(str(c) for c in charts)}</page>")
    ids = [e.get("id") for e in page.iter() if e.get("id")]
    assert len(ids) == 6
    assert len(set(ids)) == len(ids)
    assert all(i and re.fullmatch(r"chart-nye-pll-sor-ost-\d+-(title|desc)", i) for i in ids)


def test_mismatched_lengths_and_negative_values_are_refused() -> None:
    with pytest.raises(ValueError, match="Nord"):
        line_chart("T", ["u1", "u2"], [Series("Nord", [1])])
    with pytest.raises(ValueError, match="targets"):
        bar_chart("T", ["a", "b"], [Series("Nord", [1, 2])], targets=[1])
    with pytest.raises(ValueError, match="from 0"):
        bar_chart("T", ["a"], [Series("Nord", [-1])])
    with pytest.raises(ValueError, match="x"):
        stacked_bar("T", ["a"], [Series("x", [1, 2])])
