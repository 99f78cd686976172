#!/usr/bin/env bash
# The offline query data in .sqlx/ (what sqlx::query! checks SQL against when
# no database is at hand, i.e. every ordinary build: see .cargo/config.toml).
#
#   scripts/sqlx-prepare.sh          regenerate .sqlx/ after changing a query or a migration
#   scripts/sqlx-prepare.sh --check  fail when .sqlx/ is stale or holds unused queries (CI)
#
# Both run against a fresh database migrated from migrations/, on the server of
# TEST_DATABASE_URL (default: the local cluster, started when down), and drop it after.
# Needs sqlx-cli at the version of the sqlx crate; installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SQLX_CLI_VERSION=0.8.6
MODE=${1:-write}
case "$MODE" in write | --check) ;; *) echo "usage: $0 [--check]" >&2; exit 2 ;; esac

if [ "$(cargo sqlx --version 2>/dev/null)" != "sqlx-cli-sqlx $SQLX_CLI_VERSION" ]; then
  echo "== Installing sqlx-cli $SQLX_CLI_VERSION"
  cargo install sqlx-cli --version "$SQLX_CLI_VERSION" --locked --force \
    --no-default-features --features postgres,rustls
fi

SERVER="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -d "$SERVER" -q 2>/dev/null; then
  echo "PostgreSQL is not running: starting the local cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 1 30); do pg_isready -d "$SERVER" -q && break; sleep 1; done
fi

DB="dls_sqlx_$$"
export DATABASE_URL="${SERVER%/*}/$DB"
trap 'cargo sqlx database drop -y >/dev/null 2>&1 || true' EXIT
cargo sqlx database create
cargo sqlx migrate run >/dev/null

if [ "$MODE" = write ]; then
  cargo sqlx prepare -- --all-targets
  exit 0
fi

OUT=$(mktemp)
if ! cargo sqlx prepare --check -- --all-targets 2>&1 | tee "$OUT"; then
  echo ".sqlx/ is stale: run scripts/sqlx-prepare.sh and commit .sqlx/" >&2
  exit 1
fi
if grep -q "potentially unused queries" "$OUT"; then
  echo ".sqlx/ holds queries no code makes: run scripts/sqlx-prepare.sh and commit .sqlx/" >&2
  exit 1
fi
echo ".sqlx/ is current"
