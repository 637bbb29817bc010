"""Events reach everyone who depends on the list: FHIR rest-hook subscriptions (signed, in
order, at least once, with retries) and NATS JetStream — on both databases, over real HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.events import outbox
from pll.events.dispatcher import Dispatcher
from pll.events.jetstream import JetStream
from pll.events.readcopy import ReadCopy, copy_list, copy_place
from pll.events.readcopy_audit import CopyAudit
from pll.events.resthook import RestHook
from pll.events.run import consumers
from pll.services.subscriptions import SECRET_EXTENSION
from pll.store.db import Database
from pll.store.schema import audit_event, consumer
from tests.conftest import LiveServer, serving, snapshot
from tests.integration.builders import new_fnr, new_patient_with_list, ok, statement

SECRET = "a-subscriber-secret-of-forty-characters!"
NATS_URL = os.environ.get("PLL_TEST_NATS_URL", "nats://127.0.0.1:4222")


@dataclass
class Receiver:
    """A journal system's endpoint: records what it is sent; can fail or hold requests."""

    url: str = ""
    got: list[tuple[dict[str, Any], dict[str, str], bytes]] = field(default_factory=list)
    fail: int = 0
    hold: threading.Event | None = None

    def bundles(self) -> list[dict[str, Any]]:
        return [b for b, _, _ in self.got]

    def versions(self) -> list[str]:
        return [b["entry"][1]["fullUrl"].rsplit("/", 1)[1] for b in self.bundles()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    async def hook(request: Request) -> Response:
        body = await request.body()
        if state.hold is not None:
            await asyncio.to_thread(state.hold.wait, 30)
        if state.fail > 0:
            state.fail -= 1
            return Response(status_code=503)
        state.got.append((orjson.loads(body), dict(request.headers), body))
        return Response(status_code=200)

    with serving(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        state.url = f"{base}/hook"
        yield state


def subscribe(client: httpx.Client, pid: str, endpoint: str, **changes: Any) -> httpx.Response:
    resource: dict[str, Any] = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "journal system keeps its copy current",
        "criteria": f"List?patient={pid}",
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"},
        "extension": [{"url": SECRET_EXTENSION, "valueString": SECRET}],
    }
    for key, value in changes.items():
        if value is None:
            resource.pop(key)
        else:
            resource[key] = value
    return client.post("/fhir/Subscription", json=resource)


def add_entry(client: httpx.Client, pid: str, name: str = "Paracet tab 500 mg") -> None:
    ok(
        client.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", name, "N02BE01")),
        201,
    )


def dispatcher(server: LiveServer, clock: Any) -> Dispatcher:
    return Dispatcher(
        server.db, consumers(server.db, "http://pll.test/fhir", None, server.service.trail), clock
    )


def deliver_all(server: LiveServer, clock: Any) -> None:
    d = dispatcher(server, clock)
    for each in d.consumers():
        d.drain(each)
        each.close()


def test_a_subscription_gets_each_change_signed_and_in_order(
    server: LiveServer, clock: Any, receiver: Receiver
) -> None:
    with server.client("gp") as gp:
        pid, list_id = new_patient_with_list(gp)
        created = ok(subscribe(gp, pid, receiver.url), 201)
        assert created["status"] == "active"
        assert "extension" not in created  # the secret is never shown
        for name in ("Paracet tab 500 mg", "Ibux tab 400 mg", "Metformin tab 500 mg"):
            add_entry(gp, pid, name)
        other, _ = new_patient_with_list(gp)
        add_entry(gp, other)  # another patient's change is not this subscription's
    deliver_all(server, clock)
    assert receiver.versions() == ["2", "3", "4"]  # made before: version 1 is not sent
    for bundle, headers, body in receiver.got:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-pll-signature"] == expected
        assert headers["x-pll-event-id"] == bundle["id"]
        status = bundle["entry"][0]["resource"]
        assert status["resourceType"] == "Parameters"
        assert {"name": "type", "valueCode": "event-notification"} in status["parameter"]
        assert bundle["entry"][1]["fullUrl"].startswith(f"http://pll.test/fhir/List/{list_id}/")
    assert len({b["id"] for b in receiver.bundles()}) == 3
    deliver_all(server, clock)
    assert len(receiver.got) == 3  # delivered once the place has moved


def test_a_failing_subscriber_is_retried_with_back_off_and_shows_the_error(
    server: LiveServer, clock: Any, receiver: Receiver
) -> None:
    receiver.fail = 2
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp)
        sid = ok(subscribe(gp, pid, receiver.url), 201)["id"]
        add_entry(gp, pid)
        add_entry(gp, pid, "Ibux tab 400 mg")
        deliver_all(server, clock)
        shown = ok(gp.get(f"/fhir/Subscription/{sid}"))
        assert shown["status"] == "error"
        assert "503" in shown["error"]
        deliver_all(server, clock)  # waiting: not tried again before its time
        assert receiver.got == []
        assert receiver.fail == 1
        clock.advance(seconds=1.5)
        deliver_all(server, clock)  # second attempt fails too; the wait doubles
        assert receiver.fail == 0
        clock.advance(seconds=1.5)
        deliver_all(server, clock)
        assert receiver.got == []
        clock.advance(seconds=1)
        deliver_all(server, clock)
        assert receiver.versions() == ["2", "3"]
        assert ok(gp.get(f"/fhir/Subscription/{sid}"))["status"] == "active"


