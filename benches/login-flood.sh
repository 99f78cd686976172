#!/usr/bin/env bash
# Memory and answers of an instance under login floods (issue 11, item 1):
#  1. 200 concurrent logins with random unknown user names: peak RSS, RSS a few
#     seconds later against before, answers by status, slowest answer;
#  2. 600 ordinary logins of one real user, 8 at a time: RSS growth;
#  3. a burst of 60 parallel wrong passwords for that user from one client:
#     how many were answered in the first 5 s (goal: at most ~10).
# Release build, fresh database, one `serve`; RSS sampled from /proc every 20 ms.
#
#   benches/login-flood.sh
#   FLOOD=400 benches/login-flood.sh
#
# Goals: flood peak RSS <= 200 MiB and back within 64 MiB of before; every
# request answered within 30 s; ordinary logins grow RSS by a few tens of MiB at most.
# Needs: PostgreSQL as user postgres (PGHOST/PGPORT, default 127.0.0.1:5432), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

FLOOD=${FLOOD:-200}
ORDINARY=${ORDINARY:-600}
ORDINARY_PARALLEL=${ORDINARY_PARALLEL:-8}
PORT=${PORT:-18491}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}

DB="dls_flood_$$_${RANDOM}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dls-flood.XXXXXX")
PASSWORD="bench-$RANDOM-$RANDOM"
SERVER_PID=""
SAMPLER_PID=""

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }
say() { printf '==> %s\n' "$*" >&2; }
cleanup() {
    [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null || true
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
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
export DLS__LOG__FORMAT=json
export DLS__LOG__LEVEL=${DLS__LOG__LEVEL:-error}
"$BIN" user add bench --password-stdin --privilege System.Read <<<"$PASSWORD"

"$BIN" serve >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:${PORT}/readyz" && break
    sleep 0.1
done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
# Peak RSS between marks: the sampler writes the running maximum to a file.
sample() {
    local peak=0 now
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        now=$(rss_kib)
        ((now > peak)) && peak=$now && echo "$peak" >"$WORK/peak"
        [[ -f "$WORK/reset" ]] && rm -f "$WORK/reset" && peak=0
        sleep 0.02
    done
}
peak_since_reset() { cat "$WORK/peak" 2>/dev/null || rss_kib; }
reset_peak() { rss_kib >"$WORK/peak"; touch "$WORK/reset"; sleep 0.1; }
sample &
SAMPLER_PID=$!
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }

# logins N PARALLEL USER_MODE: N logins, PARALLEL at a time; prints status counts and the slowest.
logins() {
    python3 - "$1" "$2" "$3" "$PORT" "$PASSWORD" <<'EOF'
import base64, collections, concurrent.futures, http.client, random, string, sys, time
n, parallel, mode, port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]

def one(_):
    if mode == "unknown":
        user = "".join(random.choices(string.ascii_lowercase, k=12))
        pw = "x"
    elif mode == "guess":
        user, pw = "bench", "guess-" + str(random.random())
    else:
        user, pw = "bench", password
    auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
    start = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/api/session", headers={"Authorization": "Basic " + auth})
        r = c.getresponse()
        r.read()
        status = r.status
        retry = r.getheader("Retry-After")
        c.close()
    except Exception as e:
        status, retry = type(e).__name__, None
    return status, retry, time.monotonic() - start

with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
    results = list(pool.map(one, range(n)))
counts = collections.Counter(r[0] for r in results)
slowest = max(r[2] for r in results)
no_retry = sum(1 for r in results if r[0] == 503 and not r[1])
early = sum(1 for r in results if r[2] <= 5.0)
print(" ".join(f"{k}:{v}" for k, v in sorted(counts.items(), key=str)), f"slowest={slowest:.2f}s",
      f"503_without_retry_after={no_retry}", f"answered_in_5s={early}")
EOF
}

# Warm up: the first requests allocate pools, the verifier's threads, TLS-free buffers.
logins 8 4 known >/dev/null
sleep 1
BEFORE=$(rss_kib)
say "RSS before the flood: $(mib "$BEFORE")"

reset_peak
say "flood: $FLOOD concurrent logins with random unknown names"
FLOOD_RESULT=$(logins "$FLOOD" "$FLOOD" unknown)
PEAK=$(peak_since_reset)
sleep 5
AFTER=$(rss_kib)

reset_peak
say "ordinary: $ORDINARY logins of one user, $ORDINARY_PARALLEL at a time"
BEFORE_ORD=$(rss_kib)
ORD_RESULT=$(logins "$ORDINARY" "$ORDINARY_PARALLEL" known)
PEAK_ORD=$(peak_since_reset)
sleep 2
AFTER_ORD=$(rss_kib)

say "guessing: 60 parallel wrong passwords for one user from one client"
GUESS_RESULT=$(logins 60 60 guess)

echo
echo "login flood ($FLOOD concurrent, unknown names): $FLOOD_RESULT"
echo "  RSS before $(mib "$BEFORE"), peak $(mib "$PEAK") (goal <= 200 MiB), 5 s after $(mib "$AFTER")" \
    "($(awk -v a="$AFTER" -v b="$BEFORE" 'BEGIN { printf "%+.0f MiB", (a - b) / 1024 }'); goal within 64 MiB)"
echo "ordinary logins ($ORDINARY, $ORDINARY_PARALLEL at a time): $ORD_RESULT"
echo "  RSS before $(mib "$BEFORE_ORD"), peak $(mib "$PEAK_ORD"), after $(mib "$AFTER_ORD")" \
    "($(awk -v a="$PEAK_ORD" -v b="$BEFORE_ORD" 'BEGIN { printf "%+.0f MiB", (a - b) / 1024 }') at the peak)"
echo "guessing (60 parallel wrong passwords, one user, one client): $GUESS_RESULT (goal: <= ~10 answered in 5 s)"
echo "(login.verify_threads default: one per core, at most 4; this machine: $(nproc) cores)"
