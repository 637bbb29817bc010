"""The read copy keeps serving when PLL's database is down (issue 21), as a user runs it:
``pll serve`` on a PostgreSQL cluster of the test's own (initdb on a free loopback port),
``pll readcopy run --port`` beside it on a database of its own, real HTTP throughout.

The cluster is stopped with ``pg_ctl``: the copy still serves the lists, decides with its own
copy of the blocks (a blocked doctor is still refused, an emergency read is flagged), and
keeps the records. When the cluster is back the copy forwards them, the patient's access
log shows those reads as the read copy's, nothing is forwarded twice (not even after a crash
between sending and marking), and ``pll audit verify`` finds the trail intact.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pll.auth.audit import AuditKey
from pll.auth.tokens import issue
from pll.events.readcopy_audit import CopyAudit
from pll.events.readcopy_schema import copy_audit
from pll.services.audit import AuditTrail
from pll.store.db import Database, normalise_url
from pll.store.schema import audit_event
from tests.conftest import FNR
from tests.integration.builders import (
    block_consent,
    new_fnr,
    new_patient_with_list,
    ok,
    statement,
)
from tests.integration.processes import PLL, clean_env, free_port, pll_serve

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DOCTOR_HPR = "9144897"  # the "hospital-doctor" persona
READ_COPY = "PLL read copy (Kjernejournal)"

pytestmark = pytest.mark.slow


class Cluster:
    """A PostgreSQL cluster of the test's own, on a free loopback port; never the main one.
    Run as the ``postgres`` user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pll-readcopy-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/pll"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        admin = sa.create_engine(
            normalise_url(self.url.rsplit("/", 1)[0] + "/postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE pll"))
        admin.dispose()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        log = str(self.root / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [
                    *(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []),
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "stop",
                ],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        made.create()
        yield made
    finally:
        made.remove()


class ReadCopyProcess:
    """``pll readcopy run --port`` beside the server, on its own SQLite database."""

    def __init__(self, data: Path, url: str) -> None:
        self.env = clean_env(data, PLL_DATABASE_URL=url, PLL_DEV_AUTH="1")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data / "readcopy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [PLL, "readcopy", "run", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=out,
            )

    def status(self, headers: dict[str, str]) -> dict[str, Any] | None:
        """The copy's ``/status``, or ``None`` while it does not answer yet."""
        assert self.proc is not None
        assert self.proc.poll() is None, self.log.read_text()
        try:
            r = httpx.get(f"{self.base}/status", headers=headers, timeout=5)
        except httpx.HTTPError:
            return None
        assert r.status_code == 200, r.text
        found: dict[str, Any] = r.json()
        return found

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def _wait(what: str, done: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.2)


def _answers(get: Callable[[], httpx.Response]) -> Callable[[], httpx.Response | None]:
    def attempt() -> httpx.Response | None:
        try:
            return get()
        except httpx.HTTPError:
            return None

    return attempt