def test_a_slow_subscriber_holds_up_neither_the_writes_nor_the_others(
    server: LiveServer, clock: Any, receiver: Receiver
) -> None:
    fast = Receiver()

    async def hook(request: Request) -> Response:
        fast.got.append((orjson.loads(await request.body()), {}, b""))
        return Response(status_code=200)

    receiver.hold = threading.Event()  # the slow one answers only when released
    with (
        serving(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as fast_base,
        server.client("gp") as gp,
    ):
        pid, _ = new_patient_with_list(gp)
        ok(subscribe(gp, pid, receiver.url), 201)
        ok(subscribe(gp, pid, f"{fast_base}/hook"), 201)
        stop = threading.Event()
        d = Dispatcher(
            server.db,
            consumers(server.db, "http://pll.test/fhir", None, server.service.trail),
            clock,
            poll=0.05,
            refresh=0.1,
        )
        runner = threading.Thread(target=d.run, args=(stop,), daemon=True)
        runner.start()
        try:
            for name in ("Paracet tab 500 mg", "Ibux tab 400 mg", "Metformin tab 500 mg"):
                add_entry(gp, pid, name)  # writes go through while the slow one is stuck
            _wait(lambda: len(fast.got) == 3)
            assert receiver.got == []  # the slow one still has not answered the first
            receiver.hold.set()
            _wait(lambda: len(receiver.got) == 3)
        finally:
            receiver.hold.set()
            stop.set()
            runner.join(timeout=20)
    assert receiver.versions() == ["2", "3", "4"]
    assert fast.versions() == ["2", "3", "4"]


def _wait(done: Any, seconds: float = 30) -> None:
    event = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if done():
            return
        event.wait(0.05)
    raise AssertionError("not done in time")


def test_subscriptions_follow_the_access_rules_and_say_what_is_wrong(
    server: LiveServer, receiver: Receiver
) -> None:
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp)
        before = snapshot(server.db, audit=False)
        for changes, words in [
            ({"criteria": "List"}, "List?patient="),
            ({"criteria": "MedicationStatement?patient=x"}, "List?patient="),
            ({"channel": {"type": "email", "endpoint": "mailto:a@b.no"}}, "rest-hook"),
            ({"channel": {"type": "rest-hook", "endpoint": "ftp://x"}}, "http(s)"),
            ({"extension": [{"url": SECRET_EXTENSION, "valueString": "short"}]}, "32 characters"),
            ({"extension": None}, "secret"),
            ({"channel": {"type": "rest-hook", "endpoint": "http://[::1"}}, "http(s)"),
            ({"end": "2030-01-01T00:00:00Z"}, "DELETE"),
        ]:
            r = subscribe(gp, pid, receiver.url, **changes)
            assert r.status_code == 400, (changes, r.text)
            assert words in r.json()["issue"][0]["diagnostics"]
        assert snapshot(server.db, audit=False) == before
        sid = ok(subscribe(gp, pid, receiver.url), 201)["id"]
    with server.client("hospital-doctor") as other:
        assert other.get(f"/fhir/Subscription/{sid}").status_code == 404  # not theirs
        assert other.delete(f"/fhir/Subscription/{sid}").status_code == 404
    with server.client("gp", basis=None) as no_basis:
        assert subscribe(no_basis, pid, receiver.url).status_code == 403
    with server.client("patient", pid="13116900216") as patient:
        assert subscribe(patient, pid, receiver.url).status_code in (403, 404)
    with server.client("gp") as gp:
        mine = ok(gp.get("/fhir/Subscription"))
        assert [e["resource"]["id"] for e in mine["entry"]] == [sid]
        assert ok(gp.delete(f"/fhir/Subscription/{sid}"))["status"] == "off"
        add_entry(gp, pid)
    d = Dispatcher(
        server.db,
        consumers(server.db, "http://x/fhir", None, server.service.trail),
        server.service.clock,
    )
    assert d.consumers() == []  # ended: no longer delivered to


