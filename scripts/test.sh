#!/usr/bin/env bash
# The README's test command: on a fresh Debian 12 machine (as root) install what the tests
# need, start PostgreSQL 15, prepare the sandbox's golden image, then run the whole suite.
# Idempotent: a second run reuses the apt packages, the image cache and the database.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: run as root (it installs packages and boots nspawn boxes)" >&2
  exit 1
fi

log "apt packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2046  # one word per package is intended
apt-get install -y -qq --no-install-recommends $(sed -e 's/#.*//' .ci/apt-packages.txt | xargs) >/dev/null

log "python packages"
python3 -m pip install -q --disable-pip-version-check -e '.[test]'

log "postgresql"
cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
# shellcheck disable=SC2086  # "version name" are two arguments
pg_ctlcluster $cluster start 2>/dev/null || pg_ctlcluster $cluster status >/dev/null
su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
export FATCTL_TEST_DATABASE_URL=${FATCTL_TEST_DATABASE_URL:-postgresql://postgres:postgres@127.0.0.1:5432/postgres}

# Each booted box runs systemd with its own .path/inotify watchers; the default of 128
# inotify instances per user runs out after two or three boxes ("Too many open files").
sysctl -qw fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288

log "golden image (built once, cached under /var/cache/fatctl by a digest of its inputs)"
python3 -m fatctl.sandbox.image

log "tests"
python3 -m pytest -ra --durations=15 "$@"
