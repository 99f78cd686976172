#!/usr/bin/env bash
# `download-sessions export` of one large file over loopback, against the two
# things it must keep up with, measured in the same run on the same file:
#   - `curl -o FILE` of the same prepared URI (transfer and write, no hashing)
#   - `openssl dgst -sha256 FILE` (hashing alone, warm cache)
# Target: export (login, session, prepare, download, SHA-256 check, rename,
# clean-up: the whole command) within 1.25x the slower of the two.
# Export runs with --parallel 4 (the default) and --parallel 1: more
# connections must not slow down a link one connection already fills.
#
#   benches/export.sh              # 1 GiB, best of 3
#   SIZE_MIB=4096 RUNS=2 benches/export.sh
#
# Needs: PostgreSQL reachable as user postgres (PGHOST/PGPORT, default
# 127.0.0.1:5432), curl, jq, openssl, /usr/bin/time.
set -euo pipefail

cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
PORT=${PORT:-18432}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
# This VM backs guest memory lazily: the first writes into fresh memory cost
# seconds per GiB for any writer. Touch this much first so no contender pays it.
WARM_MIB=${WARM_MIB:-4096}

BASE="http://127.0.0.1:${PORT}"
DS="${BASE}/api/content/library/item/download-session"
DB="dls_bench_$$_${RANDOM}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dls-export-bench.XXXXXX")
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
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

say "building release binary"
cargo build --release --quiet
BIN=$PWD/target/release/download-sessions

say "warming ${WARM_MIB} MiB of memory (write and delete a scratch file)"
dd if=/dev/zero of="$WORK/warm" bs=4M count=$((WARM_MIB / 4)) status=none
rm -f "$WORK/warm"

say "fresh database $DB"
psql_admin -d postgres -c "CREATE DATABASE \"$DB\"" >/dev/null
export DATABASE_URL="postgres://postgres@${PGHOST}:${PGPORT}/${DB}"
export DLS__DATA_DIR="$WORK/data"
export DLS__HTTP__LISTEN="127.0.0.1:${PORT}"
export DLS__LOG__FORMAT=json
export DLS__LOG__LEVEL=${DLS__LOG__LEVEL:-warn}

"$BIN" user add bench --password-stdin \
    --privilege System.Read --privilege ContentLibrary.DownloadSession <<<"$PASSWORD"

FILE="$WORK/disk.bin"
say "writing a ${SIZE_MIB} MiB file of random bytes"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$FILE"
ITEM=$("$BIN" import --library bench --item disk "$FILE" 2>/dev/null | tail -n 1)
rm -f "$FILE"

say "starting the server on $BASE"
"$BIN" serve >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "$BASE/healthz" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
done

# A session of our own for the references: the same prepared artifact the
# export's session will be handed (content-addressed, staged once).
TOKEN=$(curl -sf -X POST -u "bench:$PASSWORD" "$BASE/api/session" | jq -r .)
api() { curl -sf -H "vmware-api-session-id: $TOKEN" -H 'content-type: application/json' "$@"; }
SESSION=$(api -X POST -d "{\"library_item_id\":\"$ITEM\"}" "$DS" | jq -r .)
api -X POST -d '{"file_name":"disk.bin"}' "$DS/$SESSION/file?action=prepare" >/dev/null
say "staging the file (prepare)"
for _ in $(seq 1 600); do
    INFO=$(api "$DS/$SESSION/file?file_name=disk.bin")
    [[ $(jq -r .status <<<"$INFO") == PREPARED ]] && break
    sleep 0.5
done
URI=$(jq -r .download_endpoint.uri <<<"$INFO")
# Import and staging leave GiBs of dirty pages; flush them so that no
# contender pays for writing back someone else's data. Each run syncs too.
sync
SHA=$(jq -r .checksum_info.checksum <<<"$INFO")
[[ "$URI" != null ]] || { echo "not prepared: $INFO" >&2; exit 1; }

