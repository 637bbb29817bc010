"""NATS JetStream as a cluster (issue 21): events published with three replicas survive a
node killed with SIGKILL, and the publisher carries on.

Run as a user runs PLL: ``pll serve`` on PostgreSQL, with its ``pll worker`` publishing to a
three-node cluster of real ``nats-server`` processes (``PLL_NATS_URL`` naming all three,
``PLL_NATS_REPLICAS=3``). Writes go on while the stream's leader is killed (the others elect
a new one), and again, after that node is back, while the node the publisher is connected to
is killed (a follower: the client moves to another node). The dispatcher then sends
everything again, as after a crash before it saved its place. Every event the
outbox holds is then in the stream exactly once (by ``Nats-Msg-Id``), each patient's in the
order of their versions, and the worker that publishes was never restarted.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import pytest
import sqlalchemy as sa

from pll.auth.tokens import issue
from pll.events import outbox as outbox_events
from pll.events.jetstream import CONNECTION_NAME, STREAM
from pll.events.outbox import Position
from pll.store.db import Database
from pll.store.schema import consumer, outbox
from tests.integration.builders import DRUGS, new_patient_with_list, ok, statement
from tests.integration.nats_cluster import Cluster, Node, nats_cluster, until
from tests.integration.processes import Served, pll_serve

PATIENTS = 4
BASIS = "HPBEHANDLINGSRELASJON"


def _js(cluster: Cluster, call: Any) -> Any:
    """Run ``call(jetstream)`` on a connection to the nodes alive now."""

    async def run() -> Any:
        nc = await nats.connect(servers=cluster.live_urls, connect_timeout=2, allow_reconnect=False)
        try:
            return await call(nc.jetstream(timeout=2))
        finally:
            await nc.close()

    return asyncio.run(run())


def _step_down(cluster: Cluster) -> Any:
    """Ask the stream's leader to hand over to another node (JetStream's API; no client
    helper for it)."""

    async def run() -> Any:
        nc = await nats.connect(servers=cluster.live_urls, allow_reconnect=False)
        try:
            return await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{STREAM}", b"", timeout=5)
        finally:
            await nc.close()

    return asyncio.run(run())


def _info(cluster: Cluster) -> Any:
    async def call(js: Any) -> Any:
        return await js.stream_info(STREAM)

    return _js(cluster, call)


def _messages(cluster: Cluster) -> list[tuple[str, dict[str, Any]]]:
    """Every message in the stream, in stream order: its Nats-Msg-Id and its event."""

    async def call(js: Any) -> list[tuple[str, dict[str, Any]]]:
        info = await js.stream_info(STREAM)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(STREAM, seq)
            out.append(((msg.headers or {}).get("Nats-Msg-Id", ""), orjson.loads(msg.data)))
        return out

    result: list[tuple[str, dict[str, Any]]] = _js(cluster, call)
    return result


def _events(db: Database) -> list[tuple[str, str, int]]:
    """The outbox: each event's id, patient and list version."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(outbox.c.event_id, outbox.c.patient_id, outbox.c.list_version).order_by(
                outbox.c.id
            )
        ).all()
    return [(r.event_id, r.patient_id, r.list_version) for r in rows]


class Writer:
    """Adds entries to the patients' lists, one after another, until stopped."""

    def __init__(self, client: httpx.Client, patients: list[str]) -> None:
        self.client, self.patients = client, patients
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.written = 0
        self._turns = itertools.cycle(itertools.product(patients, DRUGS))
        self._thread: threading.Thread | None = None

    def write(self) -> None:
        pid, (name, atc) = next(self._turns)
        ok(
            self.client.post(
                "/fhir/MedicationStatement", json=statement(f"Patient/{pid}", name, atc)
            ),
            201,
        )
        self.written += 1

    def _run(self) -> None:
        try:
            while not self.stop.wait(0.02):
                self.write()
        except BaseException as exc:  # shown by the test
            self.error = exc

    def __enter__(self) -> Writer:
        self.stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)
        assert self.error is None, self.error


def _delivered_all(db: Database) -> bool:
    """The publisher's place is past the last event of the outbox."""
    with db.read() as conn:
        place = conn.execute(
            sa.select(consumer.c.position_tx, consumer.c.position).where(consumer.c.name == "nats")
        ).one()
        return outbox_events.after(conn, Position(place.position_tx, place.position), 1) == []


def _stored(cluster: Cluster) -> int:
    return int(_info(cluster).state.messages)


def _caught_up(cluster: Cluster, db: Database) -> bool:
    return _stored(cluster) >= len(_events(db))


