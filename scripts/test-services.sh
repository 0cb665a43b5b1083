#!/usr/bin/env bash
# Install and start what the tests need on this machine: the Cortex-M cross compiler (edge
# footprints) and PostgreSQL with a test role and database.
set -euo pipefail

if ! command -v arm-none-eabi-gcc >/dev/null 2>&1 || [ ! -d /usr/lib/arm-none-eabi/newlib ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-arm-none-eabi libnewlib-arm-none-eabi >/dev/null
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! command -v psql >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
service postgresql start >/dev/null
for _ in $(seq 1 30); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qAt" <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'edgeloop') THEN
    CREATE ROLE edgeloop LOGIN PASSWORD 'edgeloop' CREATEDB;
  END IF;
END $$;
SQL
if ! su postgres -c "psql -qAtc \"select 1 from pg_database where datname='edgeloop_test'\"" | grep -q 1; then
  su postgres -c "createdb -O edgeloop edgeloop_test"
fi
echo "postgresql ready: edgeloop_test"
