#!/bin/bash
# rehearse-upgrade.sh: the server entry point for `rehearse`, for a sysadmin, cron or CI.
#
# It rehearses a database schema upgrade on a copy of live, says where the report is and, when the
# rehearsal passed, the exact command that promotes the very same script to live. It never
# promotes by itself, never confirms a promotion unless REHEARSE_YES=1 is in the environment, and
# passes rehearse's exit code through unchanged: 0 passed, 1 error, 2 usage/config error, 3 a human
# must decide (nothing run), 4 rehearsal failed (rolled back), 5 refused by a safety guard.
# Its own errors (no binary, bad defaults file, unknown mode) exit 2 before anything is done.
#
# Usage:
#   rehearse-upgrade.sh [MODE] [extra rehearse arguments...]
#   MODE is one of:
#     rehearse  (default) rehearse run --config "$REHEARSE_CONFIG"; then the report's path and
#               the next command
#     live      rehearse run --config "$REHEARSE_CONFIG" --live  (adds --yes only when REHEARSE_YES=1)
#     report    rehearse report --config "$REHEARSE_CONFIG"      (e.g. `report --format md`)
#     history   rehearse history --config "$REHEARSE_CONFIG"
#     rollback  rehearse rollback --config "$REHEARSE_CONFIG" --live  (--yes only when REHEARSE_YES=1)
#     recover   rehearse recover --config "$REHEARSE_CONFIG"     (after an interrupted promotion)
#   An argument starting with `-` in MODE's place means `rehearse` with that argument. Override
#   flags among the extra arguments (--workdir, --revision, ...) are repeated in the next command
#   printed; --format and --script are not. The rehearse mode refuses --live.
#
# Settings, from the environment, then from the defaults file (the environment always wins):
#   REHEARSE_CONFIG    the upgrade.yaml (default: ./upgrade.yaml when it exists); made absolute
#   REHEARSE_BIN       the rehearse binary (default: `rehearse` on PATH)
#   REHEARSE_RUN_AS    run rehearse as this system user (e.g. postgres), see below
#   REHEARSE_YES=1     confirm `live` and `rollback` without a prompt; read from the environment
#                      only, never from the defaults file: confirming is a decision per run
#   REHEARSE_DEFAULTS  the defaults file (default: /etc/default/rehearse when it exists; empty or
#                      /dev/null: none)
#   Every other REHEARSE_* variable rehearse understands (REHEARSE_LIVE_URL, REHEARSE_WORKDIR,
#   REHEARSE_APP_REVISION, ... see docs/config.md), and libpq's PG* and MySQL's MYSQL_*
#   variables, reach rehearse untouched.
#
# The defaults file is read as data, never sourced: nothing in it is executed or expanded.
#   - one NAME=value per line; blank lines and lines starting with # are ignored;
#   - NAME matches ^[A-Z_][A-Z0-9_]*$ and starts with REHEARSE_, PG or MYSQL_ (other lines are
#     ignored with a warning); no spaces around `=`, no `export`, no inline comments;
#   - the value is the rest of the line, taken literally; one pair of surrounding "..." or '...'
#     is removed; $(...), `...` and $VAR stay literal text;
#   - a variable already set in the environment is never overridden (set it empty to blank a
#     default); when the file names a variable twice, the last line wins;
#   - it must be a regular file owned by root or by the user running this script, and not writable
#     by group or others (it chooses the binary that root runs); keep it 0600 if it holds a password.
#   Example /etc/default/rehearse:
#     REHEARSE_CONFIG=/etc/rehearse/eden.yaml
#     REHEARSE_RUN_AS=postgres
#     REHEARSE_APP_REVISION="v2.0.0"
#
# Running as another user (REHEARSE_RUN_AS): rehearse is started with `runuser -u USER --` when this
# script runs as root, else with `sudo -u USER` (which needs a sudoers rule). The REHEARSE_*, PG*
# and MYSQL_* variables are passed explicitly as separate `env NAME=value` arguments, never through
# a shell string. Variables that hold a secret (a name containing PASS, PWD, SECRET or TOKEN, or a
# value that is a URL with a password) are not put on that command line, because the process list
# is readable by every user: they reach rehearse through the inherited environment (runuser -u keeps
# it; with sudo they are named in --preserve-env=, names only). HOME becomes the user's, so its
# ~/.pgpass and ~/.my.cnf apply. The workdir then belongs to that user: run every mode with the
# same REHEARSE_RUN_AS. That user must be able to read the application's repository, and git
# refuses a repository owned by someone else ("dubious ownership"); allow it once, as root:
#   git config --system --add safe.directory /srv/eden
#   git config --system --add safe.directory /srv/eden/.git
#
# Examples:
#   PostgreSQL on this server with peer authentication, run as the postgres system user:
#     # /etc/rehearse/eden.yaml has  live: { url: "postgres:///eden?host=/var/run/postgresql" }
#     REHEARSE_CONFIG=/etc/rehearse/eden.yaml REHEARSE_RUN_AS=postgres rehearse-upgrade.sh
#     REHEARSE_CONFIG=/etc/rehearse/eden.yaml REHEARSE_RUN_AS=postgres rehearse-upgrade.sh live
#   MySQL/MariaDB: the credentials come from the running user's ~/.my.cnf ([client] user=,
#   password=, 0600); nothing special is done here, and no password goes on a command line:
#     REHEARSE_CONFIG=/etc/rehearse/shop.yaml rehearse-upgrade.sh       # as root: /root/.my.cnf
#   SQLite (a file the running user can read, and write for `live`):
#     REHEARSE_CONFIG=/srv/app/upgrade.yaml rehearse-upgrade.sh
#     REHEARSE_CONFIG=/srv/app/upgrade.yaml REHEARSE_YES=1 rehearse-upgrade.sh live </dev/null
#   Nightly rehearsal from cron (/etc/cron.d/rehearse), with the settings in /etc/default/rehearse:
#     30 2 * * * root /usr/local/bin/rehearse-upgrade.sh >>/var/log/rehearse.log 2>&1

