#!/usr/bin/env bash
# services.sh - throwaway PostgreSQL and MariaDB servers on loopback for tests.
#
# Usage:
#   scripts/services.sh up   [postgres|mysql|all]   (default: all)
#   scripts/services.sh down [postgres|mysql|all]   (default: all)
#   scripts/services.sh env  [postgres|mysql|all]   (default: all)
#
#   eval "$(scripts/services.sh up)"     # start, then export the URLs below
#
# up    Installs whatever is missing from Debian's packages (postgresql,
#       postgresql-client, mariadb-server, mariadb-client, python3-yaml; needs
#       root), then starts the requested servers, each with its own data
#       directory under the state directory, listening on 127.0.0.1 only:
#         PostgreSQL  port $PG_PORT (55432), superuser "postgres", trust auth,
#                     UTF8 encoding, fsync/full_page_writes/synchronous_commit off
#         MariaDB     port $MY_PORT (53306), user "root" without a password,
#                     utf8mb4, innodb_flush_log_at_trx_commit=0, local_infile=1
#       A server that already answers on its port is reused, so `up` is
#       idempotent and fast the second time. The servers keep running after the
#       script exits.
# down  Stops the servers this script started (the ones whose data lives in the
#       state directory) and deletes their data.
# env   Prints the export lines without starting anything.
#
# Only the export lines go to stdout; progress and errors go to stderr:
#   export REHEARSE_TEST_PG_URL=postgres://postgres@127.0.0.1:55432/postgres
#   export PG_HOST=127.0.0.1
#   export PG_PORT=55432
#   export REHEARSE_TEST_MYSQL_URL=mysql://root@127.0.0.1:53306/mysql
#   export MY_HOST=127.0.0.1
#   export MY_PORT=53306
#
# Environment:
#   REHEARSE_SERVICES_DIR  state directory (default /tmp/rehearse-services);
#                          the postgres and mysql users must be able to reach it
#   PG_PORT, MY_PORT       TCP ports (defaults 55432 and 53306)
#
# As root (CI), initdb/pg_ctl run as the "postgres" user through runuser and
# mariadbd drops to the "mysql" user. As any other user, the packages must
# already be installed; the servers then run as that user.
set -euo pipefail

readonly HOST=127.0.0.1
PG_PORT=${PG_PORT:-55432}
MY_PORT=${MY_PORT:-53306}
STATE=${REHEARSE_SERVICES_DIR:-/tmp/rehearse-services}
readonly WAIT_SECONDS=60

if [[ $(id -u) -eq 0 ]]; then IS_ROOT=1; else IS_ROOT=0; fi
readonly IS_ROOT

log() { printf 'services.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2
}

