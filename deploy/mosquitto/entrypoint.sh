#!/bin/sh
# Builds the password file from the environment, then runs mosquitto with legwave's config.
# Used by docker-compose and by the test that proves the ACL.
set -eu
conf="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
passwd="${MOSQUITTO_PASSWD:-/mosquitto/data/passwd}"
: "${LEGWAVE_DEVICE_ID:?}" "${LEGWAVE_MQTT_PASSWORD:?}" "${HA_MQTT_PASSWORD:?}"
: "${REGISTRAR_MQTT_PASSWORD:?}"
umask 077
rm -f "$passwd"
touch "$passwd"
mosquitto_passwd -b "$passwd" "$LEGWAVE_DEVICE_ID" "$LEGWAVE_MQTT_PASSWORD"
mosquitto_passwd -b "$passwd" homeassistant "$HA_MQTT_PASSWORD"
mosquitto_passwd -b "$passwd" registrar "$REGISTRAR_MQTT_PASSWORD"
exec mosquitto -c "$conf"
