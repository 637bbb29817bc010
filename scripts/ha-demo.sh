#!/usr/bin/env bash
# A primary PostgreSQL 15 with a synchronous standby on this machine, `pll serve` on the
# multi-host URL, and a failover: the primary is killed, the standby promoted, and PLL goes
# on writing without a restart (docs/operations.md, "Failover"; issue 21).
#
#   bash scripts/ha-demo.sh                 # shows the failover, then waits for Enter
#   HA_DEMO_WAIT=0 bash scripts/ha-demo.sh  # shows it and stops
#
# Two clusters of its own (initdb from /usr/lib/postgresql/15/bin, as the postgres user when
# run as root) in a temporary folder on ports HA_PRIMARY_PORT and HA_STANDBY_PORT (54341,
# 54342); PLL on PLL_PORT (8041). Nothing of the machine's own PostgreSQL is touched.
# Everything it made is stopped and removed when it ends, however it ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${PLL_PYTHON:-}" ]; then
  bash scripts/venv.sh
fi
PYTHON="${PLL_PYTHON:-.venv/bin/python}"
BIN="${PLL_PG_BIN:-/usr/lib/postgresql/15/bin}"
P1="${HA_PRIMARY_PORT:-54341}"
P2="${HA_STANDBY_PORT:-54342}"
PORT="${PLL_PORT:-8041}"
DIR="$(mktemp -d /tmp/pll-ha-XXXXXX)"
SERVE_PID=""

