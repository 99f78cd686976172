#!/usr/bin/env bash
# The test command: makes sure PostgreSQL is up, clears databases left by
# earlier runs, runs every test of the crate against the real server, then
# checks openapi/openapi.json against a live instance: the spec validator,
# schemathesis fuzzing every operation, and clients generated from the spec
# (Python, and strict TypeScript).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PGURL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

if ! pg_isready -d "$PGURL" -q 2>/dev/null; then
  echo "PostgreSQL is not running: starting the local cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 1 30); do pg_isready -d "$PGURL" -q && break; sleep 1; done
fi

# Each test makes a database of its own; drop the ones earlier runs left behind.
# Only those nobody is connected to: another run on this server may be using its own.
psql "$PGURL" -Atq -c "SELECT datname FROM pg_database d WHERE (datname LIKE 'dls_test_%' OR datname LIKE 'dls_fuzz_%') AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)" |
  while read -r db; do psql "$PGURL" -q -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done

# tests/api/openapi.rs renders the /docs page in headless Chromium.
if [ ! -x /usr/bin/chromium ]; then
  echo "== Installing chromium (for the /docs rendering test)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

cargo test --all-targets "$@"

# ------------------------------------------------------------------ OpenAPI
# Tools from PyPI in a venv kept under target/ (reinstalled when the pins change).
TOOLS=target/py-tools
PINS="schemathesis==4.32.5 openapi-spec-validator==0.9.0 openapi-python-client==0.29.1"
if [ "$(cat "$TOOLS/.installed" 2>/dev/null)" != "$PINS" ]; then
  echo "== Installing OpenAPI tools into $TOOLS: $PINS"
  rm -rf "$TOOLS"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --cache-dir target/pip-cache $PINS
  echo "$PINS" >"$TOOLS/.installed"
fi
export PATH="$ROOT/$TOOLS/bin:$PATH"
STEPS=0

echo "== Validating openapi/openapi.json (openapi-spec-validator)"
openapi-spec-validator openapi/openapi.json
STEPS=$((STEPS + 1))

echo "== Starting a live instance on a fresh database"
cargo build --quiet --bin download-sessions
BIN=$ROOT/target/debug/download-sessions
WORK=$(mktemp -d)
FUZZ_DB="dls_fuzz_$$"
SERVER_PID=
stop_instance() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
  psql "$PGURL" -q -c "DROP DATABASE IF EXISTS \"$FUZZ_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap stop_instance EXIT
psql "$PGURL" -q -c "CREATE DATABASE \"$FUZZ_DB\""
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
export DATABASE_URL="${PGURL%/*}/$FUZZ_DB"
export DLS__HTTP__LISTEN="127.0.0.1:$PORT"
export DLS__DATA_DIR="$WORK/data"
# Fuzzed logins with wrong passwords must not slow the run down.
export DLS__LOGIN__MAX_DELAY_SECONDS=1
FUZZ_USER=fuzzer
FUZZ_PASSWORD="fuzz-$$-$RANDOM"
PRIVILEGES=""
for p in System.Read ContentLibrary.DownloadSession ContentLibrary.ReadStorage \
  ContentLibrary.CreateLocalLibrary ContentLibrary.UpdateLocalLibrary ContentLibrary.DeleteLocalLibrary \
  ContentLibrary.UpdateLibrary ContentLibrary.AddLibraryItem ContentLibrary.UpdateLibraryItem \
  ContentLibrary.DeleteLibraryItem ContentLibrary.UpdateSession; do
  PRIVILEGES="$PRIVILEGES --privilege $p"
done
# shellcheck disable=SC2086 # one word per flag
echo "$FUZZ_PASSWORD" | "$BIN" user add "$FUZZ_USER" --password-stdin $PRIVILEGES
head -c 3000000 /dev/urandom >"$WORK/disk-0.vmdk"
ITEM=$("$BIN" import --library fuzz-library --item fuzz-item "$WORK/disk-0.vmdk" | tail -1)
FILE_SHA256=$(sha256sum "$WORK/disk-0.vmdk" | cut -d' ' -f1)
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 60); do curl -sf "$URL/readyz" >/dev/null && break; sleep 1; done
curl -sf "$URL/readyz" >/dev/null || { cat "$WORK/server.log"; echo "the instance did not become ready"; exit 1; }
TOKEN=$(curl -sf -X POST -u "$FUZZ_USER:$FUZZ_PASSWORD" "$URL/api/session" | tr -d '"')
LIBRARY=$(curl -sf -H "vmware-api-session-id: $TOKEN" "$URL/api/content/library" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)[0])')
echo "   $URL, user $FUZZ_USER, library $LIBRARY, item $ITEM"

