#!/usr/bin/env bash
# The whole test suite: lint, format, types, then pytest on SQLite and PostgreSQL.
# Starts the local PostgreSQL and NATS if they are down. With CI=true a missing PostgreSQL fails
# the run; the NATS tests fail (never skip) when NATS cannot be reached.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/venv.sh

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

# Events are also published to NATS JetStream; its tests use the local server.
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  echo "starting NATS (JetStream)"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 1; done
fi

# The benchmark's smoke test drives the server with wrk and PostgreSQL with pgbench.
if ! command -v wrk >/dev/null || ! command -v pgbench >/dev/null; then
  echo "installing wrk and pgbench"
  apt-get update -qq && apt-get install -y -qq wrk postgresql-client >/dev/null
fi

# The browser tests drive Debian's chromium with Playwright; no browser is ever downloaded.
if ! command -v chromium >/dev/null; then
  echo "installing chromium"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# The tests start many `pll` processes (servers, workers, commands): let Python keep the
# compiled modules (__pycache__, ignored by git) instead of compiling PLL's sources again in
# each one, as it does where the environment sets PYTHONDONTWRITEBYTECODE.
unset PYTHONDONTWRITEBYTECODE

echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== ruff format"; .venv/bin/ruff format --check src tests bench
echo "== mypy"; .venv/bin/mypy
# In parallel (pytest-xdist): each worker has its own databases, data folders and servers on
# ports the system picks, so tests never share state. PLL_TEST_WORKERS=1 runs them serially.
echo "== pytest (SQLite and PostgreSQL, ${PLL_TEST_WORKERS:-auto} workers)"
.venv/bin/pytest -q -p no:cacheprovider -n "${PLL_TEST_WORKERS:-auto}" --dist worksteal "$@"
