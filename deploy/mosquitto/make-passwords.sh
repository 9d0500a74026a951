#!/bin/sh
# Writes Mosquitto's password file from the environment (run by the
# `mosquitto-passwords` one-shot service before the broker starts). Passwords are
# hashed by mosquitto_passwd; the file is readable only by the broker's user.
set -eu
: "${MQTT_PLATFORM_PASSWORD:?MQTT_PLATFORM_PASSWORD is not set}"
: "${MQTT_DEVICE_PASSWORD:?MQTT_DEVICE_PASSWORD is not set}"
file="${MOSQUITTO_PASSWORD_FILE:-/mosquitto/passwd/passwd}"
tmp="$file.new"
rm -f "$tmp"
touch "$tmp"
chmod 0700 "$tmp"
mosquitto_passwd -b "$tmp" eldercare "$MQTT_PLATFORM_PASSWORD"
mosquitto_passwd -b "$tmp" device "$MQTT_DEVICE_PASSWORD"
# Mosquitto 2 refuses a password file other users can read, and drops to this user.
if id mosquitto >/dev/null 2>&1; then chown mosquitto:mosquitto "$tmp"; fi
mv "$tmp" "$file"
echo "mosquitto password file written (users: eldercare, device)"