check_port() {
    local name=$1 value=$2
    if ! [[ $value =~ ^[0-9]{1,5}$ ]] || ((10#$value < 1 || 10#$value > 65535)); then
        die "$name must be a TCP port number, got '$value'"
    fi
}

# ---------------------------------------------------------------- locating ---

# Prints the first of the given names that is an executable, either an
# absolute path or a command found on PATH.
find_exe() {
    local candidate found
    for candidate in "$@"; do
        if [[ $candidate == /* ]]; then
            if [[ -x $candidate ]]; then
                printf '%s\n' "$candidate"
                return 0
            fi
        elif found=$(command -v -- "$candidate" 2>/dev/null) && [[ -n $found ]]; then
            printf '%s\n' "$found"
            return 0
        fi
    done
    return 1
}

PG_BIN='' PG_PSQL='' PG_ISREADY=''
locate_pg() {
    local dir found=''
    # Debian keeps the server programs out of PATH; take the newest version.
    while IFS= read -r dir; do
        if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
            found=$dir
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -V)
    if [[ -z $found ]] && dir=$(find_exe initdb); then
        dir=${dir%/*}
        [[ -x $dir/pg_ctl && -x $dir/postgres ]] && found=$dir
    fi
    PG_BIN=$found
    PG_PSQL=$(find_exe ${PG_BIN:+"$PG_BIN/psql"} psql) || PG_PSQL=''
    PG_ISREADY=$(find_exe ${PG_BIN:+"$PG_BIN/pg_isready"} pg_isready) || PG_ISREADY=''
}

MY_SERVER='' MY_INSTALL_DB='' MY_CLIENT='' MY_ADMIN=''
locate_mysql() {
    MY_SERVER=$(find_exe mariadbd /usr/sbin/mariadbd mysqld /usr/sbin/mysqld /usr/libexec/mysqld) || MY_SERVER=''
    MY_INSTALL_DB=$(find_exe mariadb-install-db /usr/bin/mariadb-install-db mysql_install_db /usr/bin/mysql_install_db) || MY_INSTALL_DB=''
    MY_CLIENT=$(find_exe mariadb mysql) || MY_CLIENT=''
    MY_ADMIN=$(find_exe mariadb-admin mysqladmin) || MY_ADMIN=''
}

have_pyyaml() {
    if command -v dpkg >/dev/null 2>&1 && dpkg -s python3-yaml >/dev/null 2>&1; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' >/dev/null 2>&1
}

# ---------------------------------------------------------------- packages ---

POLICY_RC_D=/usr/sbin/policy-rc.d
REMOVE_POLICY=0
cleanup() {
    if ((REMOVE_POLICY)); then
        rm -f -- "$POLICY_RC_D"
    fi
}
trap cleanup EXIT

ensure_packages() {
    local want_pg=$1 want_my=$2
    local -a missing=()
    if ((want_pg)); then
        locate_pg
        [[ -n $PG_BIN ]] || missing+=(postgresql)
        [[ -n $PG_PSQL && -n $PG_ISREADY ]] || missing+=(postgresql-client)
    fi
    if ((want_my)); then
        locate_mysql
        [[ -n $MY_SERVER && -n $MY_INSTALL_DB ]] || missing+=(mariadb-server)
        [[ -n $MY_CLIENT && -n $MY_ADMIN ]] || missing+=(mariadb-client)
    fi
    have_pyyaml || missing+=(python3-yaml)
    ((${#missing[@]} == 0)) && return 0

    if ((!IS_ROOT)); then
        die "missing packages: ${missing[*]}; run this script as root, or install them first (apt-get install ${missing[*]})"
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing packages: ${missing[*]}, and apt-get is not available"

    # Keep the packages' own init scripts from starting their default
    # servers (5432/3306): we run our own. Docker images already have this.
    if [[ ! -e $POLICY_RC_D ]]; then
        printf '#!/bin/sh\n# temporary, from rehearse scripts/services.sh\nexit 101\n' >"$POLICY_RC_D"
        chmod 0755 "$POLICY_RC_D"
        REMOVE_POLICY=1
    fi
    log "installing ${missing[*]} (apt-get update + install)"
    local -a apt_opts=(-q -o DPkg::Lock::Timeout=300)
    apt-get "${apt_opts[@]}" update >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends \
        "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
    cleanup
    REMOVE_POLICY=0

    if ((want_pg)); then
        locate_pg
        [[ -n $PG_BIN && -n $PG_PSQL && -n $PG_ISREADY ]] || die "PostgreSQL programs still not found after installing"
    fi
    if ((want_my)); then
        locate_mysql
        [[ -n $MY_SERVER && -n $MY_INSTALL_DB && -n $MY_CLIENT && -n $MY_ADMIN ]] ||
            die "MariaDB programs still not found after installing"
    fi
}

# ------------------------------------------------------------- state dir ---

# Makes the state directory, resolves it to an absolute path and takes a lock
# on it (fd 9) so that concurrent runs do not race. Servers are started with
# close_extra_fds, or a long-lived server would hold the lock.
open_state() {
    local create=$1
    [[ -n $STATE ]] || die "REHEARSE_SERVICES_DIR is empty"
    if [[ ! -d $STATE ]]; then
        ((create)) || return 1
        mkdir -p -- "$STATE" || die "cannot create $STATE"
        chmod 0755 -- "$STATE"
    fi
    STATE=$(cd -- "$STATE" && pwd -P) || die "cannot enter $STATE"
    [[ $STATE != / ]] || die "refusing to use / as the state directory"
    if command -v flock >/dev/null 2>&1; then
        exec 9<"$STATE"
        flock -w 600 9 || die "timed out waiting for another services.sh on $STATE"
    fi
    return 0
}

# mkdir owned by the given system user (when root).
make_owned_dir() {
    local owner=$1 dir=$2
    mkdir -p -- "$dir"
    if ((IS_ROOT)); then
        id -u "$owner" >/dev/null 2>&1 || die "system user '$owner' does not exist (is the package installed?)"
        chown -- "$owner:" "$dir"
        runuser -u "$owner" -- test -w "$dir" ||
            die "user '$owner' cannot write $dir; choose a REHEARSE_SERVICES_DIR whose parents are world-searchable (e.g. under /tmp)"
    fi
    chmod 0700 -- "$dir"
}

# Runs a command as the postgres user when root (PostgreSQL refuses root),
# from / so that a cwd the user cannot read does not matter.
as_pg() {
    if ((IS_ROOT)); then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Closes every fd above 2 of the current (sub)shell, so that a server started
# from it keeps no pipe or lock of the caller's open (a $(...) or a CI log
# reader would otherwise wait for the server to exit).
close_extra_fds() {
    local path fd
    for path in /proc/"$BASHPID"/fd/*; do
        fd=${path##*/}
        if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)) && [[ -L /proc/$BASHPID/fd/$fd ]]; then
            exec {fd}>&-
        fi
    done
}

tail_log() {
    local file=$1
    if [[ -r $file ]]; then
        log "last lines of $file:"
        tail -n 40 -- "$file" >&2 || true
    fi
}

# -------------------------------------------------------------- postgres ---

pg_ready() {
    "$PG_ISREADY" -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1
}

pg_query() {
    PGCONNECT_TIMEOUT=5 "$PG_PSQL" -X -w -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -Atq -c "$1"
}

pg_up() {
    local dir=$STATE/pg data=$STATE/pg/data sock=$STATE/pg/run logfile=$STATE/pg/postgres.log
    if pg_ready; then
        log "PostgreSQL already answers on $HOST:$PG_PORT; reusing it"
    else
        make_owned_dir postgres "$dir"
        if [[ ! -f $data/PG_VERSION ]]; then
            log "initdb $data"
            as_pg "$PG_BIN/initdb" -D "$data" --auth=trust -U postgres --encoding=UTF8 --no-locale \
                >"$dir/initdb.log" 2>&1 || { tail_log "$dir/initdb.log"; die "initdb failed"; }
            printf "\n# added by rehearse scripts/services.sh\ninclude_if_exists = 'rehearse.conf'\n" >>"$data/postgresql.conf"
        fi
        as_pg mkdir -p -- "$sock"
        # Rewritten on every start so that a changed PG_PORT takes effect.
        {
            printf '# written by rehearse scripts/services.sh; throwaway settings\n'
            printf "listen_addresses = '%s'\n" "$HOST"
            printf 'port = %d\n' "$((10#$PG_PORT))"
            printf "unix_socket_directories = '%s'\n" "${sock//\'/\'\'}"
            printf 'max_connections = 200\n'
            printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
        } >"$data/rehearse.conf"
        if ((IS_ROOT)); then chown -- postgres: "$data/rehearse.conf"; fi
        log "starting PostgreSQL on $HOST:$PG_PORT (data $data)"
        (
            close_extra_fds
            as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t "$WAIT_SECONDS" start
        ) >&2 </dev/null || { tail_log "$logfile"; die "PostgreSQL did not start"; }
        local i
        for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
            pg_ready && break
            sleep 0.5
        done
        pg_ready || { tail_log "$logfile"; die "PostgreSQL is not ready on $HOST:$PG_PORT after ${WAIT_SECONDS}s"; }
    fi
    local version
    version=$(pg_query 'select version()') ||
        die "cannot log in as postgres on $HOST:$PG_PORT without a password"
    log "PostgreSQL ready: ${version%% on *} on $HOST:$PG_PORT"
}

pg_down() {
    local dir=$STATE/pg data=$STATE/pg/data
    if [[ -f $data/PG_VERSION ]] && [[ -n $PG_BIN ]]; then
        local rc=0
        as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1 || rc=$?
        if ((rc == 0)); then
            log "stopping PostgreSQL (data $data)"
            as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t "$WAIT_SECONDS" stop >&2 </dev/null ||
                die "pg_ctl stop failed; $dir left in place"
        fi
    elif [[ -f $data/postmaster.pid ]]; then
        die "PostgreSQL programs not found, cannot stop the server in $data"
    fi
    if [[ -e $dir ]]; then
        rm -rf -- "$dir"
        log "removed $dir"
    fi
}

# ----------------------------------------------------------------- mysql ---

my_alive() {
    # ping exits 0 as soon as the server answers, even if access is denied.
    "$MY_ADMIN" --no-defaults -h "$HOST" -P "$MY_PORT" -u root --connect-timeout=2 ping >/dev/null 2>&1
}

my_tcp() {
    "$MY_CLIENT" --no-defaults -h "$HOST" -P "$MY_PORT" -u root --connect-timeout=5 -N -B -e "$1"
}

my_sock() {
    "$MY_CLIENT" --no-defaults --protocol=socket --socket="$STATE/mysql/mysql.sock" -u root -N -B -e "$1"
}

readonly MY_GRANT="CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"

my_up() {
    local dir=$STATE/mysql data=$STATE/mysql/data
    local sock=$STATE/mysql/mysql.sock pidfile=$STATE/mysql/mariadbd.pid errlog=$STATE/mysql/error.log
    local -a as_user=()
    if ((IS_ROOT)); then as_user=(--user=mysql); fi

    if my_alive; then
        log "MariaDB already answers on $HOST:$MY_PORT; reusing it"
    else
        make_owned_dir mysql "$dir"
        if [[ ! -d $data/mysql ]]; then
            log "mariadb-install-db $data"
            if ! "$MY_INSTALL_DB" --no-defaults "${as_user[@]}" --datadir="$data" \
                --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
                >"$dir/install-db.log" 2>&1 </dev/null; then
                tail_log "$dir/install-db.log"
                rm -rf -- "$data"
                die "mariadb-install-db failed"
            fi
        fi
        log "starting MariaDB on $HOST:$MY_PORT (data $data)"
        # setsid + nohup: own session, survives this script and its terminal;
        # every standard fd goes to files so that $(...) callers do not hang.
        (
            close_extra_fds
            exec setsid nohup "$MY_SERVER" --no-defaults "${as_user[@]}" \
                --datadir="$data" --socket="$sock" --port="$((10#$MY_PORT))" --bind-address="$HOST" \
                --pid-file="$pidfile" --log-error="$errlog" --skip-name-resolve \
                --innodb-flush-log-at-trx-commit=0 --local-infile=1 \
                --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        ) </dev/null >>"$dir/mariadbd.out" 2>&1 &
        local launcher=$! i
        for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
            my_alive && break
            if ! kill -0 "$launcher" 2>/dev/null; then
                tail_log "$errlog"
                tail_log "$dir/mariadbd.out"
                die "mariadbd exited during startup"
            fi
            sleep 0.5
        done
        if ! my_alive; then
            tail_log "$errlog"
            die "MariaDB is not answering on $HOST:$MY_PORT after ${WAIT_SECONDS}s (pid $launcher left running; '$0 down mysql' stops it)"
        fi
    fi

    # root over TCP from 127.0.0.1 without a password: mariadb-install-db makes
    # root@localhost (socket) but not root@127.0.0.1, so grant it through our
    # socket (root@localhost has no password there).
    if ! my_tcp 'select 1' >/dev/null 2>&1; then
        if [[ -S $sock ]]; then
            my_sock "$MY_GRANT" >&2 || die "could not grant root@127.0.0.1 through $sock"
        else
            die "cannot log in as root on $HOST:$MY_PORT without a password, and the server is not ours"
        fi
    fi
    local version
    version=$(my_tcp 'select version()') ||
        die "cannot log in as root on $HOST:$MY_PORT without a password"
    log "MariaDB ready: $version on $HOST:$MY_PORT"
}

my_down() {
    local dir=$STATE/mysql sock=$STATE/mysql/mysql.sock pidfile=$STATE/mysql/mariadbd.pid
    local pid=''
    if [[ -s $pidfile ]]; then
        pid=$(<"$pidfile")
        [[ $pid =~ ^[0-9]+$ ]] || pid=''
    fi
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        log "stopping MariaDB (pid $pid, data $dir/data)"
        if [[ -S $sock && -n $MY_ADMIN ]]; then
            "$MY_ADMIN" --no-defaults --protocol=socket --socket="$sock" -u root shutdown >&2 ||
                log "mariadb-admin shutdown failed; sending SIGTERM"
        fi
        local i
        for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            ((i % 20 == 1)) && kill -TERM "$pid" 2>/dev/null
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "MariaDB pid $pid still running; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
        fi
        ! kill -0 "$pid" 2>/dev/null || die "could not stop MariaDB pid $pid; $dir left in place"
    fi
    if [[ -e $dir ]]; then
        rm -rf -- "$dir"
        log "removed $dir"
    fi
}

# ------------------------------------------------------------------- env ---

print_env() {
    local want_pg=$1 want_my=$2
    if ((want_pg)); then
        printf 'export REHEARSE_TEST_PG_URL=%q\n' "postgres://postgres@$HOST:$PG_PORT/postgres"
        printf 'export PG_HOST=%q\n' "$HOST"
        printf 'export PG_PORT=%q\n' "$PG_PORT"
    fi
    if ((want_my)); then
        printf 'export REHEARSE_TEST_MYSQL_URL=%q\n' "mysql://root@$HOST:$MY_PORT/mysql"
        printf 'export MY_HOST=%q\n' "$HOST"
        printf 'export MY_PORT=%q\n' "$MY_PORT"
    fi
}

# ------------------------------------------------------------------ main ---

main() {
    local cmd=${1:-} which=${2:-all}
    case $cmd in
        up | down | env) ;;
        -h | --help | help) usage; exit 0 ;;
        *) usage; exit 2 ;;
    esac
    (($# <= 2)) || { usage; exit 2; }
    local want_pg=0 want_my=0
    case $which in
        all) want_pg=1 want_my=1 ;;
        postgres | postgresql | pg) want_pg=1 ;;
        mysql | mariadb) want_my=1 ;;
        *) log "unknown service '$which' (expected postgres, mysql or all)"; exit 2 ;;
    esac
    check_port PG_PORT "$PG_PORT"
    check_port MY_PORT "$MY_PORT"
    PG_PORT=$((10#$PG_PORT))
    MY_PORT=$((10#$MY_PORT))

    case $cmd in
        env)
            print_env "$want_pg" "$want_my"
            ;;
        up)
            local started=$SECONDS
            ensure_packages "$want_pg" "$want_my"
            open_state 1
            if ((want_pg)); then pg_up; fi
            if ((want_my)); then my_up; fi
            log "up in $((SECONDS - started))s (state in $STATE)"
            print_env "$want_pg" "$want_my"
            ;;
        down)
            if ! open_state 0; then
                log "nothing to stop: $STATE does not exist"
                return 0
            fi
            if ((want_pg)); then locate_pg; pg_down; fi
            if ((want_my)); then locate_mysql; my_down; fi
            if ((want_pg && want_my)); then
                if rmdir -- "$STATE" 2>/dev/null; then
                    log "removed $STATE"
                else
                    log "left $STATE in place: it holds files this script did not create"
                fi
            fi
            ;;
        *) usage; exit 2 ;;
    esac
}

main "$@"