def _kill_while_publishing(
    cluster: Cluster, db: Database, writer: Writer, victim: Callable[[], Node]
) -> None:
    """With ``writer`` writing: once publishing is under way, kill the node ``victim()``
    names, then wait until events written after the kill are in the stream."""
    before = _stored(cluster)
    until("events being published", lambda: _stored(cluster) > before + 2)
    node = victim()
    cluster.kill(node)
    at_kill = writer.written
    until("writes after the kill", lambda: writer.written >= at_kill + 5)
    written = len(_events(db))
    # the publisher carried on: what was written after the kill reaches the stream
    until(f"publishing to go on after {node.name} died", lambda: _stored(cluster) >= written)


@pytest.mark.slow
def test_events_survive_a_nats_node_killed(tmp_path: Path) -> None:
    with nats_cluster(tmp_path) as cluster:
        # a stream made before with one copy, as on a single server: PLL makes it three
        async def single(js: Any) -> Any:
            return await js.add_stream(name=STREAM, subjects=["pll.events.>"], num_replicas=1)

        _js(cluster, single)
        with pll_serve(
            tmp_path,
            "postgresql",
            workers=1,
            PLL_NATS_URL=cluster.urls,
            PLL_NATS_REPLICAS="3",
            PLL_STATS_INTERVAL="0",
        ) as served:
            db = Database(served.url)
            try:
                _run(cluster, served, db)
            except AssertionError as exc:
                # what PLL and the nodes said, to tell why
                log = served.log.read_text(errors="replace")[-5000:]
                raise AssertionError(f"{exc}\n--- pll serve\n{log}\n{cluster.logs()}") from exc
            finally:
                db.dispose()


def _run(cluster: Cluster, served: Served, db: Database) -> None:
    headers = {
        "Authorization": f"Bearer {issue(served.data, 'gp')}",
        "Content-Type": "application/fhir+json",
        "X-PLL-Access-Basis": BASIS,
    }
    with httpx.Client(base_url=served.base, headers=headers, timeout=30) as client:
        patients = [new_patient_with_list(client)[0] for _ in range(PATIENTS)]
        writer = Writer(client, patients)
        for _ in range(PATIENTS):
            writer.write()
        until("the first events in the stream", lambda: _caught_up(cluster, db))
        info = _info(cluster)
        assert info.config.num_replicas == 3
        assert len(info.cluster.replicas) == 2

        # the stream's leader dies while events are published
        leader = cluster.node(info.cluster.leader)
        with writer:
            _kill_while_publishing(cluster, db, writer, lambda: leader)
        until("every event after the leader died", lambda: _caught_up(cluster, db))
        assert _info(cluster).cluster.leader != leader.name

        # the node comes back and catches up; then the publisher's own node dies, which
        # does not lead the stream (so this is the client's move to another node alone)
        cluster.start(leader)
        until(
            f"{leader.name} to be current again",
            lambda: all(p.current and not p.offline for p in _info(cluster).cluster.replicas),
        )
        node = until("the publisher's node", lambda: cluster.connected(CONNECTION_NAME))
        if _info(cluster).cluster.leader == node.name:
            _step_down(cluster)
            until("another leader", lambda: _info(cluster).cluster.leader not in (None, node.name))
        with writer:
            _kill_while_publishing(cluster, db, writer, lambda: node)
        until("every event after the second kill", lambda: _caught_up(cluster, db))

    # the dispatcher dies before it saves its place, and delivers everything again: the new
    # leaders know every event's Nats-Msg-Id, so nothing is stored twice. (Its place is set
    # back once it has saved it past the last event, so that no batch in hand moves it on.)
    until("the publisher's place past every event", lambda: _delivered_all(db))
    with db.write() as conn:
        conn.execute(consumer.update().values(position=0, position_tx=0))
    until("the publisher to have sent everything again", lambda: _delivered_all(db))

    events = _events(db)
    messages = _messages(cluster)
    assert _stored(cluster) == len(messages)
    ids = [m["id"] for _, m in messages]
    assert [n for n in Counter(ids).values() if n > 1] == []  # none twice
    assert sorted(ids) == sorted(e for e, _, _ in events)  # none lost
    assert [msg_id for msg_id, _ in messages] == ids  # each under its own Nats-Msg-Id
    for pid in patients:
        versions = [m["version"] for _, m in messages if m["patient"] == f"Patient/{pid}"]
        assert versions == list(range(1, len(versions) + 1)), pid  # each patient in order
    # one worker published throughout: pll serve never had to start another
    assert len(re.findall(r"pll worker \d+: dispatcher", served.log.read_text())) == 1
