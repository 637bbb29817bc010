"""A subscription is a standing read (DESIGN §3 rule 5): a patient's block ends the blocked
worker's subscriptions at once, and before every notification the dispatcher decides again
whether the subscription's owner may still follow the patient. A refusal ends the
subscription with the reason its owner sees, is logged like any refused read (the patient
sees it), and holds up nothing. On both databases, over real HTTP."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pll.events import outbox
from pll.events.dispatcher import Dispatcher
from pll.events.run import consumers
from pll.services.access import register_proxy
from pll.services.subscriptions import OWNER_EXTENSION
from pll.store import audit_log
from pll.store.schema import audit_event, consumer, subscription
from tests.conftest import LiveServer, serving
from tests.integration.builders import block_consent, new_fnr, new_patient_with_list, ok
from tests.integration.test_events import add_entry, subscribe

BASE = "http://pll.test/fhir"
GP_HPR = "9144889"  # the "gp" persona, Kari Fastlege
PROXY_PID = "09857215521"  # the "proxy" persona


@dataclass
class Hooks:
    """Journal systems' endpoints, one per name: what each was sent."""

    base: str = ""
    got: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def url(self, name: str) -> str:
        return f"{self.base}/hook/{name}"

    def versions(self, name: str) -> list[str]:
        return [b["entry"][1]["fullUrl"].rsplit("/", 1)[1] for b in self.got[name]]


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    state = Hooks()

    async def hook(request: Request) -> Response:
        state.got[request.path_params["name"]].append(orjson.loads(await request.body()))
        return Response(status_code=200)

    with serving(Starlette(routes=[Route("/hook/{name}", hook, methods=["POST"])])) as base:
        state.base = base
        yield state


def dispatcher(server: LiveServer, **kw: float) -> Dispatcher:
    return Dispatcher(
        server.db,
        consumers(server.db, BASE, None, server.service.trail),
        server.service.clock,
        **kw,
    )


def deliver_all(server: LiveServer) -> None:
    d = dispatcher(server)
    for each in d.consumers():
        d.drain(each)
        each.close()


def notify_records(server: LiveServer) -> list[Any]:
    """The audit records of notifications refused to a subscription's owner."""
    with server.db.read() as conn:
        return list(
            conn.execute(
                sa.select(audit_event)
                .where(audit_event.c.action == "notify")
                .order_by(audit_event.c.id)
            ).all()
        )


def place(server: LiveServer, sid: str) -> tuple[Any, outbox.Position]:
    """The subscription's place in the outbox, and the end of the outbox."""
    with server.db.read() as conn:
        row = conn.execute(
            sa.select(consumer).where(consumer.c.name == f"subscription:{sid}")
        ).one()
        return row, outbox.head(conn)


def block_behind_the_services(server: LiveServer, pid: str, hpr: str) -> None:
    """A block that reaches the store without the block service (as a restore or another
    writer could): nothing ends the subscriptions but the dispatcher's own decision."""
    with server.db.write() as conn:
        audit_log.insert_block(
            conn, str(uuid.uuid4()), pid, hpr, server.service.clock(), '{"resourceType":"Consent"}'
        )


def patient_log(server: LiveServer, fnr: str, pid: str) -> list[dict[str, Any]]:
    with server.client("patient", fnr) as me:
        found = ok(me.get("/fhir/AuditEvent", params={"patient": pid, "_count": 100}))
    return [e["resource"] for e in found.get("entry", [])]


def refused_in_log(events: list[dict[str, Any]], sid: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["outcome"] == "4"
        and {"what": {"reference": f"Subscription/{sid}"}} in e.get("entity", [])
    ]


