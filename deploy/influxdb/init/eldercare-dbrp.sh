#!/bin/bash
# First start only (the influxdb:2 image runs /docker-entrypoint-initdb.d/ scripts
# after its initial setup, with the `influx` CLI already configured with the admin
# token): map the v1 database the platform and Grafana use to the bucket.
#
# The platform writes and reads through InfluxDB's v1-compatibility API
# (/write?db=eldercare, /query with InfluxQL); on 2.x a v1 database is a DBRP
# mapping: database `eldercare`, retention policy `autogen` -> the setup bucket.
set -euo pipefail
db="${ELDERCARE_INFLUX_DB:-eldercare}"
bucket="${DOCKER_INFLUXDB_INIT_BUCKET:?}"
org="${DOCKER_INFLUXDB_INIT_ORG:?}"
bucket_id="$(influx bucket list --org "$org" --name "$bucket" --hide-headers | cut -f1)"
if [ -z "$bucket_id" ]; then
  echo "bucket $bucket not found" >&2
  exit 1
fi
if influx v1 dbrp list --org "$org" --db "$db" --hide-headers | grep -q .; then
  echo "DBRP mapping for database $db exists"
else
  influx v1 dbrp create --org "$org" --db "$db" --rp autogen --bucket-id "$bucket_id" --default
  echo "DBRP mapping created: database $db, rp autogen -> bucket $bucket ($bucket_id)"
fi
