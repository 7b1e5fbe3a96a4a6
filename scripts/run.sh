#!/usr/bin/env bash
# run.sh - what `make run` starts: the hub (devices on mutual TLS only, the
# dashboard and API on loopback) and a simulated fleet that feeds it.
#
# First run: creates the fleet CA (DATA/pki) and writes DATA/mote.conf; later
# runs reuse both, so edit the file to change the setup. The hub prints the
# admin password on its first start. An admin API token for the dashboard is
# created once and kept in DATA/dashboard.token (0600); a revoked one is
# replaced. Ctrl-C (or SIGTERM/SIGHUP) stops the simulator, then the hub, and
# exits 0 when both stopped cleanly.
#
# Environment (defaults in brackets; the address variables only shape a new
# mote.conf - an existing file is what runs):
#   DATA [data]  MOTE [$BUILD/mote]  BUILD [build]
#   MQTTS_ADDR [0.0.0.0:8883]   devices, mutual TLS
#   MQTT_ADDR  [127.0.0.1:1883] local tools, loopback only
#   HTTP_ADDR  [127.0.0.1:8080] dashboard and API, loopback only
#   SIM_DEVICES [20]  SIM_ARGS []  extra `mote sim` flags, e.g. --interval-ms 200
#   SIM=off           the hub alone, no simulated fleet
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
DATA=${DATA:-data}
MOTE=${MOTE:-$BUILD/mote}
CONF="$DATA/mote.conf"
MQTTS_ADDR=${MQTTS_ADDR:-0.0.0.0:8883}
MQTT_ADDR=${MQTT_ADDR:-127.0.0.1:1883}
HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8080}
SIM_DEVICES=${SIM_DEVICES:-20}
SIM=${SIM:-on}
# ASan/TSan builds start slower; a real hub is ready in well under a second.
READY_TIMEOUT=${READY_TIMEOUT:-60}

say() { printf 'mote: %s\n' "$*"; }
# After a Ctrl-C whatever fails on the way up failed because of it: stop
# quietly (the EXIT trap stops what runs) with the status of a clean stop.
die() {
  [ -z "${STOPPING:-}" ] || exit 0
  printf 'mote: %s\n' "$*" >&2
  exit 1
}
nap() { sleep "$1" || true; }  # a Ctrl-C ends the sleep; the trap decides

# conf_get NAME [first]: the value of the last (or first) NAME line of
# mote.conf, read as the hub reads it: `NAME = value` or `NAME value`, a #
# starts a comment. The last one is what the hub uses for a single-valued
# option; for a repeatable listener any one will do.
conf_get() {
  local v
  v=$(sed -e 's/#.*//' "$CONF" |
    sed -n "s/^[[:space:]]*$1\([[:space:]]*=[[:space:]]*\|[[:space:]]\{1,\}\)\([^[:space:]]\{1,\}\).*/\2/p")
  if [ "${2:-}" = first ]; then printf '%s\n' "$v" | head -n 1; else printf '%s\n' "$v" | tail -n 1; fi
}

# A wildcard listen address is reached on loopback.
dial_addr() {
  case "$1" in
    0.0.0.0:*) echo "127.0.0.1:${1#0.0.0.0:}" ;;
    "[::]":*) echo "[::1]:${1#\[::\]:}" ;;
    *) echo "$1" ;;
  esac
}

[ -x "$MOTE" ] || die "$MOTE not found: build it first (make)"
mkdir -p "$DATA"
chmod 700 "$DATA"

if [ ! -f "$CONF" ]; then
  PKI="$DATA/pki"
else
  PKI=$(conf_get pki)
  PKI=${PKI:-$DATA/pki}
fi
if [ ! -f "$PKI/ca.pem" ]; then
  say "first run - creating the fleet CA in $PKI"
  "$MOTE" pki --dir "$PKI" init --san DNS:localhost --san IP:127.0.0.1 \
    --san "DNS:$(hostname)" >/dev/null
fi

if [ ! -f "$CONF" ]; then
  cat >"$CONF" <<CONF
# mote hub configuration, written by \`make run\` on its first run.
# Every line is a \`mote hub\` option without the leading --
# (see: $MOTE hub --help). Command-line flags override this file.

data = $DATA

# Devices: MQTT over TLS with client certificates from the fleet CA in
# $PKI (mote pki --dir $PKI issue DEVICE_ID). The CRL is reloaded when it
# changes; claim certificates may provision devices (mote pki claim).
mqtts = $MQTTS_ADDR
pki = $PKI

# Local tools and applications: plaintext on loopback only, with a user name
# and password or an API token (the admin secret is printed on first start).
mqtt = $MQTT_ADDR

