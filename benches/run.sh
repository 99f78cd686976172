#!/usr/bin/env bash
# Every figure of the hot-path table (issue 10), each beside its reference
# measured in the same run on the same machine, with the ratio and the goal:
#
#   file get (GET .../file?file_name=, wrk)     vs pgbench -S over TCP
#   1 KiB download through /cls/data (wrk)      vs nginx serving the same file
#   peak RSS, 20 concurrent 1 GiB downloads     (goal <= 64 MiB), and with one
#   RSS after 50 clients that stopped reading    (a small floor)
#   staging 1 GiB (prepare -> PREPARED)         vs the slower of openssl SHA-256
#                                                  and dd conv=fsync of the file
#   1 GiB download (curl)                       vs nginx, best of sendfile on/off
#   prepare -> PREPARED p50, staged / new 1 KiB (goals 10 / 50 ms)
# plus database rows written and transactions per 1,000 file gets and per
# 1,000 1 KiB downloads (pg_stat_*, idle baseline subtracted: db-writes.sh).
#
#   benches/run.sh
#   DURATION=20 SIZE_MIB=2048 benches/run.sh
#
# Release build, fresh database, one `serve` at its defaults (log level info,
# written to a file). Before timing anything it writes and deletes a scratch
# file (WARM_MIB, default 3072): this VM backs memory it never used lazily,
# and the first write into it is ~6x slower for any writer.
# Needs: PostgreSQL as user postgres (PGHOST/PGPORT, default 127.0.0.1:5432),
# psql, pgbench, curl, jq, openssl, python3; wrk and nginx are installed from
# Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
SIZE_MIB=${SIZE_MIB:-1024}
WARM_MIB=${WARM_MIB:-3072}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PORT=${PORT:-18491}
NGINX_PORT=${NGINX_PORT:-18492}
export DURATION CONNECTIONS THREADS PGHOST PGPORT

missing=()
for tool in wrk nginx; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for tool in psql pgbench curl jq openssl python3 wrk nginx; do
    command -v "$tool" >/dev/null || { echo "benches/run.sh needs $tool" >&2; exit 2; }
done

