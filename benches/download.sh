#!/usr/bin/env bash
# Download throughput of the data plane on loopback, beside the raw (warm-cache)
# read speed of the file it serves. Runs the real flow end to end:
# release build, fresh database, user, import, login, session, prepare, download.
#
#   benches/download.sh            # 1 GiB
#   SIZE_MIB=4096 benches/download.sh
#
# Needs: PostgreSQL reachable as user postgres (PGHOST/PGPORT, default
# 127.0.0.1:5432), curl, jq, dd, sha256sum.
set -euo pipefail

cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
PORT=${PORT:-18431}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PREPARE_TIMEOUT=${PREPARE_TIMEOUT:-300}
# A request no worker has claimed after this long means this build has no
# prepare workers yet: see stage_with_psql below.
UNCLAIMED_GRACE=${UNCLAIMED_GRACE:-20}

BASE="http://127.0.0.1:${PORT}"
DS="${BASE}/api/content/library/item/download-session"
DB="dls_bench_$$_${RANDOM}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dls-bench.XXXXXX")
PASSWORD="bench-$RANDOM-$RANDOM"
SERVER_PID=""

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$DB\"" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '==> %s\n' "$*" >&2; }

say "building release binary"
cargo build --release --quiet
BIN=$PWD/target/release/download-sessions

say "fresh database $DB"
psql_admin -d postgres -c "CREATE DATABASE \"$DB\"" >/dev/null
export DATABASE_URL="postgres://postgres@${PGHOST}:${PGPORT}/${DB}"
export DLS__DATA_DIR="$WORK/data"
export DLS__HTTP__LISTEN="127.0.0.1:${PORT}"
export DLS__LOG__FORMAT=json
export DLS__LOG__LEVEL=${DLS__LOG__LEVEL:-info}

"$BIN" user add bench --password-stdin \
    --privilege System.Read --privilege ContentLibrary.DownloadSession <<<"$PASSWORD"

FILE="$WORK/disk.bin"
say "writing a ${SIZE_MIB} MiB file of random bytes (incompressible)"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$FILE"
say "importing it"
ITEM=$("$BIN" import --library bench --item disk "$FILE" | tail -n 1)

say "starting the server on $BASE"
"$BIN" serve >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "$BASE/api/session" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
done

TOKEN=$(curl -sf -X POST -u "bench:$PASSWORD" "$BASE/api/session" | jq -r .)
api() { curl -sf -H "vmware-api-session-id: $TOKEN" -H 'content-type: application/json' "$@"; }
SESSION=$(api -X POST -d "{\"library_item_id\":\"$ITEM\"}" "$DS" | jq -r .)
say "session $SESSION; preparing disk.bin"
api -X POST -d '{"file_name":"disk.bin"}' "$DS/$SESSION/file?action=prepare" >/dev/null

# Fallback for builds without prepare workers: leaves exactly the state a
# worker leaves (artifact staged under artifacts/<sha256>, file PREPARED with
# an HTTPS endpoint), like the fixture of tests/api/download.rs. Only used when
# nothing claimed the request; with workers the real flow above does it all.
stage_with_psql() {
    say "no worker claimed the file within ${UNCLAIMED_GRACE}s: staging it with psql (fallback)"
    local row sha size key
    row=$(psql_admin -d "$DB" -tA -F ' ' -c \
        "SELECT expected_sha256, expected_size, content_key FROM download_files
         WHERE session_id = '$SESSION' AND name = 'disk.bin'")
    read -r sha size key <<<"$row"
    mkdir -p "$DLS__DATA_DIR/transfer/artifacts"
    cp "$DLS__DATA_DIR/content/$key" "$DLS__DATA_DIR/transfer/artifacts/$sha"
    psql_admin -d "$DB" -c "
        INSERT INTO artifacts (sha256, size, transfer_key)
            VALUES ('$sha', $size, 'artifacts/$sha') ON CONFLICT (sha256) DO NOTHING;
        UPDATE download_files SET status = 'PREPARED', endpoint_type = 'HTTPS', size = $size,
            checksum = '$sha', bytes_transferred = $size, artifact_sha256 = '$sha',
            lease_owner = NULL, lease_until = NULL, updated_at = now()
        WHERE session_id = '$SESSION' AND name = 'disk.bin'" >/dev/null
}

started=$SECONDS
while :; do
    INFO=$(api "$DS/$SESSION/file?file_name=disk.bin")
    STATUS=$(jq -r .status <<<"$INFO")
    case "$STATUS" in
        PREPARED) break ;;
        ERROR) echo "prepare failed: $INFO" >&2; exit 1 ;;
        PREPARE_REQUESTED)
            if ((SECONDS - started >= UNCLAIMED_GRACE)); then stage_with_psql; fi ;;
    esac
    if ((SECONDS - started >= PREPARE_TIMEOUT)); then
        echo "not PREPARED after ${PREPARE_TIMEOUT}s: $INFO" >&2
        exit 1
    fi
    sleep 0.5
done
say "prepared in $((SECONDS - started))s"
URI=$(jq -r .download_endpoint.uri <<<"$INFO")
SHA=$(jq -r .checksum_info.checksum <<<"$INFO")
KEY=$(psql_admin -d "$DB" -tA -c \
    "SELECT transfer_key FROM artifacts WHERE sha256 = '$SHA'")
ARTIFACT="$DLS__DATA_DIR/transfer/$KEY"

say "checking a full download against the checksum"
GOT=$(curl -sf "$URI" | sha256sum | cut -d' ' -f1)
[[ "$GOT" == "$SHA" ]] || { echo "checksum mismatch: $GOT != $SHA" >&2; exit 1; }

gbps() { awk -v b="$1" 'BEGIN { printf "%.2f GB/s (%.0f MiB/s)", b / 1e9, b / 1048576 }'; }

# Warm cache: read once, then time a second read of the file the server serves.
dd if="$ARTIFACT" of=/dev/null bs=4M status=none
DD_LINE=$(LC_ALL=C dd if="$ARTIFACT" of=/dev/null bs=4M 2>&1 | tail -n 1)
DD_SECS=$(sed -E 's/.* copied, ([0-9.e+-]+) s.*/\1/' <<<"$DD_LINE")
DD_BPS=$(awk -v s="$DD_SECS" -v n="$((SIZE_MIB << 20))" 'BEGIN { printf "%.0f", n / s }')

best=0
for run in $(seq 1 "$RUNS"); do
    read -r speed size code < <(curl -s -o /dev/null -w '%{speed_download} %{size_download} %{http_code}\n' "$URI")
    [[ "$code" == 200 && "$size" == "$((SIZE_MIB << 20))" ]] || {
        echo "run $run: HTTP $code, $size bytes" >&2
        exit 1
    }
    say "download run $run: $(gbps "$speed")"
    best=$(awk -v a="$best" -v b="$speed" 'BEGIN { print (b > a) ? b : a }')
done

echo
echo "file:     ${SIZE_MIB} MiB"
echo "read:     $(gbps "$DD_BPS")   dd bs=4M, warm cache"
echo "download: $(gbps "$best")   curl over loopback, best of $RUNS"
grep -h '"download ended"' "$WORK/serve.log" | tail -n 1 | jq -c '.fields // .' 2>/dev/null || true
