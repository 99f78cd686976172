#!/usr/bin/env bash
# Database work per 1,000 requests: rows written (pg_stat_user_tables: inserts,
# updates and deletes) and transactions of any kind (pg_stat_database: commits
# and rollbacks) while wrk sends one request over and over, minus what the same
# database does idle for as long (maintenance, probes, worker polls, these
# very measurements).
#
#   benches/db-writes.sh DATABASE URL [HEADER]
#   benches/db-writes.sh dls_bench_1 http://127.0.0.1:18431/cls/data/TOKEN/f.bin
#   benches/db-writes.sh dls_bench_1 "$DS/$SID/file?file_name=f.bin" "vmware-api-session-id: $T"
#
# Environment: DURATION (seconds of load, and of the idle baseline; default 10),
# CONNECTIONS (50), THREADS (2), PGHOST/PGPORT (127.0.0.1:5432, user postgres).
# Prints a human summary on stderr and one line on stdout that scripts parse:
#   db-writes requests=N req_per_s=X rows_per_1000=Y xacts_per_1000=Z xacts_per_s=W
# (xacts_per_s: the database's transactions per second under the load: the
# load's own per second of load, plus the idle rate.)
# Needs: wrk, psql.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
DB=$1
URL=$2
HEADER=${3:-}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
# A backend publishes its statistics when idle, but at most once a second: what
# it counted within a second of its last report waits for the idle timer
# (PostgreSQL 15: 10 s). Wait that out after each window, so that nothing of
# one window is counted in the next.
SETTLE=${SETTLE:-11}

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres -d "$DB" -c "$1"; }

# "transactions rows" of the database right now.
snapshot() {
    sql "SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database())
             || ' ' ||
            (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables)"
}

say() { printf '==> %s\n' "$*" >&2; }

say "idle baseline: ${DURATION}s (after ${SETTLE}s for earlier statistics to arrive)"
sleep "$SETTLE"
read -r x0 r0 <<<"$(snapshot)"
sleep "$DURATION"
sleep "$SETTLE"
read -r x1 r1 <<<"$(snapshot)"

say "load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s $URL"
args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s")
[[ -n "$HEADER" ]] && args+=(-H "$HEADER")
read -r x2 r2 <<<"$(snapshot)"
out=$(wrk "${args[@]}" "$URL")
sleep "$SETTLE"
read -r x3 r3 <<<"$(snapshot)"
echo "$out" | sed 's/^/    /' >&2

requests=$(echo "$out" | awk '/requests in/ {print $1}')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
if [[ -n "$non2xx" ]]; then
    say "warning: $non2xx answers were not 2xx"
fi
awk -v n="$requests" -v rps="$rps" \
    -v d="$DURATION" -v settle="$SETTLE" -v ix=$((x1 - x0)) -v ir=$((r1 - r0)) -v lx=$((x3 - x2)) -v lr=$((r3 - r2)) '
BEGIN {
    xacts = lx - ix; rows = lr - ir
    if (xacts < 0) xacts = 0
    if (rows < 0) rows = 0
    printf "==> idle: %d transactions, %d rows written; under load: %d transactions, %d rows\n", ix, ir, lx, lr > "/dev/stderr"
    printf "==> %d requests (%.0f/s): %.2f rows written and %.2f transactions per 1,000 requests\n", n, rps, rows * 1000 / n, xacts * 1000 / n > "/dev/stderr"
    printf "db-writes requests=%d req_per_s=%.0f rows_per_1000=%.2f xacts_per_1000=%.2f xacts_per_s=%.1f\n", n, rps, rows * 1000 / n, xacts * 1000 / n, xacts / d + ix / (d + settle)
}'
