#!/usr/bin/env bash
# frameworks-venv.sh - the Python virtualenv the framework tests use (tests/frameworks.rs): pydal,
# Django, SQLAlchemy, alembic and psycopg2-binary at the versions pinned in
# tests/frameworks/requirements.txt.
#
# Usage: scripts/frameworks-venv.sh        prints the venv's bin directory on stdout
#
# Idempotent: a venv whose stamp matches the requirements file is reused as it is. The venv lives
# in ${REHEARSE_FRAMEWORKS_VENV:-target/frameworks-venv} (relative to the repository). Needs
# python3 with the venv module: when it is missing and we are root, Debian's python3-venv is
# installed. Progress goes to stderr.
#
# Exit codes: 0 ready; 1 the venv could not be made; 3 the package registry could not be reached
# (the tests treat that as "skip loudly", except under CI=true).
set -euo pipefail

root=$(cd -- "$(dirname -- "$0")/.." && pwd -P)
requirements=$root/tests/frameworks/requirements.txt
venv=${REHEARSE_FRAMEWORKS_VENV:-$root/target/frameworks-venv}
case $venv in /*) ;; *) venv=$root/$venv ;; esac
python=${REHEARSE_PYTHON:-python3}

log() { printf 'frameworks-venv: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ -r $requirements ]] || die "missing $requirements"
stamp_want=$(sha256sum -- "$requirements" | cut -d' ' -f1)
if [[ -x $venv/bin/python && -r $venv/.rehearse-stamp && $(<"$venv/.rehearse-stamp") == "$stamp_want" ]]; then
    printf '%s\n' "$venv/bin"
    exit 0
fi

command -v "$python" >/dev/null 2>&1 || die "$python not found: install python3 (Debian: apt-get install -y python3 python3-venv)"

# Debian splits ensurepip out of python3 into python3-venv (python3.X-venv).
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        minor=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        log "python3 has no venv/ensurepip: installing python3-venv python$minor-venv"
        apt-get -q -o DPkg::Lock::Timeout=300 update >&2 || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
            python3-venv "python$minor-venv" >&2 ||
            DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
                python3-venv >&2 || die "apt-get install python3-venv failed"
    else
        die "$python cannot make a virtualenv: install python3-venv (as root: apt-get install -y python3-venv)"
    fi
fi

started=$SECONDS
mkdir -p -- "$(dirname -- "$venv")"
# One builder at a time (parallel test binaries); the stamp, written last, marks a complete venv.
exec 8>"$venv.lock"
flock -w 600 8 || die "timed out waiting for another frameworks-venv.sh building $venv"
if [[ -x $venv/bin/python && -r $venv/.rehearse-stamp && $(<"$venv/.rehearse-stamp") == "$stamp_want" ]]; then
    printf '%s\n' "$venv/bin"
    exit 0
fi
rm -rf -- "$venv"
log "creating $venv with $("$python" --version 2>&1)"
"$python" -m venv "$venv" >&2 || die "$python -m venv $venv failed"
# Every package is pinned, dependencies included: nothing to resolve, no extras, no compiling.
log "installing $(grep -cv '^\s*\(#\|$\)' "$requirements") pinned packages"
errors=$venv/pip.err
if ! "$venv/bin/python" -m pip install --quiet --no-deps --no-compile --only-binary=:all: \
    --disable-pip-version-check -r "$requirements" >&2 2>"$errors"; then
    cat -- "$errors" >&2
    if grep -qiE 'Could not fetch|connection|timed out|Temporary failure in name resolution|No matching distribution|NewConnectionError|ProxyError|SSLError' \
        "$errors"; then
        rm -rf -- "$venv"
        log "the package registry could not be reached (or does not serve a pinned version)"
        exit 3
    fi
    rm -rf -- "$venv"
    die "pip install -r $requirements failed"
fi
rm -f -- "$errors"
"$venv/bin/python" -m pip check >&2 || die "the pinned packages do not fit together (pip check)"
printf '%s\n' "$stamp_want" >"$venv/.rehearse-stamp"
log "ready in $((SECONDS - started))s"
printf '%s\n' "$venv/bin"
