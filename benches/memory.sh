#!/usr/bin/env bash
# Download speed and memory under the read-ahead budget (http.download_buffer_bytes),
# each figure beside its reference measured in the same run:
#   - one 1 GiB download (curl over loopback) vs nginx serving the same file
#     (best of sendfile on and off), best of RUNS each: ratio, goal >= 95%;
#   - peak RSS of the server during 20 concurrent 1 GiB downloads (goal <= 64 MiB),
#     beside its idle RSS;
#   - RSS added by 50 clients that send a GET and never read (goal: a few MiB).
#
#   benches/memory.sh
#   SIZE_MIB=256 CONCURRENT=10 STALLED=20 benches/memory.sh
#
# Needs: PostgreSQL reachable as user postgres (PGHOST/PGPORT, default
# 127.0.0.1:5432), nginx, curl, jq, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
CONCURRENT=${CONCURRENT:-20}
STALLED=${STALLED:-50}
PORT=${PORT:-18441}
NGINX_PORT=${NGINX_PORT:-18442}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}

BASE="http://127.0.0.1:${PORT}"
DS="${BASE}/api/content/library/item/download-session"
DB="dls_mem_$$_${RANDOM}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dls-mem.XXXXXX")
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
say "writing a ${SIZE_MIB} MiB file of random bytes"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$FILE"
ITEM=$("$BIN" import --library bench --item disk "$FILE" | tail -n 1)
rm -f "$FILE"

"$BIN" serve >"$WORK/serve.log" 2>&1 &
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

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
gauge() { curl -s "$BASE/metrics" | awk '/^dls_download_buffer_bytes_in_use / { printf "%.1f MiB", $2 / 1048576 }'; }
# Best speed (bytes/s) of RUNS downloads of $1 that must bring SIZE_MIB MiB.
best_of() {
    local best=0 speed size code
    for _ in $(seq 1 "$RUNS"); do
        read -r speed size code < <(curl -s -o /dev/null -w '%{speed_download} %{size_download} %{http_code}\n' "$1")
        [[ "$code" == 200 && "$size" == "$((SIZE_MIB << 20))" ]] || { echo "$1: HTTP $code, $size bytes" >&2; exit 1; }
        best=$(awk -v a="$best" -v b="$speed" 'BEGIN { print (b > a) ? b : a }')
    done
    echo "$best"
}

nginx_best() {
    local sendfile=$1
    mkdir -p "$WORK/nginx-$sendfile"
    cat >"$WORK/nginx-$sendfile/nginx.conf" <<EOF
daemon off;
user $(id -un);
worker_processes 2;
pid $WORK/nginx-$sendfile/nginx.pid;
error_log $WORK/nginx-$sendfile/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile $sendfile;
    tcp_nopush on;
    client_body_temp_path $WORK/nginx-$sendfile;
    proxy_temp_path $WORK/nginx-$sendfile;
    fastcgi_temp_path $WORK/nginx-$sendfile;
    uwsgi_temp_path $WORK/nginx-$sendfile;
    scgi_temp_path $WORK/nginx-$sendfile;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $ARTIFACTS;
    }
}
EOF
    nginx -c "$WORK/nginx-$sendfile/nginx.conf" &
    NGINX_PID=$!
    for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break; sleep 0.1; done
    best_of "http://127.0.0.1:$NGINX_PORT/$SHA"
    kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
}

gbps() { awk -v b="$1" 'BEGIN { printf "%.2f GB/s", b / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }

say "warming the page cache"
cat "$ARTIFACTS/$SHA" >/dev/null
curl -s -o /dev/null "$URI"

say "one download: ours and nginx (sendfile on, off), best of $RUNS each"
OURS=$(best_of "$URI")
NGX_ON=$(nginx_best on)
NGX_OFF=$(nginx_best off)
NGX=$(awk -v a="$NGX_ON" -v b="$NGX_OFF" 'BEGIN { print (a > b) ? a : b }')

IDLE=$(rss_kib "$SERVER_PID")
say "$CONCURRENT concurrent downloads, RSS sampled every 20 ms"
PEAK=$IDLE
pids=()
for _ in $(seq 1 "$CONCURRENT"); do
    curl -s -o /dev/null "$URI" &
    pids+=($!)
done
while :; do
    running=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
    r=$(rss_kib "$SERVER_PID")
    ((r > PEAK)) && PEAK=$r
    ((running)) || break
    sleep 0.02
done
wait "${pids[@]}" 2>/dev/null || true
sleep 1
AFTER=$(rss_kib "$SERVER_PID")

say "$STALLED clients that never read"
BEFORE_STALL=$(rss_kib "$SERVER_PID")
python3 - "$URI" "$STALLED" "$WORK/stalled.ready" <<'EOF' &
import socket, sys, time, urllib.parse
uri, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
u = urllib.parse.urlsplit(uri)
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((u.hostname, u.port))
    s.sendall(f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\n\r\n".encode())
    socks.append(s)
open(ready, "w").close()
time.sleep(3600)
EOF
STALL_PID=$!
for _ in $(seq 1 100); do [[ -e "$WORK/stalled.ready" ]] && break; sleep 0.1; done
sleep 5
STALLED_RSS=$(rss_kib "$SERVER_PID")
STALLED_GAUGE=$(gauge)
kill "$STALL_PID"; wait "$STALL_PID" 2>/dev/null || true

echo
printf '%-44s %-14s %-30s %-7s %s\n' figure ours reference ratio goal
printf '%-44s %-14s %-30s %-7s %s\n' "1 download of ${SIZE_MIB} MiB" "$(gbps "$OURS")" \
    "nginx $(gbps "$NGX") (on $(gbps "$NGX_ON"), off $(gbps "$NGX_OFF"))" "$(ratio "$OURS" "$NGX")" ">= 95%"
printf '%-44s %-14s %-30s %-7s %s\n' "peak RSS, $CONCURRENT concurrent downloads" "$(mib "$PEAK") MiB" \
    "idle $(mib "$IDLE") MiB" "-" "<= 64 MiB"
printf '%-44s %-14s %-30s %-7s %s\n' "RSS added by $STALLED stalled clients" \
    "$(mib $((STALLED_RSS - BEFORE_STALL))) MiB" "before $(mib "$BEFORE_STALL") MiB" "-" "a few MiB"
echo "RSS after the concurrent downloads: $(mib "$AFTER") MiB; buffers held while stalled: $STALLED_GAUGE"