def test_a_block_ends_the_blocked_workers_subscription_at_once(
    server: LiveServer, hooks: Hooks
) -> None:
    fnr = new_fnr()
    with server.client("gp") as gp, server.client("hospital-doctor") as other:
        pid, _ = new_patient_with_list(gp, fnr)
        mine = ok(subscribe(gp, pid, hooks.url("gp")), 201)["id"]
        theirs = ok(subscribe(other, pid, hooks.url("other")), 201)["id"]
        add_entry(gp, pid)
        deliver_all(server)
        assert hooks.versions("gp") == hooks.versions("other") == ["2"]

        with server.client("patient", fnr) as me:
            ok(me.post("/fhir/Consent", json=block_consent(GP_HPR, pid, "Kari Fastlege")), 201)

        # the owner sees it ended, and why, at once: no delivery needed
        shown = ok(gp.get(f"/fhir/Subscription/{mine}"))
        assert shown["status"] == "off"
        assert "decided again and refused" in shown["error"]
        assert "blocked your access" in shown["error"]
        assert OWNER_EXTENSION not in orjson.dumps(shown).decode()  # kept, never shown
        listed = ok(gp.get("/fhir/Subscription"))["entry"][0]["resource"]
        assert (listed["id"], listed["status"]) == (mine, "off")
        assert ok(other.get(f"/fhir/Subscription/{theirs}"))["status"] == "active"

        add_entry(other, pid, "Ibux tab 400 mg")
        deliver_all(server)
    assert hooks.versions("gp") == ["2"]  # the change after the block never reached the gp
    assert hooks.versions("other") == ["2", "3"]  # ... nor held up another doctor's
    assert [c.name for c in dispatcher(server).consumers()] == [f"subscription:{theirs}"]

    # logged like any refused read: the gp, on the basis they subscribed with, refused
    [record] = notify_records(server)
    assert (record.resource_type, record.resource_id, record.patient_id) == (
        "Subscription",
        mine,
        pid,
    )
    assert (record.outcome, record.basis) == ("4", "HPBEHANDLINGSRELASJON")
    assert orjson.loads(record.actor)["hpr"] == GP_HPR
    # ... and the patient sees it in their access log
    [seen] = refused_in_log(patient_log(server, fnr, pid), mine)
    assert seen["agent"][0]["who"]["identifier"]["value"] == GP_HPR
    assert seen["outcomeDesc"] == "Tilgang avvist"
    server.seal()
    assert server.service.trail.verify().ok  # the refusal carries a valid MAC


def test_delivery_decides_again_and_a_refusal_holds_up_nothing(
    server: LiveServer, hooks: Hooks
) -> None:
    """The block reaches the store behind the block service's back, so only the
    dispatcher's own decision stands between the change and the blocked doctor. A running
    dispatcher sends the blocked one nothing, logs the refusal once, moves its place on
    without retrying, and keeps serving the other subscriber."""
    fnr = new_fnr()
    with server.client("gp") as gp, server.client("hospital-doctor") as other:
        pid, _ = new_patient_with_list(gp, fnr)
        mine = ok(subscribe(gp, pid, hooks.url("gp")), 201)["id"]
        ok(subscribe(other, pid, hooks.url("other")), 201)
        block_behind_the_services(server, pid, GP_HPR)
        assert ok(gp.get(f"/fhir/Subscription/{mine}"))["status"] == "active"  # not yet
        _, start = place(server, mine)

        stop = threading.Event()
        d = dispatcher(server, poll=0.05, refresh=0.1)
        runner = threading.Thread(target=d.run, args=(stop,), daemon=True)
        runner.start()
        try:
            for name in ("Paracet tab 500 mg", "Ibux tab 400 mg", "Metformin tab 500 mg"):
                add_entry(other, pid, name)
            _wait(lambda: len(hooks.got["other"]) == 3)
            _wait(lambda: len(notify_records(server)) == 1)
        finally:
            stop.set()
            runner.join(timeout=20)
        assert hooks.versions("other") == ["2", "3", "4"]
        assert hooks.got["gp"] == []

        shown = ok(gp.get(f"/fhir/Subscription/{mine}"))
        assert shown["status"] == "off"
        assert "blocked your access" in shown["error"]
        row, _ = place(server, mine)
        assert outbox.position_of(row) > start  # moved on past the refused event ...
        assert (row.attempts, row.last_error, row.next_try_at) == (0, None, None)  # no retry

        add_entry(other, pid, "Sertralin tab 50 mg")
        deliver_all(server)  # ended: not even asked again
    assert hooks.got["gp"] == []
    assert len(notify_records(server)) == 1  # refused and logged once
    assert len(refused_in_log(patient_log(server, fnr, pid), mine)) == 1