def test_events_reach_nats_jetstream_once_each(server: LiveServer, clock: Any) -> None:
    """Published with the event id as Nats-Msg-Id: a redelivery after a crash (the place
    set back) leaves no duplicate in the stream."""
    tag = uuid.uuid4().hex[:8]
    stream, prefix = f"PLLTEST{tag}", f"plltest.{tag}"
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp)
        add_entry(gp, pid)
    nats = JetStream(NATS_URL, stream=stream, prefix=prefix)
    d = Dispatcher(server.db, lambda: [nats], clock)
    try:
        assert d.drain(nats) == 2
        with server.db.write() as conn:  # as if the dispatcher died before saving its place
            conn.execute(consumer.update().values(position=0, position_tx=0))
        assert d.drain(nats) == 2
        messages = asyncio.run(_read_stream(stream, prefix))
    finally:
        asyncio.run(_delete_stream(stream))
        nats.close()
    assert [m["version"] for m in messages] == [1, 2]
    assert {m["patient"] for m in messages} == {f"Patient/{pid}"}


async def _read_stream(stream: str, prefix: str) -> list[dict[str, Any]]:
    import nats as nats_client

    nc = await nats_client.connect(NATS_URL)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        # a resend after the dispatcher's longest back-off is still recognised as one
        assert (info.config.duplicate_window or 0) >= 300
        sub = await js.pull_subscribe(f"{prefix}.>", durable=None, stream=stream)
        msgs = await sub.fetch(int(info.state.messages), timeout=5)
        return [orjson.loads(m.data) for m in msgs]
    finally:
        await nc.close()


async def _delete_stream(stream: str) -> None:
    import nats as nats_client

    nc = await nats_client.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(stream)
    except Exception:
        pass
    finally:
        await nc.close()


def test_rest_hook_failure_names_the_endpoint(clock: Any) -> None:
    hook = RestHook("s1", "http://127.0.0.1:9/nowhere", SECRET, None, "http://x")
    event = outbox.Event(1, "e1", "p", "l", 1, "list-changed", clock(), {})
    with pytest.raises(Exception, match=r"127\.0\.0\.1:9/nowhere could not be reached"):
        hook.deliver(event)
    hook.close()


# -- the read copy --------------------------------------------------------------------------


@pytest.fixture
def copy(server: LiveServer, clock: Any, tmp_path: Any) -> Iterator[ReadCopy]:
    copy_db = Database(f"sqlite:///{tmp_path / 'copy.sqlite3'}")
    made = ReadCopy(server.db, copy_db, clock)
    made.setup()
    yield made
    copy_db.dispose()


def _catch_up(copy: ReadCopy) -> None:
    while copy.step(limit=3):
        pass


