#!/usr/bin/env bash
# bench/run.sh - `make bench`: the same load scenarios (bench/scenarios.py)
# against Debian's mosquitto, Debian's nats-server (MQTT listener) and mote,
# then bench/RESULTS.md and bench/plots/*.svg from that run (bench/report.py).
#
# mote is built in Release into build-release/ so its numbers are not those of
# a debug build. Raw JSON lines stay in bench/out/ (gitignored). Knobs (env):
# REPEAT, DURATION, LAT_DURATION, CONN_TOTAL, CONN_HOLD, CONN_RATE, BROKERS,
# SCENARIOS, for i (telemetry ingest) I_BROKERS, I_PUBS, I_PACK, I_TARGETS,
# I_DURATION, and for h (persistent QoS 1) H_BROKERS, H_PUBS, PERSIST_DIR,
# FSYNC_BATCH_MS; see bench/scenarios.py. Defaults take ~30 minutes on 2 cores.
# One scenario alone (e.g. `make bench SCENARIOS=h DURATION=3 REPEAT=1`)
# updates only its sections of RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
for tool in /usr/sbin/mosquitto /usr/sbin/nats-server "$PY"; do
  if [ ! -x "$tool" ]; then
    echo "bench: $tool is missing; run scripts/deps.sh (make deps)" >&2
    exit 1
  fi
done

echo "bench: building mote (Release) in build-release/"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j "$(nproc)" --target mote -- --no-print-directory >/dev/null

# Brokers and bench processes inherit this; scenarios.py also raises it in
# each child, and skips the idle-connection scenario if the hard limit is low.
ulimit -n 20000 2>/dev/null || echo "bench: could not raise the fd limit to 20000 (hard limit $(ulimit -Hn))"

mkdir -p bench/out bench/plots
# The broker scenarios (a-i) against the peers; skipped when only the
# analytics ones (j, k) are asked for (`make bench SCENARIOS=j,k`).
broker_scen=$(echo ",${SCENARIOS:-a,b,c,d,e,f,g,h,i}," | sed 's/,[jk]\b//g; s/^,//; s/,$//')
if [ -n "$broker_scen" ]; then
  raw="bench/out/raw-$(date +%Y%m%d-%H%M%S).jsonl"
  SCENARIOS="$broker_scen" MOTE="$PWD/build-release/mote" "$PY" bench/scenarios.py "$raw"
  "$PY" bench/report.py "$raw" bench/RESULTS.md
fi

# Analytics (issue 8) is not a broker-against-peer run: each script measures
# mote's own detector / estimator on public data and rewrites its own section
# of RESULTS.md (j: NAB anomaly detection, k: C-MAPSS remaining useful life).
scen=",${SCENARIOS:-a,b,c,d,e,f,g,h,i,j,k},"
for s in j:nab k:rul; do
  script="bench/${s#*:}.py"
  if [[ "$scen" == *",${s%%:*},"* && -f "$script" ]]; then
    MOTE="$PWD/build-release/mote" "$PY" "$script" bench/RESULTS.md
  fi
done
echo "bench: results in bench/RESULTS.md, plots in bench/plots/${raw:+, raw in $raw}"
