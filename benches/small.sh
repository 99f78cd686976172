#!/usr/bin/env bash
# Small downloads: req/s of a 1 KiB file through /cls/data (wrk -t2 -c50) beside
# nginx serving the same file in the same run (goal >= 50%). With PERF=1 the
# server runs under `perf record -g` and the top of `perf report` is printed:
# where a request's time goes.
#
#   benches/small.sh
#   DURATION=20 PERF=1 benches/small.sh
#
# Needs: PostgreSQL reachable as user postgres (PGHOST/PGPORT, default
# 127.0.0.1:5432), nginx, wrk, curl, jq; perf for PERF=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
PERF=${PERF:-0}
PORT=${PORT:-18451}
NGINX_PORT=${NGINX_PORT:-18452}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}

BASE="http://127.0.0.1:${PORT}"
DS="${BASE}/api/content/library/item/download-session"
DB="dls_small_$$_${RANDOM}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dls-small.XXXXXX")
PASSWORD="bench-$RANDOM-$RANDOM"
SERVER_PID=""
NGINX_PID=""

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }
say() { printf '==> %s\n' "$*" >&2; }

cleanup() {
    for pid in $SERVER_PID $NGINX_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
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
export DLS__HTTP__LISTEN="127.0.0.1:${PORT}"
export DLS__HTTP__MAX_CONNECTIONS=4096
export DLS__LOG__FORMAT=json
export DLS__LOG__LEVEL=${DLS__LOG__LEVEL:-warn}

"$BIN" user add bench --password-stdin \
    --privilege System.Read --privilege ContentLibrary.DownloadSession <<<"$PASSWORD"
FILE="$WORK/disk.bin"
head -c 1024 /dev/urandom >"$FILE"
ITEM=$("$BIN" import --library bench --item disk "$FILE" | tail -n 1)
rm -f "$FILE"

if [[ "$PERF" == 1 ]]; then
    perf record -F 299 --call-graph dwarf,8192 -o "$WORK/perf.data" -- "$BIN" serve >"$WORK/serve.log" 2>&1 &
else
    "$BIN" serve >"$WORK/serve.log" 2>&1 &
fi
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "$BASE/healthz" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
done
TOKEN=$(curl -sf -X POST -u "bench:$PASSWORD" "$BASE/api/session" | jq -r .)
api() { curl -sf -H "vmware-api-session-id: $TOKEN" -H 'content-type: application/json' "$@"; }
SESSION=$(api -X POST -d "{\"library_item_id\":\"$ITEM\"}" "$DS" | jq -r .)
api -X POST -d '{"file_name":"disk.bin"}' "$DS/$SESSION/file?action=prepare" >/dev/null
for _ in $(seq 1 600); do
    INFO=$(api "$DS/$SESSION/file?file_name=disk.bin")
    [[ $(jq -r .status <<<"$INFO") == PREPARED ]] && break
    sleep 0.5
done
[[ $(jq -r .status <<<"$INFO") == PREPARED ]] || { echo "not prepared: $INFO" >&2; exit 1; }
URI=$(jq -r .download_endpoint.uri <<<"$INFO")
SHA=$(jq -r .checksum_info.checksum <<<"$INFO")
ARTIFACTS="$DLS__DATA_DIR/transfer/artifacts"


wrk_rps() { wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$1" | awk '/^Requests\/sec/ { print $2 }'; }

cat >"$WORK/nginx.conf" <<EOF
daemon off;
user $(id -un);
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $WORK;
    proxy_temp_path $WORK;
    fastcgi_temp_path $WORK;
    uwsgi_temp_path $WORK;
    scgi_temp_path $WORK;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $ARTIFACTS;
    }
}
EOF
nginx -c "$WORK/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break; sleep 0.1; done

say "wrk -t2 -c$CONNECTIONS -d${DURATION}s: ours, then nginx"
OURS=$(wrk_rps "$URI")
NGX=$(wrk_rps "http://127.0.0.1:$NGINX_PORT/$SHA")
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true
NGINX_PID=""
echo
printf '%-36s %-14s %-24s %-7s %s\n' figure ours reference ratio goal
printf '%-36s %-14s %-24s %-7s %s\n' "1 KiB download (wrk -t2 -c$CONNECTIONS)" "$OURS req/s" "nginx $NGX req/s" \
    "$(awk -v a="$OURS" -v b="$NGX" 'BEGIN { printf "%.0f%%", 100 * a / b }')" ">= 50%"

if [[ "$PERF" == 1 ]]; then
    kill -INT "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    echo
    echo "self time by symbol (top 40):"
    perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -n 40 || true
    echo
    echo "inclusive time of our, actix's, tracing's and regex's functions (top 40):"
    perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | grep -i 'download_sessions\|actix\|tracing\|regex' | head -n 40 || true
    echo
    echo "who runs regexes (callers of regex_lite's search):"
    perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio -G \
        --symbol-filter=PikeVM::search 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 60 || true
fi