DB="dls_run_$$_${RANDOM}"
PGB_DB="dls_pgbench_$$_${RANDOM}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dls-run.XXXXXX")
# nginx workers run as an unprivileged user: they must reach the files.
chmod 755 "$WORK"
PASSWORD="bench-$RANDOM-$RANDOM"
SERVER_PID=""
NGINX_PID=""

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }
say() { printf '==> %s\n' "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
stop_nginx() {
    if [[ -n $NGINX_PID ]]; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=""
    fi
}
cleanup() {
    stop_server
    stop_nginx
    psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$DB\"" >/dev/null 2>&1 || true
    psql_admin -d postgres -c "DROP DATABASE IF EXISTS \"$PGB_DB\"" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say "building the release binary"
cargo build --release --quiet
BIN=$PWD/target/release/download-sessions

say "warming memory: writing and deleting ${WARM_MIB} MiB"
dd if=/dev/zero of="$WORK/scratch" bs=4M count=$((WARM_MIB / 4)) conv=fsync status=none
rm -f "$WORK/scratch"

# ------------------------------------------------------------------ content
mkdir -p "$WORK/www"
head -c 1024 /dev/urandom >"$WORK/www/small.bin"
head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$WORK/www/big.bin"
BYTES=$((SIZE_MIB * 1048576))
sync

psql_admin -d postgres -c "CREATE DATABASE \"$DB\"" >/dev/null
export DATABASE_URL="postgres://postgres@${PGHOST}:${PGPORT}/${DB}"
export DLS__DATA_DIR="$WORK/data"
export DLS__HTTP__LISTEN="127.0.0.1:$PORT"
export DLS__HTTP__PUBLIC_URL="http://127.0.0.1:$PORT"
export DLS__LOG__FORMAT=json
export DLS__LOG__LEVEL=info
# Between staging runs the artifact is collected, so every run really copies.
export DLS__MAINTENANCE__INTERVAL_SECONDS=1
export DLS__MAINTENANCE__ARTIFACT_GRACE_SECONDS=0

"$BIN" migrate >"$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log" >&2; exit 1; }
"$BIN" user add bench --password-stdin \
    --privilege System.Read --privilege ContentLibrary.DownloadSession <<<"$PASSWORD" 2>>"$WORK/setup.log"
SMALL=$("$BIN" import --library bench --item small "$WORK/www/small.bin" 2>>"$WORK/setup.log" | tail -n 1)
BIG=$("$BIN" import --library bench --item big "$WORK/www/big.bin" 2>>"$WORK/setup.log" | tail -n 1)
sync

BASE="http://127.0.0.1:$PORT"
DS="$BASE/api/content/library/item/download-session"

start_server() {
    "$BIN" serve >>"$WORK/serve.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        curl -sf -o /dev/null "$BASE/readyz" && return 0
        sleep 0.05
    done
    tail -n 20 "$WORK/serve.log" >&2
    exit 1
}
login() { TOKEN=$(curl -sf -X POST -u "bench:$PASSWORD" "$BASE/api/session" | jq -r .); }
api() { curl -sf -H "vmware-api-session-id: $TOKEN" -H 'content-type: application/json' "$@"; }
new_session() { api -X POST -d "{\"library_item_id\":\"$1\"}" "$DS" | jq -r .; }
# prepare SESSION FILE: prepares and waits; prints the download URI.
prepare() {
    local info
    api -X POST -d "{\"file_name\":\"$2\"}" "$DS/$1/file?action=prepare" >/dev/null
    for _ in $(seq 1 6000); do
        info=$(api "$DS/$1/file?file_name=$2")
        case $(jq -r .status <<<"$info") in
            PREPARED) jq -r .download_endpoint.uri <<<"$info"; return 0 ;;
            ERROR) echo "prepare of $2 failed: $info" >&2; exit 1 ;;
        esac
        sleep 0.01
    done
    echo "prepare of $2 did not finish" >&2
    exit 1
}
# rss_of PID FIELD: VmHWM (peak) or VmRSS, in MiB.
rss_of() { awk -v f="$2:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# nginx serving $WORK/www on NGINX_PORT; SENDFILE on|off.
start_nginx() {
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile $1;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
    }
}
EOF
    nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
    NGINX_PID=$!
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/small.bin" && return 0
        sleep 0.05
    done
    cat "$WORK/nginx/error.log" >&2
    exit 1
}
wrk_rps() {
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$@" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }'
}
# best_rate URL: best of 3 whole downloads with curl, in MB/s.
best_rate() {
    local best=0 r
    for _ in 1 2 3; do
        r=$(curl -sf -o /dev/null -w '%{speed_download}' "$1")
        best=$(awk -v a="$best" -v b="$r" 'BEGIN { print (b > a ? b : a) }')
    done
    awk -v b="$best" 'BEGIN { printf "%.0f", b / 1e6 }'
}

