#!/usr/bin/env bash
# PUSH upload throughput on loopback beside `dd conv=fsync` of the same file to
# the same disk, measured in the same run. The real flow end to end: release
# build, fresh database, user, import of an item, login, update session, add
# (size and SHA256 declared), the bytes PUT to the upload endpoint (streamed,
# hashed, fsynced, verified), complete.
#
#   benches/upload.sh              # 1 GiB, 3 runs each
#   SIZE_MIB=4096 RUNS=1 benches/upload.sh
#
# The file is read once before timing (warm page cache) so both sides measure
# writing, not reading. Peak RSS of the server is reported (memory per upload
# is bounded: 1 MiB batches plus the store's buffers).
#
# Needs: PostgreSQL reachable as user postgres (PGHOST/PGPORT, default
# 127.0.0.1:5432), curl, jq, dd, sha256sum.
set -euo pipefail

cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
PORT=${PORT:-18433}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}

BASE="http://127.0.0.1:${PORT}"
US="${BASE}/api/content/library/item/update-session"
DB="dls_bench_up_$$_${RANDOM}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dls-bench-up.XXXXXX")
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
export DLS__LOG__LEVEL=${DLS__LOG__LEVEL:-warn}

"$BIN" user add bench --password-stdin \
    --privilege System.Read --privilege ContentLibrary.UpdateSession <<<"$PASSWORD"
echo seed >"$WORK/seed.txt"
ITEM=$("$BIN" import --library bench --item disk "$WORK/seed.txt" | tail -n 1)

FILE="$WORK/disk.bin"
say "writing a ${SIZE_MIB} MiB file of random bytes (incompressible)"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$FILE"
SIZE=$(stat -c %s "$FILE")
SHA=$(sha256sum "$FILE" | cut -d' ' -f1)

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

warm() { cat "$FILE" >/dev/null; }
mibps() { awk -v b="$SIZE" -v s="$1" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }

dd_runs=() up_runs=() ratios=()
for run in $(seq 1 "$RUNS"); do
    warm
    rm -f "$WORK/dd.out"
    t0=$(date +%s.%N)
    dd if="$FILE" of="$WORK/dd.out" bs=4M conv=fsync status=none
    t1=$(date +%s.%N)
    rm -f "$WORK/dd.out"
    dd_runs+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")

    SESSION=$(api -X POST -d "{\"library_item_id\":\"$ITEM\"}" "$US" | jq -r .)
    URI=$(api -X POST -d "{\"name\":\"disk.bin\",\"source_type\":\"PUSH\",\"size\":$SIZE,\"checksum_info\":{\"algorithm\":\"SHA256\",\"checksum\":\"$SHA\"}}" \
        "$US/$SESSION/file?action=add" | jq -r .upload_endpoint.uri)
    warm
    t0=$(date +%s.%N)
    curl -sf -H 'content-type: application/octet-stream' -T "$FILE" "$URI" >/dev/null
    t1=$(date +%s.%N)
    up_runs+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
    api -X POST "$US/$SESSION?action=complete" >/dev/null
    ratio=$(awk -v d="${dd_runs[-1]}" -v u="${up_runs[-1]}" 'BEGIN { printf "%.0f", 100 * d / u }')
    ratios+=("$ratio")
    say "run $run: dd conv=fsync $(mibps "${dd_runs[-1]}") MiB/s, upload $(mibps "${up_runs[-1]}") MiB/s ($ratio% of dd)"
    # Same bytes every run: the next upload rewrites the same content key.
done

best() { printf '%s\n' "$@" | sort -g | head -n 1; }
dd_best=$(best "${dd_runs[@]}")
up_best=$(best "${up_runs[@]}")
rss=$(awk '/VmHWM/ { print $2 }' "/proc/$SERVER_PID/status")
echo "size:            ${SIZE_MIB} MiB, best of ${RUNS}"
echo "dd conv=fsync:   $(mibps "$dd_best") MiB/s"
echo "PUSH upload:     $(mibps "$up_best") MiB/s"
awk -v d="$dd_best" -v u="$up_best" 'BEGIN { printf "ratio:           %.0f%% of dd (goal >= 70%%)\n", 100 * d / u }'
echo "per-run ratios:  ${ratios[*]} (median $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')%)"
echo "server peak RSS: $((rss / 1024)) MiB"