as_pg() {  # PostgreSQL's programs refuse to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pid_of() { head -1 "$DIR/$1/postmaster.pid" 2>/dev/null || true; }
sql() { "$BIN/psql" -X -q -t -A -h 127.0.0.1 -p "$1" -U postgres -d "${3:-postgres}" -c "$2"; }

cleanup() {
  set +e
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  for node in primary standby; do
    pid="$(pid_of "$node")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      as_pg "$BIN/pg_ctl" stop -D "$DIR/$node" -m immediate >/dev/null 2>&1
    fi
  done
  rm -rf "$DIR"
}
trap cleanup EXIT

for port in "$P1" "$P2" "$PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is taken; set HA_PRIMARY_PORT, HA_STANDBY_PORT or PLL_PORT" >&2
    exit 1
  fi
done
[ "$(id -u)" = 0 ] && chown postgres: "$DIR"

echo "== a primary on 127.0.0.1:$P1"
as_pg "$BIN/initdb" -D "$DIR/primary" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
cat >>"$DIR/primary/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
wal_level = replica
max_wal_senders = 10
synchronous_commit = on      # a commit is acknowledged once the standby has flushed it
wal_receiver_timeout = 5s
EOF
start() {  # node port: the port and the name the primary knows a standby by are per node
  as_pg "$BIN/pg_ctl" start -w -D "$DIR/$1" -l "$DIR/$1.log" \
    -o "-c port=$2 -c cluster_name=$1" >/dev/null
}
start primary "$P1"
sql "$P1" "CREATE DATABASE pll"

echo "== a synchronous standby on 127.0.0.1:$P2 (pg_basebackup -R)"
as_pg "$BIN/pg_basebackup" -D "$DIR/standby" -h 127.0.0.1 -p "$P1" -U postgres -R -X stream -c fast
start standby "$P2"
sql "$P1" "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (standby)'"
sql "$P1" "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 100); do
  [ "$(sql "$P1" "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'")" = sync ] && break
  sleep 0.1
done
sql "$P1" "SELECT application_name, state, sync_state FROM pg_stat_replication"

URL="postgresql://postgres@127.0.0.1:$P1,127.0.0.1:$P2/pll?target_session_attrs=read-write&connect_timeout=5"
echo "== pll serve on http://127.0.0.1:$PORT with PLL_DATABASE_URL=$URL"
export PLL_DATA_DIR="$DIR/pll-data" PLL_DATABASE_URL="$URL" PLL_DEV_AUTH=1
"$PYTHON" -m pll serve --port "$PORT" >"$DIR/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$DIR/serve.log"; exit 1; }
  sleep 0.5
done

TOKEN="$("$PYTHON" -m pll token --persona gp)"
api() {  # method path [body] [if-match]: prints "status body"
  curl -s -o "$DIR/answer.json" -w '%{http_code}' -X "$1" "http://127.0.0.1:$PORT/fhir/$2" \
    -H "Authorization: Bearer $TOKEN" -H "X-PLL-Access-Basis: HPBEHANDLINGSRELASJON" \
    -H "Content-Type: application/fhir+json" ${4:+-H "If-Match: W/\"$4\""} ${3:+--data "$3"} || true
}
field() { "$PYTHON" -c "import json,sys; print(eval(sys.argv[1], {}, json.load(open(sys.argv[2]))))" "$1" "$DIR/answer.json"; }

FNR="$("$PYTHON" -c 'import random; from pll.domain.identifiers import generate_synthetic_fnr as f; print(f(random.Random()))')"
api POST Patient "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:oid:2.16.578.1.12.4.1.4.1\",\"value\":\"$FNR\"}],\"name\":[{\"family\":\"Testesen\",\"given\":[\"Tore\"]}]}" >/dev/null
PID="$(field 'id')"
api POST List "{\"resourceType\":\"List\",\"status\":\"current\",\"mode\":\"working\",\"subject\":{\"reference\":\"Patient/$PID\"}}" >/dev/null
ENTRY_BODY() {  # note
  echo "{\"resourceType\":\"MedicationStatement\",\"status\":\"active\",\"subject\":{\"reference\":\"Patient/$PID\"},\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"http://www.whocc.no/atc\",\"code\":\"N02BE01\"}],\"text\":\"Paracetamol\"},\"dosage\":[{\"timing\":{\"repeat\":{\"when\":[\"MORN\"]}},\"doseAndRate\":[{\"doseQuantity\":{\"value\":1,\"unit\":\"tablett\"}}]}],\"note\":[{\"text\":\"$1\"}]${2:+,\"id\":\"$2\"}}"
}
api POST MedicationStatement "$(ENTRY_BODY 'written before the failover')" >/dev/null
ENTRY="$(field 'id')"
VERSION="$(field "meta['versionId']")"
echo "   MedicationStatement/$ENTRY version $VERSION acknowledged (on the primary and the standby's disk)"

echo "== the primary dies: SIGKILL to its postmaster ($(pid_of primary)) and its processes"
PRIMARY_PID="$(pid_of primary)"
CHILDREN="$(pgrep -P "$PRIMARY_PID" || true)"
START="$(date +%s.%N)"
kill -9 "$PRIMARY_PID"
[ -n "$CHILDREN" ] && kill -9 $CHILDREN 2>/dev/null || true
CHANGE="$(ENTRY_BODY 'changed during the failover' "$ENTRY")"
status="$(api PUT "MedicationStatement/$ENTRY" "$CHANGE" "$VERSION")"
echo "   a change now: $status ($(field "issue[0]['diagnostics']" 2>/dev/null || true))"

echo "== the standby takes over: pg_ctl promote"
as_pg "$BIN/pg_ctl" promote -w -D "$DIR/standby" >/dev/null
# The new primary has no standby: its commits wait for none until one is attached.
until [ "$(api PUT "MedicationStatement/$ENTRY" "$CHANGE" "$VERSION")" = 200 ]; do
  sleep 0.05
done
END="$(date +%s.%N)"
echo "   the same change, sent again with If-Match: W/\"$VERSION\": 200, version $(field "meta['versionId']")," \
  "$("$PYTHON" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$START" "$END") s after the kill"
api GET "MedicationStatement/$ENTRY/_history" >/dev/null
echo "   its history on the new primary: $(field "[(e['resource']['meta']['versionId'], e['resource']['note'][0]['text']) for e in entry]")"
echo "   pll serve was not restarted (pid $SERVE_PID); its log: $DIR/serve.log"

if [ "${HA_DEMO_WAIT:-1}" != 0 ]; then
  echo
  echo "PLL is at http://127.0.0.1:$PORT/ on the new primary (127.0.0.1:$P2). Press Enter to stop."
  read -r _
fi
