#!/usr/bin/env bash
# run.sh - what `make run` starts: the hub on its embedded defaults, serving
# devices on mutual TLS only.
#
# On the first run it creates the fleet CA (DATA/pki) and writes the default
# configuration (DATA/mote.conf); later runs reuse both, so edit the file to
# change the setup. The hub itself prints the admin secret on its first start.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
DATA=${DATA:-data}
MOTE=${MOTE:-$BUILD/mote}
CONF="$DATA/mote.conf"
PKI="$DATA/pki"
MQTTS_ADDR=${MQTTS_ADDR:-0.0.0.0:8883}  # devices, mutual TLS
MQTT_ADDR=${MQTT_ADDR:-127.0.0.1:1883}  # local tools, loopback only

mkdir -p "$DATA"
chmod 700 "$DATA"

if [ ! -f "$PKI/ca.pem" ]; then
  echo "mote: first run - creating the fleet CA in $PKI"
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
CONF
  echo "mote: wrote the default configuration $CONF"
fi

cat <<MSG
mote hub ($CONF): devices on mTLS $MQTTS_ADDR (fleet CA $PKI/ca.pem),
          local tools on $MQTT_ADDR (user name + password).
  a device:  $MOTE pki --dir $PKI issue pump1
             mosquitto_pub -p ${MQTTS_ADDR##*:} --cafile $PKI/ca.pem --cert $PKI/devices/pump1.pem \\
               --key $PKI/devices/pump1.key -i pump1 -t dev/pump1/telemetry -m '{"temp":21.5}'
  watch:     mosquitto_sub -p ${MQTT_ADDR##*:} -u admin -P SECRET -t 'dev/#' -v
  Ctrl-C stops it.
MSG
exec "$MOTE" hub --config "$CONF"