# Every operation, bounded: at most 50 examples each and 4 minutes in all.
# FUZZ_SEED=N repeats a run. tests/fuzz/hooks.py sends the token (logging in
# again after the fuzzed logouts; a `-H` header would stay dead) and swaps
# real ids into half the cases.
SEED="${FUZZ_SEED:-20261123}"
echo "== Fuzzing every operation with schemathesis (seed $SEED)"
(
  cd "$WORK"
  DLS_FUZZ_URL="$URL" DLS_FUZZ_TOKEN="$TOKEN" DLS_FUZZ_USER="$FUZZ_USER" DLS_FUZZ_PASSWORD="$FUZZ_PASSWORD" \
    DLS_FUZZ_LIBRARY="$LIBRARY" DLS_FUZZ_ITEM="$ITEM" DLS_FUZZ_FILE=disk-0.vmdk \
    SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$ROOT/tests/fuzz" \
    st run "$URL/api-docs/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples 50 --max-time 240 --seed "$SEED" --no-color
) || { echo "schemathesis found failures (service log: tail below)"; tail -50 "$WORK/server.log"; exit 1; }
STEPS=$((STEPS + 1))

echo "== Generating a Python client from openapi/openapi.json (openapi-python-client)"
openapi-python-client generate --path openapi/openapi.json --meta none \
  --output-path "$WORK/client/dls_client" >/dev/null
echo "== Driving create -> prepare -> get -> download with the generated client"
DLS_URL="$URL" DLS_USER="$FUZZ_USER" DLS_PASSWORD="$FUZZ_PASSWORD" DLS_ITEM="$ITEM" \
  DLS_FILE=disk-0.vmdk DLS_FILE_SHA256="$FILE_SHA256" PYTHONPATH="$WORK/client" \
  python tests/client/drive.py
STEPS=$((STEPS + 1))

# Tools from npm, pinned by tests/client/ts/package-lock.json, kept under target/
# (reinstalled when the lock changes).
TS_TOOLS=target/ts-tools
TS_LOCK=$(sha256sum tests/client/ts/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$TS_TOOLS/.installed" 2>/dev/null)" != "$TS_LOCK" ]; then
  echo "== Installing the TypeScript tools into $TS_TOOLS (tests/client/ts/package-lock.json)"
  rm -rf "$TS_TOOLS"
  mkdir -p "$TS_TOOLS"
  cp tests/client/ts/package.json tests/client/ts/package-lock.json "$TS_TOOLS/"
  (cd "$TS_TOOLS" && npm ci --silent --no-audit --no-fund --cache "$ROOT/target/npm-cache")
  echo "$TS_LOCK" >"$TS_TOOLS/.installed"
fi
echo "== Generating a TypeScript client from openapi/openapi.json (openapi-typescript, openapi-fetch)"
mkdir -p "$WORK/ts"
cp tests/client/ts/package.json tests/client/ts/tsconfig.json tests/client/ts/drive.ts "$WORK/ts/"
ln -s "$ROOT/$TS_TOOLS/node_modules" "$WORK/ts/node_modules"
"$TS_TOOLS/node_modules/.bin/openapi-typescript" openapi/openapi.json -o "$WORK/ts/schema.ts" >/dev/null
echo "== Compiling it with tsc --strict and driving create -> prepare -> get -> download"
"$TS_TOOLS/node_modules/.bin/tsc" -p "$WORK/ts/tsconfig.json" --strict
DLS_URL="$URL" DLS_USER="$FUZZ_USER" DLS_PASSWORD="$FUZZ_PASSWORD" DLS_ITEM="$ITEM" \
  DLS_FILE=disk-0.vmdk DLS_FILE_SHA256="$FILE_SHA256" node "$WORK/ts/dist/drive.js"
STEPS=$((STEPS + 1))

stop_instance
trap - EXIT
echo "openapi: $STEPS passed, 0 failed"
