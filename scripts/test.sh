#!/usr/bin/env bash
# The README's test command: on a fresh Debian 12 machine (as root) install what the tests
# need, start PostgreSQL 15, prepare the sandbox's golden image, then run the whole suite.
# Idempotent: a second run reuses the apt packages, the image cache and the database.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/machine.sh
. scripts/machine.sh

preflight scripts/test.sh
if [ "${1:-}" = --preflight ]; then
  exit 0
fi

install_system_packages

log "python packages"
python3 -m pip install -q --disable-pip-version-check -c .ci/constraints.txt -e '.[test]'

log "postgresql"
cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
# shellcheck disable=SC2086  # "version name" are two arguments
pg_ctlcluster $cluster start 2>/dev/null || pg_ctlcluster $cluster status >/dev/null
su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
export FATCTL_TEST_DATABASE_URL=${FATCTL_TEST_DATABASE_URL:-postgresql://postgres:postgres@127.0.0.1:5432/postgres}

raise_box_limits

log "golden image (built once, cached under /var/cache/fatctl by a digest of its inputs)"
python3 -m fatctl.sandbox.image

if [ $# -gt 0 ]; then  # a chosen part of the suite: one process, as asked
  log "tests"
  exec python3 -m pytest -ra --durations=40 "$@"
fi

# The whole suite in two pytest processes side by side: the box tests (marked `boxes`, see
# tests/fixtures/boxes.py) spend most of their time waiting for boxes to boot and gateways to
# start, which the other process's tests fill. The box process's output is shown after the
# other's, so neither is interleaved; the run fails if either does.
logs=$(mktemp -d /tmp/fatctl-tests.XXXXXX)
log "tests: box tests in one process (output after the rest), everything else beside it"
# A background job of a script starts with SIGINT ignored: `trap - INT` gives the box process
# its default back, so an interrupt (or the EXIT trap below) lets pytest tear its boxes down.
(trap - INT; exec python3 -m pytest -ra --durations=25 -m boxes --basetemp="$logs/boxes") \
  >"$logs/boxes.log" 2>&1 &
boxes=$!
stop_boxes() {
  kill -INT "$boxes" 2>/dev/null || true
  wait "$boxes" 2>/dev/null || true
}
trap stop_boxes EXIT
trap 'exit 130' INT TERM
rest=0
FATCTL_TESTS_WITHOUT_BOXES=1 python3 -m pytest -ra --durations=25 -m "not boxes" \
  --basetemp="$logs/rest" || rest=$?
box=0
wait $boxes || box=$?
trap - EXIT
log "box tests (run beside the rest)"
cat "$logs/boxes.log"
log "exit status: box tests $box, the rest $rest"
[ "$box" -eq 0 ] && [ "$rest" -eq 0 ]