def test_the_read_copy_serves_while_the_store_is_down_and_forwards_its_records_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    with pll_serve(tmp_path, None, workers=1, PLL_DATABASE_URL=cluster.url) as served:
        data = served.data
        gp = {
            "Authorization": f"Bearer {issue(data, 'gp')}",
            "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
        }
        doctor = {**gp, "Authorization": f"Bearer {issue(data, 'hospital-doctor')}"}
        first, second = new_fnr(), new_fnr()
        with httpx.Client(base_url=served.base, headers=gp, timeout=30) as client:
            pid, _ = new_patient_with_list(client, first)
            for name, atc in (("Paracet tab 500 mg", "N02BE01"), ("Metformin 500 mg", "A10BA02")):
                made = statement(f"Patient/{pid}", name, atc)
                ok(client.post("/fhir/MedicationStatement", json=made), 201)
            new_patient_with_list(client, second)
            listed = ok(client.get("/fhir/List", params={"patient": pid, "_include": "List:item"}))
        me = {"Authorization": f"Bearer {issue(data, 'patient', first)}"}
        with httpx.Client(base_url=served.base, headers=me, timeout=30) as patient:
            ok(patient.post("/fhir/Consent", json=block_consent(DOCTOR_HPR, pid)), 201)

        copy = ReadCopyProcess(data, cluster.url)
        try:
            copy.start()

            def caught_up() -> bool:
                r = copy.status(gp)
                return r is not None and r["behind"] == 0 and r["lists"] == 2

            _wait("the read copy to catch up", caught_up)

            cluster.stop()  # PLL's database is down

            def read(headers: dict[str, str], fnr: str = first) -> httpx.Response:
                return httpx.get(
                    f"{copy.base}/fhir/List",
                    params={"patient.identifier": f"{FNR}|{fnr}"},
                    headers=headers,
                    timeout=30,
                )

            served_list = read(gp)
            assert served_list.status_code == 200, served_list.text
            assert _medicines(served_list.json()) == _medicines(listed)
            assert len(_medicines(listed)) == 2
            blocked = read(doctor)
            assert blocked.status_code == 403, blocked.text
            assert "blocked your access" in blocked.text
            assert read({**doctor, "X-PLL-Access-Basis": "HPAKUTT"}).status_code == 200
            assert read(me).status_code == 200  # the patient reads their own list
            assert read(gp, second).status_code == 200
            # restarted while the store is down, it starts and serves
            copy.stop()
            copy.start()
            _wait("the read copy to start", lambda: copy.status(gp) is not None)
            down = copy.status(gp)
            assert down is not None
            assert (down["storeReachable"], down["behind"], down["lists"]) == (False, None, 2)
            assert read(gp).status_code == 200
            assert down["auditWaiting"] == 5
            assert ok(httpx.get(f"{copy.base}/status", headers=gp))["auditWaiting"] == 6

            cluster.start()  # and back: the running copy forwards what it kept
            _wait(
                "the read copy to forward its records",
                lambda: (r := copy.status(gp)) is not None and r["auditWaiting"] == 0,
            )
        finally:
            copy.stop()

        # the patient's access log shows the reads, as the read copy's
        with httpx.Client(base_url=served.base, headers=me, timeout=30) as patient:
            logged = _answers(
                lambda: patient.get("/fhir/AuditEvent", params={"patient": pid, "_count": 100})
            )
            _wait(
                "PLL to answer again", lambda: (r := logged()) is not None and r.status_code == 200
            )
            events = ok(patient.get("/fhir/AuditEvent", params={"patient": pid, "_count": 100}))
        by_copy = [
            e["resource"]
            for e in events["entry"]
            if e["resource"]["source"]["observer"]["display"] == READ_COPY
        ]
        seen = sorted((_who(e), e["outcome"], _flags(e)) for e in by_copy)
        assert seen == sorted(
            [
                ("9144889", "0", []),
                ("9144889", "0", []),
                (DOCTOR_HPR, "4", []),
                (DOCTOR_HPR, "0", ["emergency-override-of-block"]),
                (first, "0", []),
            ]
        )
        assert _web_log_says_read_copy(served.base, data, first, pid)

        # a crash between sending and marking: everything is sent again, nothing taken twice
        store, copy_db = Database(cluster.url), Database(f"sqlite:///{data / 'readcopy.sqlite3'}")
        try:
            audit = CopyAudit(copy_db, store, lambda: datetime.now(UTC))
            before = _read_copy_records(store)
            assert before == 6
            with copy_db.write() as conn:
                conn.execute(sa.update(copy_audit).values(forwarded_at=None))
            assert audit.forward() == 6  # sent again,
            assert _read_copy_records(store) == before  # taken once
            assert audit.forward() == 0  # and a second forward has nothing more to send
            assert _read_copy_records(store) == before
            AuditTrail(store, AuditKey.load(data), lambda: datetime.now(UTC)).seal()
        finally:
            store.dispose()
            copy_db.dispose()
        assert "audit trail intact" in _pll(copy.env, "audit", "verify")


def _medicines(document: dict[str, Any]) -> list[str]:
    return sorted(
        e["resource"]["medicationCodeableConcept"]["text"]
        for e in document["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement"
    )


def _who(event: dict[str, Any]) -> str:
    return str(event["agent"][0]["who"]["identifier"]["value"])


def _flags(event: dict[str, Any]) -> list[str]:
    return [t["code"] for t in event.get("meta", {}).get("tag", [])]


def _read_copy_records(store: Database) -> int:
    with store.read() as conn:
        found = conn.execute(
            sa.select(sa.func.count()).where(audit_event.c.action == "read-copy")
        ).scalar_one()
    return int(found)


def _pll(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PLL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _web_log_says_read_copy(base: str, data: Path, fnr: str, pid: str) -> bool:
    """The patient's own page of who has seen the list marks the copy's reads."""
    import re

    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as web:
        page = web.get("/logg-inn").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token
        r = web.post(
            "/logg-inn/utvikler", data={"csrf": token.group(1), "persona": "patient", "pid": fnr}
        )
        assert r.status_code == 303, r.text
        looks = web.get(f"/pasient/{pid}/innsyn")
        assert looks.status_code == 200, looks.text
        return "i lesekopien (Kjernejournal)" in looks.text