declare -A OURS REF RATIO GOAL MET NOTE
# row KEY OURS REF RATIO GOAL MET NOTE
row() { OURS[$1]=$2; REF[$1]=$3; RATIO[$1]=$4; GOAL[$1]=$5; MET[$1]=$6; NOTE[$1]=${7:-}; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
atleast() { awk -v a="$1" -v g="$2" 'BEGIN { print (a >= g ? "yes" : "NO") }'; }
atmost() { awk -v a="$1" -v g="$2" 'BEGIN { print (a <= g ? "yes" : "NO") }'; }

# --------------------------------------------------------- file get, 1 KiB
start_server
login
S1=$(new_session "$SMALL")
URI_SMALL=$(prepare "$S1" small.bin)
[[ $(curl -sf "$URI_SMALL" | wc -c) == 1024 ]]

say "file get: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, with database writes per 1,000"
line=$(benches/db-writes.sh "$DB" "$DS/$S1/file?file_name=small.bin" "vmware-api-session-id: $TOKEN")
field() { sed -E "s/.* $1=([0-9.]+).*/\1/" <<<" $2"; }
GET_RPS=$(field req_per_s "$line")
GET_ROWS=$(field rows_per_1000 "$line")
GET_XACTS=$(field xacts_per_1000 "$line")

say "1 KiB download: wrk, with database transactions per 1,000"
line=$(benches/db-writes.sh "$DB" "$URI_SMALL")
DL_RPS=$(field req_per_s "$line")
DL_ROWS=$(field rows_per_1000 "$line")
DL_XACTS=$(field xacts_per_1000 "$line")

say "reference: pgbench -S -c16 -j2 over TCP"
psql_admin -d postgres -c "CREATE DATABASE \"$PGB_DB\"" >/dev/null
pgbench -q -i -s 10 -h "$PGHOST" -p "$PGPORT" -U postgres "$PGB_DB" >/dev/null 2>&1
PGB_TPS=$(pgbench -S -c16 -j2 -T "$DURATION" -h "$PGHOST" -p "$PGPORT" -U postgres "$PGB_DB" 2>/dev/null |
    awk '/^tps/ { printf "%.0f", $3; exit }')

say "reference: nginx serving the same 1 KiB file"
start_nginx on
NGINX_SMALL=$(wrk_rps "http://127.0.0.1:$NGINX_PORT/small.bin")
stop_nginx

r=$(pct "$GET_RPS" "$PGB_TPS")
row get "$GET_RPS req/s" "pgbench -S: $PGB_TPS tps" "$r%" ">= 40%" "$(atleast "$r" 40)"
r=$(pct "$DL_RPS" "$NGINX_SMALL")
row small "$DL_RPS req/s" "nginx: $NGINX_SMALL req/s" "$r%" ">= 50%" "$(atleast "$r" 50)"
row getrows "$GET_ROWS rows, $GET_XACTS xacts" "-" "-" "<= 10 rows" "$(atmost "$GET_ROWS" 10)"
row dlx "$DL_XACTS xacts, $DL_ROWS rows" "-" "-" "<= 10 xacts" "$(atmost "$DL_XACTS" 10)"

# ------------------------------------------------------ prepare latencies
say "prepare -> PREPARED: 30 sessions on staged content, 30 on new 1 KiB files"
mkdir -p "$WORK/new"
NEW_ITEMS=()
for i in $(seq 1 30); do
    head -c 1024 /dev/urandom >"$WORK/new/n$i.bin"
    NEW_ITEMS+=("$("$BIN" import --library bench --item "new-$i" "$WORK/new/n$i.bin" 2>>"$WORK/setup.log" | tail -n 1)")
done
# One Python process times the API calls (no process start per poll).
read -r P50_STAGED P50_NEW < <(python3 - "$BASE" "$TOKEN" "$SMALL" "${NEW_ITEMS[@]}" <<'PY'
import http.client, json, statistics, sys, time
base, token, staged, new = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
host, port = base.split("//")[1].split(":")
conn = http.client.HTTPConnection(host, int(port))
H = {"vmware-api-session-id": token, "content-type": "application/json"}
DS = "/api/content/library/item/download-session"
def call(method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=H)
    r = conn.getresponse(); data = r.read()
    if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {data!r}")
    return json.loads(data) if data else None
def once(item, name):
    sid = call("POST", DS, {"library_item_id": item})
    t0 = time.perf_counter()
    call("POST", f"{DS}/{sid}/file?action=prepare", {"file_name": name})
    while True:
        st = call("GET", f"{DS}/{sid}/file?file_name={name}")["status"]
        if st == "PREPARED": break
        if st == "ERROR": raise SystemExit(f"{name}: ERROR")
        time.sleep(0.0005)
    ms = (time.perf_counter() - t0) * 1000
    call("DELETE", f"{DS}/{sid}")
    return ms
staged_ms = [once(staged, "small.bin") for _ in range(30)]
new_ms = [once(item, f"n{i + 1}.bin") for i, item in enumerate(new)]
print(f"{statistics.median(staged_ms):.1f} {statistics.median(new_ms):.1f}")
PY
)
row pstaged "p50 $P50_STAGED ms" "-" "-" "<= 10 ms" "$(atmost "$P50_STAGED" 10)"
row pnew "p50 $P50_NEW ms" "-" "-" "<= 50 ms" "$(atmost "$P50_NEW" 50)"

# ---------------------------------------------------------------- staging
say "staging ${SIZE_MIB} MiB: 2 runs, against openssl SHA-256 and dd conv=fsync"
t0=$(now); openssl dgst -sha256 "$WORK/www/big.bin" >/dev/null; t1=$(now)
SHA_MBS=$(awk -v b="$BYTES" -v s="$(secs "$t0" "$t1")" 'BEGIN { printf "%.0f", b / s / 1e6 }')
t0=$(now); dd if="$WORK/www/big.bin" of="$WORK/copy.bin" bs=4M conv=fsync status=none; t1=$(now)
DD_MBS=$(awk -v b="$BYTES" -v s="$(secs "$t0" "$t1")" 'BEGIN { printf "%.0f", b / s / 1e6 }')
rm -f "$WORK/copy.bin"
sync
SLOWER=$((SHA_MBS < DD_MBS ? SHA_MBS : DD_MBS))
BEST_STAGE=0
for run in 1 2; do
    S=$(new_session "$BIG")
    prepare "$S" big.bin >/dev/null
    tp=$(grep '"file prepared"' "$WORK/serve.log" | tail -n 1 | jq -r '.fields.throughput_mb_s // .throughput_mb_s')
    BEST_STAGE=$(awk -v a="$BEST_STAGE" -v b="$tp" 'BEGIN { printf "%.0f", (b > a ? b : a) }')
    if ((run == 1)); then
        # A second session on this item would reuse the artifact: delete the
        # session and let maintenance collect it, so run 2 really copies.
        api -o /dev/null -X DELETE "$DS/$S"
        for _ in $(seq 1 200); do
            [[ -z $(ls -A "$WORK/data/transfer/artifacts" 2>/dev/null) ]] && break
            sleep 0.1
        done
        sync
    fi
done
r=$(pct "$BEST_STAGE" "$SLOWER")
row staging "$BEST_STAGE MB/s" "sha256 $SHA_MBS, dd conv=fsync $DD_MBS MB/s" "$r%" ">= 90%" "$(atleast "$r" 90)"

# ------------------------------------------------------- 1 GiB downloads
# The second run's session stays: its URI serves the downloads below.
URI_BIG=$(api "$DS/$S/file?file_name=big.bin" | jq -r .download_endpoint.uri)
say "one ${SIZE_MIB} MiB download, best of 3, against nginx (sendfile on and off)"
OUR_BIG=$(best_rate "$URI_BIG")
start_nginx on
NG_ON=$(best_rate "http://127.0.0.1:$NGINX_PORT/big.bin")
stop_nginx
start_nginx off
NG_OFF=$(best_rate "http://127.0.0.1:$NGINX_PORT/big.bin")
stop_nginx
NG_BEST=$((NG_ON > NG_OFF ? NG_ON : NG_OFF))
r=$(pct "$OUR_BIG" "$NG_BEST")
row big "$OUR_BIG MB/s" "nginx $NG_BEST MB/s (sendfile on $NG_ON, off $NG_OFF)" "$r%" ">= 95%" "$(atleast "$r" 95)"

say "peak RSS: a fresh instance, then 1 and 20 concurrent ${SIZE_MIB} MiB downloads"
stop_server
start_server
IDLE=$(rss_of "$SERVER_PID" VmRSS)
curl -sf -o /dev/null "$URI_BIG"
ONE=$(rss_of "$SERVER_PID" VmHWM)
pids=()
for _ in $(seq 1 20); do
    curl -sf -o /dev/null "$URI_BIG" &
    pids+=($!)
done
wait "${pids[@]}"
TWENTY=$(rss_of "$SERVER_PID" VmHWM)
row rss20 "$TWENTY MiB peak" "idle $IDLE MiB, one download $ONE MiB" "-" "<= 64 MiB" "$(atmost "$TWENTY" 64)"

say "50 clients that stop reading"
BEFORE=$(rss_of "$SERVER_PID" VmRSS)
# Each client reads the head of the answer, then holds the connection.
python3 - "$URI_BIG" <<'PY' &
import socket, sys, time, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
socks = []
for _ in range(50):
    s = socket.create_connection((u.hostname, u.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n".encode())
    s.recv(1024)
    socks.append(s)
time.sleep(8)
PY
STALL_PID=$!
sleep 6
STALLED=$(rss_of "$SERVER_PID" VmRSS)
wait "$STALL_PID" || true
row stalled "$STALLED MiB with 50 stalled" "$BEFORE MiB before" "-" "small floor" \
    "$(atmost $((STALLED - BEFORE)) 16)" "+$((STALLED - BEFORE)) MiB"
stop_server

# ---------------------------------------------------------------- report
printf '\n%-38s %-26s %-48s %-7s %-12s %s\n' "figure" "ours" "reference, same run" "ratio" "goal" "met"
show() { printf '%-38s %-26s %-48s %-7s %-12s %s %s\n' "$1" "${OURS[$2]}" "${REF[$2]}" "${RATIO[$2]}" "${GOAL[$2]}" "${MET[$2]}" "${NOTE[$2]}"; }
show "file get (wrk -c$CONNECTIONS)" get
show "1 KiB download (wrk -c$CONNECTIONS)" small
show "db work per 1,000 file gets" getrows
show "db work per 1,000 1 KiB downloads" dlx
show "peak RSS, 20 x ${SIZE_MIB} MiB downloads" rss20
show "RSS, 50 clients that stopped reading" stalled
show "staging ${SIZE_MIB} MiB" staging
show "${SIZE_MIB} MiB download (curl)" big
show "prepare -> PREPARED, staged" pstaged
show "prepare -> PREPARED, new 1 KiB" pnew
echo "($(nproc) cores shared by wrk, the service and PostgreSQL; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
