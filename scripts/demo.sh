#!/usr/bin/env bash
# Run PLL with demo data on the embedded database (SQLite in ./pll-data):
# synthetic patients with realistic lists, served at http://127.0.0.1:8000/fhir.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/venv.sh
export PLL_DATA_DIR="${PLL_DATA_DIR:-$PWD/pll-data}"
# Demo data, demo people: trust the development tokens `pll token` makes.
export PLL_DEV_AUTH="${PLL_DEV_AUTH:-1}"
if [ ! -f "$PLL_DATA_DIR/pll.sqlite3" ]; then
  .venv/bin/pll demo --patients "${PLL_DEMO_PATIENTS:-50}"
fi
echo "Web UI: http://127.0.0.1:${PLL_PORT:-8000}/ (log in as a development persona)"
echo "A doctor's token:  PLL_DATA_DIR=$PLL_DATA_DIR .venv/bin/pll token --persona gp"
exec .venv/bin/pll serve --host 127.0.0.1 --port "${PLL_PORT:-8000}"