best() { tr ' ' '\n' | grep -v '^$' | sort -n | head -n 1; }
CURL=() OPENSSL=() P4=() P1=() RSS4=() RSS1=()
export_run() { # parallel -> "seconds maxrss_kib connections"
    local out="$WORK/out" t0 t1
    rm -rf "$out"
    sync
    t0=$(now)
    /usr/bin/time -f '%M' -o "$WORK/rss" "$BIN" export --server "$BASE" --user bench \
        --password-stdin --parallel "$1" --json bench/disk "$out" \
        <<<"$PASSWORD" >"$WORK/export.json" 2>>"$WORK/export.log"
    t1=$(now)
    local got
    got=$(jq -r 'select(.event == "summary") | .files[0].sha256' "$WORK/export.json")
    [[ "$got" == "$SHA" ]] || { echo "export summary: $got, want $SHA" >&2; exit 1; }
    cmp -s <(sha256sum <"$out/disk.bin" | cut -d' ' -f1) <(echo "$SHA") || {
        echo "exported file differs" >&2
        exit 1
    }
    rm -rf "$out"
    echo "$(secs "$t0" "$t1") $(cat "$WORK/rss") $(jq -r 'select(.event == "summary") | .files[0].connections' "$WORK/export.json")"
}

for run in $(seq 1 "$RUNS"); do
    rm -f "$WORK/curl.out"
    sync
    t0=$(now)
    curl -sf -o "$WORK/curl.out" "$URI"
    t1=$(now)
    CURL+=("$(secs "$t0" "$t1")")
    openssl dgst -sha256 "$WORK/curl.out" >/dev/null # warm the cache for the timed read
    t0=$(now)
    got=$(openssl dgst -sha256 -r "$WORK/curl.out" | cut -d' ' -f1)
    t1=$(now)
    [[ "$got" == "$SHA" ]] || { echo "curl download differs" >&2; exit 1; }
    OPENSSL+=("$(secs "$t0" "$t1")")
    rm -f "$WORK/curl.out"

    # Alternate which export goes first: whatever the previous step left
    # (freed page cache, writeback) should not always hit the same one.
    order="4 1"
    ((run % 2 == 0)) && order="1 4"
    for p in $order; do
        export_run "$p" >"$WORK/run"
        read -r s rss conns <"$WORK/run"
        if [[ $p == 4 ]]; then P4+=("$s") RSS4+=("$rss") C4=$conns; else P1+=("$s") RSS1+=("$rss"); fi
    done
    say "run $run: curl ${CURL[-1]}s, openssl ${OPENSSL[-1]}s, export -p4 ${P4[-1]}s ($C4 connection(s)), export -p1 ${P1[-1]}s"
done

B_CURL=$(echo "${CURL[*]}" | best)
B_SSL=$(echo "${OPENSSL[*]}" | best)
B_P4=$(echo "${P4[*]}" | best)
B_P1=$(echo "${P1[*]}" | best)
REF=$(awk -v a="$B_CURL" -v b="$B_SSL" 'BEGIN { print (a > b) ? a : b }')
rate() { awk -v s="$1" -v n="$((SIZE_MIB << 20))" 'BEGIN { printf "%.2f GB/s", n / s / 1e9 }'; }
ratio() { awk -v s="$1" -v r="$REF" 'BEGIN { printf "%.2fx", s / r }'; }

echo
echo "file:                 ${SIZE_MIB} MiB, best of $RUNS runs (all runs: see above)"
echo "curl -o FILE:         ${B_CURL}s  $(rate "$B_CURL")"
echo "openssl dgst -sha256: ${B_SSL}s  $(rate "$B_SSL")"
echo "export --parallel 4:  ${B_P4}s  $(rate "$B_P4")  $(ratio "$B_P4") of the slower reference (target <= 1.25x)  max RSS $(echo "${RSS4[*]}" | tr ' ' '\n' | sort -n | tail -n 1) KiB"
echo "export --parallel 1:  ${B_P1}s  $(rate "$B_P1")  $(ratio "$B_P1") of the slower reference  max RSS $(echo "${RSS1[*]}" | tr ' ' '\n' | sort -n | tail -n 1) KiB"
