# shellcheck shell=bash
# Shared set-up of the README's two commands (scripts/demo.sh and scripts/test.sh), sourced
# from the repository root: one place for the root check, the system packages and the
# kernel limits that booted boxes need.

log() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$1: run as root (it installs packages and boots nspawn boxes)" >&2
    exit 1
  fi
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
