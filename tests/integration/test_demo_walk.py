"""Demo data a doctor believes (issue 16, walked as a GP on ``pll demo``): a woman's name
comes with a woman's fødselsnummer, on both databases."""

from __future__ import annotations

from pll.services.demo import MEN, WOMEN, create_demo
from tests.conftest import LiveServer
from tests.integration.builders import ok


def test_each_demo_patients_name_follows_the_sex_their_number_encodes(
    server: LiveServer,
) -> None:
    numbers = create_demo(server.service, 12, seed=2026)
    seen = set()
    with server.client("gp") as api:
        for fnr in numbers:
            found = ok(api.get("/fhir/Patient", params={"identifier": fnr}))
            given = found["entry"][0]["resource"]["name"][0]["given"][0]
            man = int(fnr[8]) % 2 == 1  # the 9th digit: odd a man, even a woman
            assert given in (MEN if man else WOMEN), (fnr, given)
            seen.add(man)
    assert seen == {True, False}  # both sexes among them
