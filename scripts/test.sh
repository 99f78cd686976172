#!/usr/bin/env bash
# The test command: makes sure PostgreSQL is up, clears databases left by
# earlier runs, then runs every test of the crate against the real server.
set -euo pipefail
cd "$(dirname "$0")/.."

PGURL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

if ! pg_isready -d "$PGURL" -q 2>/dev/null; then
  echo "PostgreSQL is not running: starting the local cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 1 30); do pg_isready -d "$PGURL" -q && break; sleep 1; done
fi

# Each test makes a database of its own; drop the ones earlier runs left behind.
psql "$PGURL" -Atq -c "SELECT datname FROM pg_database WHERE datname LIKE 'dls_test_%'" |
  while read -r db; do psql "$PGURL" -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null; done

cargo test --all-targets "$@"
