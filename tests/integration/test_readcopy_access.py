"""The read copy decides reads on its own copy of what access depends on (issue 21): a change
made on PLL — a block and its end, a proxy and its end, a care unit registration — reaches
the copy as an event and changes the copy's decision, and only then (the copy does not ask
PLL). Its records reach PLL's trail once. On both databases, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from pll.api.readcopy_app import create_readcopy_app
from pll.auth.access import Access, Basis
from pll.domain.model import Author, Role
from pll.events.readcopy import ReadCopy
from pll.events.readcopy_audit import CopyAudit
from pll.events.readcopy_schema import (
    copy_audit,
    copy_block,
    copy_care,
    copy_multidose,
    copy_proxy,
)
from pll.services.access import register_proxy
from pll.services.readcopy_reads import ReadCopyReads
from pll.store.db import Database
from pll.store.schema import audit_event
from tests.conftest import FNR, Clock, LiveServer, server_settings, serving
from tests.integration.builders import (
    DRUGS,
    block_consent,
    new_fnr,
    new_list,
    new_patient_with_list,
    ok,
    patient,
    statement,
)
from tests.integration.test_care_units import unit
from tests.integration.test_multidose import BERGEN, params, pharmacy

GP_HPR = "9144889"
PROXY_PID = "09857215521"  # the "proxy" persona
WORKER_HPR = "9144943"  # the "care-worker" persona
DOCTOR_HPR = "9144897"  # the "hospital-doctor" persona


def _who(actor: str) -> str:
    data = orjson.loads(actor)
    return str(data.get("hpr") or data.get("pid"))


@pytest.fixture
def copy(server: LiveServer, clock: Clock, tmp_path: Path) -> Iterator[ReadCopy]:
    copy_db = Database(f"sqlite:///{tmp_path / 'copy.sqlite3'}")
    made = ReadCopy(server.db, copy_db, clock)
    made.setup()
    yield made
    copy_db.dispose()


def _catch_up(copy: ReadCopy) -> None:
    while copy.step(limit=3):
        pass


class Reader:
    """Reads lists from the copy's server as one persona."""

    def __init__(self, server: LiveServer, base: str, persona: str, pid: str | None = None):
        self.server, self.base, self.persona, self.pid = server, base, persona, pid

    def read(self, fnr: str, basis: str = "HPBEHANDLINGSRELASJON") -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.server.token(self.persona, self.pid)}"}
        if self.pid is None:
            headers["X-PLL-Access-Basis"] = basis
        return httpx.get(
            f"{self.base}/fhir/List",
            params={"patient.identifier": f"{FNR}|{fnr}"},
            headers=headers,
            timeout=30,
        )


def test_access_changes_on_pll_reach_the_read_copy_and_change_its_decisions(
    server: LiveServer, copy: ReadCopy, clock: Clock
) -> None:
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
    _catch_up(copy)
    app = create_readcopy_app(server_settings(server.data_dir, server.db), server.service, copy)
    with serving(app) as base, server.client("patient", pid=fnr) as me:
        gp = Reader(server, base, "gp")
        assert gp.read(fnr).status_code == 200
        # the patient blocks the GP on PLL: the copy honours it once it has the event
        block = ok(me.post("/fhir/Consent", json=block_consent(GP_HPR, pid)), 201)
        assert gp.read(fnr).status_code == 200  # its own facts, not PLL's: not yet
        _catch_up(copy)
        refused = gp.read(fnr)
        assert refused.status_code == 403, refused.text
        assert "blocked your access" in refused.text
        assert gp.read(fnr, "HPAKUTT").status_code == 200  # emergency, flagged
        ok(me.delete(f"/fhir/Consent/{block['id']}"))
        _catch_up(copy)
        assert gp.read(fnr).status_code == 200

        # a proxy (fullmakt), and its end
        proxy = Reader(server, base, "proxy", PROXY_PID)
        assert proxy.read(fnr).status_code == 403
        register_proxy(server.db, PROXY_PID, fnr, add=True)
        _catch_up(copy)
        assert proxy.read(fnr).status_code == 200
        register_proxy(server.db, PROXY_PID, fnr, add=False)
        assert proxy.read(fnr).status_code == 200  # not yet
        _catch_up(copy)
        assert proxy.read(fnr).status_code == 403

        # a care worker reads only for patients of their unit
        worker = Reader(server, base, "care-worker")
        assert worker.read(fnr).status_code == 403
        with server.client("nursing-home-nurse") as nurse:
            ok(nurse.post(f"/fhir/Patient/{pid}/$care-unit-register", json=unit()), 201)
        _catch_up(copy)
        assert worker.read(fnr).status_code == 200

    # the copy kept every decision's record; PLL's trail gets each once
    assert CopyAudit(copy.copy, server.db, server.service.clock).forward() == 11
    with server.db.read() as conn:
        rows = conn.execute(
            sa.select(audit_event.c.actor, audit_event.c.outcome, audit_event.c.flag)
            .where(audit_event.c.patient_id == pid, audit_event.c.action == "read-copy")
            .order_by(audit_event.c.id)
        ).all()
    seen = [(_who(actor), outcome, flag) for actor, outcome, flag in rows]
    assert [who for who, _, _ in seen] == [GP_HPR] * 5 + [PROXY_PID] * 4 + [WORKER_HPR] * 2
    assert [o for _, o, _ in seen] == ["0", "0", "4", "0", "0", "4", "0", "0", "4", "4", "0"]
    assert [f for _, _, f in seen] == [None] * 3 + ["emergency-override-of-block"] + [None] * 7
    assert CopyAudit(copy.copy, server.db, server.service.clock).forward() == 0
    # kept in the copy for 30 days after, then gone
    assert _kept(copy) == 11
    clock.advance(days=31)
    assert CopyAudit(copy.copy, server.db, server.service.clock).forward() == 0
    assert _kept(copy) == 0


