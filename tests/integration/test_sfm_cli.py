"""``pll import sfm`` as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLL = str(Path(sys.executable).parent / "pll")
REFERENCE = ROOT / "tests/fixtures/sfm/getMedication-response-e-multidose.json"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PLL_DATABASE_URL"}
    env["PLL_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [PLL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_import_sfm_brings_in_the_reference_once(tmp_path: Path) -> None:
    r = _run(tmp_path, "import", "sfm", str(REFERENCE))
    assert r.returncode == 0, r.stderr
    assert "9 entries, 9 prescriptions, 1 dispensing(s), 3 M25 message(s)" in r.stdout
    assert "read as JSON5" in r.stderr  # the reference's trailing comma is named, not hidden
    again = _run(tmp_path, "import", "sfm", str(REFERENCE))
    assert again.returncode != 0
    assert "nothing was imported" in again.stderr
    assert "already" in again.stderr


def test_import_sfm_says_what_is_wrong_with_a_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Parameters", "parameter": [', encoding="utf-8")
    r = _run(tmp_path, "import", "sfm", str(broken))
    assert r.returncode != 0
    assert "not JSON" in r.stderr
    empty = tmp_path / "empty.json"
    empty.write_text('{"resourceType": "Parameters", "parameter": []}', encoding="utf-8")
    r = _run(tmp_path, "import", "sfm", str(empty))
    assert r.returncode != 0
    assert "no 'medication' document Bundle" in r.stderr
    r = _run(tmp_path, "import", "sfm", str(tmp_path / "missing.json"))
    assert r.returncode != 0
    assert "does not exist" in r.stderr