# The dashboard and the HTTP API (docs/api.md), on loopback only: every
# request needs an API token (mote token create --data $DATA --scope read).
# Put a TLS reverse proxy in front of it to reach it from other machines.
http = $HTTP_ADDR
CONF
  say "wrote the default configuration $CONF"
fi

# The file is the truth: the simulator and the printed links follow it.
DATA=$(conf_get data)
DATA=${DATA:-data}
HUB_ARGS=(hub --config "$CONF")
HTTP=$(conf_get http)
if [ "$HTTP" = off ]; then
  die "$CONF says 'http = off', and make run is the dashboard demo: remove that line, or run the hub alone ($MOTE hub --config $CONF)"
fi
if [ -z "$HTTP" ]; then
  # A mote.conf from before the dashboard: serve it by flag for this run
  # rather than rewrite a file the user may have edited. A `http = ...` line
  # in the file takes over from the next run on.
  HTTP=$HTTP_ADDR
  HUB_ARGS+=(--http "$HTTP")
  say "$CONF has no http line: serving the dashboard on $HTTP (add 'http = HOST:PORT' to the file to choose)"
fi
HTTP=$(dial_addr "$HTTP")
MQTTS=$(conf_get mqtts first)
BASE="http://$HTTP"
TOKEN_FILE="$DATA/dashboard.token"

HUB_PID=
SIM_PID=
STOPPING=

# Hub and simulator get their own process groups (job control on while they
# are started), so a Ctrl-C in the terminal reaches this script only and it
# can stop them in order: the fleet first (each device says DISCONNECT), then
# the hub. Job control is off otherwise: a foreground command (curl, sleep)
# must stay in our group, where the terminal's Ctrl-C reaches us too.

stop_all() {
  local rc=0 st
  trap 'forward_again' INT TERM HUP
  if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
    kill -TERM "$SIM_PID" 2>/dev/null || true
  fi
  if [ -n "$SIM_PID" ]; then
    st=0; wait "$SIM_PID" || st=$?
    SIM_PID=
    if [ "$st" -ne 0 ]; then say "the simulator exited with status $st"; rc=$st; fi
  fi
  if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
    kill -TERM "$HUB_PID" 2>/dev/null || true
  fi
  if [ -n "$HUB_PID" ]; then
    st=0; wait "$HUB_PID" || st=$?
    HUB_PID=
    if [ "$st" -ne 0 ]; then say "the hub exited with status $st"; rc=$st; fi
  fi
  return "$rc"
}

# A second Ctrl-C while stopping: the impatient user gets an immediate stop
# (the hub's own second-signal path; its journal keeps what it acknowledged).
forward_again() {
  [ -n "$SIM_PID" ] && kill -INT "$SIM_PID" 2>/dev/null
  [ -n "$HUB_PID" ] && kill -INT "$HUB_PID" 2>/dev/null
  return 0
}

on_signal() { STOPPING=1; }
trap on_signal INT TERM HUP

# Both children gone before we are: a failure on the way up must not leave
# a hub running in the background.
on_exit() {
  local rc=$?
  trap - EXIT
  [ -z "$STOPPING" ] || rc=0
  stop_all || { [ "$rc" -ne 0 ] || rc=1; }
  exit "$rc"
}
trap on_exit EXIT

api_status() {  # api_status PATH TOKEN -> HTTP status code (000: unreachable)
  # the token goes in through stdin, not the command line other users can read
  printf 'header = "Authorization: Bearer %s"\n' "$2" |
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 -K - "$BASE$1" || true
}

api_get() {
  printf 'header = "Authorization: Bearer %s"\n' "$2" |
    curl -sf --max-time 5 -K - "$BASE$1" || true
}

# Another hub (an earlier make run still running?) would answer our checks.
if curl -s --max-time 1 -o /dev/null "$BASE/healthz"; then
  die "something already answers on $BASE: another make run? (stop it, or set HTTP_ADDR / edit $CONF)"
fi

# From here on every failure is handled where it happens: errexit would
# also fire for a command that a Ctrl-C interrupted.
set +e
set -m
"$MOTE" "${HUB_ARGS[@]}" </dev/null &
HUB_PID=$!
set +m

# Every wait below gives up on a signal, or when the hub died meanwhile.
hub_gone() {
  kill -0 "$HUB_PID" 2>/dev/null && return 1
  local st=0
  wait "$HUB_PID" || st=$?
  HUB_PID=
  die "the hub exited with status $st before it was ready"
}

deadline=$((SECONDS + READY_TIMEOUT))
until curl -sf --max-time 1 -o /dev/null "$BASE/healthz"; do
  [ -z "$STOPPING" ] || exit 0
  hub_gone || true
  [ "$SECONDS" -lt "$deadline" ] || die "the hub did not answer $BASE/healthz within ${READY_TIMEOUT}s"
  nap 0.1