# `shellcheck -o all` is clean except SC2310: is_secret and report_field are predicates, called in
# `if` on purpose; they do not rely on set -e inside them.
# shellcheck disable=SC2310

set -euo pipefail

PROG=${0##*/}

say() { printf '%s: %s\n' "${PROG}" "$*" >&2; }
die() {
	say "$1"
	exit "${2:-2}"
}

# The header comment is the help.
usage() {
	sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p;}' "$0"
}

# A variable that must not appear on a command line (the process list is world-readable).
is_secret() {
	local name=$1 value=$2
	case ${name} in
	*PASS* | *PWD* | *SECRET* | *TOKEN*) return 0 ;;
	*) ;;
	esac
	[[ ${value} =~ ://[^/@]*:[^/@]*@ ]]
}

# Read NAME=value lines from the defaults file as data: see the header for the format.
load_defaults() {
	local file=$1 line name value n=0 stat owner mode
	# Ranges like [A-Z] must mean ASCII whatever the caller's locale.
	local LC_ALL=C
	local -A from_file=()
	[[ -f ${file} ]] || die "defaults file ${file} is not a regular file (REHEARSE_DEFAULTS)"
	[[ -r ${file} ]] || die "cannot read the defaults file ${file}"
	stat=$(stat -L -c '%u %a' -- "${file}") || die "cannot stat the defaults file ${file}"
	read -r owner mode <<<"${stat}"
	if [[ ${owner} != 0 && ${owner} != "${EUID}" ]]; then
		die "defaults file ${file} is owned by uid ${owner}: it must belong to root or to you (chown root ${file})"
	fi
	if ((8#${mode} & 8#022)); then
		die "defaults file ${file} is writable by group or others (mode ${mode}): chmod go-w ${file}"
	fi
	while IFS= read -r line || [[ -n ${line} ]]; do
		n=$((n + 1))
		line=${line%$'\r'}
		[[ ${line} =~ ^[[:space:]]*(#|$) ]] && continue
		if [[ ! ${line} =~ ^[A-Z_][A-Z0-9_]*= ]]; then
			say "warning: ${file}:${n}: ignored: not a NAME=value line"
			continue
		fi
		name=${line%%=*}
		value=${line#*=}
		case ${name} in
		REHEARSE_YES)
			say "warning: ${file}:${n}: REHEARSE_YES ignored: confirm per run, in the environment (e.g. the crontab line)"
			continue
			;;
		REHEARSE_DEFAULTS) continue ;;
		REHEARSE_* | PG* | MYSQL_*) ;;
		*)
			say "warning: ${file}:${n}: ${name} ignored: only REHEARSE_*, PG* and MYSQL_* variables are read"
			continue
			;;
		esac
		if ((${#value} >= 2)) && [[ ${value} == \"*\" || ${value} == \'*\' ]]; then
			value=${value:1:${#value}-2}
		fi
		if [[ -v ${name} && -z ${from_file[${name}]:-} ]]; then
			continue
		fi
		if is_secret "${name}" "${value}" && ((8#${mode} & 8#004)); then
			say "warning: ${file}:${n}: ${name} holds a secret in a world-readable file: chmod 600 ${file}"
		fi
		from_file[${name}]=1
		printf -v "${name}" '%s' "${value}"
		export "${name?}"
	done <"${file}"
}

# ---- settings ------------------------------------------------------------------------------

MODE=rehearse
if (($# > 0)); then
	case $1 in
	rehearse | live | report | history | rollback | recover)
		MODE=$1
		shift
		;;
	-h | --help | help)
		usage
		exit 0
		;;
	-*) ;;
	*) die "unknown mode \"$1\": use rehearse, live, report, history, rollback or recover (see --help)" ;;
	esac
fi
# The extra arguments the next steps must repeat (overrides such as --workdir), that is all but
# --format and --script; and --workdir alone, for finding the report this run wrote.
KEEP=()
WORKDIR_ARGS=()
skip=
for arg in "$@"; do
	[[ ${MODE} != rehearse || ${arg} != --live ]] || die "rehearse mode never promotes: use \"${PROG} live\" to promote"
	if [[ -n ${skip} ]]; then
		[[ ${skip} != --workdir ]] || WORKDIR_ARGS=(--workdir "${arg}")
		[[ ${skip} == --format || ${skip} == --script ]] || KEEP+=("${arg}")
		skip=
		continue
	fi
	case ${arg} in
	--format | --script) skip=${arg} ;;
	--format=* | --script=*) ;;
	--workdir)
		skip=${arg}
		KEEP+=("${arg}")
		;;
	--workdir=*)
		WORKDIR_ARGS=(--workdir "${arg#--workdir=}")
		KEEP+=("${arg}")
		;;
	*) KEEP+=("${arg}") ;;
	esac
done

# Whether REHEARSE_YES=1 came from the caller: read before the defaults file, which may not set it.
YES=0
if [[ ${REHEARSE_YES:-} == 1 ]]; then
	YES=1
elif [[ -n ${REHEARSE_YES:-} ]]; then
	say "warning: REHEARSE_YES=${REHEARSE_YES} ignored: only REHEARSE_YES=1 confirms without a prompt"
fi

if [[ -v REHEARSE_DEFAULTS ]]; then
	DEFAULTS=${REHEARSE_DEFAULTS}
	[[ ${DEFAULTS} == /dev/null ]] && DEFAULTS=
	if [[ -n ${DEFAULTS} && ! -e ${DEFAULTS} ]]; then
		die "defaults file ${DEFAULTS} does not exist (REHEARSE_DEFAULTS)"
	fi
elif [[ -e /etc/default/rehearse ]]; then
	DEFAULTS=/etc/default/rehearse
else
	DEFAULTS=
fi
[[ -n ${DEFAULTS} ]] && load_defaults "${DEFAULTS}"

BIN=${REHEARSE_BIN:-rehearse}
if [[ ${BIN} != */* ]]; then
	found=$(command -v -- "${BIN}" || true)
	if [[ ${found} != */* ]]; then
		die "cannot find the rehearse binary: \"${BIN}\" is not on PATH; install it or set REHEARSE_BIN=/path/to/rehearse"
	fi
	BIN=${found}
fi
[[ ${BIN} == /* ]] || BIN=${PWD}/${BIN}
if [[ ! -f ${BIN} || ! -x ${BIN} ]]; then
	die "cannot find the rehearse binary: ${BIN} is not an executable file; install rehearse or fix REHEARSE_BIN"
fi
# `env NAME=value... BIN` would take a BIN containing `=` for one more assignment.
[[ ${BIN} != *=* ]] || die "REHEARSE_BIN ${BIN} contains \"=\": move the binary to a plain path"

CONFIG=${REHEARSE_CONFIG:-}
[[ -z ${CONFIG} && -e upgrade.yaml ]] && CONFIG=upgrade.yaml
[[ -z ${CONFIG} || ${CONFIG} == /* ]] || CONFIG=${PWD}/${CONFIG}
CONFIG_ARGS=()
[[ -z ${CONFIG} ]] || CONFIG_ARGS=(--config "${CONFIG}")

# The command prefix that starts rehearse, as another user when REHEARSE_RUN_AS says so.
RUN=()
RUN_AS=${REHEARSE_RUN_AS:-}
ME=
[[ -z ${RUN_AS} ]] || ME=$(id -un 2>/dev/null || true)
if [[ -n ${RUN_AS} && ${RUN_AS} != "${ME}" ]]; then
	id -u -- "${RUN_AS}" >/dev/null 2>&1 || die "REHEARSE_RUN_AS=${RUN_AS}: no such user"
	pass=()
	secret=()
	exported=$(compgen -e)
	while IFS= read -r name; do
		case ${name} in
		REHEARSE_* | PG* | MYSQL_*) ;;
		*) continue ;;
		esac
		if is_secret "${name}" "${!name}"; then
			secret+=("${name}")
		else
			pass+=("${name}=${!name}")
		fi
	done <<<"${exported}"
	if ((EUID == 0)) && command -v runuser >/dev/null; then
		# runuser -u keeps the environment, so the secrets arrive without being on its command line.
		RUN=(runuser -u "${RUN_AS}" --)
	elif command -v sudo >/dev/null; then
		RUN=(sudo -u "${RUN_AS}")
		if ((${#secret[@]} > 0)); then
			RUN+=("--preserve-env=$(
				IFS=,
				printf '%s' "${secret[*]}"
			)")
		fi
		RUN+=(--)
	else
		die "REHEARSE_RUN_AS=${RUN_AS}: need runuser (as root) or sudo to run rehearse as ${RUN_AS}"
	fi
	RUN+=(env "${pass[@]}")
fi
RUN+=("${BIN}")

# A command as a sysadmin would type it again: every word shell-quoted.
quoted() {
	local out='' word
	for word in "$@"; do
		out+="${out:+ }$(printf '%q' "${word}")"
	done
	printf '%s' "${out}"
}

# This script again, with the config it used, for the next step.
again() {
	local -a cmd=()
	[[ -z ${CONFIG} ]] || cmd+=("REHEARSE_CONFIG=${CONFIG}")
	[[ -z ${RUN_AS} ]] || cmd+=("REHEARSE_RUN_AS=${RUN_AS}")
	cmd+=("$0" "$@")
	quoted "${cmd[@]}"
}

# A field of the last report (`rehearse report --format json`), or fail.
report_field() {
	local json
	command -v python3 >/dev/null || return 1
	json=$("${RUN[@]}" report "${CONFIG_ARGS[@]}" "${WORKDIR_ARGS[@]}" --format json 2>/dev/null) || return 1
	python3 -I -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"${json}" 2>/dev/null
}

# Say where the report is; without python3, how to see it.
where_report() {
	local workdir view direct
	if workdir=$(report_field workdir) && [[ -n ${workdir} ]]; then
		printf '  report: %s\n' "${workdir%/}/report.md" >&2
	else
		view=$(again report "${WORKDIR_ARGS[@]}" --format md)
		direct=$(quoted "${BIN}" report "${CONFIG_ARGS[@]}" "${WORKDIR_ARGS[@]}" --format md)
		printf '  report: see it with: %s\n' "${view}" >&2
		printf '          (python3 is needed to print its path; that runs: %s)\n' "${direct}" >&2
	fi
}

# ---- run -----------------------------------------------------------------------------------

YES_ARGS=()
((YES == 0)) || YES_ARGS=(--yes)

case ${MODE} in
rehearse) ARGS=(run "${CONFIG_ARGS[@]}" "$@") ;;
live) ARGS=(run "${CONFIG_ARGS[@]}" --live "${YES_ARGS[@]}" "$@") ;;
rollback) ARGS=(rollback "${CONFIG_ARGS[@]}" --live "${YES_ARGS[@]}" "$@") ;;
*) ARGS=("${MODE}" "${CONFIG_ARGS[@]}" "$@") ;;
esac

set +e
"${RUN[@]}" "${ARGS[@]}"
rc=$?
set -e

case ${MODE}:${rc} in
rehearse:0)
	say "the rehearsal passed and was verified (exit 0)"
	where_report
	printf '  let users test the new code against the test copy; then promote exactly this script to live:\n' >&2
	next=$(again live "${KEEP[@]}")
	direct=$(quoted "${BIN}" run "${CONFIG_ARGS[@]}" --live "${KEEP[@]}")
	printf '    %s\n' "${next}" >&2
	printf '  which runs%s:\n    %s\n' "${RUN_AS:+ as ${RUN_AS}}" "${direct}" >&2
	;;
rehearse:3)
	say "a human must decide (exit 3): nothing was run on the test copy, and live is untouched"
	where_report
	if script=$(report_field script) && [[ -n ${script} ]]; then
		printf '  script: %s\n' "${script}" >&2
		printf '  decide each TODO(rehearse) section in it (or add hints), then rehearse the edited script:\n' >&2
		next=$(again rehearse "${KEEP[@]}" --script "${script}")
		printf '    %s\n' "${next}" >&2
	fi
	;;
rehearse:4)
	say "the rehearsal failed on the test copy and was rolled back (exit 4); live is untouched"
	where_report
	;;
live:5 | rollback:5)
	if ((YES == 0)) && [[ ! -t 0 ]]; then
		say "refused (exit 5): no terminal to confirm on; to confirm without a prompt, run with REHEARSE_YES=1"
	fi
	;;
*) ;;
esac
exit "${rc}"
