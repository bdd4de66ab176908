# shellcheck shell=bash
# Shared set-up of the README's two commands (scripts/demo.sh and scripts/test.sh), sourced
# from the repository root: one place for the root check, the system packages and the
# kernel limits that booted boxes need.

log() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$1: run as root (it installs packages and boots nspawn boxes): as a user with sudo, sudo bash $1" >&2
    exit 1
  fi
}

# What a script needs before it changes anything, checked first. Never sudo: a minimal Debian
# has none, and the scripts run as root anyway.
preflight() {
  require_root "$1"
  local tool
  for tool in apt-get python3 sysctl; do
    command -v "$tool" >/dev/null || { echo "$1: $tool is missing (is this Debian 12?)" >&2; exit 1; }
  done
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "$1: needs Python 3.11 or newer" >&2
    exit 1
  fi
  echo "$1: preflight ok (root, apt-get, $(python3 --version))"
}

# fatctl importable from this checkout (a console script left by another clone would run
# that clone's code).
fatctl_from_here() {
  [ "$(python3 -c 'import fatctl, os; print(os.path.dirname(os.path.dirname(fatctl.__file__)))' 2>/dev/null)" = "$PWD" ]
}

install_system_packages() {
  log "apt packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2046  # one word per package is intended
  apt-get install -y -qq --no-install-recommends $(sed -e 's/#.*//' .ci/apt-packages.txt | xargs) >/dev/null
}

raise_box_limits() {
  # Each booted box runs systemd with its own .path/inotify watchers; the default of 128
  # inotify instances per user runs out after two or three boxes ("Too many open files").
  sysctl -qw fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288
}