done

# The dashboard token: created once (after the hub's first start, which is
# what creates the admin user), kept 0600, and replaced if it stopped working.
TOKEN=
if [ -s "$TOKEN_FILE" ]; then
  TOKEN=$(head -n 1 "$TOKEN_FILE")
  case $(api_status /api/v1/devices?limit=1 "$TOKEN") in
    200) ;;
    401) say "the token in $TOKEN_FILE was revoked: creating a new one"; TOKEN= ;;
    *) die "the API at $BASE does not answer the token check" ;;
  esac
fi
if [ -z "$TOKEN" ]; then
  TOKEN=$("$MOTE" token create --data "$DATA" --scope admin --name dashboard 2>/dev/null | tail -n 1) || true
  [ -n "$TOKEN" ] || die "mote token create failed"
  (umask 077 && printf '%s\n' "$TOKEN" >"$TOKEN_FILE.tmp" && mv "$TOKEN_FILE.tmp" "$TOKEN_FILE")
  # The hub picks up the new token when it notices the changed user store.
  deadline=$((SECONDS + READY_TIMEOUT))
  until [ "$(api_status /api/v1/devices?limit=1 "$TOKEN")" = 200 ]; do
    [ -z "$STOPPING" ] || exit 0
    hub_gone || true
    [ "$SECONDS" -lt "$deadline" ] || die "the hub does not accept the new token in $TOKEN_FILE"
    nap 0.1
  done
fi

if [ "$SIM" != off ] && [ -n "$MQTTS" ]; then
  # The token goes in the environment (MOTE_TOKEN), which only this user can
  # read, not on the command line, which every user sees in ps.
  # shellcheck disable=SC2086  # SIM_ARGS is a list of flags
  set -m
  MOTE_TOKEN=$TOKEN "$MOTE" sim --mqtts "$(dial_addr "$MQTTS")" --pki "$PKI" --api "$BASE" \
    --devices "$SIM_DEVICES" ${SIM_ARGS:-} </dev/null &
  SIM_PID=$!
  set +m
  # The link is printed once the fleet is up, so it is the last thing on screen.
  deadline=$((SECONDS + READY_TIMEOUT))
  online=0
  while [ -z "$STOPPING" ] && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$SIM_PID" 2>/dev/null \
    && kill -0 "$HUB_PID" 2>/dev/null; do
    online=$(api_get "/api/v1/devices?status=online&limit=1" "$TOKEN" | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
    [ "${online:-0}" -lt "$SIM_DEVICES" ] || break
    nap 0.2
  done
  FLEET="$SIM_DEVICES simulated devices (mote sim) on mTLS $(dial_addr "$MQTTS"), ${online:-0} online"
elif [ "$SIM" != off ]; then
  FLEET="no simulated fleet: $CONF has no mqtts listener"
else
  FLEET="no simulated fleet (SIM=off)"
fi

# (a simulator that failed at once is reported by the loop below instead)
if [ -z "$STOPPING" ] && kill -0 "$HUB_PID" 2>/dev/null &&
  { [ -z "$SIM_PID" ] || kill -0 "$SIM_PID" 2>/dev/null; }; then
  cat <<MSG

  mote is running.
  dashboard:    $BASE/?token=$TOKEN
  admin token:  $TOKEN
                (kept in $TOKEN_FILE; curl -H "Authorization: Bearer \$(cat $TOKEN_FILE)" $BASE/api/v1/devices)
  devices:      $FLEET
                fleet CA $PKI/ca.pem; a device of your own: $MOTE pki --dir $PKI issue ID
  local tools:  $(conf_get mqtt) (user admin and the password printed on the first start, or -u token -P TOKEN)
  Ctrl-C stops the simulator, then the hub; the next \`make run\` keeps the data.

MSG
fi

# Until a signal, or until one of them ends by itself.
while [ -z "$STOPPING" ]; do
  if [ -n "$SIM_PID" ]; then
    wait -n "$HUB_PID" "$SIM_PID" 2>/dev/null || true
  else
    wait -n "$HUB_PID" 2>/dev/null || true
  fi
  [ -z "$STOPPING" ] || break
  if ! kill -0 "$HUB_PID" 2>/dev/null; then
    st=0; wait "$HUB_PID" || st=$?; HUB_PID=
    die "the hub exited by itself (status $st)"
  fi
  if [ -n "$SIM_PID" ] && ! kill -0 "$SIM_PID" 2>/dev/null; then
    st=0; wait "$SIM_PID" || st=$?; SIM_PID=
    die "the simulator exited by itself (status $st); stopping the hub"
  fi
done

say "stopping: the simulator, then the hub"
trap - EXIT
rc=0
stop_all || rc=$?
exit "$rc"
