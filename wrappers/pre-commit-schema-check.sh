#!/bin/bash
# pre-commit-schema-check.sh: a git pre-commit hook (or CI step) for the developers of an
# application that rehearse upgrades. It compares the schema snapshot committed in HEAD with the
# one staged for this commit, runs `rehearse diff OLD NEW --check`, prints the changes and their
# verdicts, and blocks the commit when a change needs a human (for example a new NOT NULL column
# without a default): add a hint (renames, defaults, ...) or change the schema, then commit again.
#
# Install (from the application's repository):
#   cp /path/to/rehearse/wrappers/pre-commit-schema-check.sh .git/hooks/pre-commit
#   chmod +x .git/hooks/pre-commit
# Keep the snapshot current with each schema change:
#   rehearse snapshot --url "$DEV_DATABASE_URL" > db/schema-snapshot.yaml && git add db/schema-snapshot.yaml
#
# Settings (environment variables):
#   REHEARSE_BIN               the rehearse binary (default: `rehearse` on PATH)
#   REHEARSE_SNAPSHOT          the snapshot's path in the repository (default: db/schema-snapshot.yaml)
#   REHEARSE_HOOK_HINTS        a hints file in the repository, passed to `rehearse diff --hints`
#                              (its staged version; default: none)
#   REHEARSE_BASE              the revision to compare with (default: HEAD); in CI, for example
#                              REHEARSE_BASE=origin/main compares the branch's snapshot with main's
#   REHEARSE_HOOK_BLOCK_LOSSY  1: also block a change that loses data (verdict lossy)
#
# Exit codes: 0 the commit may go on (no snapshot change, or no change needs a human);
# 3 blocked: a change needs a human (or is lossy, with REHEARSE_HOOK_BLOCK_LOSSY=1);
# 2 the hook cannot run (no git repository, no rehearse, a snapshot that does not parse, a bad
# hints file); any other code is rehearse's own. `git commit --no-verify` skips the hook.
set -euo pipefail

bin=${REHEARSE_BIN:-rehearse}
snapshot=${REHEARSE_SNAPSHOT:-db/schema-snapshot.yaml}
hints=${REHEARSE_HOOK_HINTS:-}
base=${REHEARSE_BASE:-HEAD}
block_lossy=${REHEARSE_HOOK_BLOCK_LOSSY:-0}

say() { printf 'schema-check: %s\n' "$*" >&2; }

top=$(git rev-parse --show-toplevel 2>/dev/null) || {
    say "not inside a git repository"
    exit 2
}
cd "$top"

if ! command -v "$bin" >/dev/null 2>&1; then
    say "rehearse not found (REHEARSE_BIN=$bin): install it or set REHEARSE_BIN"
    exit 2
fi

# The staged snapshot; none staged means nothing to check.
if ! git cat-file -e ":$snapshot" 2>/dev/null; then
    if git cat-file -e "$base:$snapshot" 2>/dev/null; then
        say "$snapshot is removed in this commit: nothing to compare"
    fi
    exit 0
fi
# No snapshot in the base revision (its first commit, or no commit yet): nothing to compare.
if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null ||
    ! git cat-file -e "$base:$snapshot" 2>/dev/null; then
    say "no $snapshot in $base: nothing to compare"
    exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/schema-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ext=${snapshot##*.}
git show "$base:$snapshot" >"$tmp/old.$ext"
git show ":$snapshot" >"$tmp/new.$ext"
if cmp -s "$tmp/old.$ext" "$tmp/new.$ext"; then
    exit 0
fi

args=(diff "$tmp/old.$ext" "$tmp/new.$ext" --check)
if [[ -n $hints ]]; then
    if git cat-file -e ":$hints" 2>/dev/null; then
        git show ":$hints" >"$tmp/hints.yaml"
        args+=(--hints "$tmp/hints.yaml")
    else
        say "REHEARSE_HOOK_HINTS=$hints is not in the index: checking without hints"
    fi
fi

say "schema changes in $snapshot ($base -> staged):"
rc=0
out=$("$bin" "${args[@]}") || rc=$?
if [[ -n $out ]]; then
    printf '%s\n' "$out"
fi

case $rc in
0)
    if [[ $block_lossy == 1 ]] && grep -q '^verdict: lossy' <<<"$out"; then
        say "blocked: a change loses data (REHEARSE_HOOK_BLOCK_LOSSY=1); keep the data or say so in accept_loss"
        exit 3
    fi
    exit 0
    ;;
3)
    say "blocked: a change needs a human (see HUMAN above)."
    say "add a hint (renames, values, defaults) to the hints file, or change the schema, then commit again"
    exit 3
    ;;
*)
    say "rehearse diff failed with exit code $rc"
    exit "$rc"
    ;;
esac