def _kept(copy: ReadCopy) -> int:
    with copy.copy.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(copy_audit)).scalar_one())


def test_a_copy_without_its_access_facts_serves_nothing_until_it_has_them(
    server: LiveServer, copy: ReadCopy
) -> None:
    """A copy made before it kept access facts (or one that lost them) must not decide as
    if no patient had blocked anyone: it answers 503 until its next step copies them all."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
    with server.client("patient", pid=fnr) as me:
        ok(me.post("/fhir/Consent", json=block_consent(GP_HPR, pid)), 201)
    _catch_up(copy)
    with copy.copy.write() as conn:  # as a copy made by the PLL before issue 21
        for table in (copy_block, copy_proxy, copy_multidose, copy_care):
            conn.execute(sa.text(f"DROP TABLE {table.name}"))
    copy.setup()
    app = create_readcopy_app(server_settings(server.data_dir, server.db), server.service, copy)
    with serving(app) as base:
        gp = Reader(server, base, "gp")
        unready = gp.read(fnr)
        assert unready.status_code == 503, unready.text
        assert "still copying" in unready.text
        assert copy.step() == 0  # no new event, and yet every fact
        assert gp.read(fnr).status_code == 403


def _events(server: LiveServer, pid: str) -> list[dict[str, Any]]:
    with server.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT kind, list_id, payload FROM outbox WHERE patient_id = :p ORDER BY id"),
            {"p": pid},
        ).all()
    return [{"kind": k, "list": lst, **orjson.loads(p)} for k, lst, p in rows]


def test_access_changes_of_a_patient_without_a_list_are_events_that_name_no_list(
    server: LiveServer, copy: ReadCopy
) -> None:
    """No list row to lock: a block, and multidose parties registered before the list (no
    list version to write), are events that name no list; the copy has both all the same
    when the list comes (it reads the patient's facts afresh for every event)."""
    fnr = new_fnr()
    with server.client("hospital-doctor") as doctor:
        pid = ok(doctor.post("/fhir/Patient", json=patient(fnr)), 201)["id"]
    with server.client("patient", pid=fnr) as me:
        ok(me.post("/fhir/Consent", json=block_consent(GP_HPR, pid)), 201)
    with server.client("hospital-doctor") as doctor:
        ok(doctor.post(f"/fhir/Patient/{pid}/$multidose-register", json=params(pharmacy())))
    named = {"list": "", "patient": f"Patient/{pid}"}
    assert _events(server, pid) == [
        {"kind": "access-changed", **named, "fact": "block"},
        {"kind": "access-changed", **named, "fact": "multidose"},
    ]
    _catch_up(copy)
    with server.client("hospital-doctor") as doctor:
        new_list(doctor, pid)
    _catch_up(copy)
    with copy.copy.read() as conn:
        parties = conn.execute(sa.select(copy_multidose)).all()
    assert [tuple(p) for p in parties] == [(pid, DOCTOR_HPR, BERGEN)]
    app = create_readcopy_app(server_settings(server.data_dir, server.db), server.service, copy)
    with serving(app) as base:
        assert Reader(server, base, "gp").read(fnr).status_code == 403
        assert Reader(server, base, "hospital-doctor").read(fnr).status_code == 200


def test_an_expired_list_is_served_as_copied_while_the_store_cannot_drop_its_entries(
    server: LiveServer, copy: ReadCopy, clock: Clock
) -> None:
    """Rule 3's 90 days end by a version the store makes. While the store is away the copy
    serves the list as copied, and does not ask the store at every read meanwhile."""
    fnr = new_fnr()
    with server.client("gp") as gp:
        pid, _ = new_patient_with_list(gp, fnr)
        made = ok(
            gp.post("/fhir/MedicationStatement", json=statement(f"Patient/{pid}", *DRUGS[0])), 201
        )
        stopped = {**made, "status": "stopped", "statusReason": [{"text": "Ferdig"}]}
        ok(
            gp.put(
                f"/fhir/MedicationStatement/{made['id']}",
                json=stopped,
                headers={"If-Match": 'W/"1"'},
            )
        )
    _catch_up(copy)
    clock.advance(days=91)
    asked: list[str] = []

    def store_away(list_id: str) -> None:
        asked.append(list_id)
        raise sa.exc.OperationalError("connect", {}, ConnectionRefusedError("store down"))

    reads = ReadCopyReads(copy, server.service.trail.key, clock, store_away)
    doctor = Access(Author("Kari Fastlege", Role.DOCTOR, hpr=GP_HPR), Basis.TREATMENT)
    for _ in range(3):
        document = orjson.loads(reads.read_list(doctor, FNR, fnr))
        kinds = [e["resource"]["resourceType"] for e in document["entry"]]
        assert "MedicationStatement" in kinds  # still shown, as copied
    assert len(asked) == 1
    clock.advance(seconds=31)
    reads.read_list(doctor, FNR, fnr)
    assert len(asked) == 2
