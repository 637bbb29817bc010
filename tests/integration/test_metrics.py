"""``GET /metrics`` over real HTTP (issue 8): requests by route template, refusals, outbox
lag, who may scrape, and the counts of several workers added up.

The request and refusal counters live in one registry for the whole test process, which
every test server in it shares: the tests compare a scrape before with one after.
"""

from __future__ import annotations

import re
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from pll.api.app import create_app
from pll.auth.audit import AuditKey
from pll.events import outbox
from pll.events.dispatcher import Dispatcher
from pll.events.outbox import Event
from pll.services.lists import PLLService
from pll.store.db import Database
from tests.conftest import Clock, LiveServer, server_settings, serving
from tests.e2e.scenes import METFORMIN, patient_with_medicines
from tests.integration.builders import new_fnr, new_patient_with_list, ok, statement
from tests.integration.processes import pll_serve

PLL = str(Path(sys.executable).parent / "pll")
TOKEN = "metrics-token-for-tests-0123456789abcdef"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Scrape:
    families: dict[str, Any]
    samples: Samples
    text: str

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 when the series does not exist (yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [dict(key) for sample, key in self.samples if sample == name]


def parse(text: str) -> Scrape:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples: Samples = {}
    for family in families.values():
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return Scrape(families, samples, text)


def scrape(base: str, **headers: str) -> Scrape:
    r = httpx.get(f"{base}/metrics", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def requests_of(s: Scrape, method: str, route: str, status: int) -> float:
    return s.value("pll_http_requests_total", method=method, route=route, status=str(status))


def test_requests_are_counted_by_route_template_never_by_id_or_fodselsnummer(
    server: LiveServer,
) -> None:
    fnr = new_fnr()
    before = scrape(server.base)
    with server.client("gp") as gp:
        pid, list_id = new_patient_with_list(gp, fnr)
        entry = ok(
            gp.post(
                "/fhir/MedicationStatement",
                json=statement(f"Patient/{pid}", "Metformin tab 500 mg", "A10BA02"),
            ),
            201,
        )
        ok(gp.get(f"/fhir/List/{list_id}"))
        ok(gp.get(f"/fhir/List/{list_id}"))
        ok(
            gp.get(
                "/fhir/List", params={"patient.identifier": f"urn:oid:2.16.578.1.12.4.1.4.1|{fnr}"}
            )
        )
        assert gp.get(f"/fhir/Nothing/{fnr}").status_code == 404
    # the web UI: a patient's page without a login leads to the login page
    assert httpx.get(f"{server.base}/lege/pasient/{pid}").status_code == 303
    after = scrape(server.base)

    def grew(method: str, route: str, status: int) -> float:
        return requests_of(after, method, route, status) - requests_of(
            before, method, route, status
        )

    assert grew("POST", "/fhir/Patient", 201) == 1
    assert grew("POST", "/fhir/List", 201) == 1
    assert grew("POST", "/fhir/MedicationStatement", 201) == 1
    assert grew("GET", "/fhir/List/{id}", 200) == 2
    assert grew("GET", "/fhir/List", 200) == 1
    assert grew("GET", "unmatched", 404) == 1
    assert grew("GET", "/lege/pasient/{pid}", 303) == 1
    # a latency histogram beside the counter, by the same template
    assert after.families["pll_http_request_duration_seconds"].type == "histogram"
    labels = {"method": "GET", "route": "/fhir/List/{id}", "status_class": "2xx"}
    count = "pll_http_request_duration_seconds_count"
    assert after.value(count, **labels) - before.value(count, **labels) == 2
    assert after.value("pll_http_request_duration_seconds_bucket", **labels, le="+Inf") >= 2
    # no id and no fødselsnummer anywhere: not in a label, not in the text
    secrets = {fnr, pid, list_id, entry["id"]}
    for value in (v for sample in after.samples for _, v in sample[1]):
        assert not any(s in value for s in secrets), value
    assert not any(s in after.text for s in secrets)
    routes = {labels["route"] for labels in after.labels_of("pll_http_requests_total")}
    assert all(r == "unmatched" or r.startswith("/") for r in routes)


def test_a_stale_if_match_and_a_missing_one_are_counted_as_conflicts(
    server: LiveServer,
) -> None:
    scene = patient_with_medicines(server, METFORMIN)
    entry_id = scene.entries[METFORMIN[2]]
    before = scrape(server.base)
    with server.client("gp") as gp:
        current = ok(gp.get(f"/fhir/MedicationStatement/{entry_id}"))
        changed = dict(current, dosage=statement("x", "y", "z", 2)["dosage"])
        url = f"/fhir/MedicationStatement/{entry_id}"
        ok(gp.put(url, json=changed, headers={"If-Match": 'W/"1"'}))
        # the same change again on version 1: someone (here: the same doctor) moved it on
        stale = gp.put(
            url, json=dict(changed, dosage=current["dosage"]), headers={"If-Match": 'W/"1"'}
        )
        assert stale.status_code == 412
        assert gp.put(url, json=changed).status_code == 428
    after = scrape(server.base)

    def grew(kind: str) -> float:
        return after.value("pll_conflicts_total", kind=kind) - before.value(
            "pll_conflicts_total", kind=kind
        )

    assert grew("version_conflict") == 1
    assert grew("precondition_required") == 1
    assert grew("conflict") == 0
    assert grew("checks_refused") == 0
    assert (
        requests_of(after, "PUT", "/fhir/MedicationStatement/{id}", 412)
        - requests_of(before, "PUT", "/fhir/MedicationStatement/{id}", 412)
        == 1
    )


def test_a_conflict_the_web_ui_shows_on_a_page_of_its_own_is_counted_too(
    server: LiveServer,
) -> None:
    """The web UI answers a moved list with a page of its own (200), not an error page: the
    services count the refusal, not the page that shows it."""
    scene = patient_with_medicines(server, METFORMIN)
    with httpx.Client(base_url=server.base, timeout=30) as web:
        token = CSRF.search(web.get("/logg-inn").text)
        assert token
        r = web.post("/logg-inn/utvikler", data={"csrf": token.group(1), "persona": "gp"})
        assert r.status_code == 303
        token = CSRF.search(web.get("/lege").text)
        assert token
        r = web.post("/lege/apne", data={"csrf": token.group(1), "fnr": scene.fnr})
        assert r.status_code == 303
        page = r.headers["location"]
        token = CSRF.search(web.get(page).text)  # the doctor sees version 3
        assert token
        with server.client("hospital-doctor") as hospital:  # the hospital makes version 4
            entry = ok(hospital.get(f"/fhir/MedicationStatement/{scene.entries[METFORMIN[2]]}"))
            entry["dosage"] = statement("x", "y", "z", 4)["dosage"]
            ok(
                hospital.put(
                    f"/fhir/MedicationStatement/{entry['id']}",
                    json=entry,
                    headers={"If-Match": 'W/"1"'},
                )
            )
        before = scrape(server.base)
        r = web.post(f"{page}/bekreft", data={"csrf": token.group(1), "version": "3"})
        assert r.status_code == 200
        assert "Listen er endret siden du så den" in r.text
    after = scrape(server.base)
    kind = {"kind": "version_conflict"}
    assert (
        after.value("pll_conflicts_total", **kind) - before.value("pll_conflicts_total", **kind)
        == 1
    )


@dataclass
class Recorder:
    """An event consumer that takes everything it is given."""

    name: str = "metrics-test"
    start_at_end: bool = True

    def deliver(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass


def test_outbox_lag_shows_what_a_consumer_has_not_had_until_it_is_delivered(
    server: LiveServer, clock: Clock
) -> None:
    consumer = Recorder()
    with server.db.write() as conn:
        outbox.place(conn, consumer.name, clock(), start_at_end=True)
        # a consumer of a subscription that has ended (or never was) is no longer served
        outbox.place(conn, "subscription:gone", clock())
    lag = {"consumer": consumer.name}
    first = scrape(server.base)
    assert first.value("pll_outbox_up") == 1
    assert first.value("pll_outbox_lag_events", **lag) == 0
    assert first.value("pll_outbox_lag_seconds", **lag) == 0
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp)  # one event: the list is made
        ok(
            gp.post(
                "/fhir/MedicationStatement",
                json=statement(f"Patient/{pid}", "Metformin", "A10BA02"),
            ),
            201,
        )
    clock.advance(seconds=90)
    behind = scrape(server.base)
    assert behind.value("pll_outbox_lag_events", **lag) == 2
    assert behind.value("pll_outbox_lag_seconds", **lag) >= 90
    assert behind.value("pll_outbox_failed_attempts", **lag) == 0
    consumers = {labels["consumer"] for labels in behind.labels_of("pll_outbox_lag_events")}
    assert "subscription:gone" not in consumers
    assert Dispatcher(server.db, lambda: [consumer], clock).drain(consumer) == 2
    delivered = scrape(server.base)
    assert delivered.value("pll_outbox_lag_events", **lag) == 0
    assert delivered.value("pll_outbox_lag_seconds", **lag) == 0


def test_a_database_that_is_down_gives_outbox_up_0_not_a_failed_scrape(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = Database(f"postgresql://postgres@127.0.0.1:{port}/nothing")
    service = PLLService(down, AuditKey.load(tmp_path))
    app = create_app(server_settings(tmp_path, down), service)
    with serving(app) as base:
        got = scrape(base)
    assert got.value("pll_outbox_up") == 0
    assert "pll_outbox_lag_events" not in got.text
    (build,) = got.labels_of("pll_build_info")
    assert got.value("pll_build_info", **build) == 1


def test_build_info(server: LiveServer) -> None:
    from importlib.metadata import version

    got = scrape(server.base)
    (labels,) = got.labels_of("pll_build_info")
    assert labels["version"] == version("pll")
    assert got.value("pll_build_info", **labels) == 1


@pytest.fixture
def guarded_server(server: LiveServer) -> Iterator[str]:
    """The same application on the same database, with ``PLL_METRICS_TOKEN`` set."""
    settings = server_settings(server.data_dir, server.db, metrics_token=TOKEN)
    with serving(create_app(settings, server.service)) as base:
        yield base


def test_a_configured_token_is_required_and_compared_whole(guarded_server: str) -> None:
    url = f"{guarded_server}/metrics"
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "pll_" not in r.text
    scrape(guarded_server, Authorization=f"Bearer {TOKEN}")
    # with a token, the client may be anywhere (here: behind a proxy that says so)
    scrape(guarded_server, Authorization=f"Bearer {TOKEN}", **{"X-Forwarded-For": "203.0.113.9"})


def test_without_a_token_only_this_machine_may_scrape(server: LiveServer) -> None:
    scrape(server.base)  # the test talks to 127.0.0.1
    # a client elsewhere, as a local reverse proxy reports it (uvicorn trusts 127.0.0.1's
    # X-Forwarded-For): refused, and told how to get in
    r = httpx.get(f"{server.base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 403
    assert "PLL_METRICS_TOKEN" in r.text
    assert "pll_" not in r.text.replace("PLL_METRICS_TOKEN", "")


def _per_worker(folder: Path, route: str) -> dict[str, float]:
    """The count of GET ``route`` that each worker's file in ``folder`` holds."""
    out = {}
    for path in sorted(folder.glob("counter_*.db")):
        total = 0.0
        for family in MultiProcessCollector.merge([str(path)]):  # type: ignore[no-untyped-call]
            for s in family.samples:
                if s.name == "pll_http_requests_total" and s.labels.get("route") == route:
                    total += s.value
        out[path.stem.removeprefix("counter_")] = total
    return out


@pytest.mark.slow
def test_two_workers_count_into_one_scrape(tmp_path: Path) -> None:
    """``pll serve --workers 2``: each worker counts what it answered, and whichever answers
    the scrape adds up both."""
    with pll_serve(tmp_path) as served:
        base = served.base
        folder = served.metrics
        sent = 0
        # every request on a connection of its own, so that both workers take some
        while sent < 2000:
            for _ in range(50):
                assert httpx.get(f"{base}/fhir/metadata", timeout=10).status_code == 200
            sent += 50
            counts = _per_worker(folder, "/fhir/metadata")
            if len([c for c in counts.values() if c > 0]) >= 2:
                break
        assert len([c for c in counts.values() if c > 0]) == 2, counts
        # a worker counts a request as its response ends, which may be just after the client
        # has it: wait (boundedly) for the last counts to land, never for a duration
        for _ in range(100):
            if sum(counts.values()) == sent:
                break
            time.sleep(0.05)
            counts = _per_worker(folder, "/fhir/metadata")
        assert sum(counts.values()) == sent, counts
        # whichever worker answers a scrape, it reports what both answered
        for _ in range(6):
            got = scrape(base)
            assert requests_of(got, "GET", "/fhir/metadata", 200) == sent
            assert got.value("pll_outbox_up") == 1
    assert not folder.exists(), "the run's metrics folder is removed when it ends"


def test_a_refusal_told_again_in_other_words_counts_once() -> None:
    """A page may catch a refusal and raise its own explanation of it (web/multidose.py):
    the services counted the first; the page's is the same refusal."""
    from prometheus_client import REGISTRY

    from pll.api.metrics import count_refusal
    from pll.domain.errors import Conflict, VersionConflict

    def total(kind: str) -> float:
        return REGISTRY.get_sample_value("pll_conflicts_total", {"kind": kind}) or 0.0

    before = total("conflict"), total("version_conflict")
    try:
        try:
            first = Conflict("The list is paused.")
            count_refusal(first)  # the services' guard
            raise first
        except Conflict:
            raise Conflict("Listen er satt på pause.") from None
    except Conflict as told:
        count_refusal(told)  # the page
        count_refusal(told)  # and again
    count_refusal(VersionConflict("Someone else changed it."))  # another refusal
    assert (total("conflict"), total("version_conflict")) == (before[0] + 1, before[1] + 1)
