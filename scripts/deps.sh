#!/usr/bin/env bash
# deps.sh - install what mote needs to build, test and benchmark, if missing.
#
# Debian packages come from apt-get, npm packages from `npm ci` against the
# committed package-lock.json. Safe to run repeatedly: it installs only what is
# missing, so an up-to-date machine spends well under a second here.
set -euo pipefail
cd "$(dirname "$0")/.."

# package -> why
pkgs=(
  build-essential   # gcc, make
  cmake             # the build system
  pkg-config
  clang             # libFuzzer targets
  libclang-rt-14-dev # libFuzzer and sanitizer runtimes for clang
  libcmocka-dev     # unit tests
  libssl-dev        # OpenSSL 3 (libcrypto): the fleet CA of `mote pki`, later TLS
  libargon2-dev     # argon2id password hashes of the user store (src/auth)
  libsqlite3-dev    # the embedded store: registry, twins, telemetry, alerts (WAL mode)
  libcjson-dev      # JSON: twins, SenML telemetry, rules, the API
  libmicrohttpd-dev # the HTTP API server (src/api)
  libcurl4-openssl-dev # webhook deliveries (src/rules): HTTPS client with timeouts
  curl              # a real HTTP client for the API tests
  libxgboost-dev    # gradient-boosted trees (C API): remaining useful life (src/analytics)
  chromium          # real headless browser for the dashboard tests (driven by playwright-core)
  openssl           # the openssl tool: the independent peer of the pki tests
  mosquitto-clients # real peer: mosquitto_pub / mosquitto_sub
  mosquitto         # the peer broker for side-by-side benchmarks
  nats-server       # second peer broker for `make bench` (its MQTT listener)
  python3-paho-mqtt # real peer: Eclipse Paho (Python), MQTT 3.1.1 and 5.0
  python3           # /usr/bin/python3 for the integration tests
  nodejs            # real peer: MQTT.js
  npm
)

missing=()
for p in "${pkgs[@]}"; do
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages: reinstall when the lock file changed since the last install.
if [ -f package-lock.json ]; then
  stamp=node_modules/.mote-lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    echo "deps: installing npm packages from package-lock.json"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
  fi
fi
