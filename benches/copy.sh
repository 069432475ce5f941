#!/usr/bin/env bash
# copy.sh - SQLite to PostgreSQL: rehearse copy against pgloader, with pg_restore as the floor.
#
# Usage:
#   eval "$(scripts/services.sh up postgres)"
#   benches/copy.sh                   # 2 tables of 1,000,000 rows (about 1.1 GB of SQLite)
#   ROWS=20000 benches/copy.sh        # a quick run
#
# Generates, with SQLite itself (a recursive CTE), an ipythonblocks-like table (grids: a
# timestamp, a boolean, short texts and two JSON text columns of a few hundred bytes) and a
# log-entries table (timestamp, level, logger, message, four integers), ROWS rows each. Then, in
# the same run, on the server of $REHEARSE_TEST_PG_URL, each into a fresh database:
#   1. `rehearse copy --from sqlite://... --to postgres://...` (release build, verified);
#   2. `pgloader sqlite://... postgresql://...` (installed from Debian when missing, as root);
#   3. the floor: `pg_dump -Fd` of rehearse's result, then `pg_restore -j 2` of it, timed.
# Wall time and peak RSS come from GNU time (the `time` package, installed when missing). Prints
# tool | rows | seconds | rows/s | peak RSS MB, then the ratios and whether the targets are met:
# rehearse at least 2x pgloader's rows/s, within 1.5x of the pg_restore floor, peak RSS under
# 150 MB. It never fails on a missed target (figures depend on the machine); it fails when a tool
# fails or loads a wrong number of rows.
#
# Environment:
#   ROWS           rows per table (default 1000000)
#   BENCH_DIR      where the SQLite file and the dump go (default: a new folder under $TMPDIR,
#                  removed at the end)
#   KEEP=1         keep BENCH_DIR and the three databases (bench_copy_rehearse, _pgloader, _restore)
#   REHEARSE_ARGS  extra arguments for rehearse copy (for example "--batch 5000")
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-1000000}
KEEP=${KEEP:-0}
PG_URL=${REHEARSE_TEST_PG_URL:?set REHEARSE_TEST_PG_URL (eval "\$(scripts/services.sh up postgres)")}
SERVER=${PG_URL%/*}

log() { printf 'copy.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_package() { # need_package COMMAND PACKAGE
    command -v "$1" >/dev/null && return
    [[ $(id -u) -eq 0 ]] || die "$1 is missing: apt-get install $2"
    log "installing $2 from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need_package sqlite3 sqlite3
need_package pgloader pgloader
need_package psql postgresql-client
[[ -x /usr/bin/time ]] || { need_package /usr/bin/time time; }

if [[ -n ${BENCH_DIR:-} ]]; then
    mkdir -p "$BENCH_DIR"
    WORK=$BENCH_DIR
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/rehearse-copy-bench.XXXXXX")
fi
DBS=(bench_copy_rehearse bench_copy_pgloader bench_copy_restore)
cleanup() {
    [[ $KEEP == 1 ]] && { log "kept $WORK and databases ${DBS[*]}"; return; }
    for db in "${DBS[@]}"; do psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
    if [[ -n ${BENCH_DIR:-} ]]; then rm -rf "$WORK/source.db" "$WORK/dump"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Quiet psql: no NOTICE for a database that does not exist yet.
export PGOPTIONS="-c client_min_messages=warning"

fresh_db() {
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
    printf '%s/%s' "$SERVER" "$1"
}

# --- the source ------------------------------------------------------------------------------
SRC=$WORK/source.db
rm -f "$SRC"
log "generating $SRC: 2 tables of $ROWS rows"
started=$(date +%s.%N)
sqlite3 "$SRC" >/dev/null <<SQL
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA page_size = 8192;
CREATE TABLE grids (
    id INTEGER PRIMARY KEY,
    created timestamp NOT NULL,
    secret boolean NOT NULL,
    ipb_version varchar(20),
    python_version varchar(20),
    title text,
    grid_data text NOT NULL,
    code_cells text
);
CREATE TABLE log_entries (
    id INTEGER PRIMARY KEY,
    logged_at timestamp NOT NULL,
    level varchar(10) NOT NULL,
    logger text NOT NULL,
    message text NOT NULL,
    user_id integer,
    status integer NOT NULL,
    duration_ms integer NOT NULL,
    bytes integer
);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO grids
SELECT i,
       datetime(1420070400 + i * 37, 'unixepoch'),
       i % 5 = 0,
       printf('1.%d.%d', i % 10, i % 7),
       printf('3.%d.%d', 4 + i % 8, i % 13),
       CASE WHEN i % 3 = 0 THEN NULL ELSE printf('grid number %d: "%s"', i, substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 20, 6)) END,
       printf('{"width": 8, "height": 8, "lines_on": %s, "block_size": %d, "blocks": [%s, %s, %s, %s]}',
              CASE WHEN i % 2 THEN 'true' ELSE 'false' END, 10 + i % 30,
              rtrim(replace(printf('%.*c', 11, '_'), '_', printf('[%d, %d, %d], ', i % 256, (i * 7) % 256, (i * 13) % 256)), ', '),
              rtrim(replace(printf('%.*c', 11, '_'), '_', printf('[%d, %d, %d], ', (i + 1) % 256, (i * 3) % 256, (i * 5) % 256)), ', '),
              rtrim(replace(printf('%.*c', 11, '_'), '_', printf('[%d, %d, %d], ', (i * 11) % 256, (i + 9) % 256, (i * 17) % 256)), ', '),
              rtrim(replace(printf('%.*c', 11, '_'), '_', printf('[%d, %d, %d], ', (i * 19) % 256, (i * 23) % 256, (i + 99) % 256)), ', ')),
       CASE WHEN i % 4 = 0 THEN NULL ELSE
           printf('["from ipythonblocks import BlockGrid\\ngrid = BlockGrid(8, 8, fill=(%d, %d, %d))", "for block in grid:\\n    block.red = %d\\ngrid.show()  # run %d"]',
                  i % 256, (i * 7) % 256, (i * 13) % 256, i % 200, i) END
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO log_entries
SELECT i,
       datetime(1420070400 + i * 3, 'unixepoch'),
       CASE i % 10 WHEN 0 THEN 'ERROR' WHEN 1 THEN 'WARNING' WHEN 2 THEN 'DEBUG' ELSE 'INFO' END,
       CASE i % 3 WHEN 0 THEN 'app.web' WHEN 1 THEN 'app.worker' ELSE 'app.db' END,
       printf('GET /api/v1/grids/%d?page=%d returned %d in %d ms for user %d (Mozilla/5.0; X11; Linux x86_64)',
              i % 50000, i % 17, CASE WHEN i % 10 = 0 THEN 500 ELSE 200 END, i % 997, i % 5000),
       CASE WHEN i % 9 = 0 THEN NULL ELSE i % 5000 END,
       CASE WHEN i % 10 = 0 THEN 500 ELSE 200 END,
       i % 997,
       (i * 7919) % 1000000
FROM n;
COMMIT;
SQL
generated=$(date +%s.%N)
log "generated in $(awk -v a="$started" -v b="$generated" 'BEGIN { printf "%.1f", b - a }') s, $(du -m "$SRC" | cut -f1) MB"
TOTAL=$((2 * ROWS))

log "building rehearse (release)"
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/rehearse

# timed NAME COMMAND...: runs it under GNU time, output in $WORK/NAME.log; `seconds KB` of wall
# time and peak RSS in $WORK/NAME.time.
timed() {
    local name=$1
    shift
    if ! /usr/bin/time -f '%e %M' -o "$WORK/$name.time" "$@" >"$WORK/$name.log" 2>&1; then
        cat "$WORK/$name.log" >&2
        die "$name failed: $*"
    fi
}

# count DBURL TABLE: rows in a table of a target database.
count() { psql -qtA "$1" -c "SELECT count(*) FROM $2"; }

check_counts() { # check_counts NAME DBURL
    for t in grids log_entries; do
        local n
        n=$(count "$2" "$t")
        [[ $n == "$ROWS" ]] || die "$1 loaded $n rows into $t, not $ROWS (log: $WORK/$1.log)"
    done
}

URL_REHEARSE=$(fresh_db bench_copy_rehearse)
log "rehearse copy"
# shellcheck disable=SC2086 # REHEARSE_ARGS is a list of words
timed rehearse "$BIN" copy --from "sqlite://$SRC" --to "$URL_REHEARSE" ${REHEARSE_ARGS:-}
check_counts rehearse "$URL_REHEARSE"
grep -q '| yes' "$WORK/rehearse.log" || die "rehearse did not verify: $(cat "$WORK/rehearse.log")"

URL_PGLOADER=$(fresh_db bench_copy_pgloader)
log "pgloader"
# pgloader's default of 100,000 prefetched rows exhausts its heap on these rows (SBCL: "Heap
# exhausted during garbage collection"); 10,000 loads them.
timed pgloader pgloader --root-dir "$WORK/pgloader" --with "prefetch rows = 10000" "sqlite://$SRC" "${URL_PGLOADER/#postgres:/postgresql:}"
check_counts pgloader "$URL_PGLOADER"

log "pg_dump -Fd of rehearse's result, then pg_restore -j 2"
rm -rf "$WORK/dump"
pg_dump -Fd -j 2 -f "$WORK/dump" "$URL_REHEARSE"
URL_RESTORE=$(fresh_db bench_copy_restore)
timed restore pg_restore -j 2 --no-owner -d "$URL_RESTORE" "$WORK/dump"
check_counts restore "$URL_RESTORE"

# --- the figures -----------------------------------------------------------------------------
read -r rs rk <"$WORK/rehearse.time"
read -r ls lk <"$WORK/pgloader.time"
read -r fs fk <"$WORK/restore.time"
awk -v rows="$TOTAL" -v rs="$rs" -v rk="$rk" -v ls="$ls" -v lk="$lk" -v fs="$fs" -v fk="$fk" '
function line(tool, s, kb) { printf "%-20s | %9d | %7.1f | %9.0f | %11d\n", tool, rows, s, rows / s, kb / 1024 }
function verdict(ok) { return ok ? "met" : "NOT met" }
BEGIN {
    printf "%-20s | %9s | %7s | %9s | %11s\n", "tool", "rows", "seconds", "rows/s", "peak RSS MB"
    line("rehearse copy", rs, rk)
    line("pgloader", ls, lk)
    line("pg_restore -j 2", fs, fk)
    speed = ls / rs
    floor = rs / fs
    printf "\nrehearse vs pgloader:   %.2fx the rows/s (target >= 2x: %s)\n", speed, verdict(speed >= 2)
    printf "rehearse vs the floor:  %.2fx pg_restore -j 2 time (target <= 1.5x: %s)\n", floor, verdict(floor <= 1.5)
    printf "rehearse peak RSS:      %d MB (target < 150 MB: %s)\n", rk / 1024, verdict(rk < 150 * 1024)
}'
