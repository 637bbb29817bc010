"""The ``pll`` command and the README's demo command, as a user runs them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PLL = str(Path(sys.executable).parent / "pll")
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PLL_DATABASE_URL"}
    return env | {"PLL_DATA_DIR": str(tmp_path / "data")} | extra


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_token_needs_a_known_persona_and_a_pid_for_patients(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _run("token", "--persona", "gp", env=env).stdout.count(".") == 2
    r = _run("token", "--persona", "patient", env=env)
    assert r.returncode != 0
    assert "--pid" in r.stderr
    r = _run("token", "--persona", "astronaut", env=env)
    assert r.returncode != 0
    assert "astronaut" in r.stderr


@pytest.mark.slow
def test_readme_demo_command_serves_demo_lists(tmp_path: Path) -> None:
    """``bash scripts/demo.sh`` creates demo data on SQLite and serves it."""
    port = _free_port()
    env = _env(tmp_path, PLL_PORT=str(port), PLL_DEMO_PATIENTS="3")
    proc = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        assert (tmp_path / "data" / "pll.sqlite3").exists()
        token = _run("token", "--persona", "gp", env=env).stdout.strip()
        headers = {
            "Authorization": f"Bearer {token}",
            "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
        }
        statements = httpx.get(
            f"{base}/fhir/MedicationStatement", params={"patient": "x"}, headers=headers
        )
        assert statements.status_code == 200
        # Find a demo patient through the stored list of the first patient created.
        import sqlite3

        with sqlite3.connect(tmp_path / "data" / "pll.sqlite3") as db:
            (fnr,) = db.execute(
                "SELECT identifier_value FROM patient JOIN prescription p ON p.list_id = "
                "(SELECT id FROM pll WHERE pll.patient_id = patient.id) "
                "WHERE p.status = 'active' LIMIT 1"
            ).fetchone()
        doc = httpx.get(
            f"{base}/fhir/List",
            params={"patient.identifier": f"{FNR}|{fnr}", "_include": "List:item"},
            headers=headers,
        ).json()
        kinds = {e["resource"]["resourceType"] for e in doc["entry"]}
        assert kinds == {"List", "MedicationStatement", "MedicationRequest"}
        texts = [
            e["resource"]["dosage"][0]["text"]
            for e in doc["entry"][1:]
            if e["resource"]["resourceType"] == "MedicationStatement"
        ]
        assert all(texts)
        # the demo registered its organisations and counted its events for the statistics
        index = httpx.get(f"{base}/stats/").json()
        assert index["counted_up_to_event"] == index["newest_event"] > 0
        rollout = httpx.get(f"{base}/stats/rollout").json()["rows"]
        assert {r["region"] for r in rollout if r["organisations"]} == {
            "Nord",
            "Midt-Norge",
            "Vest",
            "Sør-Øst",
        }
        assert any(r["organisations_live"] for r in rollout)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def test_stats_commands_load_a_register_and_count(tmp_path: Path) -> None:
    env = _env(tmp_path)
    r = _run("stats", "organisations", "--demo", env=env)
    assert r.returncode == 0, r.stderr
    assert "organisations in the register" in r.stdout
    again = _run("stats", "organisations", "--demo", env=env)
    assert "(0 new)" in again.stdout
    bad = tmp_path / "register.csv"
    bad.write_text("orgnr,name,kommunenummer,actor_type,her_id\n123,X,4601,fastlege,\n")
    r = _run("stats", "organisations", str(bad), env=env)
    assert r.returncode != 0
    assert "line 2" in r.stderr
    assert "Traceback" not in r.stderr
    r = _run("stats", "organisations", env=env)
    assert r.returncode == 2
    assert "give a register FILE or --demo" in r.stderr
    r = _run("stats", "update", env=env)
    assert r.returncode == 0, r.stderr
    assert "0 events counted" in r.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["clients", "list"],
        ["stats", "extract", "--out", "{tmp}/extract.csv"],
        ["readcopy", "status"],
        ["worker"],
        ["import", "generate", "--patients", "1"],
        ["audit", "verify"],
    ],
)
def test_a_wrong_setting_is_one_line_naming_it_for_every_command(
    tmp_path: Path, command: list[str]
) -> None:
    # a usable pseudonym key, so that the extract comes as far as reading the settings
    env = _env(
        tmp_path,
        PLL_BACKGROUND="sometimes",
        PLL_PSEUDONYM_KEY="3f9a1c0e7b2d4f6a8c5e9b1d3a7f2c4e6b8d0a2c4e6f8a1b3d5c7e9f0a2b4c6d",
    )
    r = _run(*(a.format(tmp=tmp_path) for a in command), env=env)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: PLL_BACKGROUND must be inline, process or external, not 'sometimes' "
        "(see docs/operations.md)."
    )
    # nothing was made: not even the data folder
    assert not (tmp_path / "data").exists()
