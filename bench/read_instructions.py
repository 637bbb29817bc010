"""Instructions the server executes per hot read, over real HTTP, counted by callgrind (issue 20).

    .venv/bin/python bench/read_instructions.py --database-url postgresql://postgres@127.0.0.1:5432/pll_bench
    .venv/bin/python bench/read_instructions.py --app trivial     # uvicorn alone, same body size

CPU time on a machine shared with other work is noisy; instruction counts are not (they vary
by well under 1 % between runs). This runs one ``pll serve --workers 1`` (background work
``external``: nothing but requests) under ``valgrind --tool=callgrind`` with instrumentation
off, warms it up, switches instrumentation on (``callgrind_control``), sends ``--requests``
``GET /fhir/List?patient=<random>&_include=List:item`` over ``--connections`` keep-alive
connections, and dumps the counts: instructions per read, the whole process (uvloop,
httptools, uvicorn's protocol, Starlette, PLL, asyncpg, the kernel calls' user side), and
``--top`` C functions by inclusive count (``callgrind_annotate``; Python shows as the
interpreter's own functions, so compare runs rather than read Python off it).

``--app trivial`` serves an application that answers every request at once with a body of the
same size as a read's, under the same uvicorn settings: what uvicorn, httptools and uvloop
cost per request without PLL. Needs a database loaded by ``run_bench.py``.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pllbench import dbsetup
from pllbench.drivers import free_port

#: A trivial ASGI app the size of a read's answer (``--app trivial``), as a module to run.
TRIVIAL = """
import os

BODY = b"x" * int(os.environ["BENCH_BODY_BYTES"])
HEADERS = [(b"content-type", b"application/fhir+json; charset=utf-8"),
           (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=300)


async def _send(base: str, paths: list[str], headers: dict[str, str], connections: int) -> int:
    """Send every path over ``connections`` keep-alive connections; the answers' total size."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    size = 0

    async def client() -> None:
        nonlocal size
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as c:
            while not queue.empty():
                r = await c.get(queue.get_nowait(), timeout=300)
                if r.status_code != 200:
                    raise click.ClickException(f"{r.status_code}: {r.text[:300]}")
                size += len(r.content)

    await asyncio.gather(*(client() for _ in range(connections)))
    return size


def _wait(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the server exited; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=5).status_code in (200, 404):
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise click.ClickException(f"the server did not answer within 600 s; see {log}")


@click.command()
@click.option("--database-url", default=dbsetup.DEFAULT_URL, show_default=True)
@click.option("--patients", default=3000, show_default=True, type=click.IntRange(1))
@click.option("--requests", "count", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=300, show_default=True, type=click.IntRange(1))
@click.option("--connections", default=16, show_default=True, type=click.IntRange(1))
@click.option("--app", default="pll", show_default=True, type=click.Choice(["pll", "trivial"]))
@click.option("--body-bytes", default=0, help="--app trivial: body size [default: a read's]")
@click.option("--top", default=25, show_default=True, type=click.IntRange(0))
@click.option("--keep", is_flag=True, help="keep the callgrind files and the server log")
def main(
    database_url: str,
    patients: int,
    count: int,
    warmup: int,
    connections: int,
    app: str,
    body_bytes: int,
    top: int,
    keep: bool,
) -> None:
    """Instructions per read in the server (see the module's docstring)."""
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise click.ClickException(f"`{tool}` is not installed (apt-get install valgrind)")
    tmp = Path(tempfile.mkdtemp(prefix="pll-read-instr-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        PLL_DATABASE_URL=database_url,
        PLL_DATA_DIR=str(tmp / "data"),
        PLL_DEV_AUTH="1",
        PLL_BACKGROUND="external",
        PLL_SEAL_INTERVAL="0",
        PLL_STATS_INTERVAL="0",
    )
    token = subprocess.run(
        [sys.executable, "-m", "pll", "token", "--persona", "gp"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/fhir+json",
        "X-PLL-Access-Basis": "HPBEHANDLINGSRELASJON",
    }
    ids = dbsetup.patient_ids(database_url, patients)
    rng = random.Random(2026)
    paths = [
        f"/fhir/List?patient={rng.choice(ids)}&_include=List:item" for _ in range(warmup + count)
    ]
    if app == "pll":
        server = [sys.executable, "-m", "pll", "serve", "--port", str(port), "--workers", "1"]
    else:
        if not body_bytes:
            body_bytes = _read_size(database_url, paths[0], headers, env)
        (tmp / "trivial_app.py").write_text(TRIVIAL)
        env["BENCH_BODY_BYTES"] = str(body_bytes)
        env["PYTHONPATH"] = f"{tmp}{os.pathsep}{env.get('PYTHONPATH', '')}"
        server = [sys.executable, "-m", "uvicorn", "trivial_app:app", "--port", str(port)]
        server += ["--log-level", "warning", "--no-access-log"]
    out = tmp / "callgrind.out"
    log = tmp / "server.log"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    with log.open("wb") as sink:
        proc = subprocess.Popen([*cmd, *server], env=env, stdout=sink, stderr=sink)
    try:
        _wait(base, proc, log)
        asyncio.run(_send(base, paths[:warmup], headers, connections))
        _control("-i", "on", str(proc.pid))
        asyncio.run(_send(base, paths[:warmup], headers, connections))  # warm, instrumented
        _control("-z", str(proc.pid))
        size = asyncio.run(_send(base, paths[warmup:], headers, connections))
        _control("--dump=reads", str(proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=600)
    dumps = sorted(tmp.glob("callgrind.out*"))
    dump = next(p for p in dumps if "desc: Trigger: dump reads" in p.read_text(errors="replace"))
    text = dump.read_text(errors="replace")
    total = int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    click.echo(
        f"{app}: {count} reads over {connections} connections, {size / count:,.0f} bytes each: "
        f"{total / count:,.0f} instructions per read (server process, callgrind)"
    )
    if top:
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows = [line for line in annotated.splitlines() if re.match(r"\s*[\d,]+ \(", line)]
        for line in rows[: top + 1]:
            click.echo(line[:160])
    if keep:
        click.echo(f"callgrind files and server log in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_size(url: str, path: str, headers: dict[str, str], env: dict[str, str]) -> int:
    """The size of one read's answer, from a server started for a moment without valgrind."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pll", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                return len(httpx.get(base + path, headers=headers, timeout=5).content)
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