def test_the_read_copy_follows_the_events_and_equals_the_store(
    server: LiveServer, copy: ReadCopy
) -> None:
    with server.client("gp") as gp:
        first, _ = new_patient_with_list(gp)
        second, _ = new_patient_with_list(gp)
        add_entry(gp, first)
        add_entry(gp, second, "Ibux tab 400 mg")
    assert copy.lag().behind == 4
    _catch_up(copy)
    assert copy.differences() == []
    assert copy.lag().behind == 0
    assert copy.lag().lists == 2
    with server.client("gp") as gp:
        add_entry(gp, first, "Metformin tab 500 mg")
    assert copy.differences() != []  # behind until it has the event
    _catch_up(copy)
    assert copy.differences() == []
    with copy.copy.write() as conn:  # as if it crashed before saving its place
        conn.execute(copy_place.delete())
    _catch_up(copy)  # every event again: nothing goes back
    assert copy.differences() == []
    with copy.copy.write() as conn:
        conn.execute(copy_list.delete())
    assert copy.rebuild() == 2
    assert copy.differences() == []


def test_the_read_copy_serves_reads_under_the_same_rules(
    server: LiveServer, copy: ReadCopy
) -> None:
    from pll.api.readcopy_app import create_readcopy_app
    from tests.conftest import server_settings

    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
        add_entry(gp, pid)
    _catch_up(copy)
    app = create_readcopy_app(server_settings(server.data_dir, server.db), server.service, copy)
    params = {"patient.identifier": f"urn:oid:2.16.578.1.12.4.1.4.1|{fnr}"}
    with serving(app) as base:
        headers = {"Authorization": f"Bearer {server.token('nurse')}"}
        with httpx.Client(base_url=base, headers=headers) as nurse:
            assert nurse.get("/fhir/List", params=params).status_code == 403  # no basis
            read = nurse.get(
                "/fhir/List", params=params, headers={"X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON"}
            )
    assert read.status_code == 200, read.text
    assert read.json()["resourceType"] == "Bundle"
    # the copy keeps the record, and forwards it to PLL's trail
    assert CopyAudit(copy.copy, server.db, server.service.clock).forward() == 1
    with server.db.read() as conn:
        actions = conn.execute(
            sa.select(audit_event.c.action, audit_event.c.outcome).where(
                audit_event.c.patient_id == pid, audit_event.c.action == "read-copy"
            )
        ).all()
    assert [tuple(a) for a in actions] == [("read-copy", "0")]


def test_each_lists_events_come_in_version_order_under_concurrent_writers(
    server: LiveServer, clock: Any
) -> None:
    """Writers racing for one list: consumers read its events in the order of its versions,
    and (ids in commit order) none is skipped."""
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with server.client("gp") as gp:
                for i in range(6):
                    add_entry(gp, pid, f"Legemiddel {n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions: list[int] = []
    place = outbox.START
    while True:
        with server.db.read() as conn:
            events = outbox.after(conn, place, 7)
        if not events:
            break
        versions += [e.list_version for e in events]
        place = events[-1].position
    assert versions == list(range(1, 38))


def test_the_read_copy_drops_entries_after_their_90_days(
    server: LiveServer, copy: ReadCopy, clock: Any
) -> None:
    from pll.api.readcopy_app import create_readcopy_app
    from tests.conftest import server_settings

    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
        created = ok(
            gp.post(
                "/fhir/MedicationStatement",
                json=statement(f"Patient/{pid}", "Paracet tab 500 mg", "N02BE01"),
            ),
            201,
        )
        stopped = {**created, "status": "stopped", "statusReason": [{"text": "Ferdig"}]}
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{created['id']}",
                json=stopped,
                headers={"If-Match": 'W/"1"'},
            )
        )
    _catch_up(copy)
    clock.advance(days=91)
    app = create_readcopy_app(server_settings(server.data_dir, server.db), server.service, copy)
    params = {"patient.identifier": f"urn:oid:2.16.578.1.12.4.1.4.1|{fnr}"}
    headers = {
        "Authorization": f"Bearer {server.token('gp')}",
        "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
    }
    with serving(app) as base, httpx.Client(base_url=base, headers=headers) as client:
        document = ok(client.get("/fhir/List", params=params))
    types = [e["resource"]["resourceType"] for e in document["entry"]]
    assert "MedicationStatement" not in types  # gone after 90 days, as on PLL itself
