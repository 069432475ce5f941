#!/usr/bin/env bash
# The whole test suite, as README.md shows it: starts throwaway PostgreSQL and MariaDB servers on
# loopback (installing the Debian packages when missing, as root), then runs every test against
# them, real SQLite files and real git repositories.
#
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

services_env=$(scripts/services.sh up all)
eval "$services_env"
export REHEARSE_TEST_PG_URL REHEARSE_TEST_MYSQL_URL PG_HOST PG_PORT MY_HOST MY_PORT

cargo test --locked "$@"
