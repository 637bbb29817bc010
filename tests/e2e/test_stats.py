"""The statistics dashboard in a real browser (issue 8): anyone opens ``/statistikk`` without
logging in and sees the charts drawn from the page's own markup and stylesheet, with nothing
fetched from elsewhere and nothing the Content-Security-Policy blocks (the fixture fails the
test on any console error, a CSP violation included)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.conftest import Screen
from tests.integration.test_web_stats import counted


def test_the_rollout_team_sees_the_dashboard_without_a_login(
    server: LiveServer, screens: Callable[[str], Screen]
) -> None:
    counted(server, bergen=6, tromso=1)
    outside: list[str] = []
    team: Screen = screens("rollout")
    team.page.on(
        "request",
        lambda request: (
            None if request.url.startswith(server.base) else outside.append(request.url)
        ),
    )
    team.go("/statistikk")

    page = team.page
    assert page.evaluate("document.documentElement.lang") == "nb"
    expect(page.get_by_role("heading", level=1)).to_have_text("Statistikk for innføringen av PLL")
    charts = page.locator("svg.chart[role=img]")
    expect(charts).to_have_count(6)
    for index in range(6):
        chart = charts.nth(index)
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] >= 500, box  # readable, not squeezed
        assert box["height"] >= 200, box
    # the line chart draws Vest's six new lists this week as a point
    assert page.locator("svg.chart-line circle.point").count() >= 1
    # the four regions' bars against the ambition, with the GP share drawn in Vest
    expect(page.get_by_role("img", name="Vest: andel virksomheter i gang")).to_be_visible()
    vest_chart = page.get_by_role("img", name="Vest: andel virksomheter i gang")
    assert vest_chart.locator("rect.bar").count() >= 1
    # the ambition's marks (flat lines, so no box of their own to be "visible" by)
    assert vest_chart.locator("line.target").count() >= 1

    # the tables say the same in words; the stylesheet colours the status tags
    vest = page.locator("#utrulling-vest tr").first
    expect(vest).to_contain_text("Fastlege")
    expect(vest).to_contain_text("1 av 6")
    tag = vest.locator(".tag")
    colour = tag.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour
    key = page.locator("table.key-figures")
    expect(key).to_contain_text("Pasienter med PLL")
    expect(key.locator("tr.patient-count").first).to_contain_text("<5")
    expect(page.get_by_role("link", name="CSV").first).to_have_attribute(
        "href", "/stats/periods?grain=week&by=region&format=csv"
    )
    assert outside == [], outside  # a closed network: nothing from elsewhere
    team.shot("statistikk")
