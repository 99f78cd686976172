#!/usr/bin/env bash
# Scale-out, measured: one instance vs two on one database, each behind HAProxy
# configured as deploy/haproxy.cfg (round robin, /readyz checks; run natively,
# servers on 127.0.0.1). For file gets (GET .../file?file_name=) and 1 KiB
# downloads (/cls/data/...) it prints aggregate req/s (wrk), the database's
# commits/s at that load, and rows written and transactions per 1,000 requests
# (benches/db-writes.sh, idle baseline subtracted), then the two/one ratios.
#
#   benches/scale-out.sh
#   DURATION=20 CONNECTIONS=100 benches/scale-out.sh
#
# Everything runs on this machine: wrk, HAProxy, the instances and PostgreSQL
# share its cores, so on a small machine two instances cannot be faster than
# one; read the ratios, and the database figures, which do not depend on that.
# Needs: PostgreSQL as user postgres (PGHOST/PGPORT, default 127.0.0.1:5432),
# haproxy, wrk, curl, jq, psql.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
LB_PORT=${LB_PORT:-18480}
PORT_A=${PORT_A:-18481}
PORT_B=${PORT_B:-18482}
export DURATION CONNECTIONS THREADS PGHOST PGPORT

DB="dls_scale_$$_${RANDOM}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dls-scale.XXXXXX")
PASSWORD="bench-$RANDOM-$RANDOM"
PIDS=()

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }
say() { printf '==> %s\n' "$*" >&2; }

stop_all() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
cleanup() {
    stop_all
    psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$DB\"" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say "building release binary"
cargo build --release --quiet
BIN=$PWD/target/release/download-sessions

psql_admin -d postgres -c "CREATE DATABASE \"$DB\"" >/dev/null
export DATABASE_URL="postgres://postgres@${PGHOST}:${PGPORT}/${DB}"
export DLS__DATA_DIR="$WORK/data"
export DLS__LOG__FORMAT=json
export DLS__LOG__LEVEL=${DLS__LOG__LEVEL:-warn}
# Both instances sign and verify alike (the generated key is in the database)
# and build URIs through the balancer.
export DLS__HTTP__PUBLIC_URL="http://127.0.0.1:${LB_PORT}"

"$BIN" user add bench --password-stdin \
    --privilege System.Read --privilege ContentLibrary.DownloadSession <<<"$PASSWORD"
head -c 1024 /dev/urandom >"$WORK/small.bin"
ITEM=$("$BIN" import --library bench --item small "$WORK/small.bin" | tail -n 1)

# start_instance PORT: a `serve` on 127.0.0.1:PORT, ready when /readyz is 200.
start_instance() {
    DLS__HTTP__LISTEN="127.0.0.1:$1" "$BIN" serve >"$WORK/serve-$1.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$1/readyz" && return 0
        sleep 0.1
    done
    cat "$WORK/serve-$1.log" >&2
    exit 1
}

# start_balancer PORT...: HAProxy as deploy/haproxy.cfg, without Docker's resolver.
start_balancer() {
    local cfg="$WORK/haproxy.cfg" n=0
    sed -e '/^resolvers docker/,/^$/d' \
        -e '/^    log /d' -e '/option httplog/d' \
        -e "s/bind :8080/bind 127.0.0.1:${LB_PORT}/" \
        -e 's/ resolvers docker init-addr last,libc,none//' \
        -e '/^    server app-/d' deploy/haproxy.cfg >"$cfg"
    for port in "$@"; do
        n=$((n + 1))
        echo "    server app-$n 127.0.0.1:$port" >>"$cfg"
    done
    haproxy -c -q -f "$cfg"
    haproxy -f "$cfg" &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:${LB_PORT}/readyz" && return 0
        sleep 0.1
    done
    exit 1
}

BASE="http://127.0.0.1:${LB_PORT}"
DS="$BASE/api/content/library/item/download-session"

# prepare_session: logs in, creates a session, prepares small.bin; sets TOKEN, SESSION, URI.
prepare_session() {
    TOKEN=$(curl -sf -X POST -u "bench:$PASSWORD" "$BASE/api/session" | jq -r .)
    api() { curl -sf -H "vmware-api-session-id: $TOKEN" -H 'content-type: application/json' "$@"; }
    SESSION=$(api -X POST -d "{\"library_item_id\":\"$ITEM\"}" "$DS" | jq -r .)
    api -X POST -d '{"file_name":"small.bin"}' "$DS/$SESSION/file?action=prepare" >/dev/null
    for _ in $(seq 1 200); do
        INFO=$(api "$DS/$SESSION/file?file_name=small.bin")
        [[ $(jq -r .status <<<"$INFO") == PREPARED ]] && break
        sleep 0.1
    done
    URI=$(jq -r .download_endpoint.uri <<<"$INFO")
    [[ "$URI" == http* ]] || { echo "not prepared: $INFO" >&2; exit 1; }
    [[ $(curl -sf "$URI" | wc -c) == 1024 ]]
}

# measure LABEL URL [HEADER]: db-writes.sh through the balancer.
declare -A RPS XPS ROWS XACTS
measure() {
    local label=$1 url=$2 header=${3:-} line
    line=$(benches/db-writes.sh "$DB" "$url" "$header")
    field() { sed -E "s/.* $1=([0-9.]+).*/\1/" <<<" $line"; }
    RPS[$label]=$(field req_per_s)
    ROWS[$label]=$(field rows_per_1000)
    XACTS[$label]=$(field xacts_per_1000)
    XPS[$label]=$(field xacts_per_s)
}

run_config() {
    local n=$1
    measure "get-$n" "$DS/$SESSION/file?file_name=small.bin" "vmware-api-session-id: $TOKEN"
    measure "dl-$n" "$URI"
}

say "one instance behind HAProxy"
start_instance "$PORT_A"
start_balancer "$PORT_A"
prepare_session
run_config 1
stop_all

say "two instances behind HAProxy"
start_instance "$PORT_A"
start_instance "$PORT_B"
start_balancer "$PORT_A" "$PORT_B"
run_config 2
stop_all

printf '\n%-22s %12s %12s %10s %14s %16s\n' "" "instances" "req/s" "xacts/s" "rows/1k req" "xacts/1k req"
for what in get dl; do
    name=$([[ $what == get ]] && echo "file get" || echo "1 KiB download")
    for n in 1 2; do
        printf '%-22s %12s %12s %10s %14s %16s\n' "$name" "$n" "${RPS[$what-$n]}" "${XPS[$what-$n]}" \
            "${ROWS[$what-$n]}" "${XACTS[$what-$n]}"
    done
    awk -v a="${RPS[$what-1]}" -v b="${RPS[$what-2]}" -v w="$name" \
        'BEGIN { printf "%-22s two/one req/s = %.2f\n", w, b / a }'
done
echo "(wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s through HAProxy; $(nproc) cores shared by wrk, HAProxy, the instances and PostgreSQL)"