def test_an_emergency_subscription_ends_with_a_block_too(server: LiveServer, hooks: Hooks) -> None:
    """A subscription is a standing read, not an emergency: a block ends one made under
    HPAKUTT, and a blocked worker cannot make one under HPAKUTT. Reading under HPAKUTT
    stays possible, and flagged."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
    with server.client("gp", basis="HPAKUTT") as gp:
        sid = ok(subscribe(gp, pid, hooks.url("gp")), 201)["id"]
        with server.client("patient", fnr) as me:
            ok(me.post("/fhir/Consent", json=block_consent(GP_HPR, pid)), 201)
        shown = ok(gp.get(f"/fhir/Subscription/{sid}"))
        assert shown["status"] == "off"
        assert "whatever the basis" in shown["error"]
        r = subscribe(gp, pid, hooks.url("gp"))
        assert r.status_code == 403
        assert "subscription" in r.json()["issue"][0]["diagnostics"]
        ok(gp.get("/fhir/List", params={"patient": pid}))  # the emergency read itself
    with server.client("hospital-doctor") as other:
        add_entry(other, pid)
    deliver_all(server)
    assert hooks.got["gp"] == []
    [record] = notify_records(server)
    assert (record.resource_id, record.outcome, record.basis) == (sid, "4", "HPAKUTT")
    # the patient sees both refusals: the ended subscription and the one not made
    refused = [e for e in patient_log(server, fnr, pid) if e["outcome"] == "4"]
    assert [e["purposeOfEvent"][0]["coding"][0]["code"] for e in refused] == ["HPAKUTT"] * 2
    assert len(refused_in_log(refused, sid)) == 1


def test_a_proxy_whose_proxy_has_ended_hears_no_more(server: LiveServer, hooks: Hooks) -> None:
    """Not only blocks: whatever the policy decides that can change after the subscription
    was made, such as a proxy (fullmakt) that has ended, is decided again at delivery."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
        register_proxy(server.db, PROXY_PID, fnr, add=True)
        with server.client("proxy") as proxy:
            sid = ok(subscribe(proxy, pid, hooks.url("proxy")), 201)["id"]
            add_entry(gp, pid)
            deliver_all(server)
            assert hooks.versions("proxy") == ["2"]
            register_proxy(server.db, PROXY_PID, fnr, add=False)
            add_entry(gp, pid, "Ibux tab 400 mg")
            deliver_all(server)
            assert hooks.versions("proxy") == ["2"]
            shown = ok(proxy.get(f"/fhir/Subscription/{sid}"))
        assert shown["status"] == "off"
        assert "proxy" in shown["error"]
    [record] = notify_records(server)
    assert (record.outcome, orjson.loads(record.actor)["pid"]) == ("4", PROXY_PID)
    assert len(refused_in_log(patient_log(server, fnr, pid), sid)) == 1


def test_a_subscription_stored_without_its_owner_is_decided_for_whoever_made_it(
    server: LiveServer, hooks: Hooks
) -> None:
    """Subscriptions stored before PLL kept the owner in them: the owner is taken from the
    audit record of the subscription's making."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
        sid = ok(subscribe(gp, pid, hooks.url("gp")), 201)["id"]
        with server.db.write() as conn:
            stored = orjson.loads(
                conn.execute(
                    sa.select(subscription.c.resource).where(subscription.c.id == sid)
                ).scalar_one()
            )
            assert any(e["url"] == OWNER_EXTENSION for e in stored["extension"])
            del stored["extension"]
            conn.execute(
                sa.update(subscription)
                .where(subscription.c.id == sid)
                .values(resource=orjson.dumps(stored).decode())
            )
        block_behind_the_services(server, pid, GP_HPR)
        with server.client("hospital-doctor") as other:
            add_entry(other, pid)
        deliver_all(server)
        assert hooks.got["gp"] == []
        assert ok(gp.get(f"/fhir/Subscription/{sid}"))["status"] == "off"
    [record] = notify_records(server)
    assert orjson.loads(record.actor)["hpr"] == GP_HPR
    assert record.basis == "HPBEHANDLINGSRELASJON"


def test_an_unblocked_worker_subscribes_again(server: LiveServer, hooks: Hooks) -> None:
    """Ending a block does not bring an ended subscription back: the worker makes a new one."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
        old = ok(subscribe(gp, pid, hooks.url("gp")), 201)["id"]
        with server.client("patient", fnr) as me:
            block = ok(me.post("/fhir/Consent", json=block_consent(GP_HPR, pid)), 201)
            ok(me.delete(f"/fhir/Consent/{block['id']}"))
        assert ok(gp.get(f"/fhir/Subscription/{old}"))["status"] == "off"
        new = ok(subscribe(gp, pid, hooks.url("gp")), 201)["id"]
        add_entry(gp, pid)
        deliver_all(server)
        assert hooks.versions("gp") == ["2"]
        assert [c.name for c in dispatcher(server).consumers()] == [f"subscription:{new}"]
        ended = ok(gp.delete(f"/fhir/Subscription/{old}"))  # ending it again changes nothing
        assert ended["status"] == "off"
        assert "blocked" in ended["error"]


def _wait(done: Any, seconds: float = 30) -> None:
    event = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if done():
            return
        event.wait(0.05)
    raise AssertionError("not done in time")
